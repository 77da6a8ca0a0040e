"""HGQ2 models (Keras 3 ``.keras`` files of the ``hgq2`` package): read exactly, without
importing Keras or HGQ2.

Supported layers: ``Quantizer``, ``QDense`` and ``QConv2D`` (activation linear or relu,
input and output quantisers), ``QMaxPooling2D`` (input and output quantisers), besides the Keras layers the Keras frontend reads
(InputLayer, Flatten, Reshape, ...).  HGQ2's fixed-point quantisers (``kif`` and ``kbi``)
give every element its own bitwidths ``k`` (keep the sign), ``i`` (integer bits) and
``f`` (fractional bits), stored as weights of the model; they are read from
``model.weights.h5`` and rounded half to even as HGQ2 does (KBI: ``f = b - i``).

* Weights and biases: HGQ2's quantiser is applied here to the stored float32 weights
  with the same float32 operations (scale by ``2**f``, round, divide, saturate or wrap),
  so the constants are the very values HGQ2 computes with; each one is exact on its own
  grid, and a Dense/Conv2D of exact constants is exact.
* Activations (a ``Quantizer`` layer, a layer's input quantiser ``iq`` and output
  quantiser ``oq``): the IR's `Quantize` op, a type per element.  A quantiser right on the
  model input also sets the input type: the union of its element types (their finest
  grid, their whole range, its rounding and overflow), so a sample on that grid reaches
  the quantiser unchanged.

HGQ2 computes in float32: its ``predict`` is exact, and equal to the IR's, while every
accumulator fits float32's 24-bit significand (true of small trigger networks; the
compiled firmware itself is always exact).  What has no exact meaning is refused naming
the layer: float quantisers, scalers and affine maps, the round modes HGQ2 has and ap_fixed
has not (TRN_ZERO, RND_ZERO, RND_MIN_INF, RND_INF), WRAP_SM, other activations.
Stochastic rounding (``S_RND``, ``S_RND_CONV``) only acts in training: at inference it is
RND / RND_CONV.  HGQ (v1) models (``HQuantize``, ``HDense``, ... and their proxy models'
``FixedPointQuantizer`` layers) are refused by name.
"""

from __future__ import annotations

import numpy as np

from nnfpga.compiler.frontends import keras_checks as kc
from nnfpga.compiler.frontends import keras_shapes as ks
from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, Quantize
from nnfpga.ir.quant import Quantizer, WeightKind

#: HGQ2 layer classes read, under the names the frontend gives them (an HGQ2 ``QDense``
#: is not QKeras's), with the IR ops each may become.
LAYER_OPS: dict[str, tuple[str, ...]] = {
    "HGQ2 Quantizer": ("Quantize",),
    "HGQ2 QDense": ("Quantize", "Dense", "Activation"),
    "HGQ2 QConv2D": ("Quantize", "Conv2D", "Activation"),
    "HGQ2 QMaxPooling2D": ("Quantize", "MaxPool2D"),
}
_CLASSES = {name.split(" ", 1)[1]: name for name in LAYER_OPS}
#: Layer classes of HGQ (v1, the ``HGQ`` package) and of its proxy models.
HGQ1_CLASSES = {"HQuantize", "HDense", "HDenseBatchNorm", "HConv1D", "HConv2D", "HConv1DBatchNorm",
                "HConv2DBatchNorm", "HActivation", "HAdd", "PAveragePooling1D", "PAveragePooling2D",
                "PMaxPooling1D", "PMaxPooling2D", "PFlatten", "PReshape", "PConcatenate", "PDropout", "PPermute",
                "FixedPointQuantizer", "UnaryLUT"}
_ROUNDING = {"TRN": "TRN", "RND": "RND", "RND_CONV": "RND_CONV", "S_RND": "RND", "S_RND_CONV": "RND_CONV"}
_OVERFLOW = ("WRAP", "SAT", "SAT_SYM")
_ACTIVATIONS = ("linear", "relu", None)


def is_hgq2(lc: dict) -> bool:
    """A layer config written by HGQ2 (its module or registered name is HGQ2's)."""
    return str(lc.get("module") or "").startswith("hgq.") or str(lc.get("registered_name") or "").startswith("hgq>")


def mark_layers(layers: list[dict], source: str) -> None:
    """Refuse HGQ (v1) layers and HGQ2 layers not supported, naming them; rename the HGQ2
    layers supported to their `LAYER_OPS` names (in place)."""
    v1 = [(kc.layer_name(lc), lc.get("class_name")) for lc in layers if lc.get("class_name") in HGQ1_CLASSES
          and not is_hgq2(lc)]
    if v1:
        listed = ", ".join(f"{n!r} ({c})" for n, c in v1)
        raise UserError(f"{source}: layer(s) {listed} are HGQ (v1) layers; HGQ (v1) models, and their proxy models "
                        "with FixedPointQuantizer layers, are not supported.  HGQ2 models (Keras 3 .keras files "
                        f"with {', '.join(_CLASSES)} layers) are: port the model to HGQ2")
    for lc in layers:
        if not is_hgq2(lc):
            continue
        cls = lc.get("class_name")
        if cls not in _CLASSES:
            raise UserError(f"{source}: layer {kc.layer_name(lc)!r} (HGQ2 {cls}) is not supported; supported HGQ2 "
                            f"layers: {', '.join(_CLASSES)} (activation linear or relu)")
        lc["class_name"] = _CLASSES[cls]


def quantizer_weights(entry, lname: str, where: str, stored_here) -> dict[str, list[np.ndarray]]:
    """The variables of the quantisers nested in a Keras 3 weights entry (HGQ2 stores a
    layer's quantiser ``iq`` under ``iq/quantizer/vars``, a Quantizer layer's under
    ``quantizer/vars``), keyed ``LAYER/iq``, ``LAYER/quantizer``; ``stored_here`` opens
    an object refusing external links."""
    import h5py
    out = {}
    for sub in ("iq", "kq", "bq", "oq", "quantizer"):
        if sub not in entry:
            continue
        at = f"{where}: layer {lname!r}, quantiser {sub!r}"
        g = stored_here(entry, sub, at, "group")
        # a layer's quantiser wraps the one holding the variables (iq/quantizer/vars); a
        # Quantizer layer's entry is that wrapper itself (quantizer/vars)
        inner = stored_here(g, "quantizer", at, "group") if isinstance(g, h5py.Group) and "quantizer" in g else g
        if not isinstance(inner, h5py.Group) or "vars" not in inner:
            continue
        v = stored_here(inner, "vars", at, "group")
        if not isinstance(v, h5py.Group):
            continue
        keys = sorted((k for k in v.keys() if k.isdigit() and k.isascii()), key=int)
        arrays = []
        for k in keys:
            obj = stored_here(v, k, at)
            # a scalar is the training-only i_decay_speed (may be inf): not read
            scalar = isinstance(obj, h5py.Dataset) and obj.shape == ()
            arrays.append(np.zeros(()) if scalar else kc.load_weight(obj, at, k))
        out[f"{lname}/{sub}"] = arrays
    return out


# ----------------------------------------------------------------------------- quantisers
class _Q:
    """One HGQ2 fixed-point quantiser: its config and per-element k, i, f."""

    def __init__(self, conf, stored: list[np.ndarray] | None, shape: tuple[int, ...], where: str):
        if not isinstance(conf, dict):
            raise UserError(f"{where}: the quantiser config is {kc.short(conf)}; expected an HGQ2 QuantizerConfig")
        c = conf.get("config", conf) if conf.get("class_name") == "QuantizerConfig" else conf
        self.where = where
        q_type = c.get("q_type")
        if q_type not in ("kif", "kbi"):
            raise UserError(f"{where}: quantiser type {kc.short(q_type)} is not supported; supported: the fixed-point "
                            "quantisers 'kif' and 'kbi' (a float quantiser has no exact fixed-point form)")
        for field in ("scaler", "affine"):
            if c.get(field) is not None:
                raise UserError(f"{where}: quantiser field {field!r} is {kc.short(c[field])}; only quantisers without "
                                f"a {field} are supported")
        rnd, ovf = str(c.get("round_mode", "")).upper(), str(c.get("overflow_mode", "")).upper()
        if rnd not in _ROUNDING:
            raise UserError(f"{where}: round mode {kc.short(c.get('round_mode'))} is not supported; supported: "
                            f"{', '.join(_ROUNDING)} (ap_fixed has no other; stochastic rounding acts in training only)")
        if ovf not in _OVERFLOW:
            raise UserError(f"{where}: overflow mode {kc.short(c.get('overflow_mode'))} is not supported; supported: "
                            f"{', '.join(_OVERFLOW)}")
        self.q_type, self.rounding, self.overflow = q_type, _ROUNDING[rnd], ovf
        self.is_weight = bool(c.get("is_weight", False))
        self.trainable = c.get("trainable", True) is not False
        wrap = ovf == "WRAP"
        # Keras 3 saves a layer's trainable variables, then the others, each in creation
        # order (k, b, i for kbi; k, i, f for kif; WRAP adds i_decay_speed, and its i is
        # not trained)
        if q_type == "kbi":
            names = ["b"] + ([] if wrap else ["i"]) + ["k"] + (["i", "decay"] if wrap else [])
        else:
            names = ([] if wrap else ["i"]) + ["f", "k"] + (["i", "decay"] if wrap else [])
        stored = stored or []
        if len(stored) != len(names):
            raise UserError(f"{where}: {len(stored)} quantiser variable(s) stored, expected {len(names)} "
                            f"({', '.join(names)}) for a {q_type} quantiser with overflow {ovf}")
        v = dict(zip(names, stored))
        k = v["k"]
        if not np.all((k == 0) | (k == 1)):
            raise UserError(f"{where}: the quantiser's keep_negative (k) holds values other than 0 and 1")
        i = np.round(v["i"].astype(np.float32))   # HGQ2 rounds its bitwidths half to even
        f = np.round(v["f"].astype(np.float32)) if q_type == "kif" else np.round(v["b"].astype(np.float32)) - i
        arrays = []
        for a in (k, i, f):
            a = np.asarray(a)
            if a.ndim == len(shape) + 1 and a.shape[0] == 1:
                a = a.reshape(a.shape[1:])   # activation quantisers store a batch axis of 1
            try:
                arrays.append(np.broadcast_to(a, shape).astype(np.float32))
            except ValueError:
                raise UserError(f"{where}: bitwidths of shape {list(a.shape)} do not fit the tensor of shape "
                                f"{list(shape)}") from None
        self.k, self.i, self.f = arrays
        if np.any(np.abs(self.i) > 60) or np.any(np.abs(self.f) > 60) or np.any(self.k + self.i + self.f > 62):
            raise UserError(f"{where}: bitwidths beyond 62 bits (i {self.i.min():g}..{self.i.max():g}, "
                            f"f {self.f.min():g}..{self.f.max():g}) are not supported")

    def op(self, name: str, inputs: list[str], layer: str) -> Quantize:
        if self.overflow == "WRAP" and self.is_weight and self.trainable:
            raise UserError(f"{self.where}: an activation quantiser with is_weight=True and overflow WRAP is "
                            "not supported (HGQ2 then rounds without wrapping)")
        return Quantize(name, inputs, keep_negative=self.k.astype(np.int64), integer=self.i.astype(np.int64),
                        frac=self.f.astype(np.int64), rounding=self.rounding, overflow=self.overflow,
                        source_layer=layer)

    def union_type(self) -> FixedType:
        """The type holding every element's values (finest grid, whole range), with this
        quantiser's rounding and overflow (SAT for SAT_SYM): the input type before it."""
        live = (self.k + self.i + self.f) > 0
        if not live.any():
            return FixedType(1, 1, False, Rounding(self.rounding), Overflow.SAT)
        k, i, f = (a[live].astype(np.int64) for a in (self.k, self.i, self.f))
        frac = int(f.max())
        lo = int(np.min(-(k << (i + f)) << (frac - f)))
        hi = int(np.max(((1 << (i + f)) - 1) << (frac - f)))
        over = Overflow.WRAP if self.overflow == "WRAP" else Overflow.SAT
        t = type_for_range(lo, hi, frac, Rounding(self.rounding), over)
        if t.width > 62:
            raise UserError(f"{self.where}: the input type holding every element's type needs {t.width} bits (at "
                            "most 62)")
        return t

    def weights(self, x: np.ndarray) -> np.ndarray:
        """HGQ2's quantised values of a weight array, in float32 as HGQ2 computes them,
        returned as (exact) float64."""
        x = np.asarray(x, dtype=np.float32)
        k, i, f = self.k, self.i, self.f
        two = np.float32(2.0)
        fast = self.overflow == "WRAP" and self.trainable and self.is_weight and \
            (self.q_type == "kif" or self.rounding == "RND")
        if fast:   # HGQ2: a trainable WRAP weight quantiser only rounds at inference
            return self._round(x, f).astype(np.float64)
        i = np.maximum(i, -f)
        if self.overflow != "WRAP":
            eps = two ** -f
            top = two ** i - eps
            low = -top * k if self.overflow == "SAT_SYM" else -(two ** i) * k
            x = np.where(x > top, top, np.where(x < low, low, x))
        q = self._round(x, f)
        if self.overflow == "WRAP":
            bk = i + k
            bias = k * two ** (bk - 1)
            q = np.mod(q + bias, two ** bk) - bias
        q = np.where(self.k + self.i + self.f > 0, q, np.float32(0))   # HGQ2: width <= 0 is 0
        return np.asarray(q, dtype=np.float32).astype(np.float64)

    def _round(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        scale = np.float32(2.0) ** f
        s = (x * scale).astype(np.float32)
        if self.rounding == "TRN":
            r = np.floor(s)
        elif self.rounding == "RND":
            r = np.floor((s + np.float32(0.5)).astype(np.float32))
        else:
            r = np.round(s)
        return (r / scale).astype(np.float32)


def exact_constants(values: np.ndarray, where: str) -> Quantizer:
    """A quantiser that keeps every value of ``values`` (dyadic, each on its own grid) as
    it is: the finest grid among them and their range."""
    v = np.asarray(values, dtype=np.float64)
    frac = 0
    nonzero = v[v != 0]
    if nonzero.size:
        _, exp = np.frexp(nonzero)
        mant = nonzero * 2.0 ** (53 - exp)      # integers: every float64 is m * 2**(exp - 53)
        tz = np.array([(int(m) & -int(m)).bit_length() - 1 for m in np.abs(mant)])
        frac = int(np.max(53 - exp - tz))
    raw = np.ldexp(v, frac)
    if np.any(raw != np.round(raw)) or np.abs(raw).max(initial=0) >= 2.0 ** 61:
        raise UserError(f"{where}: quantised weights span too many bits for 62-bit constants")
    t = type_for_range(int(min(raw.min(initial=0), 0)), int(max(raw.max(initial=0), 0)), frac,
                       Rounding.RND_CONV, Overflow.SAT)
    return Quantizer(WeightKind.FIXED, t)


# ----------------------------------------------------------------------------- building
def _quantiser(b, layer: str, conf, sub: str, shape: tuple[int, ...], where: str) -> _Q:
    return _Q(conf, b.km.weights.get(f"{layer}/{sub}"), shape, f"{where}: quantiser {sub!r}")


def _apply_activation_quantiser(b, q: _Q, name: str, layer: str) -> None:
    """A quantiser on the data path; right on the model input it also sets the input type."""
    if isinstance(b._last_node(), Input) and not b.quantized_input:
        b.nodes[0].out_type = q.union_type()
        b.quantized_input = True
        b.framework_exact[b.nodes[0].name] = {"out_type": b.nodes[0].out_type.to_json()}
    elif not b.quantized_input:
        raise UserError(f"{b.km.source}: layer {layer!r} quantises a value computed in float; the model must "
                        "start with a quantiser (an HGQ2 Quantizer layer or a layer with its input quantiser)")
    b._append(q.op(name, [b.last], layer))
    b.framework_exact[name] = {"quantize": True}


def _common_checks(b, name: str, cfg: dict, where: str) -> None:
    act = cfg.get("activation")
    if act not in _ACTIVATIONS:
        raise UserError(f"{where}: activation {kc.short(act)} is not supported in an HGQ2 layer; supported: linear "
                        "and relu (exact); a float activation is not")
    if cfg.get("quantization_config") is not None:
        raise UserError(f"{where}: field 'quantization_config' is set (Keras's own quantisation); not supported")
    if not cfg.get("enable_iq", True) and len(b.nodes) == 1:
        raise UserError(f"{where}: the layer reads the model's float input without an input quantiser "
                        "(enable_iq=False); put an HGQ2 Quantizer before it")


def _linear_layer(b, name: str, cfg: dict, where: str, conv: bool) -> None:
    _common_checks(b, name, cfg, where)
    if cfg.get("enable_iq", True):
        q = _quantiser(b, name, cfg.get("iq_conf"), "iq", tuple(b.in_shape), where)
        _apply_activation_quantiser(b, q, f"{name}_iq", name)
    elif not b.quantized_input:
        raise UserError(f"{where}: the layer reads a float value without an input quantiser")
    w = b.km.weights.get(name) or []
    use_bias = cfg.get("use_bias", True)
    if len(w) < (2 if use_bias else 1):
        raise UserError(f"{where}: {len(w)} weight(s) stored; expected the kernel{' and the bias' if use_bias else ''}")
    kernel = w[0]
    kvals = _quantiser(b, name, cfg.get("kq_conf"), "kq", kernel.shape, where).weights(kernel)
    kq = exact_constants(kvals, f"{where}: kernel")
    bias = bq = None
    if use_bias:
        if cfg.get("bq_conf") is None:
            raise UserError(f"{where}: the layer has a bias but no bias quantiser (bq_conf)")
        bias = _quantiser(b, name, cfg.get("bq_conf"), "bq", w[1].shape, where).weights(w[1])
        bq = exact_constants(bias, f"{where}: bias")
    b._mark_weights(name, kq, bq, bias)
    if conv:
        if _pair(cfg.get("dilation_rate", 1)) != (1, 1) or cfg.get("groups", 1) != 1:
            raise UserError(f"{where}: dilated or grouped convolutions are not supported")
        padding = cfg.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise UserError(f"{where}: padding {kc.short(padding)} is not supported; use valid or same")
        b._append(Conv2D(name, [b.last], kernel=kvals, bias=bias, kernel_quantizer=kq, bias_quantizer=bq,
                         source_layer=name, strides=_pair(cfg.get("strides", 1)), padding=padding))
    else:
        if len(b.in_shape) != 1:
            raise UserError(f"{where}: an HGQ2 QDense on a {len(b.in_shape)}-D input {list(b.in_shape)} is not "
                            "supported; flatten the input first")
        b._append(Dense(name, [b.last], kernel=kvals, bias=bias, kernel_quantizer=kq, bias_quantizer=bq,
                        source_layer=name))
    if cfg.get("activation") == "relu":   # relu of an exact value is exact
        b._append(Activation(f"{name}_relu", [b.last], function="relu", source_layer=name))
    if cfg.get("enable_oq", False):
        out_shape = tuple(b.by_name[name].kernel.shape[-1:]) if not conv else None
        if conv:
            out_shape = _conv_out_shape(b.in_shape, kernel.shape, cfg)
        q = _quantiser(b, name, cfg.get("oq_conf"), "oq", out_shape, where)
        _apply_activation_quantiser(b, q, f"{name}_oq", name)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_out_shape(in_shape, kshape, cfg) -> tuple[int, ...]:
    sh, sw = _pair(cfg.get("strides", 1))
    h, w = in_shape[0], in_shape[1]
    if cfg.get("padding", "valid") == "same":
        return (-(-h // sh), -(-w // sw), kshape[-1])
    return ((h - kshape[0]) // sh + 1, (w - kshape[1]) // sw + 1, kshape[-1])


def _quantizer_layer(b, name: str, cfg: dict, where: str) -> None:
    q = _quantiser(b, name, cfg.get("config"), "quantizer", tuple(b.in_shape), where)
    _apply_activation_quantiser(b, q, name, name)


def _qmaxpooling2d(b, name: str, cfg: dict, where: str) -> None:
    """Max pooling of quantised values (its input quantiser, Keras's pooling, its output
    quantiser): the maximum moves a value, exactly."""
    if cfg.get("enable_iq", True):
        q = _quantiser(b, name, cfg.get("iq_conf"), "iq", tuple(b.in_shape), where)
        _apply_activation_quantiser(b, q, f"{name}_iq", name)
    b._maxpooling2d(name, cfg, where)
    if cfg.get("enable_oq", False):
        out_shape = ks._maxpool(cfg, tuple(b.in_shape), None, where)
        q = _quantiser(b, name, cfg.get("oq_conf"), "oq", out_shape, where)
        _apply_activation_quantiser(b, q, f"{name}_oq", name)


def _qdense(b, name: str, cfg: dict, where: str) -> None:
    _linear_layer(b, name, cfg, where, conv=False)


def _qconv2d(b, name: str, cfg: dict, where: str) -> None:
    _linear_layer(b, name, cfg, where, conv=True)


#: The builder's handler of each HGQ2 layer (``handler(builder, name, config, where)``).
HANDLERS = {"HGQ2 Quantizer": _quantizer_layer, "HGQ2 QDense": _qdense, "HGQ2 QConv2D": _qconv2d,
            "HGQ2 QMaxPooling2D": _qmaxpooling2d}


# ----------------------------------------------------------------------------- shapes
def _shape_quantizer(cfg: dict, shape, w, where: str):
    return shape


def _shape_dense(cfg: dict, shape, w, where: str):
    units = kc.positive_int(cfg, "units", where)
    _check_stored(cfg, w, (shape[-1], units), units, where)
    return shape[:-1] + (units,)


def _shape_conv(cfg: dict, shape, w, where: str):
    filters = kc.positive_int(cfg, "filters", where)
    kernel = kc.int_pair(cfg, "kernel_size", where)
    strides = kc.int_pair(cfg, "strides", where, default=1)
    h, wd, c = ks._image(shape, where)
    out = ks._window(shape, kernel, strides, cfg.get("padding", "valid"), "kernel_size", where) + (filters,)
    _check_stored(cfg, w, kernel + (c, filters), filters, where)
    return out


def _check_stored(cfg: dict, w, kernel: tuple[int, ...], n_out: int, where: str) -> None:
    """HGQ2 stores the kernel, the bias, then its own variables (beta, ebops)."""
    named = [("kernel", kernel)] + ([("bias", (n_out,))] if cfg.get("use_bias", True) else [])
    arrays = w.arrays
    if len(arrays) < len(named):
        raise UserError(f"{where}: {len(arrays)} weight(s) stored in {w.file}, expected at least {len(named)}: "
                        + ", ".join(f"{n} {list(s)}" for n, s in named))
    for (what, shape), a in zip(named, arrays):
        if a.shape != shape:
            raise UserError(f"{where}: weight {what!r} in {w.file} has shape {list(a.shape)}, expected {list(shape)}")


#: Shape checks of the HGQ2 layers, as `keras_shapes` checks the Keras layers.
SHAPE_CHECKS = {"HGQ2 Quantizer": _shape_quantizer, "HGQ2 QDense": _shape_dense, "HGQ2 QConv2D": _shape_conv,
                "HGQ2 QMaxPooling2D": ks._maxpool}
ks._CHECKS.update(SHAPE_CHECKS)   # the chain walk (`keras_shapes.check_chain`) checks them too
