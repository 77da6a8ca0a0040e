"""QKeras quantisers (as found in saved configs) to IR quantisers and types.

Configs come either as ``{"class_name": "quantized_bits", "config": {...}}`` or as the
string form QKeras also writes (``"quantized_relu(6,2)"``), which is parsed with `ast`
(literals only, never evaluated).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

import numpy as np

from nnfpga.compiler.frontends.onnx_quant import Unsupported, exact_quantizer
from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.quant import Quantizer, WeightKind, auto_po2

# Positional parameter order of each QKeras quantiser (qkeras 0.9.0 signatures).
_POSITIONAL = {
    "quantized_bits": ("bits", "integer", "symmetric", "keep_negative", "alpha", "use_stochastic_rounding"),
    "quantized_relu": ("bits", "integer", "use_sigmoid", "negative_slope", "use_stochastic_rounding",
                       "relu_upper_bound"),
    "ternary": ("alpha", "threshold", "use_stochastic_rounding", "number_of_unrolls"),
    "binary": ("use_01", "alpha", "use_stochastic_rounding"),
    "quantized_po2": ("bits", "max_value", "use_stochastic_rounding", "quadratic_approximation",
                      "log2_rounding"),
    "quantized_tanh": ("bits", "use_stochastic_rounding", "symmetric", "use_real_tanh"),
    "quantized_sigmoid": ("bits", "symmetric", "use_real_sigmoid", "use_stochastic_rounding"),
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


#: What a quantized_bits weight alpha may be (named in refusals).
ALPHAS = ("None or 1, a power of two, a list of powers of two (one per output channel), or 'auto_po2'")


def _po2_exponent(a: float) -> int | None:
    """k with a == 2**k, or None."""
    m, e = math.frexp(a)
    return e - 1 if a > 0 and m == 0.5 else None


def _power_of_two_alpha(alpha, where: str, quantiser: str) -> float:
    """A scalar alpha that must be a power of two (None is 1)."""
    if alpha is None:
        return 1.0
    what = f"{where}: {quantiser} argument 'alpha' is {_short(alpha)}"
    if isinstance(alpha, (str, list, tuple)):
        raise UserError(f"{what}; supported for {quantiser}: one power of two such as 1 (or None)")
    a = _number({"alpha": alpha}, "alpha", 1.0, where)
    if _po2_exponent(a) is None:
        raise UserError(f"{what}, not a power of two: QKeras multiplies by it in float32, which has no exact "
                        f"fixed-point form; supported for {quantiser}: a power of two such as 1 (or None)")
    return a


def float_scaled(spec: QSpec | None) -> bool:
    """A quantized_bits whose scale is a float QKeras computes in float32 (alpha='auto',
    or an alpha, or any alpha of a list, that is not a power of two): its weights have no
    exact fixed-point quantiser; `layer_weights` reads them as float constants."""
    if spec is None or spec.name != "quantized_bits":
        return False
    alpha = spec.params.get("alpha")
    if isinstance(alpha, str):
        return alpha == "auto"
    values = list(alpha) if isinstance(alpha, (list, tuple)) else [alpha]
    return any(_positive_float(v) and _po2_exponent(float(v)) is None for v in values)


def _positive_float(v) -> bool:
    """A number that is finite and > 0 as a float (an integer too large for a float is not;
    the alpha check names it)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        f = float(v)
    except OverflowError:
        return False
    return math.isfinite(f) and f > 0


def layer_weights(spec: QSpec | None, where: str, weights, role: str) -> tuple[np.ndarray | None, Quantizer | None]:
    """A layer's weight array and its IR quantiser.  A float-scaled quantized_bits
    (`float_scaled`) gives the float32 weights QKeras computes (`qkeras_float32_weights`)
    and no quantiser: the compiler treats them as float weights (its own weight type,
    covered by the error bound), and the layer is not exact against QKeras."""
    if float_scaled(spec):
        return qkeras_float32_weights(spec, where, weights, role), None
    if _symmetric_po2(spec):
        # symmetric clips at -(2**(bits-1) - 1) levels, a range no saturating type has; the
        # values QKeras computes are still on a power-of-two grid: held exactly
        values = qkeras_float32_weights(spec, where, weights, role)
        try:
            return values, exact_quantizer(values, f"{where}: {role} quantized_bits(symmetric=1)")
        except Unsupported as e:
            raise UserError(str(e)) from None
    return weights, weight_quantizer(spec, where, weights, role)


def _symmetric_po2(spec: QSpec | None) -> bool:
    """quantized_bits(symmetric=1) with power-of-two alphas (not 'auto_po2', which has its
    own exact path): QKeras's weights are exact multiples of a power of two."""
    return (spec is not None and spec.name == "quantized_bits" and bool(spec.params.get("symmetric"))
            and not isinstance(spec.params.get("alpha"), str))


def qkeras_float32_weights(spec: QSpec, where: str, weights, role: str) -> np.ndarray:
    """``quantized_bits(...)(weights)`` as QKeras 0.9.0 computes it, every step in float32
    (the same operations in the same order, so the same roundings): for alpha='auto' the
    per-channel scale ``max|w| * 2 / levels`` and levels ``z`` rounded half up and clipped
    at ``levels / 2``; for a float alpha (or one per output channel) the usual rounding
    (half to even) and clip, times alpha; then the straight-through form ``w + (wq - w)``,
    which QKeras returns and which is not always ``wq`` in float32."""
    p = spec.params
    _no_stochastic(p, where)
    what = f"{where}: {role} quantized_bits"
    if weights is None:
        raise UserError(f"{what} with a float alpha needs the layer's weights")
    x = np.asarray(weights, dtype=np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{what}: the weights hold inf or NaN")
    bits, integer = _bits(p, where, "quantized_bits")
    keep_negative = bool(p.get("keep_negative", True))
    m_i = np.float32(2.0 ** integer)
    alpha = p.get("alpha")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if alpha == "auto":
            if bits < 2:
                raise UserError(f"{what}(alpha='auto') needs at least 2 bits; 'bits' is {bits}")
            m = np.float32(2.0 ** (bits - keep_negative))
            axis = tuple(range(x.ndim - 1)) if x.ndim > 1 else (0,)
            xs = x / m_i
            levels = np.float32((2 ** (bits - 1) - 1) * 2)    # 'auto' makes QKeras symmetric
            scale = (np.max(np.abs(xs), axis=axis, keepdims=True) * np.float32(2)) / levels
            v = np.floor(np.abs(xs) / scale + np.float32(0.5))
            z = np.sign(xs) * np.where(v < levels / np.float32(2), v, levels / np.float32(2))
            scale = scale * m
            xq = (m_i * z / m).astype(np.float32)
            xq = (scale * xq).astype(np.float32)
            x = m_i * xs
        else:
            bits_type(p, where)   # checks bits against keep_negative
            values = list(alpha) if isinstance(alpha, (list, tuple)) else [alpha]
            n = x.shape[-1] if x.ndim else 1
            if len(values) not in (1, n) or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                     for a in values):
                raise UserError(f"{what} argument 'alpha' is {_short(alpha)}; give one number or one per "
                                "output channel")
            scale = np.asarray(values, dtype=np.float32)
            if not (np.isfinite(scale).all() and (scale > 0).all()):
                raise UserError(f"{what} argument 'alpha' is {_short(alpha)}; alphas must be positive numbers")
            m = np.float32(2.0 ** (bits - keep_negative))
            p_ = x * m / m_i
            lo = np.float32(-m + bool(p.get("symmetric"))) if keep_negative else np.float32(0)
            rounded = p_ + (-p_ + np.round(p_))   # QKeras's straight-through round (np.round: half to even)
            xq = m_i * np.clip(rounded, lo, m - np.float32(1)) / m
            xq = (scale * xq.astype(np.float32)).astype(np.float32)
        out = (x + (-x + xq)).astype(np.float32)
    if not np.isfinite(out).all():
        raise UserError(f"{what}: QKeras's float32 weights overflow (inf or NaN)")
    return out


def _bits_alpha(alpha, where: str, role: str, n_channels: int | None) -> tuple[int, ...] | str:
    """A quantized_bits weight alpha as power-of-two exponents (one, or one per output
    channel) or 'auto_po2'; anything without an exact fixed-point form is refused."""
    what = f"{where}: {role} quantized_bits argument 'alpha'"
    if alpha is None:
        return (0,)
    if isinstance(alpha, str):
        if alpha == "auto_po2":
            return alpha
        if alpha == "auto":
            raise UserError(f"{what} is 'auto': QKeras scales each output channel by a float32 least-squares "
                            f"factor, which has no exact fixed-point form; supported: {ALPHAS}")
        raise UserError(f"{what} is {alpha!r}; supported: {ALPHAS}")
    values = list(alpha) if isinstance(alpha, (list, tuple)) else [alpha]
    if not values or any(isinstance(v, (list, tuple)) for v in values):
        raise UserError(f"{what} is {_short(alpha)}; supported: {ALPHAS}")
    exps = []
    for v in values:
        a = _number({"alpha": v}, "alpha", 1.0, where)
        k = _po2_exponent(a)
        if k is None:
            raise UserError(f"{what} is {_short(alpha)}: {v} is not a power of two, and QKeras multiplies by "
                            f"it in float32, which has no exact fixed-point form; supported: {ALPHAS}")
        exps.append(k)
    if isinstance(alpha, (list, tuple)) and n_channels is not None and len(exps) not in (1, n_channels):
        raise UserError(f"{what} lists {len(exps)} scales for {n_channels} output channels; give one per "
                        "output channel")
    return tuple(exps)


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


def weight_quantizer(spec: QSpec | None, where: str, weights=None,
                     role: str = "weight quantiser") -> Quantizer | None:
    """The IR quantiser of a weight array.  ``weights`` (the float array, as saved) is
    needed for alpha='auto_po2', whose scales QKeras derives from the weights."""
    if spec is None:
        return None
    p = spec.params
    _no_stochastic(p, where)
    if spec.name == "quantized_bits":
        n_channels = int(np.shape(weights)[-1]) if weights is not None and np.ndim(weights) else None
        alpha = _bits_alpha(p.get("alpha"), where, role, n_channels)
        if alpha == "auto_po2":
            return _auto_po2(p, where, role, weights)
        if p.get("symmetric"):
            raise UserError(f"{where}: {role} quantized_bits argument 'symmetric' is {_short(p['symmetric'])}; "
                            "symmetric quantized_bits is supported on QDense/QConv kernels and biases and with alpha='auto_po2'; "
                            "use symmetric=0")
        t = bits_type(p, where)
        if len(alpha) == 1:
            return Quantizer(WeightKind.FIXED, t, scale=2.0 ** alpha[0])
        if int(np.max(alpha)) - int(np.min(alpha)) + t.width > MAX_BITS:
            raise UserError(f"{where}: {role} quantized_bits alphas span 2**{min(alpha)} to 2**{max(alpha)}: "
                            f"with {t.width} bits the weights would need over {MAX_BITS} bits")
        return Quantizer(WeightKind.FIXED, t, channel_exp=alpha)
    if spec.name == "ternary":
        if p.get("threshold") is not None and isinstance(p["threshold"], str):
            raise UserError(f"{where}: ternary threshold={p['threshold']!r} is not supported")
        threshold = _number(p, "threshold", 0.33, where)
        return Quantizer(WeightKind.TERNARY, scale=_power_of_two_alpha(p.get("alpha"), where, "ternary"),
                         threshold=threshold)
    if spec.name == "binary":
        if p.get("use_01"):
            raise UserError(f"{where}: binary(use_01=True) is not supported")
        return Quantizer(WeightKind.BINARY, scale=_power_of_two_alpha(p.get("alpha"), where, "binary"))
    if spec.name == "quantized_po2":
        return _po2(p, where, role, weights)
    raise UserError(f"{where}: {spec.name} cannot quantise weights (an activation quantiser); supported for weights: "
                    "quantized_bits, ternary, binary, quantized_po2")


def _po2(p: dict, where: str, role: str, weights) -> Quantizer:
    """quantized_po2(bits, max_value): QKeras's exponent range (an exponent sign bit
    unless 0 <= max_value <= 1) and its clip of magnitudes to max_value."""
    if p.get("quadratic_approximation") or p.get("log2_rounding", "rnd") != "rnd":
        raise UserError(f"{where}: {role} quantized_po2 with quadratic_approximation="
                        f"{_short(p.get('quadratic_approximation'))} and log2_rounding="
                        f"{_short(p.get('log2_rounding', 'rnd'))} is not supported; supported: "
                        "quadratic_approximation=False and log2_rounding='rnd'")
    bits = _whole(p, "bits", 8, where)
    if not 2 <= bits <= MAX_BITS:
        raise UserError(f"{where}: quantized_po2 argument 'bits' is {bits}; supported: 2 to {MAX_BITS} bits")
    max_value = None
    if p.get("max_value") is not None:
        max_value = _number(p, "max_value", 1.0, where)
        if max_value <= 0:
            raise UserError(f"{where}: {role} quantized_po2 argument 'max_value' is {_short(p['max_value'])}; "
                            "supported: a positive number (or None)")
    # QKeras _need_exponent_sign_bit_check and _get_min_max_exponents
    effect = bits - 1 - (max_value is None or max_value > 1)
    q = Quantizer(WeightKind.PO2, min_exp=-2 ** effect, max_exp=2 ** effect - 1, max_value=max_value)
    if weights is not None:
        try:
            q.apply(np.asarray(weights))
        except ValueError as e:
            raise UserError(f"{where}: {role} quantized_po2({bits}): {e}; use fewer bits or a max_value") from None
    return q


def _auto_po2(p: dict, where: str, role: str, weights) -> Quantizer:
    """quantized_bits(alpha='auto_po2'): power-of-two scales per output channel, which
    QKeras computes from the float weights each time it runs; computed here the same way
    (float32), refusing a channel whose log2 scale lies so near a rounding tie that
    TensorFlow's float32 summation order could decide it."""
    bits, integer = _bits(p, where, "quantized_bits")
    if bits < 2:
        raise UserError(f"{where}: {role} quantized_bits(alpha='auto_po2') needs at least 2 bits; "
                        f"'bits' is {bits}")
    if weights is None:
        raise UserError(f"{where}: {role} quantized_bits(alpha='auto_po2') needs the layer's weights")
    w = np.asarray(weights, dtype=np.float32)
    if not np.isfinite(w).all():
        raise UserError(f"{where}: {role} quantized_bits(alpha='auto_po2'): the weights hold inf or NaN")
    logs: list = []
    z, exp = auto_po2(w, bits, integer, logs)
    n_terms = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 1
    margin = (n_terms + 8) * 2.0 ** -21   # float32 summation and log error, in log2 units
    for a in logs:
        off = np.abs(np.abs(a - np.floor(a)) - 0.5).reshape(-1)
        near = np.flatnonzero(off < margin)
        if near.size:
            c = int(near[0])
            raise UserError(f"{where}: {role} quantized_bits(alpha='auto_po2'): the scale of output channel "
                            f"{c} is log2 {float(a.reshape(-1)[c]):.7f}, at a rounding tie where QKeras's "
                            "float32 result depends on TensorFlow's summation order, so no exact form "
                            "is known; retrain or nudge that channel's weights, or use a fixed alpha "
                            f"({ALPHAS})")
    nonzero = np.any(z != 0, axis=tuple(range(z.ndim - 1)))   # all-zero channels take any scale
    spread = int(np.ptp(exp[nonzero])) if nonzero.any() else 0
    if spread + bits > MAX_BITS:
        raise UserError(f"{where}: {role} quantized_bits(alpha='auto_po2') gives scales 2**k over {spread} "
                        f"octaves: the weights would need over {MAX_BITS} bits")
    return Quantizer(WeightKind.FIXED, FixedType(bits, integer + 1, True, Rounding.RND_CONV, Overflow.SAT),
                     auto_po2=True)


def activation_of(spec: QSpec, where: str) -> tuple[str, FixedType, dict]:
    """An activation quantiser as (IR function, output type, further `Activation` fields:
    the slope ``alpha`` of saturating_leaky_relu)."""
    p = spec.params
    _no_stochastic(p, where)
    if spec.name == "quantized_bits":
        alpha = p.get("alpha")
        if isinstance(alpha, str):
            raise UserError(f"{where}: activation quantized_bits argument 'alpha' is {alpha!r}: QKeras computes "
                            "that scale from each batch of data as it runs, which no fixed firmware matches; "
                            "supported for activations: alpha None or 1")
        if _power_of_two_alpha(alpha, where, "activation quantized_bits") != 1.0:
            raise UserError(f"{where}: activation quantized_bits argument 'alpha' is {_short(alpha)}: QKeras "
                            "multiplies the rounded activation by it, a step nnfpga's activation quantisers do "
                            "not take; supported for activations: alpha None or 1")
        if p.get("symmetric"):
            raise UserError(f"{where}: activation quantized_bits argument 'symmetric' is "
                            f"{_short(p['symmetric'])}; supported: symmetric=0")
        return "linear", bits_type(p, where), {}
    if spec.name == "quantized_relu":
        if p.get("use_sigmoid") or p.get("relu_upper_bound") is not None:
            raise UserError(f"{where}: quantized_relu is supported without use_sigmoid and relu_upper_bound")
        bits, integer = _bits(p, where, "quantized_relu")
        slope = _number(p, "negative_slope", 0.0, where)
        if slope == 0.0:
            return "relu", FixedType(bits, integer, False, Rounding.RND_CONV, Overflow.SAT), {}
        what = f"{where}: quantized_relu argument 'negative_slope' is {_short(p['negative_slope'])}"
        if bits < 2:
            raise UserError(f"{what} with bits={bits}: the sign would take the only bit; supported: "
                            "a negative_slope with at least 2 bits")
        # QKeras: the sign takes a bit; x >= 0 rounds (half to even) to 2**(integer + 1 - bits)
        # steps up to 2**integer - step, x < 0 as negative_slope * x on the same grid, down
        # to -negative_slope * 2**integer
        signed = FixedType(bits, integer + 1, True, Rounding.RND_CONV, Overflow.SAT)
        if slope == 1.0:   # exactly quantized_bits(bits, integer)
            return "linear", signed, {}
        k = _po2_exponent(slope) if slope > 0 else None
        supported = ("supported: negative_slope 0, 1, or a power of two 2**-k with 1 <= k <= bits - 1 "
                     "(QKeras itself asserts a power of two)")
        if k is None or k > 0:
            raise UserError(f"{what}: {supported}")
        if -k > bits - 1:
            raise UserError(f"{what} with bits={bits}: the negative saturation -negative_slope * 2**integer "
                            f"is finer than the {bits}-bit grid; {supported}")
        # saturating_leaky_relu: leaky, saturated at slope * the type's minimum, converted
        return "saturating_leaky_relu", signed, {"alpha": slope}
    if spec.name in ("quantized_tanh", "quantized_sigmoid"):
        return (*_hard_quantized(spec, where), {})
    if spec.name == "binary":
        # QKeras: sign(x) with 0 -> +1 (of tanh(x) when alpha is None: the same sign), times
        # alpha: the IR's sign for alpha None or 1
        if p.get("use_01"):
            raise UserError(f"{where}: activation binary(use_01=True) is not supported; supported: use_01=False "
                            "(+-1)")
        alpha = p.get("alpha")
        if alpha is not None and (isinstance(alpha, (str, list, tuple)) or _number(p, "alpha", 1.0, where) != 1.0):
            raise UserError(f"{where}: activation binary argument 'alpha' is {_short(alpha)}; supported for "
                            "activations: alpha None or 1 (+-1)")
        return "sign", FixedType(2, 2, True), {}
    raise UserError(f"{where}: {spec.name} is not supported as an activation; supported: "
                    "quantized_bits, quantized_relu, quantized_tanh, quantized_sigmoid, binary")


def _hard_quantized(spec: QSpec, where: str) -> tuple[str, FixedType]:
    """QKeras's quantized_tanh / quantized_sigmoid with its default (hard) sigmoid:
    ``round(hard_tanh(x) * 2**(bits-1)) / 2**(bits-1)`` clipped to [-1, 1 - step], and
    ``round(hard_sigmoid(x) * 2**bits) / 2**bits`` clipped to [0, 1 - step], rounding half
    to even: the exact piecewise-linear function converted to fixed<bits, 1> (ufixed<bits,
    0>) with RND_CONV and SAT, whose ranges are those clips.  (A model trained after
    ``set_internal_sigmoid('smooth')`` is not told apart in the saved file.)"""
    p = spec.params
    tanh = spec.name == "quantized_tanh"
    real = "use_real_tanh" if tanh else "use_real_sigmoid"
    if p.get(real):
        raise UserError(f"{where}: {spec.name} argument {real!r} is {_short(p[real])}: QKeras rounds the float "
                        f"{'tanh' if tanh else 'sigmoid'}, which no exact fixed-point function reproduces; "
                        f"supported: {real}=0 (the hard {'tanh' if tanh else 'sigmoid'}), or a float "
                        f"Activation('{'tanh' if tanh else 'sigmoid'}') (a lookup table within the error bound)")
    if p.get("symmetric"):
        raise UserError(f"{where}: {spec.name} argument 'symmetric' is {_short(p['symmetric'])}; supported: symmetric=0")
    bits = _whole(p, "bits", 8, where)
    if not 2 <= bits <= MAX_BITS:
        raise UserError(f"{where}: {spec.name} with {bits} bits is not supported; use 2 to {MAX_BITS} bits")
    if tanh:
        return "hard_tanh", FixedType(bits, 1, True, Rounding.RND_CONV, Overflow.SAT)
    return "hard_sigmoid", FixedType(bits, 0, False, Rounding.RND_CONV, Overflow.SAT)
