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


#: the largest bound / observed ratio reached (guards against loosening; the issue's
#: target of 10 is not reached: benchmarks/error_bound_ratio.py prints the figures)
REACHED = {"float_mlp.h5": 28, "float_mlp.keras": 27, "mlp_16_64_32_32_5": 140}


@pytest.mark.parametrize("name", list(REACHED))
def test_bound_holds_and_is_not_vacuous(name, mlp_16_64_32_32_5):
    path = mlp_16_64_32_32_5 if name == "mlp_16_64_32_32_5" else MODELS / name
    bound, observed = _bound_and_observed(path)
    assert np.all(bound >= observed - 1e-12), (bound, observed)   # float64 reference: no slack
    ratio = bound.max() / observed.max()
    assert ratio <= REACHED[name], f"bound {bound.max():.4g} is {ratio:.1f}x the observed {observed.max():.4g}"


def _error_gradient(graph, x: np.ndarray, out: int) -> np.ndarray:
    """d/dx of output ``out`` of (float network with the quantised weights - float
    network): the error without the roundings, a guide for the search (the check itself
    uses the golden emulator)."""
    from nnfpga.ir.ops import Activation, Dense
    layers = [n for n in graph.nodes[1:]]
    assert all(isinstance(n, (Dense, Activation)) for n in layers)

    def forward(weights):   # each layer's Jacobian: ("w", matrix) or ("d", slopes per sample)
        a, jacobians = x, []
        for n in layers:
            if isinstance(n, Dense):
                w, b = weights(n)
                a = a @ w + b
                jacobians.append(("w", w))
            else:
                h = 1e-6
                jacobians.append(("d", (n.float_forward(a + h) - n.float_forward(a - h)) / (2 * h)))
                a = n.float_forward(a)
        return jacobians

    def backward(jacobians):
        g = np.zeros((len(x), int(np.prod(graph.output.info.shape))))
        g[:, out] = 1.0
        for kind, j in reversed(jacobians):
            g = g @ j.T if kind == "w" else g * j
        return g

    exact = lambda n: (np.asarray(n.kernel, np.float64), np.asarray(n.bias, np.float64))   # noqa: E731
    quant = lambda n: (n.kernel_q.value.reshape(np.shape(n.kernel)), n.bias_q.value.reshape(-1))   # noqa: E731
    return backward(forward(quant)) - backward(forward(exact))


def _adversarial_inputs(graph, starts: int = 300, steps: int = 200, lr: float = 0.5) -> np.ndarray:
    """Inputs found by Adam ascent of each output's error, both signs, from random
    starts in the input type's range (projected onto it after each step)."""
    t = graph.input.info.type
    lo, hi = t.min_value, t.max_value
    rng = np.random.default_rng(5)
    found = []
    for out in range(int(np.prod(graph.output.info.shape))):
        for sign in (1.0, -1.0):
            x = rng.uniform(lo, hi, (starts, *graph.input.info.shape))
            m, v = np.zeros_like(x), np.zeros_like(x)
            for k in range(1, steps + 1):
                g = sign * _error_gradient(graph, x, out)
                m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
                x = np.clip(x + lr * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-12), lo, hi)
            found.append(x)
    return np.concatenate(found)


@pytest.mark.parametrize("name", list(REACHED))
def test_bound_holds_at_corners_and_adversarial_inputs(name, mlp_16_64_32_32_5):
    """Soundness where the error is largest: every corner of the input box (2**16) and
    the points of a search that climbs each output's error; the search must beat
    random inputs, else it tests nothing beyond them."""
    graph = build_graph(mlp_16_64_32_32_5 if name == "mlp_16_64_32_32_5" else MODELS / name)
    bound = error_bound(graph)
    t = graph.input.info.type
    n_in = int(np.prod(graph.input.info.shape))
    corners = np.array(np.meshgrid(*[[t.min_value, t.max_value]] * n_in, indexing="ij")).reshape(n_in, -1).T
    searched = _adversarial_inputs(graph)
    rand = np.random.default_rng(1).uniform(t.min_value, t.max_value, (20_000, n_in))
    observed = {}
    for label, x in (("corners", corners), ("search", searched), ("random", rand)):
        observed[label] = np.abs(emulate(graph, x) - float_forward(graph, x)).max(axis=0)
        assert np.all(observed[label] <= bound), (label, observed[label], bound)
    assert observed["search"].max() > 1.2 * observed["random"].max(), observed


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


@pytest.mark.parametrize("function", ["tanh", "sigmoid"])
def test_largest_step_bounds_every_move_and_is_tight(function):
    """``_largest_step(lo, hi, d)`` bounds |f(x + e) - f(x)| for x in [lo, hi], |e| <= d
    (checked on a dense grid of both), and the grid's largest step is within the search's
    slack of it."""
    from nnfpga.compiler.passes.error_bound import _STEP_GRID, _largest_step
    from nnfpga.ir.ops import Activation
    node = Activation("f", ["x"], function=function)
    rng = np.random.default_rng(3)
    lo = rng.normal(0, 4, 200)
    hi = lo + rng.exponential(3, 200)
    d = rng.exponential(1.5, 200)
    step = _largest_step(node, lo, hi, d)
    x = lo + (hi - lo) * np.linspace(0, 1, 401)[:, None, None]
    e = d * np.linspace(-1, 1, 201)[None, :, None]
    seen = np.abs(node.float_forward(x + e) - node.float_forward(x)).max(axis=(0, 1))
    assert np.all(seen <= step)
    search = d / _STEP_GRID          # the search's grid step (on [-d, 0] at most)
    grid = (hi - lo) / 400 + d / 100  # the check's grid steps in x and e
    assert np.all(step <= seen + node.properties.lipschitz * (search + grid))
