"""The clock-driven pipeline (`nnfpga.backends.rtl.lowering.schedule.linear_pipeline`,
delays of `nnfpga.backends.rtl.timing`): where the registers go at a clock, bit-exact
at every clock, fewer (or equal) cycles at a lower clock for every example and benchmark
model, and the report's per-layer critical path / Fmax of the schedule (fast)."""

from __future__ import annotations

import glob
import json
import math

import numpy as np
import pytest

from nnfpga.backends.report.schema import validate
from nnfpga.backends.rtl import RtlConfig, evaluate, lower, simulate
from nnfpga.backends.rtl.lowering.builder import pipeline_settings
from nnfpga.backends.rtl.lowering.schedule import product_bits
from nnfpga.backends.rtl.timing import DELAYS
from nnfpga.compiler.driver import compile_model
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.ops import Dense
from tests.conftest import require_tool
from tests.irmodels import random_mlp
from tests.test_rtl import assert_bit_exact, inputs, model


def expected_registers(level_ns: list[float], start: float, period: float, overhead: float) -> list[int]:
    """The rule, written out: a register before a level that would push the stage past
    the period (a stage holds at least one level), and after the last level."""
    regs, acc, n = [], start, 0
    for level, d in enumerate(level_ns, 1):
        if n and acc + d > period:
            regs.append(level - 1)
            acc, n = overhead, 0
        acc, n = acc + d, n + 1
    return regs + ([len(level_ns)] if level_ns else [])


@pytest.mark.parametrize("clock,family", [(100.0, "xcup"), (240.0, "xcup"), (400.0, "xcup"), (650.0, "xcup"),
                                          (240.0, "xc7"), (320.0, "xcu")])
def test_registers_follow_the_delays(clock, family):
    """Per Dense layer: M is the fewest registers whose DSP stage fits the period, the
    tree registers are the rule's over the widths bounded by the IR, the latency is
    M + tree registers + 1; the netlist is bit-exact, cycle by cycle too."""
    cfg = RtlConfig(clock_mhz=clock, family=family)
    dl, period = DELAYS[family], 1000.0 / clock
    for kind in ("fixed", "binary"):
        g = model([16, 64, 32, 32, 5], kind, "relu", 0, dense=True)
        nl = lower(g, cfg)
        dense = [n for n in g.nodes if isinstance(n, Dense)]
        total = 0
        for info, node in zip(nl.layers, dense):
            leaves = max(int(np.count_nonzero(node.kernel_q.raw[:, j])) for j in range(node.n_out))
            depth = math.ceil(math.log2(leaves)) if leaves > 1 else 0
            bits = product_bits(node, g.in_infos(node)[0])
            mults = kind == "fixed"
            m = next((k for k in (1, 2, 3) if dl.overhead + dl.multiplier_stages(k) <= period), 3)
            start = dl.overhead + (dl.dsp_clk if mults else 0.0)
            regs = expected_registers([dl.adder(bits + lv) for lv in range(1, depth + 1)], start, period, dl.overhead)
            assert info.tree_registers == regs, (kind, info.name)
            want = m * mults + len(regs) + info.output_registers
            assert info.latency == want, (kind, info.name, info.latency, want)
            assert info.output_registers == 1 or clock >= 400, (kind, info.name, clock)
            assert info.clock_mhz == clock and info.multiplier_registers == m * mults
            # every stage the schedule places fits, unless one level alone cannot
            if dl.overhead + dl.adder(bits + depth) + (dl.dsp_clk if mults else 0.0) <= period \
                    and dl.overhead + dl.multiplier_stages(3) <= period:
                assert info.fmax_mhz >= clock, (kind, info.name, info.fmax_mhz)
            total += want
        assert nl.latency == total
        x = inputs(g, 500)
        want = run_raw(g, x)
        assert_bit_exact(evaluate(nl, x), want, f"{kind} at {clock} MHz")
        assert_bit_exact(simulate(nl, x[:200], lanes=50), want[:200], f"{kind} at {clock} MHz, cycle by cycle")


def test_lower_clock_merges_levels():
    """At 100 MHz a whole 4-level tree (16 inputs) is one stage; at 650 MHz every level is
    registered, and the output stage (bias, rounding, saturation) is split in two."""
    g = model([16, 64, 5], "binary", "linear", 0, dense=True)
    slow = lower(g, RtlConfig(clock_mhz=100.0)).layers[0]
    fast = lower(g, RtlConfig(clock_mhz=650.0)).layers[0]
    assert slow.tree_registers == [4] and slow.latency == 2 and slow.output_registers == 1
    assert fast.tree_registers == [1, 2, 3, 4] and fast.output_registers == 2 and fast.latency == 6


def test_delay_model_figures():
    """DS923's DSP48E2 FMAX (-2): 775 MHz fully registered, 544 MHz without MREG; CARRY8 on
    UltraScale(+), CARRY4 on 7-series; slower families are never faster."""
    up, u, s7 = DELAYS["xcup"], DELAYS["xcu"], DELAYS["xc7"]
    assert up.dsp_allreg == pytest.approx(1000 / 775, abs=1e-3) and up.dsp_nomreg == pytest.approx(1000 / 544, abs=1e-3)
    assert (up.carry_bits, u.carry_bits, s7.carry_bits) == (8, 8, 4)
    for bits in (1, 8, 9, 24, 48):
        assert up.adder(bits) < u.adder(bits) < s7.adder(bits)
        assert up.adder(bits) <= up.adder(bits + 8)
    for d in (up, u, s7):  # more registers, shorter stages
        assert d.multiplier_stages(1) > d.multiplier_stages(2) > d.multiplier_stages(3)


def test_pipeline_settings():
    assert pipeline_settings("auto") == {"levels_per_register": None, "multiplier_registers": None}
    assert pipeline_settings("levels=2") == {"levels_per_register": 2, "multiplier_registers": 2}
    assert pipeline_settings("levels=1,mult=3") == {"levels_per_register": 1, "multiplier_registers": 3}
    for bad in ("fast", "levels=0", "levels=2,mult=4", "mult=2", "levels=x", "levels=1,levels=2"):
        with pytest.raises(UserError, match="--pipeline"):
            pipeline_settings(bad)
    assert RtlConfig().pipeline == "auto"
    assert RtlConfig(levels_per_register=3, multiplier_registers=2).pipeline == "levels=3,mult=2"
    with pytest.raises(ValueError, match="family"):
        RtlConfig(family="xc9")
    with pytest.raises(ValueError, match="clock_mhz"):
        RtlConfig(clock_mhz=0)


MODELS = sorted(glob.glob("examples/models/*.h5") + glob.glob("benchmarks/muon_trigger/models/*.h5")
                + ["benchmarks/electron_ringer/models/float/et0_eta0.h5",
                   "benchmarks/electron_ringer/models/qkeras/et0_eta0.h5"])


def _compile(path: str, clock: str, out, **kw) -> dict:
    compile_model(path, clock=clock, outdir=out, **kw)
    report = json.loads((out / "report.json").read_text())
    assert validate(report) == [], path
    s = report["timing"]["schedule"]
    assert (f"Pipeline: {s['pipeline']}, registers placed for {report['clock_mhz']:g} MHz"
            in (out / "report.md").read_text()), path
    return report


#: models whose layers all keep their registers from 400 down to 240 MHz (none today)
SAME_CYCLES: set[str] = set()


@pytest.mark.parametrize("path", MODELS)
def test_lower_clock_gives_fewer_cycles(path, tmp_path):
    """Every example and benchmark model: fewer cycles at 240 than at 400 MHz, and the
    schedule's Fmax estimate of every linear layer, and the report's estimate of the
    whole netlist, at least the clock it was built for."""
    cycles = {}
    for clock in ("240MHz", "400MHz"):
        r = _compile(path, clock, tmp_path / clock)
        cycles[clock] = r["latency"]["cycles"]
        sched = r["timing"]["schedule"]
        assert sched["pipeline"] == "auto" and sched["clock_mhz"] == r["clock_mhz"]
        assert sched["fmax_mhz"] >= r["clock_mhz"], (path, clock, sched)
        # the whole netlist's critical path (the report's analytic estimate), output stages included
        assert r["timing"]["estimate"]["fmax_mhz"] >= r["clock_mhz"], (path, clock, r["timing"]["estimate"])
        linear = [layer for layer in r["layers"] if layer["op"] in ("Dense", "Conv2D", "BankedDense")]
        assert linear and all(layer["schedule"]["fmax_mhz"] >= r["clock_mhz"] for layer in linear), path
        assert sum(layer["latency_cycles"] for layer in r["layers"]) == cycles[clock]
    if path in SAME_CYCLES:
        assert cycles["240MHz"] == cycles["400MHz"], (path, cycles)
    else:
        assert cycles["240MHz"] < cycles["400MHz"], (path, cycles)


def test_fixed_pipeline_is_the_old_rule(tmp_path):
    """``--pipeline levels=1`` builds what nnfpga built before the clock drove the
    schedule (a register per level, 2 per product) at any clock; the report says so."""
    r = {c: _compile("examples/models/qmlp.h5", c, tmp_path / c, pipeline="levels=1") for c in ("240MHz", "400MHz")}
    assert r["240MHz"]["latency"]["cycles"] == r["400MHz"]["latency"]["cycles"]
    assert r["240MHz"]["timing"]["schedule"]["pipeline"] == "levels=1,mult=2"
    for layer in r["240MHz"]["layers"]:
        if layer["op"] == "Dense":
            s = layer["schedule"]
            assert s["multiplier_registers"] == 2
            assert s["tree_registers"] == list(range(1, len(s["tree_registers"]) + 1))
            assert layer["latency_cycles"] == 2 + len(s["tree_registers"]) + 1
    rtl = json.loads((tmp_path / "240MHz" / "rtl.json").read_text())
    assert rtl["config"]["levels_per_register"] == 1 and rtl["config"]["clock_mhz"] == 240.0


def test_bad_pipeline_option_is_a_user_error(tmp_path, capsys):
    from nnfpga.compiler.cli import main
    assert main(["compile", "examples/models/qmlp.h5", "--pipeline", "levels=0", "-o", str(tmp_path / "o")]) != 0
    assert "--pipeline 'levels=0'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("clock,reuse", [(100.0, 1), (650.0, 3)])
def test_clock_schedules_in_verilator_and_ghdl(tmp_path, clock, reuse):
    """Whole adder trees in one stage with one product register (100 MHz), and every
    level registered with time-multiplexed units (650 MHz, reuse 3): bit-exact in
    Verilator and GHDL, the latency rtl.json claims checked by the harnesses."""
    from nnfpga.backends.rtl import write_rtl
    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import run_verilator
    require_tool("verilator")
    require_tool("ghdl")
    g = random_mlp([16, 64, 32, 5], seed=3, weight_kind="fixed", final_activation="relu", reuse_factor=reuse)
    cfg = RtlConfig(clock_mhz=clock)
    info = write_rtl(g, tmp_path, cfg)
    layers = lower(g, cfg).layers
    if clock == 100.0:
        assert all(len(i.tree_registers) == 1 and i.multiplier_registers == 1 for i in layers)
    else:
        assert all(i.tree_registers == list(range(1, len(i.tree_registers) + 1)) for i in layers)
    assert info["latency_cycles"] == sum(i.latency for i in layers)
    x = inputs(g, 3000, seed=9)
    want = run_raw(g, x)
    assert_bit_exact(run_verilator(tmp_path, x), want, f"Verilator at {clock} MHz")
    assert_bit_exact(run_ghdl(tmp_path, x[:1000]), want[:1000], f"GHDL at {clock} MHz")


def test_report_of_a_tree_without_clock_in_rtl_json(tmp_path):
    """rtl.json of a tree written before the clock drove the pipeline has no clock or
    family: the report re-lowers with the report's clock and part (the fixed rule the
    tree was built with stays), and the latencies agree."""
    from nnfpga.backends.report import build_report
    from nnfpga.core.parts import find_part
    result = compile_model("examples/models/qmlp.h5", clock="400MHz", outdir=tmp_path / "fw", pipeline="levels=1")
    rtl = json.loads((tmp_path / "fw" / "rtl.json").read_text())
    rtl["config"] = {k: v for k, v in rtl["config"].items() if k not in ("clock_mhz", "family")}
    r = build_report(result.graph, rtl, {}, find_part("xc7vx690t"), 400.0)
    assert r["timing"]["schedule"] == {**r["timing"]["schedule"], "pipeline": "levels=1,mult=2",
                                       "clock_mhz": 400.0, "family": "xc7"}
    assert r["latency"]["cycles"] == result.report["latency"]["cycles"] and not r["notes"]
