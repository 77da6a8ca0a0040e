"""Keras / QKeras frontend: ``.h5`` (Keras 1.x/2.0.x/2.x, QKeras), ``.keras`` (Keras 3) and live models.

Files are read with h5py and the saved JSON config, so compiling never imports
TensorFlow.  A Sequential is a chain; a Functional model is read as its graph
(`keras_graph`: branches, joins, several inputs and outputs), or in order when it is a
chain.  The config forms read: a Sequential whose ``"config"`` is
the layer list itself (Keras 1.x and 2.0.x), a Sequential or Functional (``Model``) whose
``"config"`` holds ``"layers"`` (Keras 2.1+ and 3); Keras 1 layer attributes
(``output_dim``, ``bias``, ``border_mode``, ``subsample``, ``nb_filter``, ``dim_ordering``,
``Convolution2D``) are read as their Keras 2 names (`_modernize`).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnfpga.compiler.frontends import keras_checks as kc
from nnfpga.compiler.frontends import keras_hgq as hgq
from nnfpga.compiler.frontends import qkeras_quantizers as qq
from nnfpga.compiler.frontends.keras_archive import read_archive
from nnfpga.compiler.frontends.keras_graph import MERGE_LAYERS, Topology, concat_axis, functional_topology, layer_shapes
from nnfpga.compiler.frontends.keras_shapes import check_chain
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import (Activation, Add, BatchNorm, Concatenate, Conv2D, Dense, Gather, Input, MaxPool2D, Op,
                           Reshape, ScaleShift)
from nnfpga.ir.ops.conv2d import averaging_kernel
from nnfpga.ir.ops.gather import permutation, repetition

#: Every layer class read, with the IR ops it may become (its activation included; a
#: Dropout is nothing at inference).  `SUPPORTED_LAYERS` and the supported-layers table of
#: the README (`nnfpga.compiler.coverage`) are made from it; tests check that the IR of a
#: layer holds no other op.
LAYER_OPS: dict[str, tuple[str, ...]] = {
    "InputLayer": ("Input", "Gather"),   # several inputs: each cut out of one flat input
    "Dense": ("Dense", "Activation"), "QDense": ("Dense", "Activation"),
    "Conv2D": ("Conv2D", "Activation"), "QConv2D": ("Conv2D", "Activation"),
    "Conv1D": ("Reshape", "Conv2D", "Activation"), "QConv1D": ("Reshape", "Conv2D", "Activation"),
    "MaxPooling2D": ("MaxPool2D",), "MaxPool2D": ("MaxPool2D",),
    "MaxPooling1D": ("Reshape", "MaxPool2D"), "MaxPool1D": ("Reshape", "MaxPool2D"),
    "GlobalMaxPooling1D": ("Reshape", "MaxPool2D"), "GlobalMaxPool1D": ("Reshape", "MaxPool2D"),
    "GlobalMaxPooling2D": ("MaxPool2D", "Reshape"), "GlobalMaxPool2D": ("MaxPool2D", "Reshape"),
    "AveragePooling2D": ("Conv2D",), "AvgPool2D": ("Conv2D",),
    "AveragePooling1D": ("Reshape", "Conv2D"), "AvgPool1D": ("Reshape", "Conv2D"),
    "GlobalAveragePooling1D": ("Reshape", "Conv2D"), "GlobalAvgPool1D": ("Reshape", "Conv2D"),
    "GlobalAveragePooling2D": ("Conv2D", "Reshape"), "GlobalAvgPool2D": ("Conv2D", "Reshape"),
    "Flatten": ("Reshape",), "Reshape": ("Reshape",),
    "Permute": ("Gather",), "UpSampling1D": ("Gather",), "UpSampling2D": ("Gather",),
    "BatchNormalization": ("BatchNorm", "ScaleShift"),   # folded, or a ScaleShift (fold_batchnorm)
    "QBatchNormalization": ("BatchNorm", "ScaleShift", "Activation"),
    "Activation": ("Activation",), "QActivation": ("Activation",), "ReLU": ("Activation",),
    "LeakyReLU": ("Activation",),
    "Dropout": (),
    "Rescaling": ("ScaleShift",),
    **MERGE_LAYERS,   # Functional models: the joins of branches
    **hgq.LAYER_OPS,   # HGQ2's Quantizer, QDense, QConv2D (`keras_hgq`)
}
SUPPORTED_LAYERS = tuple(LAYER_OPS)
#: Layers that take a (steps, channels) tensor as the IR's (1, steps, channels) image, and
#: layers that do not care which of the two shapes they see (element-wise, Flatten).
_ONE_D_LAYERS = {"Conv1D", "QConv1D", "MaxPooling1D", "MaxPool1D", "GlobalMaxPooling1D", "GlobalMaxPool1D",
                 "AveragePooling1D", "AvgPool1D", "GlobalAveragePooling1D", "GlobalAvgPool1D"}
#: 1-D layers whose output has the Keras shape (no image form any more)
_FLAT_OUTPUT_LAYERS = ("Flatten", "GlobalMaxPooling1D", "GlobalMaxPool1D", "GlobalAveragePooling1D", "GlobalAvgPool1D")
_ANY_SHAPE_LAYERS = {"Activation", "QActivation", "ReLU", "LeakyReLU", "Dropout", "BatchNormalization", "Rescaling",
                     "QBatchNormalization", "Flatten"}
KERAS_ACTIVATIONS = {"linear": "linear", None: "linear", "relu": "relu", "tanh": "tanh",
                     "sigmoid": "sigmoid", "softmax": "softmax", "hard_tanh": "hard_tanh",
                     "leaky_relu": "leaky_relu", "hard_sigmoid": "hard_sigmoid"}
#: Activation names whose meaning is QKeras's only: in a QActivation or as the activation
#: of a QDense/QConv2D (QKeras's ``get_quantizer``), not in a Keras layer.
QKERAS_ONLY = {"hard_sigmoid": "Keras's hard_sigmoid is another function (0.2*x + 0.5 in Keras 2, "
                               "relu6(x + 3)/6 in Keras 3, clipped to [0, 1]); the hard sigmoid supported is "
                               "QKeras's clip(0.5*x + 0.5, 0, 1): QActivation('hard_sigmoid'), a QDense/QConv2D "
                               "activation 'hard_sigmoid', or ONNX HardSigmoid(alpha=0.5, beta=0.5)"}
#: The graph annotation naming what the source model defines exactly (QKeras): the input
#: and activation quantisers (``{"out_type": ...}``) and the quantised layers
#: (``{"kernel_quantizer": ..., "bias_quantizer": ...}``); the error bound against the
#: framework (`nnfpga.compiler.passes.error_bound.framework_bound`) reads it.
FRAMEWORK_EXACT = "framework_exact"
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
    weights_file: str = ""
    #: the connectivity of a Functional model that is not a chain (None: a chain)
    topology: Topology | None = None

    def __post_init__(self) -> None:
        self.weights_file = self.weights_file or self.source


@dataclass(frozen=True)
class KerasJson:
    """A Keras model held as two files: its architecture (``model.to_json()``, a ``.json``
    file) and its weights (``model.save_weights`` or a whole-model ``.h5``)."""

    architecture: str | Path
    weights: str | Path

    @property
    def name(self) -> str:
        return Path(self.architecture).stem

    def __str__(self) -> str:
        return f"{self.architecture} (weights {self.weights})"


#: The weights files looked for beside ``NAME.json`` when none is given (in this order).
PAIRED_WEIGHTS = ("{stem}.h5", "{stem}.hdf5", "{stem}_weights.h5", "{stem}.weights.h5")


def paired_weights(architecture: str | Path) -> Path | None:
    """The weights file beside a ``.json`` architecture file with the same name
    (`PAIRED_WEIGHTS`), None when there is none; two of them are a user error (which?)."""
    path = Path(architecture)
    found = [path.with_name(p.format(stem=path.stem)) for p in PAIRED_WEIGHTS]
    found = [f for f in found if f.is_file()]
    if len(found) > 1:
        raise UserError(f"{path}: several weights files beside it ({', '.join(f.name for f in found)}); say "
                        "which with --weights (in Python weights=...)")
    return found[0] if found else None


def with_weights(model, weights):
    """``model`` with its weights file: a `KerasJson` for a ``.json`` architecture file
    (with ``weights``, or else the file beside it with the same name, `paired_weights`);
    ``model`` itself otherwise.  Weights for anything but a ``.json`` are a user error."""
    if weights is None:
        if isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".json":
            found = paired_weights(model)
            return KerasJson(model, found) if found is not None else model
        return model
    if not (isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".json"):
        raise UserError(f"weights {weights} given for {model}: a weights file goes with a Keras .json "
                        "architecture file only")
    return KerasJson(model, weights)


def read_keras(source) -> KerasModel:
    if isinstance(source, KerasJson):
        return _read_json(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise UserError(f"{path}: no such file")
        if path.suffix == ".keras":
            return _read_keras3(path)
        if path.suffix in (".h5", ".hdf5"):
            return _read_h5(path)
        if path.suffix == ".json":
            raise UserError(f"{path}: a Keras .json file holds the architecture only, not the weights; give "
                            "the weights file too (nnfpga compile model.json --weights model_weights.h5; "
                            "in Python weights='model_weights.h5'), or put it beside the .json as "
                            f"{' or '.join(p.format(stem=path.stem) for p in PAIRED_WEIGHTS)}")
        raise UserError(f"{path}: unknown model format {path.suffix!r}; supported: .h5/.hdf5 and .keras "
                        "(Keras), .onnx (ONNX), .pt/.pth (PyTorch), and .json with --weights (a Keras "
                        "architecture file and its weights file)")
    if hasattr(source, "get_config") and hasattr(source, "layers"):
        return _read_live(source)
    raise UserError(f"cannot read a model from {type(source).__name__}; pass a .h5/.keras path or a Keras model")


def _config_layers(config, where: str) -> tuple[str, list[dict], Topology | None]:
    cls = config.get("class_name") if isinstance(config, dict) else None
    cfg = config.get("config", {}) if isinstance(config, dict) else None
    if cls not in ("Sequential", "Functional", "Model"):
        raise UserError(f"{where}: top-level {cls!r} is not a Sequential or Functional model (field "
                        "'class_name' of the model config); supported: Sequential, Functional, Model")
    if cls == "Sequential" and isinstance(cfg, list):
        # Keras 1.x and 2.0.x: a Sequential's config is its layer list, with no name
        cfg = {"name": "sequential", "layers": cfg}
    layers = cfg.get("layers") if isinstance(cfg, dict) else None
    if not isinstance(layers, list):
        raise UserError(f"{where}: the model config of the {cls} holds no layer list (field 'layers' is "
                        f"{'missing' if layers is None else 'a JSON ' + kc.json_kind(layers)})")
    kc.check_layer_list(layers, where, cls)
    topology = functional_topology(cfg, layers, where) if cls != "Sequential" else None
    name = cfg.get("name")
    return (name if isinstance(name, str) and name else "model", [_modernize(lc, where) for lc in layers],
            topology)


#: Keras 1 layer attribute names and their Keras 2 names (same meaning).
_KERAS1_KEYS = {"output_dim": "units", "bias": "use_bias", "border_mode": "padding", "subsample": "strides",
                "nb_filter": "filters"}
#: Keras 1 layer class names and their Keras 2 names.
_KERAS1_CLASSES = {"Convolution2D": "Conv2D"}


def _modernize(lc: dict, where: str) -> dict:
    """A Keras 1 layer config with its Keras 2 attribute and class names; any other
    config unchanged.  Keras 1 ``dim_ordering`` 'tf' is channels_last; 'th' (channels
    first, kernels stored in another layout) is refused naming the layer."""
    cfg = lc.get("config")
    if not isinstance(cfg, dict):
        return lc
    cls = _KERAS1_CLASSES.get(lc["class_name"], lc["class_name"])
    if cls == "BatchNormalization" and "mode" in cfg:
        raise UserError(f"{where}: layer {cfg.get('name', '?')!r} (BatchNormalization): a Keras 1 batch "
                        "normalization (with 'mode') is not supported; re-save the model with Keras 2 or later")
    out = dict(cfg)
    for old, new in _KERAS1_KEYS.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    if "nb_row" in out and "kernel_size" not in out:
        out["kernel_size"] = [out.pop("nb_row"), out.pop("nb_col", None)]
    if "dim_ordering" in out:
        ordering = out.pop("dim_ordering")
        if ordering != "tf":
            raise UserError(f"{where}: layer {cfg.get('name', '?')!r} ({lc['class_name']}): Keras 1 "
                            f"dim_ordering {kc.short(ordering)} is not supported; only 'tf' (channels last)")
        out.setdefault("data_format", "channels_last")
    if "batch_input_shape" not in out and out.get("input_dim") is not None:
        out["batch_input_shape"] = [None, out["input_dim"]]
    return {**lc, "class_name": cls, "config": out}


def _h5_names(group, name: str, where: str) -> list[str]:
    """A list-of-names attribute, also when Keras split it over ``name0``, ``name1``, ...
    (``save_attributes_to_hdf5_group``, Keras 2.0.3+, for lists over the HDF5 header limit)."""
    if name in group.attrs:
        parts = [group.attrs[name]]
    else:
        parts, k = [], 0
        while f"{name}{k}" in group.attrs:
            parts.append(group.attrs[f"{name}{k}"])
            k += 1
    names = []
    for part in parts:
        values = np.asarray(part)
        if values.ndim != 1:
            raise UserError(f"{where}: attribute {name!r} is {kc.short(values.tolist())}; it must be a list of names")
        if len(names) + len(values) > kc.MAX_LAYERS:
            raise UserError(f"{where}: attribute {name!r} lists over {kc.MAX_LAYERS} names; a model file lists "
                            f"at most {kc.MAX_LAYERS} layers, and a layer a few weights")
        for n in values:
            names.append(_h5_name(n, name, where))
    return names


def _h5_name(n, attribute: str, where: str) -> str:
    if isinstance(n, bytes):
        try:
            return n.decode()
        except UnicodeDecodeError:
            pass
    elif isinstance(n, str):
        return n
    shown = n.item() if isinstance(n, np.generic) else n
    raise UserError(f"{where}: attribute {attribute!r} holds {kc.short(shown)}, not a name; every entry must be a string")


def _open_h5(path, what: str):
    """An HDF5 file opened for reading, or a `UserError` saying the file is not one."""
    import h5py
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{what}: not a readable HDF5 file ({_first_line(e)}); supported model files: .h5 and "
                        ".hdf5 (Keras model.save, HDF5), .keras (Keras 3 zip), .json with --weights, "
                        ".onnx") from None


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _read_h5(path: Path) -> KerasModel:
    with _open_h5(path, str(path)) as f:
        try:
            if "model_config" not in f.attrs:
                raise UserError(f"{path}: holds no model architecture (no 'model_config' attribute; saved with "
                                "save_weights?); save the whole model with model.save(), or give the "
                                "architecture as a .json file with --weights")
            raw = _bounded_attr(f, "model_config", str(path))
            config = kc.parse_config(raw, f"{path}: attribute 'model_config'")
            name, layers, topology = _config_layers(config, str(path))
            weights = _h5_weights(f, layers, path)
        except (OSError, KeyError) as e:
            raise UserError(f"{path}: not a readable HDF5 model file ({_first_line(e)})") from None
    return KerasModel(name, layers, weights, str(path), topology=topology)


def _bounded_attr(f, name: str, where: str):
    """An attribute's value, refused from its stored size before it is read if it is
    larger than any model config."""
    size = f.attrs.get_id(name).get_storage_size()
    if size > kc.MAX_CONFIG_BYTES:
        raise UserError(f"{where}: attribute {name!r} is {size} bytes, over the limit of "
                        f"{kc.MAX_CONFIG_BYTES} bytes for a model config")
    return f.attrs[name]


def _h5_weights(f, layers: list[dict], path) -> dict[str, list[np.ndarray]]:
    """Each layer's weights, in saved order, from a whole-model file (``model_weights``
    group) or a ``save_weights`` file (layer groups at the root)."""
    import h5py
    group = _stored_here(f, "model_weights", str(path), "group") if "model_weights" in f else f
    if not isinstance(group, h5py.Group):
        raise UserError(f"{path}: 'model_weights' is an HDF5 {type(group).__name__}, not a group of layers")
    weights = {}
    for layer in layers:
        lname = kc.layer_name(layer)
        if lname not in group:
            continue
        g = _stored_here(group, lname, f"{path}: layer {lname!r}", "weights group")
        where = f"{path}: layer {lname!r} ({layer['class_name']})"
        if not isinstance(g, h5py.Group):
            raise UserError(f"{where}: the weights entry {lname!r} is an HDF5 {type(g).__name__}, not a group")
        names = _h5_names(g, "weight_names", where)
        missing = [n for n in names if n not in g]
        if missing:
            raise UserError(f"{where}: weight(s) {', '.join(missing)} are named in attribute 'weight_names' "
                            "but not stored in the file")
        weights[lname] = [kc.load_weight(_stored_here(g, n, where), where, n) for n in names]
    return weights


def _stored_here(group, name: str, where: str, what: str = "weight"):
    """The object ``name`` of ``group``, refusing an external link: a model file's
    weights must be in the file itself, not read from another file it points to."""
    import h5py
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise UserError(f"{where}: {what} {name!r} is an external link to {link.filename!r}; weights must be "
                        "stored in the model file itself")
    try:
        return group[name]
    except (KeyError, OSError, RuntimeError) as e:  # RuntimeError: h5py's for a soft-link loop
        raise UserError(f"{where}: {what} {name!r} cannot be opened ({_first_line(e)})") from None


def _read_json(source: KerasJson) -> KerasModel:
    """A ``.json`` architecture (``model.to_json()``, any Keras version's form) with the
    weights of an ``.h5`` file, matched to the layers by name."""
    arch, wpath = Path(source.architecture), Path(source.weights)
    for p in (arch, wpath):
        if not p.exists():
            raise UserError(f"{p}: no such file" + (f" (the weights for {arch.name}, given with --weights)"
                                                   if p == wpath else ""))
        if not p.is_file():
            raise UserError(f"{p}: not a file (a directory?); give the {'weights' if p == wpath else 'model'} "
                            "file itself")
    size = arch.stat().st_size
    if size > kc.MAX_CONFIG_BYTES:
        raise UserError(f"{arch}: {size} bytes, over the limit of {kc.MAX_CONFIG_BYTES} bytes for a Keras "
                        "JSON architecture file")
    config = kc.parse_config(arch.read_bytes(), str(arch))
    name, layers, topology = _config_layers(config, str(arch))
    with _open_h5(wpath, f"{wpath} (the weights for {arch.name})") as f:
        try:
            if "layers" in f and "model_weights" not in f and not _h5_names(f, "layer_names", str(wpath)):
                weights = _keras3_weights(f, layers, config.get("class_name") == "Sequential", wpath)
            else:
                weights = _h5_weights(f, layers, wpath)
        except (OSError, KeyError) as e:
            raise UserError(f"{wpath}: not a readable HDF5 weights file ({_first_line(e)})") from None
    return KerasModel(name, layers, weights, str(arch), str(wpath), topology)


def _read_keras3(path: Path) -> KerasModel:
    import h5py
    raw_config, blob = read_archive(path)
    config = kc.parse_config(raw_config, f"{path}: member 'config.json'")
    name, layers, topology = _config_layers(config, f"{path}: member 'config.json'")
    where = f"{path}: member 'model.weights.h5'"
    try:
        f = h5py.File(io.BytesIO(blob), "r")
    except OSError as e:
        raise UserError(f"{where}: not a readable HDF5 file ({_first_line(e)})") from None
    with f:
        try:
            weights = _keras3_weights(f, layers, config.get("class_name") == "Sequential", where)
        except (OSError, KeyError) as e:
            raise UserError(f"{where}: cannot read the weights ({_first_line(e)})") from None
    return KerasModel(name, layers, weights, str(path), where, topology)


def _keras3_weights(f, layers: list[dict], sequential: bool, where) -> dict[str, list[np.ndarray]]:
    """Weights in Keras 3's layout (``model.weights.h5`` of a .keras archive, or a
    ``save_weights`` file): each layer's variables under a path named after its class in
    snake case, numbered among its siblings (dense, dense_1, ...), not under the layer's
    name; a Sequential's InputLayer has none."""
    import h5py
    weights = {}
    seen: dict[str, int] = {}
    root = _stored_here(f, "layers", str(where), "group") if "layers" in f else None
    if not isinstance(root, h5py.Group):
        raise UserError(f"{where}: no 'layers' group of weights (Keras 3 layout) in the file")
    for layer in layers:
        if sequential and layer.get("class_name") == "InputLayer":
            continue
        base = _snake_case(layer.get("class_name", ""))
        key = base if base not in seen else f"{base}_{seen[base]}"
        seen[base] = seen.get(base, 0) + 1
        entry = _stored_here(root, key, str(where), "weights group") if key in root else None
        if not isinstance(entry, h5py.Group) or "vars" not in entry:
            continue
        lname = kc.layer_name(layer)
        at = f"{where}: layer {lname!r} ({layer['class_name']}), weights 'layers/{key}/vars'"
        v = _stored_here(entry, "vars", at, "group")
        if not isinstance(v, h5py.Group):
            raise UserError(f"{at} is an HDF5 {type(v).__name__}, not a group of numbered variables")
        odd = [k for k in v.keys() if not (k.isdigit() and k.isascii())]
        if odd:
            raise UserError(f"{at} holds variable(s) named {', '.join(repr(k) for k in odd[:5])}; Keras 3 "
                            "numbers a layer's variables 0, 1, ...")
        weights[lname] = [kc.load_weight(_stored_here(v, k, at), at, k) for k in sorted(v.keys(), key=int)]
        weights.update(hgq.quantizer_weights(entry, lname, str(where), _stored_here))   # HGQ2's nested quantisers
    return weights


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_live(model) -> KerasModel:
    config = {"class_name": "Functional" if hasattr(model, "inputs") and not _is_sequential(model)
              else "Sequential", "config": model.get_config()}
    name, layers, topology = _config_layers(config, "model")
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers}
    return KerasModel(name, layers, weights, f"model {model.name!r}", topology=topology)


def _is_sequential(model) -> bool:
    return type(model).__name__ == "Sequential"


# ----------------------------------------------------------------------------- building
def keras_to_ir(source, precision: Precision | None = None) -> Graph:
    """Read a Keras/QKeras model into an (unquantised-weight) IR graph."""
    precision = precision or Precision()
    km = read_keras(source)
    hgq.mark_layers(km.layers, km.source)
    unsupported = [(lc.get("config", {}).get("name", "?"), lc.get("class_name")) for lc in km.layers
                   if lc.get("class_name") not in SUPPORTED_LAYERS]
    if unsupported:
        listed = ", ".join(f"{n!r} ({c})" for n, c in unsupported)
        raise UserError(f"{km.source}: unsupported layer(s) {listed}; supported layers: "
                        f"{', '.join(SUPPORTED_LAYERS)}")
    joins = [kc.layer_name(lc) for lc in km.layers if lc.get("class_name") in MERGE_LAYERS]
    if joins and km.topology is None:
        raise UserError(f"{km.source}: layer(s) {kc.short(joins)} join tensors, but the model's config "
                        "records no connectivity ('inbound_nodes'); save the model with model.save()")
    builder = _Builder(km, precision)
    if km.topology is None:
        shapes = check_chain(km.layers, km.weights, km.source, km.weights_file)
        for lc, shape in zip(km.layers, shapes):
            builder.add(lc, shape)
        builder.as_keras_shape(shapes[-1])
        output = builder.last
    else:
        output = builder.add_graph(km.topology)
    graph = Graph(_safe_name(km.name), builder.nodes, [output])
    if builder.framework_exact:
        graph.annotations[FRAMEWORK_EXACT] = builder.framework_exact
    graph.annotations.update(builder.io_annotations)
    return graph


def _safe_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else f"m_{out}"


class _Builder:
    def __init__(self, km: KerasModel, precision: Precision):
        self.km, self.p = km, precision
        self.nodes: list[Op] = []
        self.quantized_input = False
        #: the last node holds a Keras (steps, channels) tensor as the IR's (1, steps,
        #: channels) image, the form 1-D layers are built in (Conv1D as a Conv2D of height 1)
        self.lifted = False
        self.in_shape: tuple[int, ...] = ()
        self.image_layer = ""   # the last 1-D layer: the image form is its
        #: what the source model itself defines exactly (`FRAMEWORK_EXACT`)
        self.framework_exact: dict[str, dict] = {}
        #: the node whose output the next layer reads (the last appended, in a chain)
        self.last = ""
        self.by_name: dict[str, Op] = {}
        #: a model with several inputs: the Gather nodes that cut each from the one input
        self.input_slices: set[str] = set()
        #: `INPUTS` / `OUTPUTS` of a model with several inputs or outputs
        self.io_annotations: dict[str, list] = {}

    def _append(self, node: Op) -> None:
        if node.name in self.by_name:
            raise UserError(f"{self.km.source}: two layers give the IR node name {node.name!r}; rename one")
        self.nodes.append(node)
        self.by_name[node.name] = node
        self.last = node.name

    def _last_node(self) -> Op:
        return self.by_name[self.last]

    # -- general graphs ----------------------------------------------------------
    def _state(self) -> _Tensor:
        return _Tensor(self.last, self.lifted, self.image_layer)

    def _restore(self, t: _Tensor) -> None:
        self.last, self.lifted, self.image_layer = t.node, t.lifted, t.image_layer

    def add_graph(self, topo: Topology) -> str:
        """Append the IR of a Functional model that is not a chain; returns the output node."""
        km = self.km
        shapes = layer_shapes(km.layers, topo, km.weights, km.source, km.weights_file)
        states: dict[str, _Tensor] = {}
        self._graph_inputs(topo, shapes, states)
        for lc in km.layers:
            cls, name = lc["class_name"], kc.layer_name(lc)
            if cls == "InputLayer":
                continue
            reads = topo.inbound[name]
            if cls in MERGE_LAYERS:
                self._merge(name, cls, lc.get("config", {}), [states[r] for r in reads], [shapes[r] for r in reads])
            else:
                self._restore(states[reads[0]])
                self.add(lc, shapes[reads[0]])
            states[name] = self._state()
        return self._graph_outputs(topo, shapes, states)

    def _free_name(self, base: str) -> str:
        taken = {kc.layer_name(lc) for lc in self.km.layers} | set(self.by_name)
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        return name

    def _graph_inputs(self, topo: Topology, shapes: dict, states: dict) -> None:
        """One Input node; with several model inputs it is their flattened concatenation
        (in the model's input order), and a Gather per input cuts its values out."""
        if len(topo.inputs) == 1:
            (name,) = topo.inputs
            self._append(Input("input", [], out_type=self.p.input_type, shape=tuple(shapes[name]), source_layer=name))
            states[name] = self._state()
            return
        sizes = [int(np.prod(shapes[n])) for n in topo.inputs]
        whole = self._free_name("input")
        self._append(Input(whole, [], out_type=self.p.input_type, shape=(sum(sizes),), source_layer=topo.inputs[0]))
        offset, listed = 0, []
        for name, size in zip(topo.inputs, sizes):
            self._append(Gather(name, [whole], target_shape=tuple(shapes[name]),
                                index=np.arange(offset, offset + size, dtype=np.int64), source_layer=name))
            self.input_slices.add(name)
            states[name] = self._state()
            listed.append({"layer": name, "shape": list(shapes[name]), "offset": offset, "size": size})
            offset += size
        self.io_annotations[INPUTS] = listed

    def _graph_outputs(self, topo: Topology, shapes: dict, states: dict) -> str:
        """The output node; several model outputs become one: their flattened values side by
        side (in the model's output order), in a type that holds each exactly."""
        flat, listed, offset = [], [], 0
        for name in topo.outputs:
            self._restore(states[name])
            self.as_keras_shape(shapes[name])
            if len(topo.outputs) == 1:
                return self.last
            size = int(np.prod(shapes[name]))
            if len(shapes[name]) > 1:
                self._append(Reshape(self._free_name(f"{name}_flat"), [self.last], target_shape=(size,),
                                     source_layer=name))
            flat.append(self.last)
            listed.append({"layer": name, "shape": list(shapes[name]), "offset": offset, "size": size})
            offset += size
        self._append(Concatenate(self._free_name("outputs"), flat, axis=0, source_layer=topo.outputs[-1]))
        self.io_annotations[OUTPUTS] = listed
        return self.last

    def _merge(self, name: str, cls: str, cfg: dict, tensors: list[_Tensor], shapes: list[tuple]) -> None:
        """Add, Subtract, Average, Concatenate of tensors in their Keras shapes."""
        where = f"{self.km.source}: layer {name!r} ({cls})"
        reads = []
        for t, shape in zip(tensors, shapes):
            self._restore(t)
            self.as_keras_shape(shape)
            reads.append(self.last)
        if cls == "Concatenate":
            self._append(Concatenate(name, reads, axis=concat_axis(cfg, len(shapes[0]), where), source_layer=name))
        elif cls == "Average":
            self._append(Add(f"{name}_sum", reads, source_layer=name))
            scale = np.full(shapes[0][-1], 1.0 / len(reads))
            self._append(ScaleShift(name, [self.last], kernel=scale, bias=None, source_layer=name,
                                    auto_frac=self.p.activation_frac))
        else:
            self._append(Add(name, reads, signs=(1, -1) if cls == "Subtract" else (), source_layer=name))

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

    def add(self, lc: dict, in_shape: tuple[int, ...] = ()) -> None:
        """Append the IR of one layer; ``in_shape``: the Keras shape that reaches it."""
        cls, cfg = lc["class_name"], lc.get("config", {})
        name = cfg.get("name", cls.lower())
        where = f"{self.km.source}: layer {name!r} ({cls})"
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UserError(f"{where}: data_format {kc.short(cfg['data_format'])} is not supported; use channels_last")
        if cls == "InputLayer":
            self._ensure_input({**cfg, "name": name})
            return
        if "build_config" in lc and not self.nodes:
            cfg = {**cfg, "build_config": lc["build_config"]}
        self._ensure_input(cfg)
        if cls in _ONE_D_LAYERS and not self.lifted:
            self._append(Reshape(self._free_name(f"{name}_as_image"), [self.last], target_shape=(1, *in_shape),
                                 source_layer=name))
            self.lifted = True
        if cls in _ONE_D_LAYERS:
            self.image_layer = name
        elif cls not in _ONE_D_LAYERS | _ANY_SHAPE_LAYERS:
            self.as_keras_shape(in_shape)
        self.in_shape = in_shape
        if cls in hgq.HANDLERS:
            hgq.HANDLERS[cls](self, name, cfg, where)
        else:
            getattr(self, "_" + cls.lower())(name, cfg, where)
        self.lifted = self.lifted and cls not in _FLAT_OUTPUT_LAYERS

    def as_keras_shape(self, shape: tuple[int, ...]) -> None:
        """Drop the image form of 1-D layers: the last node's output gets the Keras shape."""
        if self.lifted:
            self._append(Reshape(self._free_name(f"{self.last}_as_sequence"), [self.last], target_shape=tuple(shape),
                                 source_layer=self.image_layer))
            self.lifted = False

    # -- layers -----------------------------------------------------------------
    def _weights(self, name: str, where: str) -> list[np.ndarray]:
        w = self.km.weights.get(name)
        if not w:
            raise UserError(f"{where}: no weights found in the file")
        return w

    @staticmethod
    def _weight_quantizers(cfg: dict, kernel: np.ndarray, bias: np.ndarray | None, where: str):
        """The kernel and bias as the layer computes with them, and their quantisers; each
        quantiser sees its float array (QKeras's alpha='auto_po2' derives its scales from
        it; a float-scaled one gives QKeras's float32 weights and no quantiser,
        `qkeras_quantizers.layer_weights`)."""
        kernel, kq = qq.layer_weights(qq.parse_quantizer(cfg.get("kernel_quantizer"), where), where, kernel,
                                      "kernel_quantizer")
        bias, bq = qq.layer_weights(qq.parse_quantizer(cfg.get("bias_quantizer"), where), where, bias,
                                    "bias_quantizer")
        return kernel, bias, kq, bq

    def _dense(self, name: str, cfg: dict, where: str, qkeras: bool = False) -> None:
        w = self._weights(name, where)
        bias = w[1].astype(np.float64) if cfg.get("use_bias", True) and len(w) > 1 else None
        kernel, bias, kq, bq = self._weight_quantizers(cfg, w[0], bias, where)
        self._mark_weights(name, kq, bq, bias)
        self._append(Dense(name, [self.last], kernel=kernel.astype(np.float64), bias=_float64(bias),
                           kernel_quantizer=kq, bias_quantizer=bq, source_layer=name,
                           auto_frac=None if kq else self.p.activation_frac))
        self._activation_after(name, cfg.get("activation"), where, quantized=kq is not None, qkeras=qkeras)

    def _mark_weights(self, name: str, kq, bq, bias) -> None:
        """A layer whose weights the source model quantises (QKeras): the framework computes
        with those quantised weights (and its float bias when it has no bias quantiser)."""
        if kq is not None:
            self.framework_exact[name] = {"kernel_quantizer": kq.to_json(),
                                          "bias_quantizer": bq.to_json() if bq is not None else None,
                                          "float_bias": bias is not None and bq is None}

    def _qdense(self, name: str, cfg: dict, where: str) -> None:
        self._dense(name, cfg, where, qkeras=True)

    def _conv2d(self, name: str, cfg: dict, where: str, qkeras: bool = False, one_d: bool = False) -> None:
        dilation = (1, _single(cfg.get("dilation_rate", 1))) if one_d else _pair(cfg.get("dilation_rate", 1))
        if dilation != (1, 1) or cfg.get("groups", 1) != 1:
            raise UserError(f"{where}: field 'dilation_rate' is {kc.short(cfg.get('dilation_rate', 1))} and 'groups' is "
                            f"{kc.short(cfg.get('groups', 1))}: dilated or grouped convolutions are not supported; "
                            "use dilation_rate 1 and groups 1")
        padding = cfg.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise UserError(f"{where}: padding {kc.short(padding)} is not supported; use valid or same")
        w = self._weights(name, where)
        # a 1-D kernel (steps, in, out) is the 2-D kernel of height 1 (same channel axis
        # last, so per-channel quantiser scales are the same)
        kernel = w[0][None] if one_d else w[0]
        strides = (1, _single(cfg.get("strides", 1))) if one_d else _pair(cfg.get("strides", 1))
        bias = w[1].astype(np.float64) if cfg.get("use_bias", True) and len(w) > 1 else None
        kernel, bias, kq, bq = self._weight_quantizers(cfg, kernel, bias, where)
        self._mark_weights(name, kq, bq, bias)
        self._append(Conv2D(name, [self.last], kernel=kernel.astype(np.float64), bias=_float64(bias),
                            kernel_quantizer=kq, bias_quantizer=bq, source_layer=name,
                            strides=tuple(strides), padding=padding,
                            auto_frac=None if kq else self.p.activation_frac))
        self._activation_after(name, cfg.get("activation"), where, quantized=kq is not None, qkeras=qkeras)

    def _qconv2d(self, name: str, cfg: dict, where: str) -> None:
        self._conv2d(name, cfg, where, qkeras=True)

    def _conv1d(self, name: str, cfg: dict, where: str) -> None:
        self._conv2d(name, cfg, where, one_d=True)

    def _qconv1d(self, name: str, cfg: dict, where: str) -> None:
        self._conv2d(name, cfg, where, qkeras=True, one_d=True)

    def _maxpooling1d(self, name: str, cfg: dict, where: str) -> None:
        pool = _single(cfg.get("pool_size", 2))
        strides = _single(cfg.get("strides") or pool)
        self._append(MaxPool2D(name, [self.last], pool_size=(1, pool), strides=(1, strides),
                               padding=cfg.get("padding", "valid"), source_layer=name))

    _maxpool1d = _maxpooling1d

    def _global_maxpool(self, name: str, cfg: dict, rank: int) -> None:
        """The largest value of each channel: a max-pool over the whole image (a 1-D input
        is the image of height 1), then the Keras output shape."""
        h, w, c = (1, *self.in_shape) if rank == 1 else self.in_shape
        self._append(MaxPool2D(f"{name}_window", [self.last], pool_size=(h, w), strides=(h, w), padding="valid",
                               source_layer=name))
        keep = cfg.get("keepdims", False)
        self._append(Reshape(name, [self.last], target_shape=((1,) * rank + (c,)) if keep else (c,),
                             source_layer=name))

    def _average(self, name: str, pool: tuple[int, int], strides: tuple[int, int], channels: int,
                 layer: str = "") -> None:
        """Average pooling (valid padding: every window is whole) as a convolution,
        `averaging_kernel`; ``layer``: the Keras layer (default ``name``)."""
        self._append(Conv2D(name, [self.last], kernel=averaging_kernel(pool, channels), bias=None,
                            source_layer=layer or name,
                            strides=strides, padding="valid", auto_frac=self.p.activation_frac))

    def _averagepooling2d(self, name: str, cfg: dict, where: str) -> None:
        pool = _pair(cfg.get("pool_size", 2))
        self._average(name, pool, _pair(cfg.get("strides") or pool), self.in_shape[-1])

    def _averagepooling1d(self, name: str, cfg: dict, where: str) -> None:
        pool = _single(cfg.get("pool_size", 2))
        self._average(name, (1, pool), (1, _single(cfg.get("strides") or pool)), self.in_shape[-1])

    _avgpool1d, _avgpool2d = _averagepooling1d, _averagepooling2d

    def _global_average(self, name: str, cfg: dict, rank: int) -> None:
        h, w, c = (1, *self.in_shape) if rank == 1 else self.in_shape
        self._average(f"{name}_window", (h, w), (h, w), c, layer=name)
        keep = cfg.get("keepdims", False)
        self._append(Reshape(name, [self.last], target_shape=((1,) * rank + (c,)) if keep else (c,),
                             source_layer=name))

    def _globalaveragepooling1d(self, name: str, cfg: dict, where: str) -> None:
        self._global_average(name, cfg, 1)

    def _globalaveragepooling2d(self, name: str, cfg: dict, where: str) -> None:
        self._global_average(name, cfg, 2)

    _globalavgpool1d, _globalavgpool2d = _globalaveragepooling1d, _globalaveragepooling2d

    def _globalmaxpooling1d(self, name: str, cfg: dict, where: str) -> None:
        self._global_maxpool(name, cfg, 1)

    def _globalmaxpooling2d(self, name: str, cfg: dict, where: str) -> None:
        self._global_maxpool(name, cfg, 2)

    _globalmaxpool1d, _globalmaxpool2d = _globalmaxpooling1d, _globalmaxpooling2d

    def _maxpooling2d(self, name: str, cfg: dict, where: str) -> None:
        pool = _pair(cfg.get("pool_size", 2))
        strides = _pair(cfg.get("strides") or pool)
        padding = cfg.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise UserError(f"{where}: padding {kc.short(padding)} is not supported")
        self._append(MaxPool2D(name, [self.last], pool_size=pool, strides=strides, padding=padding,
                               source_layer=name))

    _maxpool2d = _maxpooling2d

    def _flatten(self, name: str, cfg: dict, where: str) -> None:
        self._append(Reshape(name, [self.last], target_shape=(-1,), source_layer=name))

    def _reshape(self, name: str, cfg: dict, where: str) -> None:
        self._append(Reshape(name, [self.last], target_shape=tuple(cfg["target_shape"]), source_layer=name))

    def _permute(self, name: str, cfg: dict, where: str) -> None:
        shape, index = permutation(self.in_shape, tuple(d - 1 for d in cfg["dims"]))
        self._append(Gather(name, [self.last], target_shape=shape, index=index, source_layer=name))

    def _upsampling(self, name: str, cfg: dict, rank: int) -> None:
        """Nearest-neighbour: each value repeated ``size`` times along each spatial axis."""
        size = (_single(cfg.get("size", 2)),) if rank == 1 else _pair(cfg.get("size", 2))
        shape, index = repetition(self.in_shape, size + (1,) * (len(self.in_shape) - rank))
        self._append(Gather(name, [self.last], target_shape=shape, index=index, source_layer=name))

    def _upsampling1d(self, name: str, cfg: dict, where: str) -> None:
        self._upsampling(name, cfg, 1)

    def _upsampling2d(self, name: str, cfg: dict, where: str) -> None:
        self._upsampling(name, cfg, 2)

    def _dropout(self, name: str, cfg: dict, where: str) -> None:
        return  # identity at inference

    def _rescaling(self, name: str, cfg: dict, where: str) -> None:
        """``x * scale + offset`` (each a number or one per channel): a ScaleShift."""
        channels = self.in_shape[-1]
        params = []
        for field, default in (("scale", 1.0), ("offset", 0.0)):
            v = np.asarray(cfg.get(field, default), dtype=np.float64).reshape(-1)
            if len(v) not in (1, channels) or not np.all(np.isfinite(v)):
                raise UserError(f"{where}: field {field!r} is {kc.short(cfg.get(field))}; it must be a finite "
                                f"number or one per channel ({channels})")
            params.append(np.broadcast_to(v, (channels,)).copy())
        scale, offset = params
        self._append(ScaleShift(name, [self.last], kernel=scale, bias=offset if np.any(offset) else None,
                                source_layer=name, auto_frac=self.p.activation_frac))

    def _batchnormalization(self, name: str, cfg: dict, where: str, quantised: bool = False) -> None:
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        if axis not in (-1,) and not (isinstance(axis, int) and axis >= 1):
            raise UserError(f"{where}: only BatchNormalization over the last axis is supported")
        w = list(self._weights(name, where))
        gamma = w.pop(0) if cfg.get("scale", True) else None
        beta = w.pop(0) if cfg.get("center", True) else None
        mean, var = w[0], w[1]
        if quantised:   # QKeras quantises each parameter, then normalises in float
            gamma, beta, mean, var = (self._bn_parameter(cfg, field, v, where) for field, v in
                                      (("gamma_quantizer", gamma), ("beta_quantizer", beta),
                                       ("mean_quantizer", mean), ("variance_quantizer", var)))
        self._append(BatchNorm(name, [self.last], gamma=gamma, beta=beta, mean=mean.astype(np.float64),
                               variance=var.astype(np.float64), epsilon=float(cfg.get("epsilon", 1e-3)),
                               source_layer=name, auto_frac=self.p.activation_frac))
        if quantised and cfg.get("activation") is not None:
            self._activation_after(name, cfg["activation"], where, quantized=False, qkeras=True)

    def _qbatchnormalization(self, name: str, cfg: dict, where: str) -> None:
        self._batchnormalization(name, cfg, where, quantised=True)

    @staticmethod
    def _bn_parameter(cfg: dict, field: str, values, where: str):
        """A QBatchNormalization parameter as QKeras uses it: through its quantiser."""
        if values is None or cfg.get(field) is None:
            return values
        q = qq.weight_quantizer(qq.parse_quantizer(cfg[field], where), where, values, field)
        return q.apply(np.asarray(values, dtype=np.float64)).value.reshape(np.shape(values))

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
        function, out_type, fields = qq.activation_of(qq.parse_quantizer(act, where), where)
        on_input = isinstance(self._last_node(), Input) or self.last in self.input_slices
        if function == "linear" and on_input and not self.quantized_input:
            # A quantiser right on the input defines the input type: the float samples are
            # rounded once, exactly as QKeras rounds them (no double rounding).
            self.nodes[0].out_type = out_type
            self.quantized_input = True
            self.framework_exact[self.nodes[0].name] = {"out_type": out_type.to_json()}
            return
        if function == "linear" and on_input and self.nodes[0].out_type != out_type:
            raise UserError(f"{where}: the model's inputs have different quantisers; one input type is "
                            f"supported (the first input's quantiser gives {self.nodes[0].out_type.cpp()})")
        if function == "linear" and on_input:
            return  # the same quantiser as another input's: the input type already is its
        self._quantiser(Activation(name, [self.last], out_type=out_type, function=function, source_layer=name,
                                   **fields))

    def _quantiser(self, node: Activation) -> None:
        """Append a quantiser of the source model.  It sees the exact value the framework
        computes before it: the exact activations (relu, linear, leaky_relu, ... of
        `ActivationFunction.piecewise_linear`) and the layer right before it lose any
        compiler-chosen rounding (``auto_frac``), so the quantiser rounds once, as QKeras
        does.  Max-pooling and reshapes in between move values without changing them, so
        the walk goes through them.  A type set by a quantiser or the model is kept."""
        prev = self._last_node()
        while prev.out_type is None:
            prev.auto_frac = None
            if not (isinstance(prev, (MaxPool2D, Reshape)) or
                    (isinstance(prev, Activation) and prev.properties.piecewise_linear)):
                break   # the linear layer (or whatever computes the value): exact from here up
            prev = self.by_name[prev.inputs[0]]
        self._append(node)
        self.framework_exact[node.name] = {"out_type": node.out_type.to_json()}

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
            function, out_type, fields = qq.activation_of(qq.parse_quantizer(act, where), where)
            self._quantiser(Activation(name, [self.last], out_type=out_type, function=function, source_layer=layer,
                                       **fields))
            return
        if act in QKERAS_ONLY and not qkeras:
            raise UserError(f"{where}: activation {kc.short(act)} is not supported in a Keras layer: {QKERAS_ONLY[act]}")
        if act not in KERAS_ACTIVATIONS:
            raise UserError(f"{where}: activation {kc.short(act)} is not supported; supported: "
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
            n = self._last_node()
            if isinstance(n, BatchNorm):
                n = self.by_name[n.inputs[0]]   # Dense -> BatchNormalization: folded into the Dense
            n_classes = n.n_out if isinstance(n, Dense) else 0
            if not n_classes:
                raise UserError(f"{where}: softmax is supported after a Dense layer (or Dense -> "
                                "BatchNormalization) only")
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
        last = self._last_node()
        return not isinstance(last, Input) and last.auto_frac is None


@dataclass(frozen=True)
class _Tensor:
    """What the builder knows of a tensor of the model: its node, and whether it holds a
    (steps, channels) tensor in the image form of 1-D layers (and which layer made it)."""

    node: str
    lifted: bool
    image_layer: str


#: Graph annotations of a model with several inputs / outputs: each one's layer, Keras
#: shape, and place (offset, size) in the one flat input / output of the firmware.
INPUTS, OUTPUTS = "inputs", "outputs"


def _act_name(act) -> str:
    if isinstance(act, str):
        return act.split("(")[0]
    if isinstance(act, dict):
        return str(act.get("class_name", "act"))
    return "act"


def _float64(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.asarray(a, dtype=np.float64)


def _single(v) -> int:
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))
