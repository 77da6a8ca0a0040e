"""The activation functions of the `Activation` op: one entry per function, holding
everything the rest of the compiler may ask about it.

The op's fixed-point arithmetic (range analysis, golden emulation) lives in
`nnfpga.ir.ops.activation`; a lookup table's entries are defined by `nnfpga.ir.tables`.
This table says what a function *is*, so that no pass, backend or analysis keeps a list
of function names of its own:

* ``float_function``: the float network's meaning (`nnfpga.compiler.float_reference`,
  post-training quantisation, the error bound);
* ``error_rule`` and ``lipschitz``: how `nnfpga.compiler.passes.error_bound` carries an
  input error through it (and ``parameter_error``: the error of a parameter the
  fixed-point model holds differently from the float network; ``local_lipschitz``: a
  Lipschitz constant on an input interval, e.g. 0 for relu on negative inputs;
  ``nondecreasing``: the image of an interval is the image of its ends);
* ``negative_for_negative_input``: the signedness of the output;
* ``piecewise_linear`` / ``foldable``: computed exactly, then converted -- such a function
  may be folded into the output stage of a preceding Dense/Conv2D; ``slope``: it
  multiplies negative inputs by the op's exact slope (a constant multiplier in hardware);
* ``table_lookup`` / ``tables`` / ``elementwise``: how it is computed;
* ``auto_typed`` / ``trimmable``: what the compiler may choose about its output type.

Adding an activation means adding its entry here, its arithmetic to the op, and its
implementations to the backends.  An unknown name is an error everywhere
(`activation_function`), never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol

import numpy as np


class SlopedNode(Protocol):
    """What a parameter-error rule reads of its `Activation` (a protocol: the op's module
    imports this one)."""

    float_alpha: float
    alpha_q: float
    out_type: object   # the output FixedType (saturating_leaky_relu saturates at alpha_q times its minimum)

#: ``float_function(x, alpha)``: ``alpha`` is the function's float parameter (leaky_relu's
#: slope, `Activation.float_alpha`), None for functions without one.
FloatFunction = Callable[[np.ndarray, "float | None"], np.ndarray]

#: ``parameter_error(node, x_min, e_in)``: the error added by a parameter whose exact
#: fixed-point value differs from the float network's (``x_min``: the smallest real input,
#: ``e_in``: the input error per element).
ParameterError = Callable[[SlopedNode, float, np.ndarray], np.ndarray]


#: ``local_lipschitz(lo, hi)``: element-wise Lipschitz constants on the intervals ``[lo, hi]``.
LocalLipschitz = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ErrorRule(Enum):
    """How an input error ``e_in`` becomes an output error (`error_bound`)."""

    #: exact arithmetic, then the output conversion: ``lipschitz * e_in`` plus the
    #: conversion's rounding (plus ``parameter_error``)
    EXACT_THEN_CONVERSION = "exact then conversion"
    #: one lookup table: ``lipschitz * (e_in + index rounding)`` plus the entry rounding,
    #: plus what clipping the input to the index range can cost
    TABLE = "table"
    #: a step (sign): exact, then the conversion, where the input is exact or stays on one
    #: side of the step for every value within its error; elsewhere no bound (None)
    STEP = "step"
    #: no guaranteed bound is derived: the error bound of the whole model is None
    NONE = "none"


@dataclass(frozen=True)
class ActivationFunction:
    """What one activation function is (see the module doc for who reads what)."""

    name: str
    float_function: FloatFunction
    error_rule: ErrorRule
    #: |f(a) - f(b)| <= lipschitz * |a - b|; None when no bound is derived
    lipschitz: float | None
    #: the output is negative for some negative input (and never for a non-negative one):
    #: the output of a signed input is signed, that of an unsigned input unsigned.  False:
    #: the output is never negative.
    negative_for_negative_input: bool
    #: exact in fixed point: the IR computes it without rounding (with the exact parameter
    #: of `Activation`), then converts to the output type
    piecewise_linear: bool
    #: may be folded into the output stage of a preceding Dense/Conv2D (after its
    #: accumulator, before or instead of the output conversion)
    foldable: bool
    #: one lookup table, ``Activation.table``: the input is converted to its index type
    #: and the entry read; the output type is the entries' type
    table_lookup: bool
    #: the `nnfpga.ir.tables` functions of the tables the op reads (``table``, then
    #: ``inv_table``); their size is ``table_size`` in the configuration
    tables: tuple[str, ...]
    #: each output element depends on the matching input element only
    elementwise: bool
    #: the output is a conversion whose type the compiler chooses by range analysis
    #: (``auto_frac``, the rounding/overflow keys) and the configuration's
    #: ``output``/``activation`` sets
    auto_typed: bool
    #: `trim_precision` may narrow that conversion to the range seen in calibration data
    trimmable: bool
    #: ``y = x`` for ``x >= 0`` and ``y = alpha_q * x`` for ``x < 0`` with the op's exact
    #: slope ``alpha_q = alpha_raw * 2**-alpha_frac`` in (0, 1] (`Activation.alpha`, ...):
    #: one constant multiplication per element that can be negative
    slope: bool = False
    parameter_error: ParameterError | None = None
    #: ``local_lipschitz(lo, hi)``: per element, a Lipschitz constant of the function on
    #: ``[lo, hi]`` (at most ``lipschitz``); None: ``lipschitz`` everywhere
    local_lipschitz: LocalLipschitz | None = None
    #: never decreasing: an interval's image lies between the images of its ends
    nondecreasing: bool = False
    #: piecewise-linear: the inputs where the slope changes (the float function's, for
    #: any parameter value)
    breakpoints: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # the combinations the passes rely on: an entry that breaks one fails on import
        rules = [
            ((self.lipschitz is None) == (self.error_rule in (ErrorRule.NONE, ErrorRule.STEP)),
             "has a Lipschitz constant exactly when it has an error rule that uses one"),
            (not self.foldable or (self.piecewise_linear and self.elementwise),
             "is foldable only if piecewise-linear and element-wise"),
            (not self.table_lookup or (len(self.tables) == 1 and self.elementwise),
             "is a table lookup only with one table, element-wise"),
            (not self.piecewise_linear or (not self.tables and self.error_rule in (ErrorRule.EXACT_THEN_CONVERSION,
                                                                                     ErrorRule.STEP)),
             "is piecewise-linear only without tables, with the exact or the step error rule"),
            (self.error_rule is not ErrorRule.STEP or (self.piecewise_linear and not self.auto_typed),
             "has the step rule only as a piecewise-constant function with a set output type"),
            (self.error_rule is not ErrorRule.TABLE or self.table_lookup, "has the table error rule only as a table"),
            (not (self.auto_typed and self.table_lookup), "cannot be both auto-typed and a table (entries type it)"),
            (not self.trimmable or self.auto_typed, "is trimmable only if auto-typed"),
            (not self.slope or self.piecewise_linear, "has a slope only if piecewise-linear"),
        ]
        for holds, rule in rules:
            if not holds:
                raise ValueError(f"activation function {self.name!r}: an entry {rule}")

    def output_signed(self, input_signed: bool) -> bool:
        """Whether the output can be negative, for a signed or an unsigned input."""
        return input_signed and self.negative_for_negative_input


# ----------------------------------------------------------------------------- float meanings
def _linear(x: np.ndarray, alpha: float | None) -> np.ndarray:
    return x


def _relu(x: np.ndarray, alpha: float | None) -> np.ndarray:
    return np.maximum(x, 0.0)


def _leaky_relu(x: np.ndarray, alpha: float | None) -> np.ndarray:
    if alpha is None:
        raise ValueError("leaky_relu needs its slope alpha")
    return np.where(x >= 0, x, alpha * x)


def _sign(x: np.ndarray, alpha: float | None) -> np.ndarray:
    return np.where(x >= 0, 1.0, -1.0)   # QONNX BipolarQuant: 0 maps to +1


def _hard_tanh(x: np.ndarray, alpha: float | None) -> np.ndarray:
    return np.clip(x, -1.0, 1.0)


def _hard_sigmoid(x: np.ndarray, alpha: float | None) -> np.ndarray:
    # QKeras's hard_sigmoid (Keras's own are 0.2x + 0.5 and relu6(x + 3) / 6: other functions)
    return np.clip(0.5 * x + 0.5, 0.0, 1.0)


def _tanh(x: np.ndarray, alpha: float | None) -> np.ndarray:
    return np.tanh(x)


def _sigmoid(x: np.ndarray, alpha: float | None) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))   # no overflow warnings for large |x|


def _softmax(x: np.ndarray, alpha: float | None) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _leaky_slope_error(node: SlopedNode, x_min: float, e_in: np.ndarray) -> np.ndarray:
    """The float network's slope against the exact ``alpha_q``: ``|alpha - alpha_q| *
    max(0, -x)`` for x down to the range's minimum less the input error."""
    return abs(node.float_alpha - node.alpha_q) * np.maximum(e_in - x_min, 0.0)


def _saturation_error(node: SlopedNode, x_min: float, e_in: np.ndarray) -> np.ndarray:
    """saturating_leaky_relu against the float leaky ReLU: the slope's error, plus the
    negative saturation at ``alpha_q * T.min`` (T the output type), which the float
    function does not have: ``alpha_q * max(0, T.min - x)`` for float inputs ``x >=
    x_min``.  (The function itself is 1-Lipschitz, so the input error passes as for
    leaky_relu.)"""
    below = node.alpha_q * np.maximum(0.0, node.out_type.min_value - x_min)
    return _leaky_slope_error(node, x_min, e_in) + below


def _distance_from_zero(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(lo, -hi), 0.0)


def _relu_slope(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.where(hi <= 0, 0.0, 1.0)


def _flat_outside(slope: float) -> LocalLipschitz:
    """``slope`` on intervals meeting (-1, 1), 0 on intervals outside it (hard_tanh,
    hard_sigmoid)."""
    return lambda lo, hi: np.where((hi <= -1) | (lo >= 1), 0.0, slope)


def _tanh_slope(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(_distance_from_zero(lo, hi)) ** 2    # tanh' is largest nearest 0


def _sigmoid_slope(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    s = _sigmoid(_distance_from_zero(lo, hi), None)
    return s * (1.0 - s)


def _exact(name: str, float_function: FloatFunction, negative: bool, slope: bool = False,
           parameter_error: ParameterError | None = None, lipschitz: float = 1.0,
           local_lipschitz: LocalLipschitz | None = None, breakpoints: tuple[float, ...] = (0.0,)) -> ActivationFunction:
    """A piecewise-linear function (1-Lipschitz unless said), computed exactly and then
    converted."""
    return ActivationFunction(name, float_function, ErrorRule.EXACT_THEN_CONVERSION, lipschitz=lipschitz,
                              negative_for_negative_input=negative, piecewise_linear=True, foldable=True,
                              table_lookup=False, tables=(), elementwise=True, auto_typed=True, trimmable=True,
                              slope=slope, parameter_error=parameter_error, local_lipschitz=local_lipschitz,
                              nondecreasing=True, breakpoints=breakpoints)


def _table(name: str, float_function: FloatFunction, lipschitz: float, negative: bool,
           local_lipschitz: LocalLipschitz) -> ActivationFunction:
    """A smooth function read from one lookup table of the same name."""
    return ActivationFunction(name, float_function, ErrorRule.TABLE, lipschitz=lipschitz,
                              negative_for_negative_input=negative, piecewise_linear=False, foldable=False,
                              table_lookup=True, tables=(name,), elementwise=True, auto_typed=False,
                              trimmable=False, local_lipschitz=local_lipschitz, nondecreasing=True)


#: name -> entry, in the order error messages list them.
ACTIVATION_FUNCTIONS: dict[str, ActivationFunction] = {f.name: f for f in (
    _exact("linear", _linear, negative=True, breakpoints=()),
    _exact("relu", _relu, negative=False, local_lipschitz=_relu_slope),
    # 1-Lipschitz: its exact slope alpha_q is in (0, 1]
    _exact("leaky_relu", _leaky_relu, negative=True, slope=True, parameter_error=_leaky_slope_error),
    # QKeras quantized_relu(negative_slope=s): a leaky ReLU whose negative side saturates at
    # alpha_q times the output type's minimum (QKeras's -s * 2**integer), not at the minimum
    ActivationFunction("saturating_leaky_relu", _leaky_relu, ErrorRule.EXACT_THEN_CONVERSION, lipschitz=1.0,
                       negative_for_negative_input=True, piecewise_linear=True, foldable=True, table_lookup=False,
                       tables=(), elementwise=True, auto_typed=False, trimmable=False, slope=True,
                       parameter_error=_saturation_error, nondecreasing=True, breakpoints=(0.0,)),
    # +1 for x >= 0, -1 below (QONNX BipolarQuant on an activation); no Lipschitz constant
    ActivationFunction("sign", _sign, ErrorRule.STEP, lipschitz=None, negative_for_negative_input=True,
                       piecewise_linear=True, foldable=True, table_lookup=False, tables=(), elementwise=True,
                       auto_typed=False, trimmable=False, nondecreasing=True, breakpoints=(0.0,)),
    _exact("hard_tanh", _hard_tanh, negative=True, local_lipschitz=_flat_outside(1.0),
           breakpoints=(-1.0, 1.0)),
    # clip(0.5 x + 0.5, 0, 1): a one-bit shift and an added constant, exact in fixed point
    _exact("hard_sigmoid", _hard_sigmoid, negative=False, lipschitz=0.5, local_lipschitz=_flat_outside(0.5),
           breakpoints=(-1.0, 1.0)),
    _table("tanh", _tanh, lipschitz=1.0, negative=True, local_lipschitz=_tanh_slope),
    _table("sigmoid", _sigmoid, lipschitz=0.25, negative=False, local_lipschitz=_sigmoid_slope),
    # e_i = exp_table(x_i - max x), y_i = e_i * reciprocal_table(sum e): its output type is
    # set (config output/activation), but not chosen by range analysis
    ActivationFunction("softmax", _softmax, ErrorRule.NONE, lipschitz=None, negative_for_negative_input=False,
                       piecewise_linear=False, foldable=False, table_lookup=False, tables=("exp", "reciprocal"),
                       elementwise=False, auto_typed=False, trimmable=False),
)}


class UnknownActivationError(ValueError):
    """An activation function without an entry in `ACTIVATION_FUNCTIONS`."""


def activation_function(name: str, node: str | None = None) -> ActivationFunction:
    """The entry of function ``name`` (``node``: the IR node using it, for the message)."""
    entry = ACTIVATION_FUNCTIONS.get(name)
    if entry is None:
        of = f" of {node!r}" if node is not None else ""
        raise UnknownActivationError(f"activation {name!r}{of} is not supported; "
                                     f"supported: {', '.join(ACTIVATION_FUNCTIONS)}")
    return entry


def names_where(test: Callable[[ActivationFunction], bool]) -> tuple[str, ...]:
    """The names of the functions whose entry passes ``test``, in table order (for
    messages and documentation)."""
    return tuple(name for name, entry in ACTIVATION_FUNCTIONS.items() if test(entry))
