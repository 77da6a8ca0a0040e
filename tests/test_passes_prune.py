"""Magnitude pruning and bit-exact removal of dead neurons / filters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nnfpga
from nnfpga.compiler.cli import main
from nnfpga.compiler.config import make_options
from nnfpga.compiler.passes.apply_config import apply_config
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.compiler.passes.precision import infer_precision
from nnfpga.compiler.passes.prune import prune
from nnfpga.compiler.passes.remove_dead import remove_dead_units
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, MaxPool2D, Reshape
from nnfpga.ir.quant import Quantizer, WeightKind
from tests.conftest import MODELS
from tests.irmodels import random_inputs, random_mlp

PRUNE = {"pruning": {}}        # pruning on, no magnitude target: dead-unit removal only
RELU_T = FixedType(8, 3, False, Rounding.RND_CONV, Overflow.SAT)


def _zero(node, index) -> None:
    node.kernel = node.kernel.copy()
    node.kernel[index] = 0.0
    raw = node.kernel_q.raw.copy()
    raw[index] = 0
    node.kernel_q = type(node.kernel_q)(raw, node.kernel_q.frac, node.kernel_q.kind)


def _dead(graph: Graph) -> Graph:
    graph = remove_dead_units(graph, make_options(PRUNE))
    return infer_precision(graph)


def test_dead_neurons_are_removed_bit_exactly():
    g = random_mlp([8, 12, 10, 4], seed=3, final_activation="relu")
    fc1, fc2, fc3 = (g.node(n) for n in ("fc1", "fc2", "fc3"))
    _zero(fc1, (slice(None), 3))          # unit 3 of fc1: constant relu(bias) ...
    fc1.bias_q.raw[3] = 37                # ... and a non-zero one: folded into fc2's bias
    _zero(fc2, (5, slice(None)))          # unit 5 of fc1 is read by nothing
    _zero(fc3, (2, slice(None)))          # unit 2 of fc2 is read by nothing
    g = assign_types(g)
    x = random_inputs(g, 4000)
    before = emulate(g, x)
    bias_frac_before = fc2.bias_q.frac
    g = _dead(g)
    assert np.array_equal(emulate(g, x), before)
    assert g.node("fc1").n_out == 10 and g.node("fc2").n_in == 10
    assert g.node("fc2").n_out == 9 and g.node("fc3").n_in == 9
    assert g.node("fc2").bias_q.frac >= bias_frac_before     # exact constant contribution
    dead = g.annotations["passes"]["dead_units"]
    assert {d["layer"]: d["units_removed"] for d in dead["layers"]} == {"fc1": 2, "fc2": 1}
    params_fc1 = 2 * (8 + 1) + 2 * 10           # two columns + biases of fc1, two rows of fc2
    params_fc2 = (12 - 2 + 1) + 4               # one column + bias of fc2 (10 inputs left), one row of fc3
    assert dead["parameters_removed"] == params_fc1 + params_fc2
    assert dead["parameters_before"] - dead["parameters_after"] == dead["parameters_removed"]
    assert dead["multiplications_removed"] == dead["multiplications_before"] - dead["multiplications_after"] > 0


def test_dead_units_never_empty_a_layer_or_touch_the_outputs():
    g = random_mlp([6, 4, 3], seed=5)
    _zero(g.node("fc2"), (slice(None), slice(None)))   # nothing of fc1 is read; fc2 outputs are constants
    g = assign_types(g)
    x = random_inputs(g, 500)
    before = emulate(g, x)
    g = _dead(g)
    assert g.node("fc1").n_out == 1 and g.node("fc2").n_out == 3
    assert np.array_equal(emulate(g, x), before)


def _conv_model() -> Graph:
    rng = np.random.default_rng(8)
    wq = Quantizer(WeightKind.FIXED, FixedType(6, 1, True, Rounding.RND_CONV, Overflow.SAT))
    bq = Quantizer(WeightKind.FIXED, FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT))

    def layer(cls, name, src, kshape, **kw):
        k = rng.normal(0, 0.6, kshape)
        n = cls(name, [src], kernel=k, bias=rng.normal(0.3, 0.5, kshape[-1]), kernel_quantizer=wq,
                bias_quantizer=bq, source_layer=name, **kw)
        n.kernel_q, n.bias_q = wq.apply(n.kernel), bq.apply(n.bias)
        return n
    nodes = [Input("input", [], out_type=FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT), shape=(8, 8, 2)),
             layer(Conv2D, "conv1", "input", (3, 3, 2, 4)),
             Activation("relu1", ["conv1"], function="relu", out_type=RELU_T),
             MaxPool2D("pool", ["relu1"]),
             layer(Conv2D, "conv2", "pool", (2, 2, 4, 3)),
             Activation("relu2", ["conv2"], function="relu", out_type=RELU_T),
             Reshape("flat", ["relu2"], target_shape=(-1,)),
             layer(Dense, "fc", "flat", (12, 2))]
    g = Graph("convnet", nodes, ["fc"])
    _zero(g.node("conv1"), (..., 1))                  # filter 1 constant: folded into conv2 (valid)
    g.node("conv1").bias_q.raw[1] = 9
    _zero(g.node("conv2"), (slice(None), slice(None), 2))   # conv1 filter 2 unused
    _zero(g.node("conv2"), (..., 2))                  # conv2 filter 2 constant: folded through the flatten
    g.node("conv2").bias_q.raw[2] = 11
    _zero(g.node("fc"), (np.arange(4) * 3 + 0, slice(None)))   # conv2 filter 0 unused by the Dense
    return assign_types(g)


def test_dead_filters_are_removed_bit_exactly():
    g = _conv_model()
    x = random_inputs(g, 3000)
    before = emulate(g, x)
    g = _dead(g)
    assert np.array_equal(emulate(g, x), before)
    assert g.node("conv1").kernel_q.raw.shape == (3, 3, 2, 2)
    assert g.node("conv2").kernel_q.raw.shape == (2, 2, 2, 1)
    assert g.node("fc").kernel_q.raw.shape == (4, 2) and g.node("flat").info.shape == (4,)


def test_magnitude_pruning_reaches_exact_targets():
    cfg = {"pruning": {"sparsity": 0.3}, "layers": {"fc2": {"sparsity": 0.75}}}
    g = random_mlp([10, 20, 16, 5], seed=2, sparsity=0.1)
    opts = make_options(cfg)
    g = prune(apply_config(g, opts), opts)
    for name, target in (("fc1", 0.3), ("fc2", 0.75), ("fc3", 0.3)):
        k = g.node(name).kernel
        assert (k == 0).sum() == math.ceil(target * k.size), name
        assert (g.node(name).kernel_q.raw[k == 0] == 0).all()      # quantised layers follow
    layers = {x["layer"]: x for x in g.annotations["passes"]["pruning"]["layers"]}
    assert layers["fc2"]["target"] == 0.75 and layers["fc2"]["zero_after"] == 240


def test_global_pruning_uses_one_threshold():
    g = random_mlp([10, 20, 16, 5], seed=4, sparsity=0.0)
    opts = make_options({"pruning": {"sparsity": 0.5, "scope": "global"}})
    originals = {n.name: np.abs(n.kernel).copy() for n in g.nodes if isinstance(n, Dense)}
    g = prune(g, opts)
    dense = [n for n in g.nodes if isinstance(n, Dense)]
    total = sum(n.kernel.size for n in dense)
    assert sum(int((n.kernel == 0).sum()) for n in dense) == math.ceil(0.5 * total)
    pruned = np.concatenate([originals[n.name][n.kernel == 0] for n in dense])
    kept = np.concatenate([originals[n.name][n.kernel != 0] for n in dense])
    assert pruned.max() <= kept.min()
    sparsity = {n.name: float((n.kernel == 0).mean()) for n in dense}
    assert len(set(round(v, 3) for v in sparsity.values())) > 1        # not the same share per layer


def test_binary_layers_cannot_be_pruned():
    g = random_mlp([6, 5, 3], weight_kind="binary")
    with pytest.raises(UserError, match=r"layers.fc1.sparsity: layer 'fc1' \(Dense 6 -> 5\) has binary weights, "
                                        r"which are never zero"):
        apply_config(g, make_options({"layers": {"fc1": {"sparsity": 0.5}}}))
    opts = make_options({"pruning": {"sparsity": 0.5}})
    g = prune(apply_config(g, opts), opts)
    assert g.annotations["passes"]["pruning"]["skipped_layers"] == ["fc1", "fc2"]


def test_pruning_cli_reports_figures_and_dead_unit_removal_is_exact(tmp_path, capsys):
    x = np.random.default_rng(0).normal(0, 2.0, (3000, 16))
    outs = {}
    for dead in ("keep", "remove"):
        cfg = tmp_path / f"{dead}.yml"
        cfg.write_text(f"pruning:\n  sparsity: 0.6\n  dead_units: {dead}\nlayers:\n  fc3:\n    sparsity: 0.8\n")
        out = tmp_path / f"fw_{dead}"
        assert main(["compile", str(MODELS / "qmlp.h5"), "--config", str(cfg), "-o", str(out)]) == 0
        outs[dead] = out
    stdout = capsys.readouterr().out
    assert "pruning: " in stdout and "dead units: " in stdout
    report = json.loads((outs["remove"] / "report.json").read_text())
    opt = report["optimisation"]
    targets = {x["layer"]: x for x in opt["pruning"]["layers"]}
    assert targets["fc3"]["target"] == 0.8 and targets["fc3"]["sparsity"] >= 0.8
    assert all(x["sparsity"] >= 0.6 for x in targets.values())
    dead = opt["dead_units"]
    assert dead["parameters_removed"] > 0 and dead["multiplications_removed"] >= 0
    assert np.array_equal(nnfpga.emulate(outs["keep"], x), nnfpga.emulate(outs["remove"], x))
    # the backends see the smaller layers and the zero weights cost no multiplications
    plain = build_graph(MODELS / "qmlp.h5")
    mults = {layer["name"]: layer["multiplications"] for layer in report["layers"]}
    for n in plain.nodes:
        if isinstance(n, Dense):
            assert mults[n.name] < int((n.kernel_q.raw != 0).sum())


def test_pruned_float_model_folds_constant_units_exactly():
    cfg = {"pruning": {"sparsity": 0.9, "dead_units": "keep"}}
    keep = build_graph(MODELS / "float_mlp.h5", options=make_options(cfg))
    cfg["pruning"]["dead_units"] = "remove"
    removed = build_graph(MODELS / "float_mlp.h5", options=make_options(cfg))
    assert removed.node("hidden1").n_out < keep.node("hidden1").n_out
    x = np.random.default_rng(1).normal(0, 0.6, (3000, 16))
    assert np.array_equal(emulate(keep, x), emulate(removed, x))
