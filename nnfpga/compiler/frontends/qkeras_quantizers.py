"""QKeras quantisers (as found in saved configs) to IR quantisers and types.

Configs come either as ``{"class_name": "quantized_bits", "config": {...}}`` or as the
string form QKeras also writes (``"quantized_relu(6,2)"``), which is parsed with `ast`
(literals only, never evaluated).
"""

from __future__ import annotations

import ast
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


@dataclass(frozen=True)
class QSpec:
    name: str
    params: dict


def parse_quantizer(obj, where: str) -> QSpec | None:
    """Normalise a saved quantiser (dict, string or live object) to a `QSpec`."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        name = obj.get("class_name")
        params = dict(obj.get("config", {}))
    elif isinstance(obj, str):
        name, params = _parse_call(obj, where)
    elif hasattr(obj, "get_config"):
        name, params = type(obj).__name__, dict(obj.get_config())
    else:
        raise UserError(f"{where}: cannot read quantiser {obj!r}")
    if name not in _POSITIONAL:
        raise UserError(f"{where}: quantiser {name!r} is not supported; supported: {', '.join(SUPPORTED)}")
    return QSpec(name, params)


def _parse_call(text: str, where: str) -> tuple[str, dict]:
    try:
        call = ast.parse(text.strip(), mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError
        name = call.func.id
        if name not in _POSITIONAL:
            return name, {}
        params = {k: ast.literal_eval(v) for k, v in zip(_POSITIONAL[name], call.args)}
        params.update({kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
        return name, params
    except (SyntaxError, ValueError):
        raise UserError(f"{where}: cannot parse quantiser {text!r}") from None


def _power_of_two_alpha(alpha, where: str) -> float:
    if alpha is None:
        return 1.0
    if isinstance(alpha, str):
        raise UserError(f"{where}: alpha={alpha!r} gives per-channel float scales that have no exact "
                        "fixed-point form; use alpha=1 (or a power of two)")
    a = float(alpha)
    import math
    m, _ = math.frexp(a)
    if a <= 0 or m != 0.5:
        raise UserError(f"{where}: alpha={alpha} is not a power of two; only power-of-two alphas are exact")
    return a


def _no_stochastic(p: dict, where: str) -> None:
    if p.get("use_stochastic_rounding"):
        raise UserError(f"{where}: stochastic rounding has no deterministic hardware form")


def bits_type(p: dict, where: str) -> FixedType:
    """``quantized_bits(bits, integer)``: round half to even, clip = ap_fixed RND_CONV/SAT."""
    bits, integer = int(p.get("bits", 8)), int(p.get("integer", 0))
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
        threshold = 0.33 if p.get("threshold") is None else float(p["threshold"])
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
        bits = int(p.get("bits", 8))
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
        if p.get("use_sigmoid") or float(p.get("negative_slope", 0.0) or 0.0) != 0.0 or \
                p.get("relu_upper_bound") is not None:
            raise UserError(f"{where}: quantized_relu is supported without use_sigmoid, negative_slope "
                            "and relu_upper_bound")
        bits, integer = int(p.get("bits", 8)), int(p.get("integer", 0))
        return "relu", FixedType(bits, integer, False, Rounding.RND_CONV, Overflow.SAT)
    raise UserError(f"{where}: {spec.name} is not supported as an activation; supported: "
                    "quantized_bits, quantized_relu")
