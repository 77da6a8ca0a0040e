"""Keras / QKeras frontend: ``.h5`` (Keras 2, QKeras), ``.keras`` (Keras 3) and live models.

Files are read with h5py and the saved JSON config, so compiling never imports
TensorFlow.  The model must be a chain (Sequential, or a Functional model whose layers
each read the previous one).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnfpga.compiler.frontends import qkeras_quantizers as qq
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, BatchNorm, Conv2D, Dense, Input, MaxPool2D, Op, Reshape

SUPPORTED_LAYERS = ("InputLayer", "Dense", "QDense", "Conv2D", "QConv2D", "MaxPooling2D", "MaxPool2D",
                    "Flatten", "Reshape", "BatchNormalization", "Activation", "QActivation", "ReLU",
                    "LeakyReLU", "Dropout")
KERAS_ACTIVATIONS = {"linear": "linear", None: "linear", "relu": "relu", "tanh": "tanh",
                     "sigmoid": "sigmoid", "softmax": "softmax", "hard_tanh": "hard_tanh",
                     "leaky_relu": "leaky_relu", "hard_sigmoid": "hard_sigmoid"}
#: Activation names whose meaning is QKeras's only: in a QActivation or as the activation
#: of a QDense/QConv2D (QKeras's ``get_quantizer``), not in a Keras layer.
QKERAS_ONLY = {"hard_sigmoid": "Keras's hard_sigmoid is another function (0.2*x + 0.5 in Keras 2, "
                               "relu6(x + 3)/6 in Keras 3, clipped to [0, 1]); the hard sigmoid supported is "
                               "QKeras's clip(0.5*x + 0.5, 0, 1): QActivation('hard_sigmoid'), a QDense/QConv2D "
                               "activation 'hard_sigmoid', or ONNX HardSigmoid(alpha=0.5, beta=0.5)"}
#: The slope of ``activation="leaky_relu"`` (Keras 3 and tf.nn.leaky_relu default).
LEAKY_ACTIVATION_SLOPE = 0.2


# ----------------------------------------------------------------------------- reading
@dataclass
class KerasModel:
    """A model's layer configs (in order) and each layer's weights (in saved order)."""

    name: str
    layers: list[dict]
    weights: dict[str, list[np.ndarray]]
    source: str


def read_keras(source) -> KerasModel:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise UserError(f"{path}: no such file")
        if path.suffix == ".keras":
            return _read_keras3(path)
        if path.suffix in (".h5", ".hdf5"):
            return _read_h5(path)
        raise UserError(f"{path}: unknown model format {path.suffix!r}; supported: .h5, .keras, .onnx")
    if hasattr(source, "get_config") and hasattr(source, "layers"):
        return _read_live(source)
    raise UserError(f"cannot read a model from {type(source).__name__}; pass a .h5/.keras path or a Keras model")


def _config_layers(config: dict, where: str) -> tuple[str, list[dict]]:
    cls = config.get("class_name")
    cfg = config.get("config", {})
    if cls not in ("Sequential", "Functional", "Model"):
        raise UserError(f"{where}: top-level {cls!r} is not a Sequential or Functional model")
    layers = cfg.get("layers", [])
    return cfg.get("name", "model"), layers


def _read_h5(path: Path) -> KerasModel:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise UserError(f"{path}: holds no model architecture (saved with save_weights?); "
                                "save the whole model with model.save()")
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            name, layers = _config_layers(config, str(path))
            group = f["model_weights"] if "model_weights" in f else f
            weights = {}
            for layer in layers:
                lname = layer.get("config", {}).get("name") or layer.get("name")
                if lname in group:
                    g = group[lname]
                    names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
                    weights[lname] = [np.asarray(g[n]) for n in names]
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 model file ({e})") from None
    return KerasModel(name, layers, weights, str(path))


def _read_keras3(path: Path) -> KerasModel:
    import h5py
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            blob = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable .keras archive ({e})") from None
    name, layers = _config_layers(config, str(path))
    weights = {}
    # Keras 3 stores each layer's variables under a path named after its class in snake
    # case, numbered among its siblings (dense, dense_1, ...), not under the layer's name.
    sequential = config.get("class_name") == "Sequential"
    seen: dict[str, int] = {}
    try:
        with h5py.File(io.BytesIO(blob), "r") as f:
            root = f["layers"]
            for layer in layers:
                if sequential and layer.get("class_name") == "InputLayer":
                    continue
                base = _snake_case(layer.get("class_name", ""))
                key = base if base not in seen else f"{base}_{seen[base]}"
                seen[base] = seen.get(base, 0) + 1
                if key in root and "vars" in root[key]:
                    v = root[key]["vars"]
                    weights[layer.get("config", {}).get("name")] = [np.asarray(v[k]) for k in sorted(v.keys(), key=int)]
    except (OSError, KeyError) as e:
        raise UserError(f"{path}: cannot read the weights in the .keras archive ({e})") from None
    return KerasModel(name, layers, weights, str(path))


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_live(model) -> KerasModel:
    config = {"class_name": "Functional" if hasattr(model, "inputs") and not _is_sequential(model)
              else "Sequential", "config": model.get_config()}
    name, layers = _config_layers(config, "model")
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers}
    return KerasModel(name, layers, weights, f"model {model.name!r}")


def _is_sequential(model) -> bool:
    return type(model).__name__ == "Sequential"


# ----------------------------------------------------------------------------- building
def keras_to_ir(source, precision: Precision | None = None) -> Graph:
    """Read a Keras/QKeras model into an (unquantised-weight) IR graph."""
    precision = precision or Precision()
    km = read_keras(source)
    unsupported = [(lc.get("config", {}).get("name", "?"), lc.get("class_name")) for lc in km.layers
                   if lc.get("class_name") not in SUPPORTED_LAYERS]
    if unsupported:
        listed = ", ".join(f"{n!r} ({c})" for n, c in unsupported)
        raise UserError(f"{km.source}: unsupported layer(s) {listed}; supported layers: "
                        f"{', '.join(SUPPORTED_LAYERS)}")
    builder = _Builder(km, precision)
    for lc in km.layers:
        builder.add(lc)
    graph = Graph(_safe_name(km.name), builder.nodes, [builder.nodes[-1].name])
    return graph


def _safe_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else f"m_{out}"


class _Builder:
    def __init__(self, km: KerasModel, precision: Precision):
        self.km, self.p = km, precision
        self.nodes: list[Op] = []
        self.quantized_input = False

    @property
    def last(self) -> str:
        return self.nodes[-1].name

    def _append(self, node: Op) -> None:
        self.nodes.append(node)

    def _ensure_input(self, cfg: dict) -> None:
        if self.nodes:
            return
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape is None and "build_config" in cfg:
            shape = cfg["build_config"].get("input_shape")
        if shape is None:
            raise UserError(f"{self.km.source}: cannot find the model's input shape")
        if any(s is None for s in shape[1:]):
            raise UserError(f"{self.km.source}: input shape {shape[1:]} has unknown dimensions; "
                            "fixed shapes are needed for firmware")
        self._append(Input("input", [], out_type=self.p.input_type, shape=tuple(int(s) for s in shape[1:]),
                           source_layer=cfg.get("name", "input")))

    def add(self, lc: dict) -> None:
        cls, cfg = lc["class_name"], lc.get("config", {})
        name = cfg.get("name", cls.lower())
        where = f"{self.km.source}: layer {name!r} ({cls})"
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UserError(f"{where}: data_format {cfg['data_format']!r} is not supported; use channels_last")
        if cls == "InputLayer":
            self._ensure_input({**cfg, "name": name})
            return
        if "build_config" in lc and not self.nodes:
            cfg = {**cfg, "build_config": lc["build_config"]}
        self._ensure_input(cfg)
        handler = getattr(self, "_" + cls.lower())
        handler(name, cfg, where)

    # -- layers -----------------------------------------------------------------
    def _weights(self, name: str, where: str) -> list[np.ndarray]:
        w = self.km.weights.get(name)
        if not w:
            raise UserError(f"{where}: no weights found in the file")
        return w

    def _dense(self, name: str, cfg: dict, where: str, qkeras: bool = False) -> None:
        w = self._weights(name, where)
        kq = qq.weight_quantizer(qq.parse_quantizer(cfg.get("kernel_quantizer"), where), where)
        bq = qq.weight_quantizer(qq.parse_quantizer(cfg.get("bias_quantizer"), where), where)
        bias = w[1].astype(np.float64) if cfg.get("use_bias", True) and len(w) > 1 else None
        self._append(Dense(name, [self.last], kernel=w[0].astype(np.float64), bias=bias,
                           kernel_quantizer=kq, bias_quantizer=bq, source_layer=name,
                           auto_frac=None if kq else self.p.activation_frac))
        self._activation_after(name, cfg.get("activation"), where, quantized=kq is not None, qkeras=qkeras)

    def _qdense(self, name: str, cfg: dict, where: str) -> None:
        self._dense(name, cfg, where, qkeras=True)

    def _conv2d(self, name: str, cfg: dict, where: str, qkeras: bool = False) -> None:
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1) or cfg.get("groups", 1) != 1:
            raise UserError(f"{where}: dilated or grouped convolutions are not supported")
        padding = cfg.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise UserError(f"{where}: padding {padding!r} is not supported; use valid or same")
        w = self._weights(name, where)
        kq = qq.weight_quantizer(qq.parse_quantizer(cfg.get("kernel_quantizer"), where), where)
        bq = qq.weight_quantizer(qq.parse_quantizer(cfg.get("bias_quantizer"), where), where)
        bias = w[1].astype(np.float64) if cfg.get("use_bias", True) and len(w) > 1 else None
        self._append(Conv2D(name, [self.last], kernel=w[0].astype(np.float64), bias=bias,
                            kernel_quantizer=kq, bias_quantizer=bq, source_layer=name,
                            strides=tuple(_pair(cfg.get("strides", 1))), padding=padding,
                            auto_frac=None if kq else self.p.activation_frac))
        self._activation_after(name, cfg.get("activation"), where, quantized=kq is not None, qkeras=qkeras)

    def _qconv2d(self, name: str, cfg: dict, where: str) -> None:
        self._conv2d(name, cfg, where, qkeras=True)

    def _maxpooling2d(self, name: str, cfg: dict, where: str) -> None:
        pool = _pair(cfg.get("pool_size", 2))
        strides = _pair(cfg.get("strides") or pool)
        padding = cfg.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise UserError(f"{where}: padding {padding!r} is not supported")
        self._append(MaxPool2D(name, [self.last], pool_size=pool, strides=strides, padding=padding,
                               source_layer=name))

    _maxpool2d = _maxpooling2d

    def _flatten(self, name: str, cfg: dict, where: str) -> None:
        self._append(Reshape(name, [self.last], target_shape=(-1,), source_layer=name))

    def _reshape(self, name: str, cfg: dict, where: str) -> None:
        self._append(Reshape(name, [self.last], target_shape=tuple(cfg["target_shape"]), source_layer=name))

    def _dropout(self, name: str, cfg: dict, where: str) -> None:
        return  # identity at inference

    def _batchnormalization(self, name: str, cfg: dict, where: str) -> None:
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        if axis not in (-1,) and not (isinstance(axis, int) and axis >= 1):
            raise UserError(f"{where}: only BatchNormalization over the last axis is supported")
        w = list(self._weights(name, where))
        gamma = w.pop(0) if cfg.get("scale", True) else None
        beta = w.pop(0) if cfg.get("center", True) else None
        mean, var = w[0], w[1]
        self._append(BatchNorm(name, [self.last], gamma=gamma, beta=beta, mean=mean.astype(np.float64),
                               variance=var.astype(np.float64), epsilon=float(cfg.get("epsilon", 1e-3)),
                               source_layer=name))

    def _activation(self, name: str, cfg: dict, where: str) -> None:
        self._activation_after(name, cfg.get("activation"), where, quantized=False, own_layer=True)

    def _relu(self, name: str, cfg: dict, where: str) -> None:
        if cfg.get("max_value") is not None or float(cfg.get("threshold", 0) or 0) != 0:
            raise UserError(f"{where}: ReLU with max_value or threshold is not supported")
        slope = float(cfg.get("negative_slope", 0) or 0)
        if slope != 0:
            self._leaky(name, slope, where)
            return
        self._activation_after(name, "relu", where, quantized=False, own_layer=True)

    def _leakyrelu(self, name: str, cfg: dict, where: str) -> None:
        # Keras 2 calls the slope alpha, Keras 3 negative_slope (both default to 0.3)
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        self._leaky(name, float(0.3 if slope is None else slope), where)

    def _leaky(self, name: str, slope: float, where: str, layer: str | None = None) -> None:
        if slope == 0:
            self._activation_after(name, "relu", where, quantized=False, own_layer=True)
            return
        if not 0 < slope < 1:
            raise UserError(f"{where}: leaky ReLU slope {slope:g} is not supported; it must satisfy "
                            "0 <= slope < 1")
        self._append(Activation(name, [self.last], function="leaky_relu", alpha=slope,
                                source_layer=layer or name, auto_frac=self.p.activation_frac))

    def _qactivation(self, name: str, cfg: dict, where: str) -> None:
        act = cfg.get("activation")
        if isinstance(act, str) and act in KERAS_ACTIVATIONS:
            self._activation_after(name, act, where, quantized=False, own_layer=True, qkeras=True)
            return
        function, out_type = qq.activation_of(qq.parse_quantizer(act, where), where)
        if function == "linear" and len(self.nodes) == 1 and not self.quantized_input:
            # A quantiser right on the input defines the input type: the float samples are
            # rounded once, exactly as QKeras rounds them (no double rounding).
            self.nodes[0].out_type = out_type
            self.quantized_input = True
            return
        self._quantiser(Activation(name, [self.last], out_type=out_type, function=function, source_layer=name))

    def _quantiser(self, node: Activation) -> None:
        """Append a quantiser of the source model.  It sees the exact value the framework
        computes before it: the exact activations (relu, linear, leaky_relu, ... of
        `ActivationFunction.piecewise_linear`) and the layer right before it lose any
        compiler-chosen rounding (``auto_frac``), so the quantiser rounds once, as QKeras
        does.  Max-pooling and reshapes in between move values without changing them, so
        the walk goes through them.  A type set by a quantiser or the model is kept."""
        for prev in reversed(self.nodes):
            if prev.out_type is not None:
                break
            prev.auto_frac = None
            if not (isinstance(prev, (MaxPool2D, Reshape)) or
                    (isinstance(prev, Activation) and prev.properties.piecewise_linear)):
                break   # the linear layer (or whatever computes the value): exact from here up
        self._append(node)

    # -- activations ------------------------------------------------------------
    def _activation_after(self, layer: str, act, where: str, quantized: bool, own_layer: bool = False,
                          qkeras: bool = False) -> None:
        """The activation of a layer (or an Activation layer): float keras functions get
        the model's default precision, except a linear or relu of an exact value (a
        quantised layer's accumulator), which stays exact; QKeras quantiser activations
        their exact type, and the value before them stays exact (`_quantiser`).
        ``qkeras``: a QKeras layer's, where a name means QKeras's function (`QKERAS_ONLY`)."""
        name = layer if own_layer else f"{layer}_{_act_name(act)}"
        if isinstance(act, dict) and act.get("class_name") not in qq.SUPPORTED:
            act = act.get("config", {}).get("name", act.get("class_name"))
            act = act if isinstance(act, str) else None
        if isinstance(act, (dict,)) or (isinstance(act, str) and "(" in act):
            function, out_type = qq.activation_of(qq.parse_quantizer(act, where), where)
            self._quantiser(Activation(name, [self.last], out_type=out_type, function=function, source_layer=layer))
            return
        if act in QKERAS_ONLY and not qkeras:
            raise UserError(f"{where}: activation {act!r} is not supported in a Keras layer: {QKERAS_ONLY[act]}")
        if act not in KERAS_ACTIVATIONS:
            raise UserError(f"{where}: activation {act!r} is not supported; supported: "
                            f"{', '.join(k for k in KERAS_ACTIVATIONS if k)} and QKeras quantized_relu/quantized_bits")
        function = KERAS_ACTIVATIONS[act]
        if function == "linear":
            if not own_layer:
                return  # float layers already round to the activation precision; QKeras ones stay exact
            self._append(Activation(name, [self.last], function="linear", source_layer=layer,
                                    auto_frac=None if quantized else self.p.activation_frac))
        elif function in ("tanh", "sigmoid"):
            self._append(Activation(name, [self.last], function=function, table=self.p.table(function),
                                    source_layer=layer))
        elif function == "leaky_relu":
            self._leaky(name, LEAKY_ACTIVATION_SLOPE, where, layer)
        elif function == "softmax":
            n = self.nodes[-1]
            n_classes = n.n_out if isinstance(n, Dense) else 0
            if not n_classes:
                raise UserError(f"{where}: softmax is supported after a Dense layer only")
            exp, inv, out = self.p.softmax_tables(n_classes)
            self._append(Activation(name, [self.last], out_type=out, function="softmax", table=exp,
                                    inv_table=inv, source_layer=layer))
        elif function == "relu" and self._exact_last():
            # relu of an exact value (a quantised layer's accumulator, a quantiser's output)
            # is exact, as the framework computes it: no compiler-chosen rounding
            self._append(Activation(name, [self.last], function=function, source_layer=layer))
        else:  # relu of a float layer, hard_tanh, hard_sigmoid
            self._append(Activation(name, [self.last], function=function, source_layer=layer,
                                    auto_frac=self.p.activation_frac))

    def _exact_last(self) -> bool:
        """The last node's value is what the source model computes (a quantised layer's
        exact accumulator, a quantiser's output): not the input, not compiler-rounded."""
        last = self.nodes[-1]
        return not isinstance(last, Input) and last.auto_frac is None


def _act_name(act) -> str:
    if isinstance(act, str):
        return act.split("(")[0]
    if isinstance(act, dict):
        return str(act.get("class_name", "act"))
    return "act"


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))
