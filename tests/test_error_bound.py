"""The guaranteed error bound (`nnfpga.compiler.passes.error_bound`) against the error
observed on 100,000 inputs drawn uniformly from the input type's range: never below it,
and not far above it."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.float_reference import float_forward
from nnfpga.compiler.passes.error_bound import error_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate
from tests.conftest import MODELS


@pytest.fixture(scope="module")
def mlp_16_64_32_32_5(tmp_path_factory):
    """A float 16-64-32-32-5 ReLU MLP with linear logits (Glorot weights, seed 21)."""
    import tf_keras as keras
    keras.utils.set_random_seed(21)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(5)])
    path = tmp_path_factory.mktemp("mlp") / "mlp_16_64_32_32_5.h5"
    model.save(path)
    return path


def _bound_and_observed(path) -> tuple[np.ndarray, np.ndarray]:
    graph = build_graph(path)
    t = graph.input.info.type
    x = np.random.default_rng(0).uniform(t.min_value, t.max_value, (100_000, *graph.input.info.shape))
    observed = np.abs(emulate(graph, x) - float_forward(graph, x)).max(axis=0)
    return error_bound(graph), observed


#: the largest bound / observed ratio reached (guards against loosening; the target is 10)
REACHED = {"float_mlp.h5": 40, "float_mlp.keras": 35, "mlp_16_64_32_32_5": 150}


@pytest.mark.parametrize("name", list(REACHED))
def test_bound_holds_and_is_not_vacuous(name, mlp_16_64_32_32_5):
    path = mlp_16_64_32_32_5 if name == "mlp_16_64_32_32_5" else MODELS / name
    bound, observed = _bound_and_observed(path)
    assert np.all(bound >= observed - 1e-12), (bound, observed)   # float64 reference: no slack
    ratio = bound.max() / observed.max()
    assert ratio <= REACHED[name], f"bound {bound.max():.4g} is {ratio:.1f}x the observed {observed.max():.4g}"


def test_relu_of_a_negative_interval_has_no_error():
    """Where a ReLU's input interval (error included) is entirely negative, the output is 0
    in both networks: its bound is 0 (inputs all 0: the last layer's input is fixed)."""
    from tests.irmodels import random_mlp
    g = random_mlp([4, 8, 3], seed=1, final_activation="relu")
    bound = error_bound(g, (0.0, 0.0))
    pre = float_forward(g, np.zeros((1, 4)))   # the relu's output; its input is:
    fc2 = g.node("fc2")
    hidden = np.maximum(g.node("fc1").bias, 0.0)
    z = hidden @ fc2.kernel + fc2.bias
    assert pre.shape == (1, 3)
    negative = z < -0.5
    assert negative.any() and (~negative).any()
    assert np.all(bound[negative] == 0) and np.all(bound[~negative] > 0)


def test_report_json_holds_the_bound(tmp_path):
    import json

    from nnfpga.backends.report.schema import validate
    from nnfpga.compiler.cli import main
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "float_mlp.h5"), "--target", "xcvu9p", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert validate(report) == []
    acc = report["accuracy"]
    bound = error_bound(build_graph(MODELS / "float_mlp.h5"))
    assert acc["against"] == "float network"
    assert acc["error_bound_per_output"] == pytest.approx(list(bound), rel=1e-12)
    assert acc["error_bound_max"] == pytest.approx(float(bound.max()), rel=1e-12)


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu", "hard_tanh", "hard_sigmoid", "tanh", "sigmoid"])
def test_activation_entries_keep_what_the_bound_relies_on(name):
    """``local_lipschitz`` bounds every slope inside the interval, the smallest slope
    lies at an end (slopes never grow away from zero), ``nondecreasing`` holds and
    ``breakpoints`` name every kink: checked by finite differences on random intervals."""
    from nnfpga.ir.ops.activation_functions import ACTIVATION_FUNCTIONS
    fn = ACTIVATION_FUNCTIONS[name]
    f = lambda v: fn.float_function(v, 0.1 if fn.slope else None)   # noqa: E731
    rng = np.random.default_rng(2)
    for _ in range(300):
        lo, hi = np.sort(rng.normal(0, 3, 2))
        x = np.linspace(lo, hi, 2001)
        slopes = np.diff(f(x)) / np.diff(x)
        assert fn.nondecreasing and np.all(slopes >= -1e-12)
        if fn.local_lipschitz is not None:
            big = fn.local_lipschitz(np.array([lo]), np.array([hi]))[0]
            assert slopes.max() <= big + 1e-9
            ends = min(fn.local_lipschitz(np.array([v]), np.array([v]))[0] for v in (lo, hi))
            assert slopes.min() >= ends - 1e-3 * (hi - lo) - 1e-9
        if fn.piecewise_linear:   # linear between the breakpoints
            cuts = np.unique(np.clip([lo, hi, *fn.breakpoints], lo, hi))
            for a, b in zip(cuts, cuts[1:]):
                seg = np.linspace(a, b, 5)
                s = np.diff(f(seg)) / np.diff(seg) if b > a else np.zeros(1)
                assert np.ptp(s) <= 1e-9
