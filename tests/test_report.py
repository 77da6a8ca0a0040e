"""report.json / .md / .html, the analytic estimator and the compile warnings (fast).

Synthesis with Yosys and the browser check of report.html are in test_report_synth.py
(slow)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.conftest import require_tool

from nnfpga.backends.report import build_report, compare, write_report_files
from nnfpga.backends.report.estimator import estimate_netlist
from nnfpga.backends.report.primitive_costs import Operand, adder_cost, const_adder_cost, lut_rom_cost, sum_cost
from nnfpga.backends.rtl.dsp import const_product_dsp, lut_product_shifts, op_dsp
from nnfpga.backends.report.schema import load_schema, validate
from nnfpga.backends.report import timing as T
from nnfpga.backends.rtl import lower, write_rtl
from nnfpga.backends.rtl.netlist import MulConst, Reg
from nnfpga.compiler.cli import main
from nnfpga.core.parts import YOSYS_FAMILIES, find_part, known_parts, yosys_family
from nnfpga.synth.firmware import netlist_timing, resources_from_cells
from tests.conftest import MODELS
from tests.irmodels import random_mlp


# ----------------------------------------------------------------------------- part database
def test_part_database_has_the_trigger_parts_with_vendor_totals():
    for name in ("xcvu9p", "xcvu13p", "xcku115", "xcu250", "xczu9eg", "xc7z020"):
        assert name in known_parts()
    # AMD product tables: LUT, FF, DSP, BRAM36, URAM
    expected = {"xcvu9p": (1182240, 2364480, 6840, 2160, 960), "xcvu13p": (1728000, 3456000, 12288, 2688, 1280),
                "xcu250": (1728000, 3456000, 12288, 2688, 1280), "xcku115": (663360, 1326720, 5520, 2160, 0),
                "xczu9eg": (274080, 548160, 2520, 912, 0), "xc7z020": (53200, 106400, 220, 140, 0)}
    for name, totals in expected.items():
        p = find_part(name)
        assert (p.lut, p.ff, p.dsp, p.bram36, p.uram) == totals, name
    assert {yosys_family(find_part(n)) for n in ("xcvu9p", "xcvu13p", "xcu250", "xczu9eg")} == {"xcup"}
    assert yosys_family(find_part("xcku115-flvb2104-2-e")) == "xcu"
    assert yosys_family(find_part("xc7z020-clg400-1")) == "xc7"
    assert find_part("xc7z020").dsp_type == "DSP48E1"
    for name in known_parts():   # Versal alone has no synth_xilinx family (tests/test_parts.py)
        assert find_part(name).family in YOSYS_FAMILIES or find_part(name).family == "versal"


# ----------------------------------------------------------------------------- the DSP rule
@pytest.mark.parametrize("a_width, signed, c, out_width, dsp", [
    (6, False, 3, 8, 0),      # result narrower than 9 bits: LUT shift-add
    (6, False, 5, 9, 1),      # 9 bits: a DSP (Yosys mul2dsp's DSP_Y_MINWIDTH)
    (8, True, 3, 10, 1),
    (8, True, 4, 11, 0),      # a power of two is wiring
    (8, True, 0, 1, 0),
    (8, True, -3, 10, 1),     # a negative constant is a W-bit literal
    (20, True, 1000, 30, 2),  # 30 + 1 bits > 27: split into two DSP48E2
    (20, True, 1000, 26, 1),
    (24, True, 1000, 26, 2),  # on a DSP48E1 (25 bits at most): two
])
def test_mul_dsp_rule(a_width, signed, c, out_width, dsp):
    dsp_type = "DSP48E1" if a_width == 24 else "DSP48E2"
    assert const_product_dsp(a_width, signed, c, out_width, dsp_type) == dsp


def test_lut_product_shifts():
    assert lut_product_shifts(3, 8) == [0, 1]
    assert lut_product_shifts(5, 8) == [0, 2]
    assert lut_product_shifts(-1, 4) == [0, 1, 2, 3]


def test_adder_costs_follow_the_yosys_mapping():
    # signed 10 + 10 bits into 11: 10 propagate LUTs (the sign extension shares one), 3 CARRY4
    assert adder_cost(Operand(0, 10, True), Operand(0, 10, True), 11)[:2] == (10, 3)
    # (b << 3) + a: the three low bits of a pass through
    assert adder_cost(Operand(0, 10, True), Operand(3, 13, True), 14)[:2] == (10, 3)
    # unsigned 6-bit x + (x << 1) into 8 bits (x * 3)
    assert adder_cost(Operand(0, 6, False), Operand(1, 7, False), 8)[:2] == (5, 2)
    # a constant costs one inverter per set bit, the chain starts at its lowest set bit
    assert const_adder_cost(0x5B, 11) == (5, 3)
    # v + const + one bit (RND_CONV): the bit is the carry-in
    assert sum_cost([(10, True, 0, False), (1, False, 0, False)], 7, 11)[:2] == (3, 3)
    # negation: one inverter per bit
    assert sum_cost([(10, True, 0, True)], 0, 11)[:2] == (11, 3)


def test_lut_rom_counts_distinct_slices():
    assert lut_rom_cost(tuple(range(64)), 6) == 6.0                   # 6 address bits: one LUT per bit
    flat = tuple([0] * 512 + [1023] * 512)                          # a step: every slice constant
    assert lut_rom_cost(flat, 10) < 10 * 4
    assert lut_rom_cost(tuple(range(1024)), 10) <= 10                    # a ramp: the same slice everywhere
    import random
    rnd = random.Random(0)
    noise = tuple(rnd.randrange(1024) for _ in range(1024))
    assert lut_rom_cost(noise, 10) >= 10 * 16                            # 16 distinct slices per bit


# ----------------------------------------------------------------------------- estimator
def test_dsp_estimate_counts_distinct_products_exactly():
    g = random_mlp([12, 10, 4], seed=5, weight_bits=7)
    nl = lower(g)
    est = estimate_netlist(nl)
    distinct = {}
    for op in nl.primitive_ops():
        if isinstance(op, MulConst):
            distinct[(id(op.a), op.c)] = op
    expected = sum(op_dsp(op) for op in distinct.values())
    assert est.total.dsp == expected > 0
    assert est.total.dsp + est.total.lut_products == len(distinct) or est.total.lut_products > 0
    assert est.total.dsp == sum(c.dsp for c in est.layers.values())


def test_ternary_weights_take_no_dsp_and_registers_are_counted():
    g = random_mlp([16, 12, 4], seed=2, weight_kind="ternary", sparsity=0.0)
    nl = lower(g)
    est = estimate_netlist(nl)
    assert est.total.dsp == 0 and est.total.lut_total > 0 and est.total.carry4 > 0
    reg_bits = sum(op.out.width for op in nl.primitive_ops() if isinstance(op, Reg))
    assert 0.5 * reg_bits < est.total.ff <= reg_bits + nl.latency


def test_dead_logic_is_not_counted():
    g = random_mlp([8, 6, 2], seed=1)
    dense2 = g.nodes[3]
    dense2.kernel_q.raw[3, :] = 0  # hidden unit 3 feeds nothing
    full = estimate_netlist(lower(random_mlp([8, 6, 2], seed=1)))
    pruned = estimate_netlist(lower(g))
    assert pruned.total.ff < full.total.ff
    assert any("drive nothing" in n for n in pruned.notes)


def test_table_layers_use_lut_rom_or_block_ram():
    many = estimate_netlist(lower(random_mlp([6, 4, 3], seed=4, final_activation="tanh")))
    assert many.total.lut["rom"] > 0 and many.total.bram18 == 0   # 3 reads: LUT-ROM
    one = estimate_netlist(lower(random_mlp([6, 4, 1], seed=4, final_activation="sigmoid")))
    assert one.total.bram18 == 1 and one.total.lut["rom"] == 0    # 1 read of 1024 entries: a RAMB18


# ----------------------------------------------------------------------------- synthesis parsing
def test_resources_from_cells_and_ratio():
    cells = {"LUT2": 10, "LUT6": 2, "INV": 3, "SRL16E": 4, "FDRE": 20, "FDSE": 1, "CARRY4": 5,
             "DSP48E2": 7, "RAMB18E2": 1, "RAMB36E2": 2, "IBUF": 9, "MUXF7": 2}
    r = resources_from_cells(cells)
    assert (r["lut"], r["lut_logic"], r["lut_srl"], r["ff"], r["dsp"], r["carry4"], r["carry8"], r["bram"]) == \
        (19, 15, 4, 21, 7, 5, 3, 2.5)
    assert compare({"dsp": 7, "lut": 38, "ff": 21, "bram": 0}, r) == {"dsp": 1.0, "lut": 2.0, "ff": 1.0, "bram": 0.0}


def test_netlist_timing_on_a_hand_made_netlist():
    # FF -> LUT -> CARRY4 -> CARRY4 -> LUT -> FF
    def cell(t, ins, outs, **params):
        conns = {**{p: [b] for p, b in ins.items()}, **{p: [b] for p, b in outs.items()}}
        dirs = {**{p: "input" for p in ins}, **{p: "output" for p in outs}}
        return {"type": t, "connections": conns, "port_directions": dirs,
                "parameters": {k: format(v, "032b") for k, v in params.items()}}
    cells = {"f1": cell("FDRE", {"D": 9, "C": 1}, {"Q": 2}), "l1": cell("LUT2", {"I0": 2, "I1": 2}, {"O": 3}),
             "c1": cell("CARRY4", {"S": 3, "CI": 0}, {"CO": 4}), "c2": cell("CARRY4", {"CI": 4}, {"O": 5}),
             "l2": cell("LUT1", {"I0": 5}, {"O": 6}), "f2": cell("FDRE", {"D": 6, "C": 1}, {"Q": 9})}
    t = netlist_timing({"modules": {"top": {"cells": cells}}}, "top", "xcup", 240.0)
    path = 2 * T.T_LUT + T.T_CARRY_IO + 2 * T.T_CARRY4
    assert t["logic_levels"] == 2 and t["carry4_on_path"] == 2
    assert t["critical_path_ns"] == pytest.approx(T.T_FF + path, abs=1e-3)
    assert t["fmax_mhz"] == pytest.approx(1000 / (T.T_FF + path), abs=0.1) and t["meets_clock"]


# ----------------------------------------------------------------------------- report files
@pytest.fixture(scope="module")
def qmlp_fw(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "fw"
    assert main(["compile", str(MODELS / "qmlp.h5"), "--target", "xcvu9p", "-o", str(out)]) == 0
    return out


def test_compile_writes_json_md_report_writes_html_and_the_json_follows_the_schema(qmlp_fw, capsys):
    report = json.loads((qmlp_fw / "report.json").read_text())
    assert validate(report) == []
    assert report["resources"]["synthesis"] is None and report["timing"]["synthesis"] is None
    est = report["resources"]["estimate"]
    assert set(est) == {"dsp", "lut", "ff", "bram"} and est["dsp"] > 0 and est["lut"] > 1000 and est["ff"] > 1000
    assert sum(layer["resources"]["dsp"] for layer in report["layers"]) == est["dsp"]
    assert report["latency"]["ns"] == pytest.approx(report["latency"]["cycles"] * 1000 / 240, abs=1e-3)
    assert report["keeps_up_with_40mhz"] and report["bunch_crossing"]["max_ii_cycles"] == 6
    assert report["timing"]["estimate"]["fmax_mhz"] > 0
    md = (qmlp_fw / "report.md").read_text()
    assert "| analytic estimate |" in md and "## Layers" in md and "fc1" in md
    assert not (qmlp_fw / "report.html").exists()  # made by nnfpga report (or compile --html)
    assert main(["report", str(qmlp_fw)]) == 0
    html = (qmlp_fw / "report.html").read_text()
    imgs = re.findall(r"<img id='(plot-[a-z]+)'[^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert [i for i, _ in imgs] == ["plot-latency", "plot-utilisation", "plot-resources"]
    for _, data in imgs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='http" not in html and "<link" not in html  # one self-contained file


def test_schema_validator_rejects_wrong_reports(qmlp_fw):
    report = json.loads((qmlp_fw / "report.json").read_text())
    bad = json.loads(json.dumps(report))
    del bad["latency"]["cycles"]
    bad["resources"]["estimate"]["lut"] = -1
    bad["resources"]["estimate"]["extra"] = 1
    bad["ii_cycles"] = "1"
    errors = validate(bad)
    assert any("latency: missing required key 'cycles'" in e for e in errors)
    assert any("estimate.lut: -1 < minimum 0" in e for e in errors)
    assert any("unexpected key 'extra'" in e for e in errors)
    assert any("ii_cycles: expected integer" in e for e in errors)
    assert load_schema()["title"] == "nnfpga report.json"


def test_schema_accepts_a_report_with_synthesis(qmlp_fw):
    from nnfpga.backends.report import add_synthesis
    report = json.loads((qmlp_fw / "report.json").read_text())
    cells = {"LUT2": 100, "FDRE": 200, "CARRY4": 30, "DSP48E2": report["resources"]["estimate"]["dsp"]}
    tim = T.timing_summary(2.0, 3, 4, "xcup", 240.0)
    run = resources_from_cells(cells) | {"tool": "Yosys 0.23", "command": "synth_xilinx -family xcup -top qmlp",
                                         "source": "verilog", "seconds": 1.0, "timing": tim}
    add_synthesis(report, {"verilog": run, "vhdl": dict(run, source="vhdl")})
    assert validate(report) == []
    assert report["resources"]["synthesis"]["ratio"]["dsp"] == 1.0
    assert report["resources"]["synthesis"]["vhdl_matches_verilog"] is True
    copy = qmlp_fw.parent / "copy"
    copy.mkdir()
    write_report_files(copy, report)
    md = (copy / "report.md").read_text()
    assert "Yosys (verilog)" in md and "estimate / Yosys" in md


def test_report_command_prints_layers_and_timing(qmlp_fw, capsys):
    assert main(["report", str(qmlp_fw)]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "Fmax" in out and "estimate" in out and "DSP" in out


def test_report_command_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no report.json" in capsys.readouterr().err


# ----------------------------------------------------------------------------- warnings
def test_compile_warns_when_the_design_does_not_fit(tmp_path, capsys):
    # qmlp needs several hundred DSPs; the Zynq-7020 has 220
    assert main(["compile", str(MODELS / "qmlp.h5"), "--target", "xc7z020", "-o", str(tmp_path / "fw")]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "does not fit xc7z020" in out and "DSP" in out
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    assert not report["resources"]["fits"] and report["resources"]["utilisation_percent"]["dsp"] > 100
    assert any("does not fit" in w for w in report["warnings"])
    assert "does not fit" in (tmp_path / "fw" / "report.md").read_text()


def test_compile_warns_when_the_bunch_crossing_rate_is_missed(tmp_path, capsys):
    # II 1 at 30 MHz: 30 M events/s, fewer than the 40 M bunch crossings per second
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--clock", "30MHz", "-o", str(tmp_path / "fw")]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "cannot accept an event every 25 ns bunch crossing" in out
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    assert report["keeps_up_with_40mhz"] is False and report["resources"]["fits"]
    assert report["bunch_crossing"]["events_per_crossing"] == pytest.approx(0.75)
    assert validate(report) == []


def test_compile_warns_when_a_reuse_factor_saves_nothing(tmp_path, capsys):
    # ternary weights are adders and wiring: no multiplier for a reuse factor to share
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--reuse", "4", "-o", str(tmp_path / "fw")]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "a reuse factor saves nothing" in out and "reuse 1 gives the same firmware" in out
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    assert report["ii_cycles"] == 1 and any("(reuse 4)" in w for w in report["warnings"])


def test_no_warning_for_a_design_that_fits_and_keeps_up(qmlp_fw, capsys):
    assert main(["report", str(qmlp_fw)]) == 0
    assert "warning:" not in capsys.readouterr().out


def test_build_report_directly_matches_write_rtl(tmp_path):
    g = random_mlp([10, 8, 3], seed=7)
    rtl = write_rtl(g, tmp_path)
    r = build_report(g, rtl, {}, find_part("xcku115"), 320.0)
    assert r["synth_family"] == "xcu" and r["latency"]["cycles"] == rtl["latency_cycles"]
    assert validate(r) == []
    assert r["layers"][0]["name"] == "input" and r["layers"][1]["resources"]["ff"] > 0
    # Fmax model: UltraScale is charged 1.15x the UltraScale+ delays
    assert r["timing"]["estimate"]["fmax_mhz"] == pytest.approx(
        T.fmax_mhz((r["timing"]["estimate"]["critical_path_ns"] / 1.15) - T.T_FF, "xcu"), rel=0.01)


# ----------------------------------------------------------------------------- Yosys runner errors
@pytest.fixture
def yosys_installed() -> None:
    require_tool("yosys")


needs_yosys = pytest.mark.usefixtures("yosys_installed")


@needs_yosys
def test_yosys_timeout_and_memory_limit_give_clear_errors(tmp_path):
    from nnfpga.synth import yosys
    v = tmp_path / "t.v"
    v.write_text("module t(input wire clk, input wire [7:0] a, output reg [7:0] q);\n"
                 "always @(posedge clk) q <= a + 8'd3;\nendmodule\n")
    with pytest.raises(yosys.SynthesisError, match=r"did not finish within 0.2 s .*--timeout"):
        yosys.synth_xilinx(v, "t", "xcup", tmp_path / "a", timeout=0.2)
    with pytest.raises(yosys.SynthesisError, match=r"out of memory \(limit 0.01 GB"):
        yosys.synth_xilinx(v, "t", "xcup", tmp_path / "b", memory_gb=0.01)
    with pytest.raises(yosys.SynthesisError, match="no such Verilog file"):
        yosys.synth_xilinx(tmp_path / "missing.v", "t", "xcup", tmp_path / "c")


def test_missing_yosys_is_a_user_error(monkeypatch, tmp_path):
    from nnfpga.core.errors import UserError
    from nnfpga.synth import yosys
    monkeypatch.setattr(yosys.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="yosys not found on PATH"):
        yosys.run_yosys("help\n", tmp_path)


def test_synth_script_is_synth_xilinx_with_the_rom_step():
    from pathlib import Path
    from nnfpga.synth.yosys import synth_script
    text = synth_script(Path("/x/top.v"), "top", "xcu")
    assert "synth_xilinx -family xcu -top top -run :map_memory" in text
    assert "memory_map t:$mem_v2 r:RD_PORTS>2 %i" in text
    assert "synth_xilinx -family xcu -top top -run map_memory:" in text


def test_time_multiplexed_layers_are_estimated():
    base = estimate_netlist(lower(random_mlp([16, 8, 4], seed=3)))
    nl = lower(random_mlp([16, 8, 4], seed=3, reuse_factor=4))
    est = estimate_netlist(nl)
    assert not est.notes, est.notes            # every operation kind has a cost model
    assert 0 < est.total.dsp < base.total.dsp   # fewer multipliers, each used 4 times
    assert est.total.ff > 0 and est.total.lut_total > 0
