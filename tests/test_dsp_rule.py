"""One DSP rule: the lowering's per-layer counts (``rtl.json``), the estimator's
(``report.json``) and the reuse search's price agree, and the rule is Yosys's mapping.

The fast tests compare the three consumers on every kind of design the other suites
build (weight kinds, widths up to 20-bit weights and 26-bit activations, reuse 1/3/4,
softmax, leaky ReLU, convolutions, pooling, banked ensembles) on both DSP types; the
slow test synthesises single products with Yosys and compares the count.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from nnfpga.backends.report.estimator import estimate_netlist
from nnfpga.backends.rtl import lower
from nnfpga.backends.rtl.dsp import const_product_dsp, multiplier_dsp, signal_product_dsp
from nnfpga.backends.rtl.lowering.schedule import CostModel, unit_groups, units_per_output
from nnfpga.compiler.banked import merge_banks
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.ops import BankedDense, Conv2D, Dense
from tests.conftest import require_tool
from tests.irmodels import leaky_mlp, random_mlp
from tests.rtl_models import pool_cnn, set_reuse, softmax_mlp, trigger_cnn

WIDE_INPUT = FixedType(26, 12, True, Rounding.RND_CONV, Overflow.SAT)


def designs():
    for kind in ("fixed", "ternary", "binary", "po2"):
        for r in (1, 4):
            yield f"mlp {kind} R{r}", random_mlp([10, 8, 4], seed=1, weight_kind=kind, reuse_factor=r)
    for bits in (4, 10, 16, 20):
        for r in (1, 3):
            yield f"mlp {bits}-bit weights R{r}", random_mlp([8, 6, 3], seed=bits, weight_bits=bits, reuse_factor=r)
    for r in (1, 4):
        yield f"20-bit weights, 26-bit input R{r}", random_mlp([6, 5, 3], seed=7, weight_bits=20,
                                                               input_type=WIDE_INPUT, reuse_factor=r)
        yield f"28-bit weights, 26-bit input R{r}", random_mlp([6, 5, 3], seed=8, weight_bits=28,
                                                               input_type=WIDE_INPUT, reuse_factor=r)
    for r in (1, 2):
        yield f"softmax R{r}", softmax_mlp(reuse=r)
        yield f"leaky R{r}", leaky_mlp([8, 6, 3], seed=2, reuse_factor=r)
    yield "pool cnn R1", pool_cnn(reuse=1)
    yield "pool cnn R3", pool_cnn(reuse=3)
    yield "trigger cnn R4", trigger_cnn(reuse=4)
    members = [random_mlp([6, 5, 2], seed=s, weight_bits=7, reuse_factor=r, name="bank")
               for s, r in ((1, 3), (2, 3), (3, 3))]
    yield "banked R3", merge_banks(members)


DESIGNS = list(designs())


@pytest.mark.parametrize("dsp_type", ["DSP48E2", "DSP48E1"])
@pytest.mark.parametrize("label, graph", DESIGNS, ids=[d[0] for d in DESIGNS])
def test_lowering_and_estimator_agree(label, graph, dsp_type):
    nl = lower(graph, dsp_type=dsp_type)
    est = estimate_netlist(nl, dsp_type)
    for info in nl.layers:
        cost = est.layers.get(info.name)
        assert info.dsp == (cost.dsp if cost else 0), (label, info.name)
    assert sum(i.dsp for i in nl.layers) == est.total.dsp, label


@pytest.mark.parametrize("dsp_type", ["DSP48E2", "DSP48E1"])
@pytest.mark.parametrize("label, graph", [d for d in DESIGNS if "banked" not in d[0]],
                         ids=[d[0] for d in DESIGNS if "banked" not in d[0]])
def test_reuse_search_price_bounds_what_is_built(label, graph, dsp_type):
    """The search prices a layer from the IR's per-tensor ranges: never below what the
    lowering builds (softmax and leaky-ReLU products included), and equal when every
    element spans the layer's range (the first layer at reuse 1, whose inputs all have
    the input type; a unit's weights, a leaky ReLU's inputs can be narrower)."""
    nl = lower(graph, dsp_type=dsp_type)
    model = CostModel(dsp_type)
    fixed = model.fixed_dsp(graph)  # products no reuse factor shares (softmax, leaky ReLU)
    for info in nl.layers:
        price = sum(fixed.get(x, 0) for x in info.nodes)
        for x in info.nodes:
            n = graph.node(x)
            if isinstance(n, (Dense, Conv2D)):
                price += model.dsp(n, n.reuse_factor, graph.in_infos(n)[0])
        assert price >= info.dsp, (label, info.name)
        if info.name == "fc1" and info.reuse_factor == 1 and not any(x in fixed for x in info.nodes):
            assert price == info.dsp, (label, info.name)


def test_unit_groups_and_their_count_per_output_agree():
    rng = np.random.default_rng(0)
    for _ in range(200):
        per_output = rng.integers(0, 7, rng.integers(1, 12))
        reuse = int(rng.integers(2, 9))
        owner = np.repeat(np.arange(len(per_output)), per_output)
        counted = np.zeros(len(per_output), dtype=np.int64)
        for group in unit_groups(len(owner), reuse):
            for j in set(owner[group.start:group.stop]):
                counted[j] += 1
        assert (counted == units_per_output(per_output, reuse)).all()


@pytest.mark.parametrize("a, b, y, dsp", [
    (28, 18, 46, 2),   # A past 27 bits: an 18-bit slice and the rest
    (33, 22, 32, 3),   # ... and B past 18; the slice above the 32-bit result is removed
    (49, 25, 48, 5),
    (27, 19, 46, 2),
    (19, 19, 38, 2),
])
def test_wide_products_split_like_mul2dsp(a, b, y, dsp):
    """Counts Yosys 0.23 gave for these signed products (the slow test re-checks)."""
    assert multiplier_dsp(a, b, y, signed=True) == dsp


#: (kind, operand widths / constant, result width): products around the DSP48E2 edges
YOSYS_CASES = [("const", 20, True, 1001, 27), ("const", 11, True, 1403603, 32), ("const", 32, True, 11343413, 48),
               ("const", 27, False, 2702699, 43), ("const", 6, False, 5, 9), ("const", 6, False, 5, 8),
               ("signals", 31, True, 17, True, 47), ("signals", 19, True, 28, True, 44),
               ("signals", 8, False, 6, True, 14)]


def _yosys_dsp(tmp_path, case) -> int:
    if case[0] == "const":
        _, aw, signed, c, w = case
        ext = f"{{{{{w - aw}{{a[{aw - 1}]}}}}, a}}" if signed else f"{{{w - aw}'d0, a}}"
        body = f"input [{aw - 1}:0] a, output reg [{w - 1}:0] y);\n  wire [{w - 1}:0] p = {ext} * {w}'d{c};"
    else:
        _, aw, sa, bw, sb, w = case
        a = "$signed(a)" if sa else "$signed({1'b0, a})"
        b = "$signed(b)" if sb else "$signed({1'b0, b})"
        body = (f"input [{aw - 1}:0] a, input [{bw - 1}:0] b, output reg [{w - 1}:0] y);\n"
                f"  wire [{w - 1}:0] p = {a} * {b};")
    src = tmp_path / "m.v"
    src.write_text(f"module m(input clk, {body}\n  always @(posedge clk) y <= p;\nendmodule\n")
    stat = tmp_path / "stat.txt"
    subprocess.run(["yosys", "-q", "-p", f"read_verilog {src}; synth_xilinx -family xcup -top m; "
                    f"tee -q -o {stat} stat"], check=True, capture_output=True, text=True)
    m = re.findall(r"DSP48E2\s+(\d+)", stat.read_text())
    return int(m[0]) if m else 0


@pytest.mark.slow
@pytest.mark.parametrize("case", YOSYS_CASES, ids=[str(c) for c in YOSYS_CASES])
def test_dsp_rule_matches_yosys(tmp_path, case):
    require_tool("yosys")
    if case[0] == "const":
        _, aw, signed, c, w = case
        ours = const_product_dsp(aw, signed, c, w)
    else:
        _, aw, sa, bw, sb, w = case
        ours = signal_product_dsp(aw, sa, bw, sb, w)
    assert ours == _yosys_dsp(tmp_path, case)
