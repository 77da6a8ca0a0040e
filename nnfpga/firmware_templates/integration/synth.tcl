# ---- the flow: nnfpga/firmware_templates/integration/synth.tcl (static; the variables
# ---- nnfpga_* above are the generated part)
#
# Arguments (-tclargs, one per word or several in one quoted word):
#   part=<part>           the full part number (default: nnfpga_part above)
#   lang=vhdl|verilog     which of the two equivalent descriptions to read (default vhdl)
#   impl=0|1              also opt_design, place_design, route_design (default 0)
#   out=<dir>             reports and checkpoints (default vivado/out)
# Any failing command stops the script with exit status 1; a bad argument exits with 2.

set script_dir [file dirname [file normalize [info script]]]
set fw_dir [file dirname $script_dir]
array set opt [list part $nnfpga_part lang vhdl impl 0 out [file join $script_dir out]]
if {![info exists argv]} { set argv {} }
foreach arg [regexp -all -inline {\S+} [join $argv " "]] {
    if {![regexp {^(part|lang|impl|out)=(.+)$} $arg -> key value]} {
        puts stderr "synth.tcl: unknown argument '$arg' (expected part=<part>, lang=vhdl|verilog, impl=0|1, out=<dir>)"
        exit 2
    }
    set opt($key) $value
}
if {$opt(lang) ni {vhdl verilog} || $opt(impl) ni {0 1}} {
    puts stderr "synth.tcl: lang must be vhdl or verilog and impl 0 or 1 (got lang=$opt(lang) impl=$opt(impl))"
    exit 2
}

if {[catch {
    if {[llength [get_parts -quiet $opt(part)]] != 1} {
        error "'$opt(part)' is not one part known to this Vivado; give the full part number with -tclargs part=<part> (e.g. xcvu9p-flga2104-2L-e) or compile with --target <full part number>"
    }
    file mkdir $opt(out)
    if {$opt(lang) eq "vhdl"} {
        foreach f $nnfpga_vhdl_sources {
            read_vhdl -vhdl2008 -library $nnfpga_library [file join $fw_dir $f]
        }
    } else {
        foreach f $nnfpga_verilog_sources {
            read_verilog [file join $fw_dir $f]
        }
    }
    read_xdc -mode out_of_context [file join $script_dir $nnfpga_xdc]
    synth_design -top $nnfpga_top -part $opt(part) -mode out_of_context
    report_utilization -file [file join $opt(out) ${nnfpga_top}_utilization_synth.rpt]
    report_timing_summary -file [file join $opt(out) ${nnfpga_top}_timing_summary_synth.rpt]
    write_checkpoint -force [file join $opt(out) ${nnfpga_top}_synth.dcp]
    set stage synth
    if {$opt(impl)} {
        opt_design
        place_design
        route_design
        report_utilization -file [file join $opt(out) ${nnfpga_top}_utilization_impl.rpt]
        report_timing_summary -file [file join $opt(out) ${nnfpga_top}_timing_summary_impl.rpt]
        write_checkpoint -force [file join $opt(out) ${nnfpga_top}_impl.dcp]
        set stage impl
    }
    set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
    puts "synth.tcl: $nnfpga_top ($stage, $opt(part), $nnfpga_clock_mhz MHz): worst setup slack $wns ns; reports in $opt(out)"
} message]} {
    puts stderr "synth.tcl: $message"
    exit 1
}
exit 0
