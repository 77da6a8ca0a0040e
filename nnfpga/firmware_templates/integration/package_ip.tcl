# ---- the flow: nnfpga/firmware_templates/integration/package_ip.tcl (static; the
# ---- variables nnfpga_* above are the generated part)
#
# Arguments (-tclargs, one per word or several in one quoted word):
#   part=<part>           the full part number (default: nnfpga_part above)
#   lang=vhdl|verilog     which of the two equivalent descriptions the IP holds (default vhdl)
#   out=<dir>             the IP repository (default vivado/ip); the IP is out/<top>
#   vendor=<vendor>       IP-XACT vendor (default nnfpga)
#   ip_library=<library>  IP-XACT library (default nnfpga)
# Any failing command stops the script with exit status 1; a bad argument exits with 2.

set script_dir [file dirname [file normalize [info script]]]
set fw_dir [file dirname $script_dir]
array set opt [list part $nnfpga_part lang vhdl out [file join $script_dir ip] vendor nnfpga ip_library nnfpga]
if {![info exists argv]} { set argv {} }
foreach arg [regexp -all -inline {\S+} [join $argv " "]] {
    if {![regexp {^(part|lang|out|vendor|ip_library)=(.+)$} $arg -> key value]} {
        puts stderr "package_ip.tcl: unknown argument '$arg' (expected part=, lang=vhdl|verilog, out=, vendor=, ip_library=)"
        exit 2
    }
    set opt($key) $value
}
if {$opt(lang) ni {vhdl verilog}} {
    puts stderr "package_ip.tcl: lang must be vhdl or verilog (got $opt(lang))"
    exit 2
}

if {[catch {
    if {[llength [get_parts -quiet $opt(part)]] != 1} {
        error "'$opt(part)' is not one part known to this Vivado; give the full part number with -tclargs part=<part> (e.g. xcvu9p-flga2104-2L-e) or compile with --target <full part number>"
    }
    set ip_dir [file join $opt(out) $nnfpga_top]
    set prj_dir [file join $opt(out) .${nnfpga_top}_prj]
    create_project -force ${nnfpga_top}_ip $prj_dir -part $opt(part)
    set files [list]
    if {$opt(lang) eq "vhdl"} {
        set_property target_language VHDL [current_project]
        foreach f $nnfpga_vhdl_sources { lappend files [file join $fw_dir $f] }
        add_files -norecurse -fileset sources_1 $files
        set_property file_type {VHDL 2008} [get_files $files]
        set_property library $nnfpga_library [get_files $files]
    } else {
        set_property target_language Verilog [current_project]
        foreach f $nnfpga_verilog_sources { lappend files [file join $fw_dir $f] }
        add_files -norecurse -fileset sources_1 $files
    }
    add_files -norecurse -fileset constrs_1 [file join $script_dir $nnfpga_xdc]
    set_property USED_IN {synthesis implementation out_of_context} [get_files [file join $script_dir $nnfpga_xdc]]
    set_property top $nnfpga_top [current_fileset]
    update_compile_order -fileset sources_1
    ipx::package_project -root_dir $ip_dir -vendor $opt(vendor) -library $opt(ip_library) \
        -taxonomy /UserIP -import_files -set_current true
    set core [ipx::current_core]
    set_property name $nnfpga_top $core
    set_property version $nnfpga_ip_version $core
    set_property display_name $nnfpga_display_name $core
    set_property description $nnfpga_description $core
    set_property core_revision 1 $core
    # the clock interface carries the frequency the core was compiled for; rst is active high
    set clk_if [ipx::get_bus_interfaces clk -of_objects $core]
    if {$clk_if ne ""} {
        if {[ipx::get_bus_parameters FREQ_HZ -of_objects $clk_if] eq ""} {
            ipx::add_bus_parameter FREQ_HZ $clk_if
        }
        set_property value [expr {round($nnfpga_clock_mhz * 1e6)}] [ipx::get_bus_parameters FREQ_HZ -of_objects $clk_if]
        if {[ipx::get_bus_parameters ASSOCIATED_RESET -of_objects $clk_if] eq ""} {
            ipx::add_bus_parameter ASSOCIATED_RESET $clk_if
        }
        set_property value rst [ipx::get_bus_parameters ASSOCIATED_RESET -of_objects $clk_if]
    }
    set rst_if [ipx::get_bus_interfaces rst -of_objects $core]
    if {$rst_if ne ""} {
        if {[ipx::get_bus_parameters POLARITY -of_objects $rst_if] eq ""} {
            ipx::add_bus_parameter POLARITY $rst_if
        }
        set_property value ACTIVE_HIGH [ipx::get_bus_parameters POLARITY -of_objects $rst_if]
    }
    ipx::create_xgui_files $core
    ipx::update_checksums $core
    ipx::check_integrity $core
    ipx::save_core $core
    close_project
    puts "package_ip.tcl: IP $opt(vendor):$opt(ip_library):$nnfpga_top:$nnfpga_ip_version in $ip_dir (add $opt(out) to the IP repository paths)"
} message]} {
    puts stderr "package_ip.tcl: $message"
    exit 1
}
exit 0
