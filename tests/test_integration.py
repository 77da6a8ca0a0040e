"""Integration into firmware builds (issue 9): library-style output, two cores side by side
in one top level (GHDL, Icarus), the FuseSoC core and its simulation targets, the Vivado
scripts (run in tclsh with stub commands) and the VHDL instantiation template.

Two different networks: A is the shipped ternary MLP compiled through the CLI with
``--name trig_tern --library trigger_nets``; B a small IR MLP with multipliers and a tanh
table (another input type) written with the defaults (core ``calo_mlp`` in the library
``nnfpga_calo_mlp``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnfpga.backends.integration import write_integration
from nnfpga.backends.integration.instantiation import piece
from nnfpga.backends.rtl import read_summary, write_rtl
from nnfpga.backends.rtl.bus import from_hex, to_hex
from nnfpga.backends.rtl.vhdl_testbench import Bench, Channel, logging_process, slv, vhdl_testbench
from nnfpga.compiler.cli import main
from nnfpga.compiler.driver import load_firmware
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from tests.conftest import MODELS, require_tool
from tests.irmodels import random_mlp

FULL_PART = "xcvu9p-flga2104-2L-e"
FUSESOC = Path(sys.executable).parent / "fusesoc"


@pytest.fixture(scope="module")
def cores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cores")
    a = root / "a"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "-o", str(a), "--name", "trig_tern",
                 "--library", "trigger_nets"]) == 0
    b = root / "b"
    graph = random_mlp([12, 10, 6], seed=3, final_activation="tanh", name="calo-mlp",
                       input_type=FixedType(10, 4, True, Rounding.RND_CONV, Overflow.SAT))
    rtl = write_rtl(graph, b)
    graph.save(b / "ir.json")  # as compile does: load_firmware reads it
    write_integration(graph, rtl, b, FULL_PART, 320.0)
    return {"a": a, "b": b}


# --------------------------------------------------------------------------- names
def test_names_libraries_and_units(cores):
    a, b = read_summary(cores["a"]), read_summary(cores["b"])
    assert (a["name"], a["top"], a["library"], a["model"]) == ("trig_tern", "trig_tern", "trigger_nets", "ternary_mlp")
    assert (b["name"], b["library"]) == ("calo_mlp", "nnfpga_calo_mlp")
    for info, fw in ((a, cores["a"]), (b, cores["b"])):
        name = info["name"]
        assert info["units"] == {"vhdl": [f"{name}_pkg", name], "verilog": [name]}
        assert info["files"] == {"vhdl": f"vhdl/{name}.vhd", "verilog": f"verilog/{name}.v"}
        vhd = (fw / info["files"]["vhdl"]).read_text()
        v = (fw / info["files"]["verilog"]).read_text()
        # every design unit the printers emit carries the core's name
        assert re.findall(r"^(?:entity|package) (\w+) is", vhd, re.M) == [f"{name}_pkg", name]
        assert re.findall(r"^module (\w+)", v, re.M) == [name]
        assert f"constant {name.upper()}_LATENCY" in vhd and f":= {info['latency_cycles']};" in vhd
        assert f"library {info['library']}" in vhd
        assert info["integration"]["fusesoc_core"] == f"{name}.core"
        assert all((fw / p).is_file() for p in info["integration"]["testbench"].values())


def test_bad_names_fail_loudly(tmp_path, capsys):
    for opt, value in (("--name", "Trig-Net"), ("--name", "entity"), ("--library", "work"), ("--library", "9lib")):
        rc = main(["compile", str(MODELS / "ternary_mlp.h5"), "-o", str(tmp_path / "x"), opt, value])
        err = capsys.readouterr().err
        assert rc == 2 and opt in err and repr(value) in err, err
        assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match=r"'Trig-Net' is not a legal.*'trig_net'"):
        write_rtl(random_mlp([4, 3]), tmp_path / "y", name="Trig-Net")


# --------------------------------------------------------------------------- two cores, one top
def _renamed(text: str, instance: str, signals: dict[str, str]) -> str:
    text = text.replace("your_instance_name", instance)
    return re.sub(r"=> (\w+)", lambda m: f"=> {signals[m.group(1)]}", text)


def _signals(tag: str) -> dict[str, str]:
    return {"clk": "clk", "rst": "rst", "in_valid": "in_valid", "in_data": f"in_{tag}",
            "out_valid": f"valid_{tag}", "out_data": f"out_{tag}"}


def _stimulus(cores: dict[str, Path], n: int, seed: int = 5):
    """Raw inputs of both cores, golden outputs, and the cycle schedule (1 = a sample to
    both cores in the same cycle, 0 = idle)."""
    rng = np.random.default_rng(seed)
    data = {}
    for tag, fw in cores.items():
        graph = load_firmware(fw)
        t = graph.input.info.type
        shape = tuple(graph.input.info.shape)
        x = rng.integers(t.min_raw, t.max_raw, size=(n, int(np.prod(shape))), endpoint=True)
        y = run_raw(graph, x.reshape(n, *shape).astype(np.float64)).reshape(n, -1)
        data[tag] = (x, y, read_summary(fw))
    schedule = [1 if k == 0 or rng.random() < 0.8 else 0 for k in range(int(n * 1.3))]
    schedule += [1] * (n - sum(schedule))
    while sum(schedule) > n:
        schedule.pop()
    return data, schedule


def _stimulus_file(path: Path, data: dict, schedule: list[int]) -> None:
    hexes = {tag: to_hex(x, FixedType.from_json(info["in_type"]).width, -(-info["in_bus_width"] // 4))
             for tag, (x, _, info) in data.items()}
    lines, k = [], 0
    for flag in schedule:
        lines.append(f"1 {hexes['a'][k]} {hexes['b'][k]}" if flag else "0")
        k += flag
    path.write_text("\n".join(lines) + "\n")


def _check_log(log: str, data: dict, n: int) -> None:
    """Both cores: one output per sample, exactly its latency after the sample, bit-exact."""
    ins = [int(p[1]) for p in (line.split() for line in log.splitlines()) if p and p[0] == "I"]
    assert len(ins) == n
    for tag, (_, y, info) in data.items():
        outs = [(int(p[1]), p[2]) for p in (line.split() for line in log.splitlines()) if p and p[0] == tag.upper()]
        assert len(outs) == n, tag
        assert [c for c, _ in outs] == [c + info["latency_cycles"] for c in ins], tag
        got = from_hex([h for _, h in outs], info["n_outputs"], FixedType.from_json(info["out_type"]))
        np.testing.assert_array_equal(got, y, err_msg=tag)


def _vho_pieces(fw: Path) -> dict[str, str]:
    info = read_summary(fw)
    text = (fw / info["integration"]["instantiation"]).read_text()
    return {k: piece(text, k) for k in ("entity", "component", "instance")}


def _pair_tb_vhdl(a: dict, b: dict) -> str:
    """The logging bench of `vhdl_testbench` around pair_top: the same samples into both
    cores, their outputs logged as A and B; the bus widths from the cores' packages."""
    ports = ["in_valid", "in_a", "in_b", "valid_a", "out_a", "valid_b", "out_b"]
    signals = [("in_valid", "std_logic", "'0'"), ("valid_a", "std_logic", "'0'"), ("valid_b", "std_logic", "'0'")]
    for side, info in (("a", a), ("b", b)):
        pkg = info["name"].upper()
        signals += [(f"in_{side}", slv(f"{pkg}_IN_BUS_WIDTH"), "(others => '0')"),
                    (f"out_{side}", slv(f"{pkg}_OUT_BUS_WIDTH"), "")]
    decls, body = logging_process([("in_a", a["in_bus_width"]), ("in_b", b["in_bus_width"])],
                                  [Channel("A", "valid_a", "out_a", a["out_bus_width"]),
                                   Channel("B", "valid_b", "out_b", b["out_bus_width"])],
                                  tail=max(a["latency_cycles"], b["latency_cycles"]) + 3)
    context = [line for info in (a, b) for line in (f"library {info['library']};",
                                                    f"use {info['library']}.{info['name']}_pkg.all;")]
    return vhdl_testbench(Bench("tb_pair", ["the two cores side by side"], "work.pair_top",
                                [("clk", "clk"), ("rst", "rst"), *((p, p) for p in ports)], signals, decls, body,
                                context=context))


def test_two_cores_side_by_side_vhdl(cores, tmp_path):
    """Each core compiled into its own library (GHDL), both in one hand-written top level:
    A through the .vho's component declaration and instance, B through its direct entity
    instantiation, the port widths from their packages; the same samples in the same
    cycles; both outputs bit-exact and exactly on time."""
    require_tool("ghdl")
    info = {t: read_summary(fw) for t, fw in cores.items()}
    a, b = info["a"], info["b"]
    va, vb = _vho_pieces(cores["a"]), _vho_pieces(cores["b"])
    top = f"""\
library ieee;
use ieee.std_logic_1164.all;
library {a['library']};
use {a['library']}.all;
use {a['library']}.{a['name']}_pkg.all;
library {b['library']};
use {b['library']}.{b['name']}_pkg.all;

entity pair_top is
  port (
    clk, rst, in_valid : in std_logic;
    in_a    : in  std_logic_vector({a['name'].upper()}_IN_BUS_WIDTH - 1 downto 0);
    in_b    : in  std_logic_vector({b['name'].upper()}_IN_BUS_WIDTH - 1 downto 0);
    valid_a : out std_logic;
    out_a   : out std_logic_vector({a['name'].upper()}_OUT_BUS_WIDTH - 1 downto 0);
    valid_b : out std_logic;
    out_b   : out std_logic_vector({b['name'].upper()}_OUT_BUS_WIDTH - 1 downto 0));
end entity pair_top;

architecture rtl of pair_top is
{va['component']}begin
{_renamed(va['instance'], 'u_a', _signals('a'))}
{_renamed(vb['entity'], 'u_b', _signals('b'))}
end architecture rtl;
"""
    tb = _pair_tb_vhdl(a, b)
    (tmp_path / "pair_top.vhd").write_text(top)
    (tmp_path / "tb_pair.vhd").write_text(tb)
    n = 250
    data, schedule = _stimulus(cores, n)
    _stimulus_file(tmp_path / "in.txt", data, schedule)
    work = tmp_path / "work"
    work.mkdir()
    opts = ["--std=08", f"--workdir={work}", f"-P{work}"]

    def ghdl(*args):
        r = subprocess.run(["ghdl", *args], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr

    ghdl("-a", *opts, f"--work={a['library']}", str(cores["a"] / a["files"]["vhdl"]))
    ghdl("-a", *opts, f"--work={b['library']}", str(cores["b"] / b["files"]["vhdl"]))
    ghdl("-a", *opts, "pair_top.vhd", "tb_pair.vhd")
    ghdl("-e", *opts, "tb_pair")
    ghdl("-r", *opts, "tb_pair", "-gIN_FILE=in.txt", "-gOUT_FILE=out.txt", "--ieee-asserts=disable")
    _check_log((tmp_path / "out.txt").read_text(), data, n)


PAIR_TB_VERILOG = """\
`timescale 1ns / 1ps
module tb_pair;
  reg clk = 1'b0, rst = 1'b1, in_valid = 1'b0;
  reg [{wa}:0] in_a = 0;
  reg [{wb}:0] in_b = 0;
  wire valid_a, valid_b;
  wire [{woa}:0] out_a;
  wire [{wob}:0] out_b;
  integer fin, fout, r, flag, cycle = 0, k;
  pair_top top (.clk(clk), .rst(rst), .in_valid(in_valid), .in_a(in_a), .in_b(in_b),
                .valid_a(valid_a), .out_a(out_a), .valid_b(valid_b), .out_b(out_b));
  always #5 clk = ~clk;
  task step;
    begin
      @(posedge clk);
      cycle = cycle + 1;
      if (in_valid) $fwrite(fout, "I %0d\\n", cycle);
      if (valid_a) $fwrite(fout, "A %0d %h\\n", cycle, out_a);
      if (valid_b) $fwrite(fout, "B %0d %h\\n", cycle, out_b);
    end
  endtask
  initial begin
    fin = $fopen("in.txt", "r");
    fout = $fopen("out.txt", "w");
    repeat (4) @(posedge clk);
    rst <= 1'b0;
    while (!$feof(fin)) begin
      r = $fscanf(fin, "%d", flag);
      if (r == 1) begin
        if (flag == 1) begin
          r = $fscanf(fin, "%h %h\\n", in_a, in_b);
          in_valid <= 1'b1;
        end else begin
          in_a <= ~in_a;
          in_b <= ~in_b;
          in_valid <= 1'b0;
        end
        step;
      end
    end
    in_valid <= 1'b0;
    for (k = 0; k <= {tail}; k = k + 1) step;
    $fclose(fout);
    $finish;
  end
endmodule
"""


def test_two_cores_side_by_side_verilog(cores, tmp_path):
    """The same with the Verilog under Icarus: both modules in one compilation (no name
    clash), one top level, the same samples in the same cycles, bit-exact and on time."""
    require_tool("iverilog")
    info = {t: read_summary(fw) for t, fw in cores.items()}
    a, b = info["a"], info["b"]
    top = f"""\
module pair_top (
  input wire clk, input wire rst, input wire in_valid,
  input wire [{a['in_bus_width'] - 1}:0] in_a, input wire [{b['in_bus_width'] - 1}:0] in_b,
  output wire valid_a, output wire [{a['out_bus_width'] - 1}:0] out_a,
  output wire valid_b, output wire [{b['out_bus_width'] - 1}:0] out_b);
  {a['name']} u_a (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_a), .out_valid(valid_a), .out_data(out_a));
  {b['name']} u_b (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_b), .out_valid(valid_b), .out_data(out_b));
endmodule
"""
    tb = PAIR_TB_VERILOG.format(wa=a["in_bus_width"] - 1, wb=b["in_bus_width"] - 1, woa=a["out_bus_width"] - 1,
                                wob=b["out_bus_width"] - 1,
                                tail=max(a["latency_cycles"], b["latency_cycles"]) + 2)
    (tmp_path / "pair_top.v").write_text(top)
    (tmp_path / "tb_pair.v").write_text(tb)
    n = 250
    data, schedule = _stimulus(cores, n)
    _stimulus_file(tmp_path / "in.txt", data, schedule)
    srcs = ["tb_pair.v", "pair_top.v", str(cores["a"] / a["files"]["verilog"]), str(cores["b"] / b["files"]["verilog"])]
    r = subprocess.run(["iverilog", "-g2005", "-o", "pair.vvp", *srcs], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["vvp", "-n", "pair.vvp"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _check_log((tmp_path / "out.txt").read_text(), data, n)


# --------------------------------------------------------------------------- FuseSoC
def _fusesoc(cwd: Path, cores_root: Path, *args: str) -> subprocess.CompletedProcess:
    """fusesoc with its configuration, cache and data in ``cwd`` (no network, no user set-up)."""
    env = {"PATH": f"{FUSESOC.parent}:/usr/bin:/bin", "HOME": str(cwd), "XDG_CACHE_HOME": str(cwd / "cache"),
           "XDG_DATA_HOME": str(cwd / "data"), "XDG_CONFIG_HOME": str(cwd / "config")}
    conf = cwd / "fusesoc.conf"
    if not conf.exists():
        conf.write_text(f"[main]\ncache_root = {cwd / 'cache'}\nbuild_root = {cwd / 'build'}\n")
    return subprocess.run([str(FUSESOC), "--config", str(conf), "--cores-root", str(cores_root), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("target,tool", [("sim", "ghdl"), ("sim_verilog", "iverilog")])
def test_fusesoc_sim_target(cores, tmp_path, target, tool):
    """``fusesoc run --target sim|sim_verilog`` on the generated core passes on the golden
    vectors; a corrupted expected vector, or a latency one cycle off, makes it fail."""
    require_tool(tool)
    assert FUSESOC.is_file(), "fusesoc is not installed: run `make setup` (requirements.txt)"
    info = read_summary(cores["a"])
    vlnv = f"nnfpga:nn:{info['name']}"
    fw = tmp_path / "fw"
    shutil.copytree(cores["a"], fw)
    r = _fusesoc(tmp_path, fw, "run", "--build-root", str(tmp_path / "good"), "--target", target, vlnv)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"tb_{info['name']}: PASS: 300 samples bit-exact" in out

    tb = info["integration"]["testbench"]
    exp = fw / tb["expected"]
    good = exp.read_text()
    lines = good.splitlines()
    lines[123] = format(int(lines[123], 16) ^ 1, f"0{len(lines[123])}X")  # one bit of one output
    exp.write_text("\n".join(lines) + "\n")
    r = _fusesoc(tmp_path, fw, "run", "--build-root", str(tmp_path / "bad_value"), "--target", target, vlnv)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "FAIL: 1 errors in 300 samples" in out, out

    exp.write_text(good)
    src = fw / tb["vhdl" if target == "sim" else "verilog"]
    lat = info["latency_cycles"]
    text = src.read_text()
    pattern = f"LATENCY : positive := {lat};" if target == "sim" else f"localparam LATENCY = {lat};"
    assert pattern in text
    src.write_text(text.replace(pattern, pattern.replace(str(lat), str(lat + 1))))
    r = _fusesoc(tmp_path, fw, "run", "--build-root", str(tmp_path / "bad_latency"), "--target", target, vlnv)
    assert r.returncode != 0 and "FAIL" in r.stdout + r.stderr


def test_fusesoc_synth_target_setup(cores, tmp_path):
    """``fusesoc run --setup --target synth``: the Vivado project FuseSoC writes reads the
    VHDL into the core's library, the .xdc, and uses the part and top."""
    assert FUSESOC.is_file(), "fusesoc is not installed: run `make setup` (requirements.txt)"
    info = read_summary(cores["b"])
    r = _fusesoc(tmp_path, cores["b"], "run", "--setup", "--build-root", str(tmp_path / "b"), "--target", "synth",
                 f"nnfpga:nn:{info['name']}")
    assert r.returncode == 0, r.stdout + r.stderr
    (prj,) = (tmp_path / "b").glob("*/synth-vivado/nnfpga_nn_calo_mlp_*[0-9].tcl")
    text = prj.read_text()
    assert f"set_property part {FULL_PART} [current_project]" in text
    assert re.search(rf"read_vhdl -vhdl2008 -library {info['library']} \{{\S*/vhdl/calo_mlp.vhd\}}", text)
    assert re.search(r"read_xdc \{\S*/vivado/calo_mlp.xdc\}", text)
    assert "set_property top calo_mlp [current_fileset]" in text


# --------------------------------------------------------------------------- Vivado scripts
def _hdl_files(fw: Path) -> list[str]:
    return sorted(str(p.relative_to(fw)) for p in [*fw.glob("vhdl/*.vhd"), *fw.glob("verilog/*.v")])


def test_every_source_referenced_part_and_clock(cores):
    # A: compiled for the bare device xcvu9p, whose default full part number the scripts get
    for tag, part, mhz in (("a", FULL_PART, 240.0), ("b", FULL_PART, 320.0)):
        fw = cores[tag]
        info = read_summary(fw)
        ig = info["integration"]
        srcs = _hdl_files(fw)
        assert srcs == sorted(info["files"].values()) == sorted(sum(ig["sources"].values(), []))
        core = (fw / ig["fusesoc_core"]).read_text()
        assert core.startswith("CAPI=2:\n")
        for rel in [*srcs, *ig["testbench"].values(), ig["vivado"]["xdc"]]:
            assert f"- {rel}" in core, rel
        assert f"logical_name: {info['library']}" in core and f"part: {part}" in core
        for script in (ig["vivado"]["synth"], ig["vivado"]["package_ip"]):
            text = (fw / script).read_text()
            for rel in srcs:
                assert f"{{{rel}}}" in text, (script, rel)
            assert f"set nnfpga_part {{{part}}}" in text and f"set nnfpga_library {{{info['library']}}}" in text
            assert f"set nnfpga_top {{{info['name']}}}" in text and f"set nnfpga_clock_mhz {mhz:g}" in text
            assert ("not a full part number" in text) == ("-" not in part)
        xdc = (fw / ig["vivado"]["xdc"]).read_text()
        period = {240.0: "4.166667", 320.0: "3.125"}[mhz]
        assert f"create_clock -period {period} -name clk [get_ports clk]" in xdc


def test_extra_sources_are_referenced(cores, tmp_path):
    """More HDL files of a core (e.g. wrappers) go into the core file and both scripts."""
    graph = load_firmware(cores["b"])
    rtl = write_rtl(graph, tmp_path)
    extra = {"vhdl": ["vhdl/calo_mlp_wrap.vhd"], "verilog": ["verilog/calo_mlp_wrap.v"]}
    files = write_integration(graph, rtl, tmp_path, FULL_PART, 320.0, extra_sources=extra)
    assert files["sources"] == {"vhdl": ["vhdl/calo_mlp.vhd", "vhdl/calo_mlp_wrap.vhd"],
                                "verilog": ["verilog/calo_mlp.v", "verilog/calo_mlp_wrap.v"]}
    assert read_summary(tmp_path)["integration"]["sources"] == files["sources"]
    core = (tmp_path / files["fusesoc_core"]).read_text()
    assert "- vhdl/calo_mlp_wrap.vhd:\n        logical_name: nnfpga_calo_mlp" in core
    assert "- verilog/calo_mlp_wrap.v" in core
    for script in files["vivado"].values():
        if script.endswith(".tcl"):
            text = (tmp_path / script).read_text()
            assert "[list {vhdl/calo_mlp.vhd} {vhdl/calo_mlp_wrap.vhd}]" in text
            assert "[list {verilog/calo_mlp.v} {verilog/calo_mlp_wrap.v}]" in text
    with pytest.raises(ValueError, match="unknown language"):
        write_integration(graph, rtl, tmp_path, FULL_PART, 320.0, extra_sources={"systemverilog": ["x.sv"]})


VIVADO_STUBS = r"""
set ::log [open [lindex $argv 0] w]
set ::fail [lindex $argv 1]
set argv [lrange $argv 2 end]
namespace eval ipx {}
proc stub {cmd result} {
    proc $cmd {args} [string map [list CMD $cmd RESULT $result] {
        puts $::log [concat CMD $args]
        flush $::log
        if {"CMD" eq $::fail} { error "CMD failed" }
        return RESULT
    }]
}
foreach cmd {read_vhdl read_verilog read_xdc synth_design report_utilization report_timing_summary
             write_checkpoint opt_design place_design route_design create_project set_property add_files
             update_compile_order close_project ipx::package_project ipx::add_bus_parameter
             ipx::create_xgui_files ipx::update_checksums ipx::check_integrity ipx::save_core} {
    stub $cmd {}
}
stub get_timing_paths path
stub get_property -0.25
stub current_project prj
stub current_fileset sources_1
stub ipx::current_core core
stub ipx::get_bus_interfaces bif
stub ipx::get_bus_parameters {}
proc get_files {args} { puts $::log [concat get_files $args]; return [lindex $args end] }
proc get_parts {args} {
    puts $::log [concat get_parts $args]
    set p [lindex $args end]
    if {[string match *-* $p]} { return [list $p] }
    return {}
}
source [lindex $::script 0]
"""


def _run_tcl(tmp_path: Path, script: Path, fail: str, *args: str) -> tuple[int, list[str], str]:
    wrapper = tmp_path / "wrapper.tcl"
    wrapper.write_text(f"set ::script [list {{{script}}}]\n" + VIVADO_STUBS)
    log = tmp_path / "log.txt"
    r = subprocess.run(["tclsh", str(wrapper), str(log), fail, *args], capture_output=True, text=True, cwd=tmp_path)
    return r.returncode, log.read_text().splitlines(), r.stderr


def test_synth_tcl_in_tclsh(cores, tmp_path):
    """synth.tcl with stub Vivado commands: reads every source (VHDL into the library, or
    the Verilog), the .xdc out of context, synthesises the top for the part out of context,
    reports and writes a checkpoint; impl=1 adds place and route; a failing step exits 1,
    a bad argument 2, a part number Vivado does not know stops before reading anything."""
    assert shutil.which("tclsh"), "tclsh is not installed: run `make setup` (scripts/setup.sh)"
    fw = cores["b"]
    info = read_summary(fw)
    name, lib = info["name"], info["library"]
    script = fw / info["integration"]["vivado"]["synth"]
    out = tmp_path / "out"
    rc, lines, err = _run_tcl(tmp_path, script, "none", f"out={out}")
    assert rc == 0, err
    calls = [line.split()[0] for line in lines]
    assert calls == ["get_parts", "read_vhdl", "read_xdc", "synth_design", "report_utilization",
                     "report_timing_summary", "write_checkpoint", "get_timing_paths", "get_property"]
    reads = [line.split() for line in lines if line.startswith("read_vhdl")]
    assert [r[:3] for r in reads] == [["read_vhdl", "-vhdl2008", "-library"]] * len(reads)
    assert {r[3] for r in reads} == {lib}
    assert sorted(Path(r[4]).relative_to(fw).as_posix() for r in reads) == [info["files"]["vhdl"]]
    assert all(Path(r[4]).is_file() for r in reads)
    xdc = next(line.split() for line in lines if line.startswith("read_xdc"))
    assert xdc[1:3] == ["-mode", "out_of_context"] and Path(xdc[3]) == fw / info["integration"]["vivado"]["xdc"]
    assert f"synth_design -top {name} -part {FULL_PART} -mode out_of_context" in lines
    assert f"write_checkpoint -force {out / (name + '_synth.dcp')}" in lines
    assert out.is_dir()

    rc, lines, err = _run_tcl(tmp_path, script, "none", f"out={out} lang=verilog impl=1", "part=xcku115-flvb2104-2-e")
    calls = [line.split()[0] for line in lines]
    assert rc == 0, err
    assert "read_vhdl" not in calls and [line.split()[1] for line in lines if line.startswith("read_verilog")] == \
        [str(fw / info["files"]["verilog"])]
    assert f"synth_design -top {name} -part xcku115-flvb2104-2-e -mode out_of_context" in lines
    assert calls[calls.index("synth_design"):].count("write_checkpoint") == 2
    assert ["opt_design", "place_design", "route_design"] == [c for c in calls if c.endswith("_design")][1:]

    rc, lines, _ = _run_tcl(tmp_path, script, "synth_design", f"out={out}")
    assert rc == 1 and lines[-1].startswith("synth_design") and "write_checkpoint" not in " ".join(lines)
    rc, _, err = _run_tcl(tmp_path, script, "none", "bogus=1")
    assert rc == 2 and "unknown argument" in err
    rc, lines, err = _run_tcl(tmp_path, script, "none", "part=xcvu9p")
    assert rc == 1 and "not one part known" in err and [line.split()[0] for line in lines] == ["get_parts"]


def test_package_ip_tcl_in_tclsh(cores, tmp_path):
    assert shutil.which("tclsh"), "tclsh is not installed: run `make setup` (scripts/setup.sh)"
    fw = cores["b"]
    info = read_summary(fw)
    name, lib = info["name"], info["library"]
    script = fw / info["integration"]["vivado"]["package_ip"]
    rc, lines, err = _run_tcl(tmp_path, script, "none", f"out={tmp_path / 'ip'}")
    assert rc == 0, err
    text = "\n".join(lines)
    vhd = fw / info["files"]["vhdl"]
    assert f"create_project -force {name}_ip {tmp_path / 'ip' / ('.' + name + '_prj')} -part {FULL_PART}" in lines
    assert f"add_files -norecurse -fileset sources_1 {vhd}" in lines
    assert f"set_property library {lib} {vhd}" in lines
    assert f"set_property top {name} sources_1" in lines
    assert re.search(rf"^ipx::package_project -root_dir {re.escape(str(tmp_path / 'ip' / name))} .*-import_files",
                     text, re.M)
    assert "set_property value 320000000 " in text and "set_property value ACTIVE_HIGH " in text
    calls = [line.split()[0] for line in lines]
    assert calls[-3:] == ["ipx::check_integrity", "ipx::save_core", "close_project"]
    rc, lines, _ = _run_tcl(tmp_path, script, "ipx::package_project", f"out={tmp_path / 'ip'}")
    assert rc == 1 and "ipx::save_core" not in " ".join(lines)


# --------------------------------------------------------------------------- template, determinism
def test_instantiation_template(cores):
    """The .vho lists the entity's ports with the entity's types, in order."""
    for fw in cores.values():
        info = read_summary(fw)
        vhd = (fw / info["files"]["vhdl"]).read_text()
        entity = vhd[vhd.index(f"entity {info['name']} is"):vhd.index(f"end entity {info['name']};")]
        ports = re.findall(r"^\s+(\w+)\s*: (in|out)\s+([^;\n]*?);?(?:\s*--.*)?$", entity, re.M)
        pieces = _vho_pieces(fw)
        comp = re.findall(r"^\s+(\w+)\s*: (in|out)\s+([^;\n]*?);?$", pieces["component"], re.M)
        assert comp == ports and len(ports) == 6
        for kind in ("entity", "instance"):
            assert re.findall(r"^\s+(\w+)\s+=>", pieces[kind], re.M) == [p[0] for p in ports]
        assert f"your_instance_name : entity {info['library']}.{info['name']}" in pieces["entity"]


def test_output_is_deterministic(cores, tmp_path):
    graph = load_firmware(cores["b"])
    info = read_summary(cores["b"])
    rtl = write_rtl(graph, tmp_path)
    write_integration(graph, rtl, tmp_path, FULL_PART, 320.0)
    for rel in [*info["files"].values(), *info["integration"]["testbench"].values(),
                *info["integration"]["vivado"].values(), info["integration"]["fusesoc_core"],
                info["integration"]["instantiation"], "rtl.json"]:
        assert (tmp_path / rel).read_bytes() == (cores["b"] / rel).read_bytes(), rel
    assert json.loads((tmp_path / "rtl.json").read_text()) == info
