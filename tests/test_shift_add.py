"""Multiplier-free constant products (``--max-dsp 0``, `RtlConfig.shift_add`): every
product of a Dense/Conv2D weight is the canonical-signed-digit terms of the weight
(`dsp.csd`), shifted copies of the input in the output's adder tree.  No multiplier in
the netlist, no DSP in the estimate, the reuse search or Yosys; bit-exact like
everything else; what still needs a DSP is refused by name."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest

from nnfpga.backends.report.estimator import estimate_netlist
from nnfpga.backends.rtl import RtlConfig, evaluate, lower
from nnfpga.backends.rtl.dsp import csd
from nnfpga.backends.rtl.lowering.schedule import CostModel, csd_digits, shared_pairs, shift_add_terms, tree_depth
from nnfpga.backends.rtl.netlist import Mul, MulConst, Sum
from nnfpga.backends.rtl.netlist_sim import simulate
from nnfpga.compiler.adjustments import AdjustmentWarning
from nnfpga.compiler.config import make_options
from nnfpga.compiler.passes.reuse import select_reuse
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import run_raw
from tests import rtl_models as M
from tests.conftest import MODELS, require_tool
from tests.irmodels import leaky_mlp, random_mlp
from tests.test_rtl import assert_bit_exact, inputs

SHIFT_ADD = RtlConfig(clock_mhz=320.0, shift_add=True)


@lru_cache(maxsize=None)
def _fewest_signed_digits(n: int) -> int:
    """The fewest non-zero digits of any form ``sum(d_k 2**k)``, ``d_k`` in {-1, 0, 1}:
    an odd ``n`` ends in +1 or -1, then the rest is ``(n -+ 1) / 2``."""
    if n <= 0:
        return 0 if n == 0 else _fewest_signed_digits(-n)  # negate every digit
    if n == 1:
        return 1
    if n % 2 == 0:
        return _fewest_signed_digits(n // 2)
    return 1 + min(_fewest_signed_digits((n - 1) // 2), _fewest_signed_digits((n + 1) // 2))


def test_csd_is_exact_non_adjacent_and_minimal():
    for c in range(-3000, 3001):
        digits = csd(c)
        assert sum(s << k for k, s in digits) == c, c
        shifts = [k for k, _ in digits]
        assert all(s in (1, -1) for _, s in digits) and shifts == sorted(shifts), c
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:])), (c, digits)
        assert len(digits) == _fewest_signed_digits(c), (c, digits)
    for c in (2**40 - 1, -(2**33) + 5, 0b1011011011011011011):
        assert sum(s << k for k, s in csd(c)) == c
    raw = np.array([[0, 7, -7], [3, 1, -128]])
    assert csd_digits(raw).tolist() == [[0, 2, 2], [2, 1, 1]]


def test_shared_pairs_are_built_once_and_exact():
    """``x0 * 7``, ``x0 * 14`` and ``x0 * -7`` share ``x0 * (1 - 2**3)``; the pairs of
    ``x1 * 5`` and ``x1 * 3`` differ, so they are not shared."""
    cols = [[(0, 7), (1, 5)], [(0, 14), (1, 3)], [(0, -7), (1, 1)]]
    shared = shared_pairs(cols)
    assert shared == {(0, 3, -1)}
    for col in cols:
        for i, w in col:
            p, k1, s1, rest = shift_add_terms(i, w, shared)
            value = (s1 << k1) * (1 + p[2] * (1 << p[1])) if p else 0
            assert value + sum(s << k for k, s in rest) == w, (i, w)
            assert (p is not None) == (i == 0)
    g = random_mlp([12, 10, 8, 4], seed=2, weight_bits=8)
    nl = lower(g, SHIFT_ADD)
    n_pre = sum(op.out.name.startswith("fc1_pa") for op in nl.primitive_ops())
    fc1 = g.node("fc1")
    from nnfpga.backends.rtl.lowering.plans import dense_plan
    assert n_pre == len(shared_pairs(dense_plan(fc1, 12, 0).cols)) > 0


def _cases():
    yield "dense 8-bit", random_mlp([12, 10, 8, 4], seed=2, weight_bits=8)
    yield "conv valid", M.trigger_cnn()
    yield "conv same, strided", M.pool_cnn(softmax=False)


@pytest.mark.parametrize("name,graph", list(_cases()), ids=[c[0] for c in _cases()])
def test_shift_add_layers_have_no_multiplier_and_are_bit_exact(name, graph):
    """No `MulConst`/`Mul`, golden == netlist evaluation (every range checked on every
    sample) == cycle-accurate simulation, bit for bit; the estimator and rtl.json count
    0 DSPs (the same design with multipliers has some); the reuse search's profile gives
    the built latency, leaves and no DSP."""
    nl = lower(graph, SHIFT_ADD)
    assert not [op for op in nl.primitive_ops() if isinstance(op, (Mul, MulConst))]
    # shifted copies of one input meet in the trees: their exact bound is used
    assert any(isinstance(op, Sum) and op.bound is not None for op in nl.primitive_ops())
    x = inputs(graph, 400, seed=3)
    want = run_raw(graph, x)
    assert_bit_exact(evaluate(nl, x.reshape(len(x), -1)), want, f"{name}: netlist")
    assert_bit_exact(simulate(nl, x.reshape(len(x), -1), lanes=64), want, f"{name}: cycle-accurate")
    assert estimate_netlist(nl).total.dsp == 0
    assert all(info.multipliers == 0 for info in nl.layers)
    with_dsp = lower(graph, RtlConfig(clock_mhz=320.0))
    assert any(info.multipliers for info in with_dsp.layers)
    model = CostModel(rtl=SHIFT_ADD)
    layers = {info.name: info for info in nl.layers}
    for n in graph.nodes:
        if n.op_type in ("Dense", "Conv2D"):
            xi = graph.in_infos(n)[0]
            prof = model.profile(n, xi)
            assert model.dsp(n, 1, xi) == model.dsp(n, 4, xi) == prof.multipliers == 0
            assert int(prof.wiring.sum()) > 0
            # shared pre-adders where the weights have common pairs, built once each
            pre = [op for op in nl.primitive_ops() if op.out.name.startswith(f"{n.name}_pa")]
            assert prof.pre_adder == bool(pre), n.name
            assert len({op.out.name for op in pre}) == len(pre)
            assert model.latency(n, 4, xi) == 0          # nothing to share: reuse 1
            # the schedule the search prices is the one built: the deeper trees of the
            # CSD leaves, their registers, no product registers
            info, pipe = layers[n.name], prof.pipeline(1, SHIFT_ADD)
            assert f"tree depth {tree_depth(prof.leaves(1))}" in info.description, n.name
            assert info.tree_registers == list(pipe.registered) and info.multiplier_registers == 0
            assert info.latency >= pipe.latency


def test_max_dsp_0_sets_every_reuse_factor_to_1():
    g = random_mlp([12, 10, 8, 4], seed=2, weight_bits=8, reuse_factor=4)
    opts = make_options({"defaults": {"reuse_factor": 4}, "reuse": {"max_dsp": 0}})
    assert opts.max_dsp == 0
    for n in g.nodes:
        if n.op_type == "Dense":
            opts.pinned.add(f"{n.name}:reuse_factor")
    with pytest.warns(AdjustmentWarning, match="--max-dsp 0"):
        select_reuse(g, opts)
    assert all(n.reuse_factor == 1 for n in g.nodes if n.op_type == "Dense")
    adj = g.annotations.get("adjustments", [])
    assert any(a["setting"] == "reuse_factor" and "--max-dsp 0" in a["reason"] for a in adj), adj
    with pytest.raises(UserError, match="--max-dsp must be a non-negative integer"):
        make_options(max_dsp=-1)


def test_max_dsp_0_refuses_what_needs_a_dsp():
    with pytest.raises(UserError, match=r"--max-dsp 0 cannot be met: layer 'softmax' \(softmax: e \* 1/sum"):
        select_reuse(M.softmax_mlp(), make_options(max_dsp=0))


def test_leaky_relu_slopes_are_shift_add_too():
    """A leaky ReLU's slope product (folded into a Dense, and stand-alone) is its
    canonical signed digits: no multiplier, bit-exact, and the search counts no DSP."""
    g = leaky_mlp([12, 10, 8, 4], seed=1)
    assert CostModel().fixed_dsp(g) and not CostModel(rtl=SHIFT_ADD).fixed_dsp(g)
    select_reuse(g, make_options(max_dsp=0))
    with_dsp = lower(g, RtlConfig(clock_mhz=320.0))
    assert [op for op in with_dsp.primitive_ops() if isinstance(op, MulConst)]
    nl = lower(g, SHIFT_ADD)
    assert not [op for op in nl.primitive_ops() if isinstance(op, (Mul, MulConst))]
    # the stand-alone leaky ReLU keeps its schedule (its slope product's registers)
    assert nl.layers[0].name == with_dsp.layers[0].name == "leaky_in"
    assert nl.layers[0].latency == with_dsp.layers[0].latency
    x = inputs(g, 400, seed=5)
    want = run_raw(g, x)
    assert_bit_exact(evaluate(nl, x), want, "leaky shift-add: netlist")
    assert_bit_exact(simulate(nl, x, lanes=64), want, "leaky shift-add: cycle-accurate")
    assert estimate_netlist(nl).total.dsp == 0


def test_banked_weights_that_differ_are_refused():
    from tests.test_banked import _banked
    banked, _ = _banked(3)
    with pytest.raises(UserError, match="differs between banks.*--max-dsp 0"):
        lower(banked, SHIFT_ADD)


def test_cli_max_dsp_0(tmp_path, capsys):
    from nnfpga.compiler.cli import main
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--max-dsp", "0", "-o", str(out)]) == 0
    rtl = json.loads((out / "rtl.json").read_text())
    assert rtl["config"]["shift_add"] is True and rtl["dsp"] == 0
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--max-dsp", "-1", "-o", str(tmp_path / "x")]) != 0
    assert "--max-dsp" in capsys.readouterr().err


@pytest.mark.slow
def test_qmlp_without_dsp_in_verilator_and_yosys(tmp_path):
    """The done-when of issue 15's shift-add slice: qmlp at 320 MHz with --max-dsp 0
    is bit-exact in Verilator and Yosys (synth_xilinx -family xcup) maps no DSP48E2."""
    import nnfpga
    from nnfpga.sim.verilator import run_verilator
    from tests.test_rtl_models import yosys_dsp
    require_tool("verilator")
    require_tool("yosys")
    fw = tmp_path / "fw"
    res = nnfpga.compile(str(MODELS / "qmlp.h5"), clock="320MHz", max_dsp=0, outdir=fw)
    g = res.graph
    info = json.loads((fw / "rtl.json").read_text())
    assert info["dsp"] == 0 and res.report["resources"]["estimate"]["dsp"] == 0
    assert not [op for op in lower(g, SHIFT_ADD).primitive_ops() if isinstance(op, (Mul, MulConst))]
    x = inputs(g, 400, seed=7)
    assert_bit_exact(run_verilator(fw, x), run_raw(g, x), "Verilator qmlp --max-dsp 0")
    assert yosys_dsp(fw, info) == 0


@pytest.mark.slow
def test_shift_add_in_ghdl(tmp_path):
    """The VHDL of shift-add trees (integer sums clamped to their exact bounds while the
    logic settles) is bit-exact in GHDL, leaky-ReLU slopes included."""
    from nnfpga.backends.rtl import write_rtl
    from nnfpga.sim.ghdl import run_ghdl
    require_tool("ghdl")
    for k, g in enumerate([random_mlp([12, 10, 8, 4], seed=2, weight_bits=8), leaky_mlp([12, 10, 8, 4], seed=1)]):
        d = tmp_path / str(k)
        write_rtl(g, d, SHIFT_ADD)
        assert "maximum(" in next(d.glob("vhdl/*.vhd")).read_text()
        x = inputs(g, 300, seed=3)
        assert_bit_exact(run_ghdl(d, x), run_raw(g, x), f"GHDL shift-add {g.name}")


def test_scale_shift_scales_are_shift_add_too():
    """A BatchNorm that cannot be folded (ScaleShift): its scales are canonical signed
    digits with --max-dsp 0; bit-exact, and neither the search nor the estimate counts a DSP."""
    from nnfpga.compiler.pipeline import build_graph
    from tests.test_batchnorm import keras_mlp
    g = build_graph(keras_mlp(seed=2))
    assert "ScaleShift" in [n.op_type for n in g.nodes]
    assert CostModel().fixed_dsp(g) and not CostModel(rtl=SHIFT_ADD).fixed_dsp(g)
    nl = lower(g, SHIFT_ADD)
    assert not [op for op in nl.primitive_ops() if isinstance(op, (Mul, MulConst))]
    x = inputs(g, 400, seed=6)
    want = run_raw(g, x)
    assert_bit_exact(evaluate(nl, x), want, "scale-shift shift-add: netlist")
    assert_bit_exact(simulate(nl, x, lanes=64), want, "scale-shift shift-add: cycle-accurate")
    assert estimate_netlist(nl).total.dsp == 0
