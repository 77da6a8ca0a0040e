"""Reuse-factor selection for a DSP budget or an II limit, and the DSP counting rule."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

from nnfpga.compiler.adjustments import AdjustmentWarning
from nnfpga.compiler.cli import main
from nnfpga.compiler.config import load_config, make_options
from nnfpga.compiler.passes.apply_config import apply_config
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.backends.rtl.lowering.schedule import CostModel, dsp_multiplications, scheduled_multiplications
from nnfpga.compiler.passes.reuse import select_reuse
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.ops import Dense
from tests.conftest import MODELS
from tests.irmodels import random_mlp

COST_MODEL = CostModel()


def _dense(g):
    return [n for n in g.nodes if isinstance(n, Dense)]


def _x(g, n):
    return g.in_infos(n)[0]


def _totals(g) -> tuple[int, int]:
    return (sum(COST_MODEL.dsp(n, n.reuse_factor, _x(g, n)) for n in _dense(g)),
            sum(COST_MODEL.latency(n, n.reuse_factor, _x(g, n)) for n in _dense(g)))


def test_dsp_rule_counts_only_non_trivial_multiplications():
    g = random_mlp([6, 5, 3], seed=1, weight_bits=6)
    fc1 = g.node("fc1")
    raw = fc1.kernel_q.raw
    hard = sum(1 for v in raw.reshape(-1) if v != 0 and abs(int(v)) & (abs(int(v)) - 1))
    assert dsp_multiplications(fc1) == COST_MODEL.multipliers(fc1, _x(g, fc1)) == hard > 0
    # reuse 1: one multiplier per distinct (input, odd constant); reuse 4: ceil(hard / 4) units
    odd = {(i, abs(int(v)) >> (abs(int(v)) & -abs(int(v))).bit_length() - 1)
           for (i, _), v in np.ndenumerate(raw) if v != 0 and abs(int(v)) & (abs(int(v)) - 1)}
    assert 0 < COST_MODEL.dsp(fc1, 1, _x(g, fc1)) <= len(odd) < hard
    assert COST_MODEL.dsp(fc1, 4, _x(g, fc1)) == -(-hard // 4)
    for kind in ("ternary", "binary", "po2"):
        t = random_mlp([6, 5, 3], weight_kind=kind)
        assert all(dsp_multiplications(n) == 0 == COST_MODEL.dsp(n, 1, _x(t, n)) for n in _dense(t)), kind


def _leaky_mlp(reuse: int):
    """random_mlp with leaky ReLUs (slope 0.3): a multiplier per element, folded into the Dense."""
    from nnfpga.ir.graph import Graph
    from nnfpga.ir.ops import Activation
    from tests import rtl_models as M
    g = random_mlp([12, 10, 8, 4], seed=2, weight_bits=8)
    out = FixedType(10, 4, True, Rounding.RND_CONV, Overflow.SAT)
    nodes = [Activation(n.name, n.inputs, function="leaky_relu", alpha=0.3, out_type=out)
             if getattr(n, "function", None) == "relu" else n for n in g.nodes]
    return M.set_reuse(assign_types(Graph("leaky_mlp", nodes, g.outputs)), reuse)


def _cost_model_cases():
    from tests import rtl_models as M
    yield "pool_cnn same + softmax", lambda r: M.pool_cnn(padding="same", reuse=r)
    yield "pool_cnn valid", lambda r: M.pool_cnn(padding="valid", softmax=False, reuse=r)
    yield "softmax_mlp", lambda r: M.softmax_mlp(reuse=r)
    wide = FixedType(16, 6, True, Rounding.RND, Overflow.SAT)     # signed x signed units
    yield "mlp 10-bit weights", lambda r: M.set_reuse(random_mlp([16, 24, 12, 4], seed=3, weight_bits=10,
                                                                 act_bits=12, act_int=4, input_type=wide), r)
    yield "mlp 4-bit relu", lambda r: M.set_reuse(random_mlp([12, 10, 8, 4], seed=2, act_bits=4, act_int=2), r)
    yield "leaky_mlp", _leaky_mlp


def test_cost_model_bounds_the_report_estimate_and_gives_the_rtl_latency():
    """The budget is for the DSPs report.json gives: the cost model's count (the layer's
    multipliers plus the fixed ones of the activations folded into it: softmax, leaky
    ReLU) is never below the estimator's, per RTL layer and in total; equal at reuse 1 and
    at larger R when every element spans its tensor's range; its extra latency is the
    RTL's, cycle for cycle."""
    from nnfpga.backends.report.estimator import estimate_netlist
    from nnfpga.backends.rtl import lower
    equal = cases = 0
    for name, make in _cost_model_cases():
        base = None
        for r in (1, 2, 7):
            g = make(r)
            nl = lower(g)
            est = estimate_netlist(nl)
            latency = {layer.name: layer.latency for layer in nl.layers}
            base = base or latency
            fixed = COST_MODEL.fixed_dsp(g)
            assert bool(fixed) == name.startswith(("pool_cnn same", "softmax", "leaky")), name
            total = 0
            for layer in nl.layers:
                dsp = 0
                for n in map(g.node, layer.nodes):
                    if n.op_type in ("Dense", "Conv2D"):
                        dsp += COST_MODEL.dsp(n, n.reuse_factor, _x(g, n))
                        assert COST_MODEL.latency(n, n.reuse_factor, _x(g, n)) == \
                            latency[n.name] - base[n.name], (name, r, n.name)
                    dsp += fixed.get(n.name, 0)
                total += dsp
                cases += 1
                assert dsp >= est.layers[layer.name].dsp, (name, r, layer.name)
                equal += dsp == est.layers[layer.name].dsp
            assert total >= est.total.dsp, (name, r)
            if name.startswith(("softmax", "leaky")):
                assert total == est.total.dsp, (name, r)
    print(f"cost model = estimator in {equal} of {cases} layers")
    assert equal >= 0.75 * cases, (equal, cases)


@pytest.mark.parametrize("clock,family", [(120.0, "xcup"), (450.0, "xcup"), (300.0, "xc7")])
def test_cost_model_latency_follows_the_clock(clock, family):
    """At another clock and part family the reuse search's extra latency is still the
    RTL's, cycle for cycle (one RtlConfig for both), and the fully parallel layer's
    latency is the schedule's (`LayerProfile.pipeline`) plus its folded conversions."""
    from nnfpga.backends.rtl import RtlConfig, lower
    from nnfpga.backends.rtl.lowering.schedule import layer_profile
    cfg = RtlConfig(clock_mhz=clock, family=family)
    model = CostModel(rtl=cfg)
    for name, make in _cost_model_cases():
        base = None
        for r in (1, 3):
            g = make(r)
            nl = lower(g, cfg)
            latency = {layer.name: layer.latency for layer in nl.layers}
            base = base or latency
            for n in g.nodes:
                if n.op_type in ("Dense", "Conv2D"):
                    assert model.latency(n, n.reuse_factor, _x(g, n)) == latency[n.name] - base[n.name], \
                        (name, r, n.name)
                    pipe = layer_profile(n, _x(g, n)).pipeline(n.reuse_factor, cfg)
                    assert latency[n.name] >= pipe.latency, (name, r, n.name)


@pytest.mark.parametrize("seed", [0, 1])
def test_max_dsp_choice_has_the_least_latency(seed):
    base = random_mlp([5, 4, 3, 2], seed=seed, weight_bits=7, sparsity=0.0)
    layers = _dense(base)
    tops = [scheduled_multiplications(x) for x in layers]
    cost = [{r: (COST_MODEL.dsp(x, r, _x(base, x)), COST_MODEL.latency(x, r, _x(base, x))) for r in range(1, t + 1)}
            for x, t in zip(layers, tops)]
    combos = [(sum(c[r][0] for c, r in zip(cost, rs)), sum(c[r][1] for c, r in zip(cost, rs)))
              for rs in itertools.product(*(range(1, t + 1) for t in tops))]
    least, most = min(d for d, _ in combos), max(d for d, _ in combos)
    for budget in range(least, most + 2, 3):
        g = select_reuse(random_mlp([5, 4, 3, 2], seed=seed, weight_bits=7, sparsity=0.0),
                         make_options(max_dsp=budget))
        dsp, latency = _totals(g)
        assert dsp <= budget
        best = min(lat for d, lat in combos if d <= budget)
        assert latency == best, (budget, [x.reuse_factor for x in _dense(g)])
        summary = g.annotations["passes"]["reuse"]
        assert summary["dsp"] == dsp and summary["ii_cycles"] == max(x.reuse_factor for x in _dense(g))
    with pytest.raises(UserError, match=rf"--max-dsp {least - 1} cannot be met: the fewest DSPs reachable is {least}"):
        select_reuse(random_mlp([5, 4, 3, 2], seed=seed, weight_bits=7, sparsity=0.0), make_options(max_dsp=least - 1))


def test_ii_limit_alone_minimises_dsps():
    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), make_options(ii=4))
    for x in _dense(g):
        def cost(r):
            return COST_MODEL.dsp(x, r, _x(g, x)), COST_MODEL.latency(x, r, _x(g, x))
        assert x.reuse_factor <= 4 and cost(x.reuse_factor) == min(cost(r) for r in range(1, 5))
    opts = make_options(event_rate="60MHz", clock_mhz=240.0)
    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), opts)
    assert max(x.reuse_factor for x in _dense(g)) <= 4
    assert g.annotations["passes"]["reuse"]["target"]["ii_reason"].startswith("event rate 60 MHz at 240 MHz")


def test_impossible_budget_is_an_error():
    g = random_mlp([12, 10, 8, 4], seed=2)
    least = sum(min(COST_MODEL.dsp(x, r, _x(g, x)) for r in (1, 2, 3)) for x in _dense(g))
    with pytest.raises(UserError, match=rf"--max-dsp 3 cannot be met: the fewest DSPs reachable with II <= 3 is {least}"):
        select_reuse(g, make_options(max_dsp=3, ii=3))


def test_configured_reuse_factors_are_kept_and_too_large_ones_reported():
    g = random_mlp([12, 10, 8, 4], seed=2)
    opts = make_options({"layers": {"fc1": {"reuse_factor": 5}, "fc3": {"reuse_factor": 1000}}}, max_dsp=60)
    g = apply_config(g, opts)
    scheduled = scheduled_multiplications(g.node("fc3"))
    with pytest.warns(AdjustmentWarning, match=rf"layer 'fc3': reuse_factor 1000 -> {scheduled} \(the layer has "
                                               rf"only {scheduled} multiplications to share\)"):
        g = select_reuse(g, opts)
    assert g.node("fc1").reuse_factor == 5 and g.node("fc3").reuse_factor == scheduled
    (adj,) = g.annotations["adjustments"]
    assert adj["requested"] == 1000 and adj["used"] == scheduled
    layers = {x["layer"]: x for x in g.annotations["passes"]["reuse"]["layers"]}
    assert not layers["fc1"]["chosen"] and layers["fc2"]["chosen"]
    with pytest.raises(UserError, match=r"reuse_factor 5 of layer 'fc1' exceeds the II limit 2"):
        opts = make_options({"layers": {"fc1": {"reuse_factor": 5}}}, ii=2)
        select_reuse(apply_config(random_mlp([12, 10, 8, 4], seed=2), opts), opts)


def test_cost_model_is_swappable():
    class Flat(CostModel):
        def dsp(self, node, r, x):   # e.g. counts read from the RTL schedule
            return 10 if r == 1 else 1

    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), make_options(max_dsp=21), model=Flat())
    assert sorted(x.reuse_factor for x in _dense(g)) == [1, 1, 2]


def test_cli_config_writes_the_reuse_choice(tmp_path, capsys):
    path = tmp_path / "reuse.yml"
    assert main(["config", str(MODELS / "qmlp.h5"), "--max-dsp", "200", "-o", str(path)]) == 0
    text = path.read_text()
    assert len(re.findall(r"^    reuse_factor: \d+   # chosen for the DSP/II target$", text, flags=re.M)) == 4
    cfg = load_config(path)
    g = build_graph(MODELS / "qmlp.h5", options=make_options(path))
    chosen = build_graph(MODELS / "qmlp.h5", options=make_options(max_dsp=200))
    assert [x.reuse_factor for x in _dense(g)] == [x.reuse_factor for x in _dense(chosen)]
    assert [cfg.layers[x.source_layer].settings["reuse_factor"].value for x in _dense(g)] == \
        [x.reuse_factor for x in _dense(g)]
    dsp, latency = _totals(g)
    assert dsp <= 200
    # one DSP fewer than needed for any faster choice: the latency is the least for the budget
    faster = build_graph(MODELS / "qmlp.h5", options=make_options(max_dsp=dsp + 40))
    assert _totals(faster)[1] < latency


def test_cli_compile_with_dsp_budget(tmp_path, capsys):
    out = tmp_path / "fw"
    code = main(["compile", str(MODELS / "qmlp.h5"), "--max-dsp", "200", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    choice = report["optimisation"]["reuse"]
    assert choice["dsp"] <= 200 and report["ii_cycles"] == choice["ii_cycles"]
    assert [x["reuse_factor"] for x in report["layers"] if x["op"] == "Dense"] == \
        [x["reuse_factor"] for x in choice["layers"]]


def test_ternary_model_needs_no_dsps():
    g = build_graph(MODELS / "ternary_mlp.h5", options=make_options(max_dsp=1))
    assert all(x.reuse_factor == 1 for x in _dense(g)) and g.annotations["passes"]["reuse"]["dsp"] == 0
    assert np.all([dsp_multiplications(x) == 0 for x in _dense(g)])
