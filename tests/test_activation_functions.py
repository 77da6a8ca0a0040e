"""The activation-function table of the IR (`nnfpga.ir.ops.activation_functions`): it
covers every function a frontend can produce, an unknown function is refused everywhere
(never given a default), and each entry's float function, error rule and signedness
agree with the golden emulator on a grid of inputs."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from nnfpga.backends.hls.layers import activation as hls_activation
from nnfpga.backends.hls.layers.base import LayerContext
from nnfpga.compiler.float_reference import float_forward
from nnfpga.compiler.frontends.keras import KERAS_ACTIVATIONS, Precision
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.compiler.passes.error_bound import error_bound, rounding_error
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Input
from nnfpga.ir.ops.activation import quantize_alpha
from nnfpga.ir.ops.activation_functions import (ACTIVATION_FUNCTIONS, ActivationFunction, ErrorRule,
                                                UnknownActivationError, activation_function)
from nnfpga.ir.tables import FUNCTIONS as TABLE_FUNCTIONS

FRONTENDS = Path(__file__).resolve().parent.parent / "nnfpga" / "compiler" / "frontends"

#: signed, 5 fractional bits, [-16, 16): wider than every table's index range, so that
#: the grid also exercises the clipping of table inputs
SIGNED_IN = FixedType(10, 5, True, Rounding.RND_CONV, Overflow.SAT)
UNSIGNED_IN = FixedType(9, 4, False, Rounding.RND_CONV, Overflow.SAT)


def _frontend_functions() -> set[str]:
    """Every activation function name the frontends' source can hand to the IR: the
    ``function=`` of an `Activation`, the function of ONNX ``_elementwise``, Keras's
    activation names and what a QKeras activation quantiser becomes."""
    found = set(v for v in KERAS_ACTIVATIONS.values())
    for path in FRONTENDS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "function" and isinstance(kw.value, ast.Constant):
                        found.add(kw.value.value)
                callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if callee == "_elementwise" and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                    found.add(node.args[2].value)
            if isinstance(node, ast.FunctionDef) and node.name == "activation_of":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple) \
                            and isinstance(ret.value.elts[0], ast.Constant):
                        found.add(ret.value.elts[0].value)
    return found


def test_every_function_a_frontend_produces_has_an_entry():
    produced = _frontend_functions()
    assert {"relu", "leaky_relu", "hard_tanh", "sigmoid", "softmax"} <= produced  # the scan sees them
    missing = produced - set(ACTIVATION_FUNCTIONS)
    assert not missing, f"functions without an entry in ACTIVATION_FUNCTIONS: {sorted(missing)}"
    # and no entry is unreachable (an entry no frontend produces is dead weight)
    assert set(ACTIVATION_FUNCTIONS) == produced
    for fn in ACTIVATION_FUNCTIONS.values():
        assert set(fn.tables) <= set(TABLE_FUNCTIONS), fn.name   # every table is defined in ir.tables


def _graph(function: str, in_type: FixedType = SIGNED_IN, shape: tuple[int, ...] = (1,),
           out_type: FixedType | None = None, auto_frac: int | None = None, alpha: float = 0.1) -> Graph:
    """Input -> one activation, with the frontends' default tables."""
    p = Precision()
    kw: dict = {"out_type": out_type, "auto_frac": auto_frac}
    fn = ACTIVATION_FUNCTIONS[function]
    if fn.table_lookup:
        kw["table"] = p.table(function)
    elif function == "softmax":
        kw["table"], kw["inv_table"], kw["out_type"] = p.softmax_tables(shape[-1])
    if fn.slope:
        kw["alpha"] = alpha
    if function == "saturating_leaky_relu" and out_type is None:
        # the output type must be set: one wide enough that the saturation at alpha * its
        # minimum never happens (the exact leaky ReLU), so the generic checks apply
        _, af = quantize_alpha(alpha)
        kw["out_type"] = FixedType(in_type.width + af + 1, in_type.integer + 1, True, Rounding.RND_CONV, Overflow.SAT)
    node = Activation("act", ["input"], function=function, **kw)
    return assign_types(Graph(function, [Input("input", [], out_type=in_type, shape=shape), node], ["act"]))


def _grid(t: FixedType) -> np.ndarray:
    """Every raw value of ``t``, one per sample."""
    return np.arange(t.min_raw, t.max_raw + 1, dtype=np.float64)[:, None]


def _golden_and_float(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    t = g.input.info.type
    x_raw = _grid(t)
    golden = g.node("act").info.type.to_float(run_raw(g, x_raw))
    return golden, float_forward(g, t.to_float(x_raw))


@pytest.mark.parametrize("function, auto_frac",
                         [(f, None) for f, e in ACTIVATION_FUNCTIONS.items()
                          if e.elementwise and e.error_rule is not ErrorRule.STEP] +
                         [(f, 3) for f, e in ACTIVATION_FUNCTIONS.items() if e.auto_typed])
def test_float_function_agrees_with_the_emulator_within_the_error_rule(function, auto_frac):
    """On every value of a 10-bit input: |golden - float function| never exceeds the bound
    the entry's error rule gives (exact or table output types, and rounded auto_frac
    ones); a piecewise-linear function is exact when the output type is."""
    fn = ACTIVATION_FUNCTIONS[function]
    g = _graph(function, auto_frac=auto_frac, alpha=0.1)
    golden, ref = _golden_and_float(g)
    bound = error_bound(g)
    assert bound is not None and bound.shape == (1,)
    # The grid values are the quantised inputs themselves: the input's own rounding
    # (which error_bound assumes, carried with the Lipschitz constant) does not occur.
    assert np.abs(golden - ref).max() <= bound[0] - fn.lipschitz * rounding_error(SIGNED_IN), function
    assert np.abs(golden - ref).max() > 0 or fn.piecewise_linear   # tables approximate: not vacuous
    if fn.piecewise_linear and auto_frac is None:
        exact = _graph(function, alpha=0.25)   # a slope float64 and the IR hold alike
        golden, ref = _golden_and_float(exact)
        assert np.array_equal(golden, ref), function


def test_sign_is_exact_and_bounded_only_where_the_step_cannot_flip():
    """sign on every value of a 10-bit input: exactly the float function (0 -> +1); its
    error rule (a step) gives no bound when the input's rounding can cross 0, and 0 when
    the input is exact."""
    g = _graph("sign")
    golden, ref = _golden_and_float(g)
    assert np.array_equal(golden, ref) and set(np.unique(golden)) == {-1.0, 1.0}
    assert error_bound(g) is None
    assert np.array_equal(error_bound(g, exact_input=True), np.zeros(1))


def test_saturating_leaky_relu_saturates_at_alpha_times_the_minimum():
    """QKeras quantized_relu(5, 1, negative_slope=0.25): fixed<5, 2> output, the negative
    side saturating at -0.5 (not the type's -2), the positive side at 1.875; a slope whose
    saturation is off the output grid is refused."""
    t = FixedType(5, 2, True, Rounding.RND_CONV, Overflow.SAT)
    g = _graph("saturating_leaky_relu", out_type=t, alpha=0.25)
    x = np.array([[-16.0], [-2.0], [-1.9375], [-0.3125], [-0.25], [0.0], [0.0625], [0.1875], [1.9], [15.0]])
    y = t.to_float(run_raw(g, SIGNED_IN.quantize(x)))
    # -0.3125 * 0.25 = -0.078125 rounds to -0.125 (nearest); 0.0625 is a tie: to even, 0
    assert y.ravel().tolist() == [-0.5, -0.5, -0.5, -0.125, -0.0, 0.0, 0.0, 0.25, 1.875, 1.875]
    assert (g.node("act").info.lo, g.node("act").info.hi) == (-4, 15)
    with pytest.raises(ValueError, match="negative saturation .* is not a value of the output type"):
        _graph("saturating_leaky_relu", out_type=FixedType(3, 2, True), alpha=0.125)
    with pytest.raises(ValueError, match="needs an output type"):
        Graph("g", [Input("input", [], out_type=SIGNED_IN, shape=(1,)),
                    Activation("act", ["input"], function="saturating_leaky_relu", alpha=0.25)], ["act"]).infer()


def test_hard_sigmoid_range_analysis():
    """hard_sigmoid = clip(0.5 x + 0.5, 0, 1), QKeras's: exact at the input's fractional
    bits + 1, unsigned, its range the image of the input's ([0, 1] when both clips can
    happen); Lipschitz 1/2; an input without fractional bits is refused."""
    fn = ACTIVATION_FUNCTIONS["hard_sigmoid"]
    assert fn.lipschitz == 0.5 and fn.foldable and not fn.output_signed(True)
    narrow = FixedType(4, 1, True, Rounding.TRN, Overflow.WRAP)            # [-1, 0.875], frac 3
    for in_type, lo, hi in ((SIGNED_IN, 0, 64), (UNSIGNED_IN, 32, 64), (narrow, 0, 15)):
        info = _graph("hard_sigmoid", in_type=in_type).node("act").info
        assert info.type.frac == in_type.frac + 1 and not info.type.signed, in_type
        assert (info.lo, info.hi) == (lo, hi), in_type
        assert info.type.contains(lo, hi) and info.type.width == max(hi, 1).bit_length()
    info = _graph("hard_sigmoid", auto_frac=3).node("act").info             # rounded to 3 bits: [0, 1]
    assert (info.type.frac, info.type.signed, info.lo, info.hi) == (3, False, 0, 8)
    with pytest.raises(ValueError, match="hard_sigmoid 'act' needs an input with fractional bits"):
        _graph("hard_sigmoid", in_type=FixedType(6, 8, True))
    g = _graph("hard_sigmoid")
    x = np.array([[-16.0], [-1.0], [-0.5], [0.0], [0.25], [1.0], [15.0]])
    y = g.node("act").info.type.to_float(run_raw(g, SIGNED_IN.quantize(x)))
    assert y.ravel().tolist() == [0.0, 0.0, 0.25, 0.5, 0.625, 1.0, 1.0]


def test_softmax_float_function_agrees_with_the_emulator_and_has_no_bound():
    g = _graph("softmax", shape=(4,))
    rng = np.random.default_rng(0)
    x_raw = rng.integers(SIGNED_IN.min_raw // 4, SIGNED_IN.max_raw // 4, (3000, 4)).astype(np.float64)
    golden = g.node("act").info.type.to_float(run_raw(g, x_raw))
    ref = float_forward(g, SIGNED_IN.to_float(x_raw))
    assert np.abs(golden - ref).max() < 0.01
    assert error_bound(g) is None      # ErrorRule.NONE: no guarantee is claimed


@pytest.mark.parametrize("function", list(ACTIVATION_FUNCTIONS))
def test_output_signedness_matches_the_emulator(function):
    """Over every value of a signed and of an unsigned input, the output is negative
    somewhere exactly when `output_signed` says so."""
    fn = ACTIVATION_FUNCTIONS[function]
    for in_type in (SIGNED_IN, UNSIGNED_IN):
        shape = (4,) if function == "softmax" else (1,)
        g = _graph(function, in_type=in_type, shape=shape)
        x_raw = np.repeat(_grid(in_type), shape[0], axis=1)
        x_raw[:, 0] = in_type.min_raw          # softmax: rows whose entries differ
        golden = run_raw(g, x_raw)
        assert bool((golden < 0).any()) == fn.output_signed(in_type.signed), (function, in_type)


def test_an_unknown_function_is_refused_by_the_ir_and_every_reader():
    with pytest.raises(UnknownActivationError, match=r"activation 'swish' of 'act' is not supported; "
                                                     r"supported: linear, relu, leaky_relu"):
        Activation("act", ["input"], function="swish")
    with pytest.raises(UnknownActivationError, match="'swish'"):
        activation_function("swish")
    g = _graph("relu")
    as_json = g.to_json()
    as_json["nodes"][1]["function"] = "swish"
    with pytest.raises(UnknownActivationError, match="'swish'"):
        Graph.from_json(as_json)
    # a node changed after construction: the error bound (which once assumed any unknown
    # function 1-Lipschitz), the float reference and the HLS backend refuse it too
    g.node("act").function = "swish"
    with pytest.raises(UnknownActivationError, match="'swish' of 'act'"):
        error_bound(g)
    with pytest.raises(UnknownActivationError, match="'swish' of 'act'"):
        float_forward(g, np.zeros((1, 1)))
    ctx = LayerContext(g.node("act"), "act", g.input.info, "x_t", "y_t")
    with pytest.raises(UnknownActivationError, match="'swish' of 'act'"):
        hls_activation.emit(ctx)


@pytest.mark.parametrize("function", list(ACTIVATION_FUNCTIONS))
def test_the_hls_backend_implements_every_entry(function):
    g = _graph(function, shape=(4,) if function == "softmax" else (3,))
    node = g.node("act")
    code = hls_activation.emit(LayerContext(node, "act", g.input.info, "x_t", "y_t"))
    assert "layer_act(" in code.function


def test_an_inconsistent_entry_is_refused():
    """The combinations the passes rely on are checked when an entry is made."""
    relu = ACTIVATION_FUNCTIONS["relu"]
    fields = {f: getattr(relu, f) for f in relu.__dataclass_fields__}
    with pytest.raises(ValueError, match="'odd'.*foldable only if piecewise-linear"):
        ActivationFunction(**{**fields, "name": "odd", "piecewise_linear": False,
                              "error_rule": ErrorRule.TABLE, "table_lookup": True, "tables": ("tanh",),
                              "auto_typed": False, "trimmable": False})
    with pytest.raises(ValueError, match="'odd'.*Lipschitz"):
        ActivationFunction(**{**fields, "name": "odd", "lipschitz": None})
