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
from nnfpga.compiler.errors import UserError
from nnfpga.compiler.passes import reuse
from nnfpga.compiler.passes.apply_config import apply_config
from nnfpga.compiler.passes.reuse import COST_MODEL, CostModel, dsp_multiplications, select_reuse
from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.ops import Dense
from tests.conftest import MODELS
from tests.irmodels import random_mlp


def _dense(g):
    return [n for n in g.nodes if isinstance(n, Dense)]


def _totals(g) -> tuple[int, int]:
    return (sum(COST_MODEL.dsp(n, n.reuse_factor) for n in _dense(g)),
            sum(COST_MODEL.latency(n, n.reuse_factor) for n in _dense(g)))


def test_dsp_rule_counts_only_non_trivial_multiplications():
    g = random_mlp([6, 5, 3], seed=1, weight_bits=6)
    fc1 = g.node("fc1")
    raw = fc1.kernel_q.raw
    hard = sum(1 for v in raw.reshape(-1) if v != 0 and abs(int(v)) & (abs(int(v)) - 1))
    assert dsp_multiplications(fc1) == hard > 0
    assert COST_MODEL.dsp(fc1, 1) == hard and COST_MODEL.dsp(fc1, 4) == -(-hard // 4)
    for kind in ("ternary", "binary", "po2"):
        t = random_mlp([6, 5, 3], weight_kind=kind)
        assert all(dsp_multiplications(n) == 0 for n in _dense(t)), kind


@pytest.mark.parametrize("seed", [0, 1])
def test_max_dsp_choice_has_the_least_latency(seed):
    base = random_mlp([5, 4, 3, 2], seed=seed, weight_bits=7, sparsity=0.0)
    layers = _dense(base)
    n = [dsp_multiplications(x) for x in layers]
    tops = [reuse.scheduled_multiplications(x) for x in layers]
    for budget in range(len(layers), sum(n) + 1, 3):
        g = select_reuse(random_mlp([5, 4, 3, 2], seed=seed, weight_bits=7, sparsity=0.0),
                         make_options(max_dsp=budget))
        dsp, latency = _totals(g)
        assert dsp <= budget
        best = min(sum(r) - len(r) for r in itertools.product(*(range(1, t + 1) for t in tops))
                   if sum(-(-m // r_) for m, r_ in zip(n, r)) <= budget)
        assert latency == best, (budget, [x.reuse_factor for x in _dense(g)])
        summary = g.annotations["passes"]["reuse"]
        assert summary["dsp"] == dsp and summary["ii_cycles"] == max(x.reuse_factor for x in _dense(g))


def test_ii_limit_alone_minimises_dsps():
    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), make_options(ii=4))
    for x in _dense(g):
        m = dsp_multiplications(x)
        assert x.reuse_factor <= 4 and COST_MODEL.dsp(x, x.reuse_factor) == -(-m // 4)
        assert COST_MODEL.dsp(x, x.reuse_factor - 1) > COST_MODEL.dsp(x, x.reuse_factor) if x.reuse_factor > 1 \
            else True                                        # the smallest R with that DSP count
    opts = make_options(event_rate="60MHz", clock_mhz=240.0)
    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), opts)
    assert max(x.reuse_factor for x in _dense(g)) <= 4
    assert g.annotations["passes"]["reuse"]["target"]["ii_reason"].startswith("event rate 60 MHz at 240 MHz")


def test_impossible_budget_is_an_error():
    g = random_mlp([12, 10, 8, 4], seed=2)
    least = sum(-(-dsp_multiplications(x) // 3) for x in _dense(g))
    with pytest.raises(UserError, match=rf"--max-dsp 3 cannot be met: the fewest DSPs reachable with II <= 3 is {least}"):
        select_reuse(g, make_options(max_dsp=3, ii=3))


def test_configured_reuse_factors_are_kept_and_too_large_ones_reported():
    g = random_mlp([12, 10, 8, 4], seed=2)
    opts = make_options({"layers": {"fc1": {"reuse_factor": 5}, "fc3": {"reuse_factor": 1000}}}, max_dsp=60)
    g = apply_config(g, opts)
    scheduled = reuse.scheduled_multiplications(g.node("fc3"))
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


def test_cost_model_is_swappable(monkeypatch):
    class Flat(CostModel):
        def dsp(self, node, r):      # e.g. counts read from the RTL schedule
            return 10 if r == 1 else 1

    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), make_options(max_dsp=21), model=Flat())
    assert sorted(x.reuse_factor for x in _dense(g)) == [1, 1, 2]
    monkeypatch.setattr(reuse, "COST_MODEL", Flat())
    g = select_reuse(random_mlp([12, 10, 8, 4], seed=2), make_options(max_dsp=21))
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
