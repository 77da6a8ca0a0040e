"""QKeras quantisers (as found in saved configs) to IR quantisers and types.

Configs come either as ``{"class_name": "quantized_bits", "config": {...}}`` or as the
string form QKeras also writes (``"quantized_relu(6,2)"``), which is parsed with `ast`
(literals only, never evaluated).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.quant import Quantizer, WeightKind

# Positional parameter order of each QKeras quantiser (qkeras 0.9.0 signatures).
_POSITIONAL = {
    "quantized_bits": ("bits", "integer", "symmetric", "keep_negative", "alpha", "use_stochastic_rounding"),
    "quantized_relu": ("bits", "integer", "use_sigmoid", "negative_slope", "use_stochastic_rounding",
                       "relu_upper_bound"),
    "ternary": ("alpha", "threshold", "use_stochastic_rounding", "number_of_unrolls"),
    "binary": ("use_01", "alpha", "use_stochastic_rounding"),
    "quantized_po2": ("bits", "max_value", "use_stochastic_rounding", "quadratic_approximation",
                      "log2_rounding"),
}
SUPPORTED = tuple(_POSITIONAL)
#: Widest quantiser read: the IR's exact arithmetic holds at most 62-bit values.
MAX_BITS = 62
#: Longest quantiser string parsed (QKeras writes a few dozen characters).
MAX_TEXT = 256


@dataclass(frozen=True)
class QSpec:
    name: str
    params: dict


def parse_quantizer(obj, where: str) -> QSpec | None:
    """Normalise a saved quantiser (dict, string or live object) to a `QSpec`."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        name, params = obj.get("class_name"), obj.get("config", {})
        if not isinstance(name, str) or not isinstance(params, dict):
            raise UserError(f"{where}: quantiser {_short(obj)} is not a QKeras quantiser object; it needs a string "
                            "'class_name' and an object 'config'")
        params = dict(params)
    elif isinstance(obj, str):
        name, params = _parse_call(obj, where)
    elif hasattr(obj, "get_config"):
        name, params = type(obj).__name__, dict(obj.get_config())
    else:
        raise UserError(f"{where}: cannot read quantiser {obj!r}")
    if name not in _POSITIONAL:
        raise UserError(f"{where}: quantiser {name!r} is not supported; supported: {', '.join(SUPPORTED)}")
    return QSpec(name, params)


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_call(text: str, where: str) -> tuple[str, dict]:
    """``name(literal, ..., key=literal)``; anything else (or longer than `MAX_TEXT`)
    is refused, naming the text."""
    refused = UserError(f"{where}: cannot parse quantiser {_short(text)}; expected a QKeras call of literal "
                        "arguments such as 'quantized_bits(8, 0, alpha=1)'")
    if len(text) > MAX_TEXT:
        raise refused
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise refused from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise refused
    name = call.func.id
    if name not in _POSITIONAL:
        return name, {}
    if len(call.args) > len(_POSITIONAL[name]) or any(kw.arg is None for kw in call.keywords):
        raise refused
    try:
        params = {k: ast.literal_eval(v) for k, v in zip(_POSITIONAL[name], call.args)}
        params.update({kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise refused from None
    return name, params


def _whole(p: dict, key: str, default: int, where: str) -> int:
    v = p.get(key, default)
    v = default if v is None else v
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # some QKeras versions save bits as 8.0
    if not isinstance(v, int) or isinstance(v, bool):
        raise UserError(f"{where}: quantiser argument {key!r} is {_short(v)}; it must be a whole number")
    return v


def _number(p: dict, key: str, default: float, where: str) -> float:
    v = p.get(key, default)
    v = default if v is None else v
    try:
        number = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
    except OverflowError:  # an int beyond the float range
        number = math.nan
    if not math.isfinite(number):
        raise UserError(f"{where}: quantiser argument {key!r} is {_short(v)}; it must be a finite number")
    return number


def _bits(p: dict, where: str, name: str) -> tuple[int, int]:
    """(bits, integer) of a quantized_bits / quantized_relu: 1 <= bits <= `MAX_BITS`,
    integer <= bits."""
    bits, integer = _whole(p, "bits", 8, where), _whole(p, "integer", 0, where)
    if not 1 <= bits <= MAX_BITS:
        raise UserError(f"{where}: {name} argument 'bits' is {bits}; supported: 1 to {MAX_BITS} bits")
    if integer > bits:
        raise UserError(f"{where}: {name} argument 'integer' is {integer}, more than its {bits} bits; "
                        "integer must be at most bits")
    return bits, integer


def _power_of_two_alpha(alpha, where: str) -> float:
    if alpha is None:
        return 1.0
    if isinstance(alpha, str) and alpha in ("auto", "auto_po2"):
        raise UserError(f"{where}: alpha={alpha!r} gives per-channel float scales that have no exact "
                        "fixed-point form; use alpha=1 (or a power of two)")
    a = _number({"alpha": alpha}, "alpha", 1.0, where)
    m, _ = math.frexp(a)
    if a <= 0 or m != 0.5:
        raise UserError(f"{where}: alpha={alpha} is not a power of two; only power-of-two alphas are exact")
    return a


def _no_stochastic(p: dict, where: str) -> None:
    if p.get("use_stochastic_rounding"):
        raise UserError(f"{where}: stochastic rounding has no deterministic hardware form")


def bits_type(p: dict, where: str) -> FixedType:
    """``quantized_bits(bits, integer)``: round half to even, clip = ap_fixed RND_CONV/SAT."""
    bits, integer = _bits(p, where, "quantized_bits")
    keep_negative = bool(p.get("keep_negative", True))
    if bits - keep_negative < 1:
        raise UserError(f"{where}: quantized_bits with {bits} bit(s) is not supported; use binary()")
    if keep_negative:
        return FixedType(bits, integer + 1, True, Rounding.RND_CONV, Overflow.SAT)
    return FixedType(bits, integer, False, Rounding.RND_CONV, Overflow.SAT)


def weight_quantizer(spec: QSpec | None, where: str) -> Quantizer | None:
    if spec is None:
        return None
    p = spec.params
    _no_stochastic(p, where)
    if spec.name == "quantized_bits":
        scale = _power_of_two_alpha(p.get("alpha"), where)
        if scale != 1.0:
            raise UserError(f"{where}: quantized_bits with alpha={p.get('alpha')} is not supported; use alpha=1")
        if p.get("symmetric"):
            raise UserError(f"{where}: symmetric quantized_bits is not supported yet; use symmetric=0")
        return Quantizer(WeightKind.FIXED, bits_type(p, where))
    if spec.name == "ternary":
        if p.get("threshold") is not None and isinstance(p["threshold"], str):
            raise UserError(f"{where}: ternary threshold={p['threshold']!r} is not supported")
        threshold = _number(p, "threshold", 0.33, where)
        return Quantizer(WeightKind.TERNARY, scale=_power_of_two_alpha(p.get("alpha"), where),
                         threshold=threshold)
    if spec.name == "binary":
        if p.get("use_01"):
            raise UserError(f"{where}: binary(use_01=True) is not supported")
        return Quantizer(WeightKind.BINARY, scale=_power_of_two_alpha(p.get("alpha"), where))
    if spec.name == "quantized_po2":
        if p.get("max_value") is not None or p.get("quadratic_approximation") or \
                p.get("log2_rounding", "rnd") != "rnd":
            raise UserError(f"{where}: quantized_po2 is supported with max_value=None, "
                            "quadratic_approximation=False and log2_rounding='rnd' only")
        bits = _whole(p, "bits", 8, where)
        if not 2 <= bits <= MAX_BITS:
            raise UserError(f"{where}: quantized_po2 argument 'bits' is {bits}; supported: 2 to {MAX_BITS} bits")
        # QKeras _get_min_max_exponents with an exponent sign bit (max_value=None).
        min_exp, max_exp = -2 ** (bits - 2), 2 ** (bits - 2) - 1
        return Quantizer(WeightKind.PO2, min_exp=min_exp, max_exp=max_exp)
    raise UserError(f"{where}: {spec.name} cannot quantise weights; supported for weights: "
                    "quantized_bits, ternary, binary, quantized_po2")


def activation_of(spec: QSpec, where: str) -> tuple[str, FixedType]:
    """An activation quantiser as (IR function, output type)."""
    p = spec.params
    _no_stochastic(p, where)
    if spec.name == "quantized_bits":
        if _power_of_two_alpha(p.get("alpha"), where) != 1.0 or p.get("symmetric"):
            raise UserError(f"{where}: activation quantized_bits needs alpha=1 and symmetric=0")
        return "linear", bits_type(p, where)
    if spec.name == "quantized_relu":
        if p.get("use_sigmoid") or _number(p, "negative_slope", 0.0, where) != 0.0 or \
                p.get("relu_upper_bound") is not None:
            raise UserError(f"{where}: quantized_relu is supported without use_sigmoid, negative_slope "
                            "and relu_upper_bound")
        bits, integer = _bits(p, where, "quantized_relu")
        return "relu", FixedType(bits, integer, False, Rounding.RND_CONV, Overflow.SAT)
    raise UserError(f"{where}: {spec.name} is not supported as an activation; supported: "
                    "quantized_bits, quantized_relu")
