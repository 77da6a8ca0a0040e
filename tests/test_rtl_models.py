"""RTL backend, second part: time-multiplexed schedules (reuse factor > 1), Conv2D,
MaxPool2D, Flatten and softmax; the DSP count (analytic and Yosys); the target models
(a QKeras trigger CNN, a ternary MLP, a float-trained tanh MLP) bit-exact in Verilator
and GHDL at reuse 1 and 4.

THE SCHEDULE RULE (reuse factor R > 1, see `nnfpga.backends.rtl.lowering.multiplier_units`): a Dense or
Conv2D layer with N scheduled multiplications (non-zero weights whose magnitude is not
a power of two, on non-constant inputs) has exactly ceil(N / R) multiplier units
(`Mul`) and no constant multiplier; it accepts a sample every R cycles (at any cycle at
least R after the previous one) and its latency is R + M + 1 + ceil(depth /
levels_per_register) + 1 (M: registers after a multiplier; both fixed in these tests, by default the clock places them:
`schedule.linear_pipeline`), with depth the adder-tree depth over the per-output leaves
(one per unit that contributes to the output, one per multiplier-free term).  A layer
without multiplications is built fully parallel (II 1) whatever its reuse factor.
"""

from __future__ import annotations

import math
import re
import subprocess

import numpy as np
import pytest

from tests.conftest import needs_ghdl, needs_verilator, require_tool

from nnfpga.backends.rtl import RtlConfig, evaluate, lower, write_rtl
from nnfpga.backends.rtl.netlist import Acc, Mul, MulConst
from nnfpga.backends.rtl.netlist_sim import simulate
from nnfpga.backends.rtl.dsp import multiplier_dsp
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.ops import Conv2D, Dense
from tests.rtl_models import (keras_tanh_mlp, pool_cnn, qkeras_trigger_cnn, set_reuse, softmax_mlp,
                              trigger_cnn)
from tests.test_rtl import assert_bit_exact, element_ranges, example_graph, inputs, model

REUSES = [1, 4]


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def scheduled_multiplications(graph) -> dict[str, int]:
    """N per Dense layer (the multiplier rule of tests.test_rtl, per layer)."""
    ranges = element_ranges(graph)
    out, prev = {}, None
    for n in graph.nodes:
        if isinstance(n, Dense):
            total = 0
            for i, (lo, hi) in enumerate(ranges[prev]):
                if lo != hi:
                    mags = np.abs(n.kernel_q.raw[i]).astype(np.int64)
                    total += int(np.sum((mags != 0) & ((mags & (mags - 1)) != 0)))
            out[n.name] = total
        prev = n.name
    return out


# --------------------------------------------------------------------------- description
@pytest.mark.parametrize("reuse", [2, 3, 4, 7])
@pytest.mark.parametrize("kind,final", [("fixed", "relu"), ("fixed", "tanh"), ("po2", "linear")])
def test_reuse_description_is_bit_exact(reuse, kind, final):
    from tests.irmodels import random_mlp
    g = random_mlp([16, 24, 12, 5], seed=reuse, weight_kind=kind, final_activation=final, reuse_factor=reuse)
    nl = lower(g, RtlConfig(multiplier_registers=1 + reuse % 3))   # 1, 2 and 3 product registers
    x = inputs(g, 2000)
    want = run_raw(g, x)
    assert_bit_exact(evaluate(nl, x), want, f"R={reuse} {kind}")
    # whole netlist, cycle by cycle: streams of samples every II cycles, then with gaps
    assert_bit_exact(simulate(nl, x[:600], lanes=100), want[:600], "stream")
    gaps = np.random.default_rng(reuse).integers(0, 3, 6)
    assert_bit_exact(simulate(nl, x[:600], gaps=gaps, lanes=100), want[:600], "stream with gaps")


@pytest.mark.parametrize("reuse", [2, 4, 5, 16])
@pytest.mark.parametrize("lpr,mr", [(1, 2), (2, 2), (1, 1), (2, 3)])
def test_schedule_rule(reuse, lpr, mr):
    """ceil(N / R) multiplier units per layer, no constant multiplier, II = R, latency."""
    g = model([16, 24, 12, 5], "fixed", "relu", 3, dense=True)
    g = set_reuse(g, reuse)
    nl = lower(g, RtlConfig(levels_per_register=lpr, multiplier_registers=mr))
    n_mult = scheduled_multiplications(g)
    assert nl.count(MulConst) == 0
    assert nl.ii == reuse
    for info in nl.layers:
        units = [op for op in nl.primitive_ops() if isinstance(op, Mul) and op.out.layer == info.name]
        assert len(units) == math.ceil(n_mult[info.name] / reuse) == info.multipliers, info.name
        assert info.ii == reuse and info.reuse_factor == reuse
        # leaves per output: one per unit that feeds it, one per multiplier-free term
        d = next(n for n in g.nodes if n.name == info.name)
        accs = [op for op in nl.primitive_ops() if isinstance(op, Acc) and op.out.layer == info.name]
        leaves = []
        for j in range(d.n_out):
            col = d.kernel_q.raw[:, j]
            mags = np.abs(col)
            free = int(np.sum((mags != 0) & ((mags & (mags - 1)) == 0)))
            leaves.append(free + sum(op.out.name.endswith(f"_a{j}") for op in accs))
        depth = max(math.ceil(math.log2(n)) for n in leaves if n > 0)
        assert info.latency == reuse + mr + 1 + math.ceil(depth / lpr) + 1, info.name
    assert nl.latency == sum(i.latency for i in nl.layers)


def test_no_multiplier_no_schedule():
    """A ternary layer has nothing to share: fully parallel (II 1), as the summary says."""
    g = set_reuse(model([16, 24, 12, 5], "ternary", "relu", 1, dense=True), 4)
    nl = lower(g)
    assert nl.ii == 1 and nl.count(Mul) == 0
    assert all("no multiplier to share" in i.description for i in nl.layers)


@pytest.mark.parametrize("reuse", REUSES)
def test_cnn_description(reuse):
    for g in (trigger_cnn(reuse=reuse), trigger_cnn(seed=1, kind="po2", reuse=reuse),
              pool_cnn(reuse=reuse), pool_cnn(padding="valid", reuse=reuse), softmax_mlp(reuse=reuse)):
        nl = lower(g)
        x = inputs(g, 1000)
        assert_bit_exact(evaluate(nl, flat(x)), run_raw(g, x), f"{g.name} R={reuse}")
        kinds = {i.kind for i in nl.layers}
        assert "conv2d" in kinds or "softmax" in kinds
    g = pool_cnn(reuse=4)
    x = inputs(g, 200)
    assert_bit_exact(simulate(lower(g), flat(x), lanes=50, gaps=[0, 1, 0, 2]), run_raw(g, x), "pool_cnn stream")


def test_conv_multipliers():
    """Conv2D at reuse 1: one constant multiplier per (output position, weight) with the
    multiplier rule; at reuse R: ceil(N / R) units."""
    g = trigger_cnn(seed=2)
    nl1 = lower(g)
    nl4 = lower(set_reuse(trigger_cnn(seed=2), 4))
    for info1, info4 in zip(nl1.layers, nl4.layers):
        node = next(n for n in g.nodes if n.name == info1.name)
        if not isinstance(node, Conv2D):
            continue
        assert info4.multipliers == math.ceil(info1.multipliers / 4), info1.name
        assert info1.multipliers == sum(isinstance(op, MulConst) and op.out.layer == info1.name
                                        for op in nl1.primitive_ops())


def test_dsp_rule():
    """DSP48E2 count of one signed multiplier (see nnfpga.backends.rtl.dsp)."""
    def dsp_for(a, b, y):
        return multiplier_dsp(a, b, y, signed=True)
    assert dsp_for(8, 5, 8) == 0          # product narrower than 9 bits: LUTs
    assert dsp_for(8, 1, 9) == 0          # a 1-bit operand: LUTs
    assert dsp_for(8, 5, 12) == 1
    assert dsp_for(27, 18, 45) == 1 and dsp_for(18, 27, 45) == 1
    assert dsp_for(28, 18, 46) == 2 and dsp_for(27, 19, 46) == 2 and dsp_for(19, 19, 38) == 2
    g = set_reuse(model([16, 24, 12, 5], "fixed", "relu", 3, dense=True), 4)
    nl = lower(g)
    assert sum(i.dsp for i in nl.layers) == sum(1 for op in nl.primitive_ops()
                                               if isinstance(op, Mul) and op.out.width >= 9)


# --------------------------------------------------------------------------- simulators
@needs_verilator
@pytest.mark.parametrize("reuse", [2, 4])
def test_verilator_reuse(tmp_path, reuse):
    from nnfpga.sim.verilator import run_verilator
    g = set_reuse(model([8, 12, 6, 4], "fixed", "relu", 5, dense=True), reuse)
    info = write_rtl(g, tmp_path)
    assert info["ii_cycles"] == reuse
    x = inputs(g, 20_000)
    want = run_raw(g, x)
    assert_bit_exact(run_verilator(tmp_path, x), want, f"Verilator R={reuse}")
    st = {}
    assert_bit_exact(run_verilator(tmp_path, x, idle_permille=300, stats=st), want, "with gaps")
    assert st["cycles"] > reuse * len(x)


@needs_verilator
@pytest.mark.parametrize("name", ["ternary", "tanh"])
def test_verilator_models_reuse4(tmp_path, name):
    """The ternary example MLP (nothing to share: II 1) and a tanh MLP at reuse 4."""
    from nnfpga.sim.verilator import run_verilator
    from tests.irmodels import random_mlp
    g = (set_reuse(example_graph("ternary_mlp"), 4) if name == "ternary" else
         random_mlp([16, 24, 12, 4], seed=3, final_activation="tanh", reuse_factor=4))
    info = write_rtl(g, tmp_path)
    assert info["ii_cycles"] == (1 if name == "ternary" else 4)
    x = inputs(g, 10_000)
    assert_bit_exact(run_verilator(tmp_path, x, idle_permille=100), run_raw(g, x), f"Verilator {name} R=4")


@needs_ghdl
@pytest.mark.parametrize("reuse", REUSES)
def test_ghdl_models(tmp_path, reuse):
    """GHDL, bit-exact: the trigger CNN, the pooling CNN with softmax, the ternary example
    MLP and a tanh MLP, at reuse 1 and 4 (a few hundred samples each; more in the slow
    suite)."""
    from nnfpga.sim.ghdl import run_ghdl
    from tests.irmodels import random_mlp
    cases = [(trigger_cnn(reuse=reuse), 300), (pool_cnn(reuse=reuse), 150),
             (set_reuse(example_graph("ternary_mlp"), reuse), 2000),
             (random_mlp([16, 24, 12, 4], seed=3, final_activation="tanh", reuse_factor=reuse), 2000)]
    for k, (g, n) in enumerate(cases):
        d = tmp_path / str(k)
        info = write_rtl(g, d)
        x = inputs(g, n, seed=k)
        assert_bit_exact(run_ghdl(d, x, idle_permille=100), run_raw(g, x), f"GHDL {g.name} R={reuse}")
        assert info["ii_cycles"] == (reuse if info["multipliers"] else 1)


@needs_verilator
@needs_ghdl
def test_ghdl_synthesis_of_schedules(tmp_path):
    """The time-multiplexed VHDL (integers, counters, accumulators) through GHDL's
    synthesis and Verilator."""
    from nnfpga.sim.ghdl import run_ghdl_synth
    g = softmax_mlp(reuse=4)
    write_rtl(g, tmp_path)
    x = inputs(g, 5000)
    assert_bit_exact(run_ghdl_synth(tmp_path, x, idle_permille=100), run_raw(g, x), "GHDL synth R=4")


# --------------------------------------------------------------------------- slow suite
@pytest.fixture(scope="module")
def keras_models(tmp_path_factory):
    """The QKeras trigger CNN and the float-trained tanh MLP, through the compiler."""
    from nnfpga.compiler.pipeline import build_graph
    d = tmp_path_factory.mktemp("keras")
    return {"cnn": build_graph(qkeras_trigger_cnn(d / "cnn.h5")),
            "tanh": build_graph(keras_tanh_mlp(d / "tanh.h5"))}


def _target(name: str, keras_models, reuse: int):
    if name == "ternary":
        return set_reuse(example_graph("ternary_mlp"), reuse)
    import copy
    return set_reuse(copy.deepcopy(keras_models[name]), reuse)


@pytest.mark.slow
@needs_verilator
@needs_ghdl
@pytest.mark.parametrize("reuse", REUSES)
@pytest.mark.parametrize("name", ["cnn", "ternary", "tanh"])
def test_target_models(tmp_path, keras_models, name, reuse):
    """100,000 samples in Verilator and 1,000 in GHDL, bit-exact, with idle cycles."""
    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import run_verilator
    g = _target(name, keras_models, reuse)
    info = write_rtl(g, tmp_path)
    x = inputs(g, 100_000, seed=reuse)
    want = run_raw(g, x)
    big = info["multipliers"] > 500  # the C++ of large designs compiles 2x faster at -O0
    assert_bit_exact(run_verilator(tmp_path, x, idle_permille=20, opt="-O0" if big else "-O1"), want,
                     f"Verilator {name} R={reuse}")
    assert_bit_exact(run_ghdl(tmp_path, x[:1000], idle_permille=50), want[:1000], f"GHDL {name} R={reuse}")


def yosys_dsp(fw_dir, info) -> int:
    """DSP48E2 cells after Yosys's DSP mapping (synth_xilinx up to its `coarse` step)."""
    stat = fw_dir / "yosys_stat.txt"
    subprocess.run(["yosys", "-q", "-p", f"read_verilog {fw_dir / info['files']['verilog']}; "
                    f"synth_xilinx -family xcup -top {info['top']} -run begin:coarse; tee -q -o {stat} stat"],
                   check=True, capture_output=True, text=True)
    m = re.findall(r"DSP48E2\s+(\d+)", stat.read_text())
    return int(m[0]) if m else 0


@pytest.mark.slow
def test_dsp_count_matches_yosys(tmp_path):
    """The analytic DSP count (`dsp`) equals Yosys's synth_xilinx -family xcup
    mapping, at reuse 1 (constant multipliers, some below the 9-bit product threshold)
    and reuse > 1 (multiplier units), and for softmax's products (two DSPs each).  Where
    every unit fits one DSP48E2 (cases 1 and 3), Yosys finds exactly ceil(N / R) of them
    per layer, N counted from the IR's integer weights."""
    require_tool("yosys")
    from tests.irmodels import random_mlp
    cases = [random_mlp([8, 6, 3], seed=1, weight_bits=6), random_mlp([8, 6, 3], seed=1, weight_bits=6, reuse_factor=4),
             random_mlp([8, 6, 3], seed=1, weight_bits=4, act_bits=4, act_int=2, reuse_factor=4),
             random_mlp([12, 10, 4], seed=4, weight_bits=8, act_bits=10, act_int=4, reuse_factor=3),
             softmax_mlp(), softmax_mlp(reuse=2)]
    for k, g in enumerate(cases):
        d = tmp_path / str(k)
        info = write_rtl(g, d)
        found = yosys_dsp(d, info)
        assert info["dsp"] == found, f"case {k}: {[(i['name'], i['dsp']) for i in info['layers']]}"
        if k in (1, 3):
            reuse = {n.name: n.reuse_factor for n in g.nodes if isinstance(n, Dense)}
            units = sum(math.ceil(n / reuse[name]) for name, n in scheduled_multiplications(g).items())
            assert found == units > 0, f"case {k}: Yosys {found} DSP48E2, ceil(N/R) summed {units}"


@pytest.mark.slow
@needs_ghdl
@pytest.mark.parametrize("reuse", REUSES)
def test_ghdl_target_cnn_big(tmp_path, keras_models, reuse):
    from nnfpga.sim.ghdl import run_ghdl
    g = _target("cnn", keras_models, reuse)
    write_rtl(g, tmp_path)
    x = inputs(g, 3000, seed=9)
    assert_bit_exact(run_ghdl(tmp_path, x), run_raw(g, x), f"GHDL QKeras CNN R={reuse}")


@needs_ghdl
def test_ghdl_wide_schedule(tmp_path):
    """Multiplier units and accumulators wider than a VHDL integer (numeric_std)."""
    from nnfpga.ir.fixed import FixedType, Overflow, Rounding
    from nnfpga.sim.ghdl import run_ghdl
    from tests.irmodels import random_mlp
    g = random_mlp([6, 5, 3], seed=3, weight_bits=22, act_bits=20, act_int=8, reuse_factor=3,
                   input_type=FixedType(24, 10, True, Rounding.RND_CONV, Overflow.SAT))
    nl = lower(g)
    assert any(op.out.width > 32 for op in nl.primitive_ops() if isinstance(op, (Mul, Acc)))
    write_rtl(g, tmp_path)
    x = inputs(g, 200)
    want = run_raw(g, x)
    assert_bit_exact(evaluate(nl, x), want, "description")
    assert_bit_exact(run_ghdl(tmp_path, x, idle_permille=100), want, "GHDL wide R=3")
