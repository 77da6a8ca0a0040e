"""Hostile Keras / QKeras model files: .h5, .keras and .json + --weights.

Every file is written here with h5py, zipfile and json in the layouts Keras writes
(``model_config`` + ``model_weights/<layer>/<layer>/<weight>:0`` for .h5; a zip of
``config.json`` and ``model.weights.h5`` with ``layers/<class>/vars/<i>`` for .keras),
from tiny models; `test_the_base_files_are_read` shows the unmodified files compile to
an IR graph, so each case's refusal comes from its one defect.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from tests.hostile.harness import Case, run_case

# ----------------------------------------------------------------------------- tiny models
SHAPE = "batch_input_shape"


def _input(shape=(None, 4), field=SHAPE) -> dict:
    return {"class_name": "InputLayer", "config": {field: list(shape), "name": "in"}}


def _dense(name="fc", units=3, **cfg) -> dict:
    return {"class_name": "Dense", "config": {"name": name, "units": units, "activation": "relu",
                                              "use_bias": True, **cfg}}


def _dense_w(n_in=4, units=3) -> list:
    rng = np.random.default_rng(0)
    return [("kernel", rng.uniform(-1, 1, (n_in, units))), ("bias", rng.uniform(-1, 1, units))]


def dense_model() -> tuple[list, dict]:
    return [_input(), _dense()], {"fc": _dense_w()}


def conv_model(conv: dict | None = None, pool: dict | None = None) -> tuple[list, dict]:
    rng = np.random.default_rng(1)
    layers = [_input((None, 6, 6, 1)),
              {"class_name": "Conv2D", "config": {"name": "conv", "filters": 2, "kernel_size": [3, 3],
                                                  "strides": [1, 1], "padding": "valid", "activation": "relu",
                                                  "use_bias": True, **(conv or {})}},
              {"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": [2, 2], "strides": [2, 2],
                                                        "padding": "valid", **(pool or {})}},
              {"class_name": "Flatten", "config": {"name": "flat"}},
              _dense("out", 2)]
    weights = {"conv": [("kernel", rng.uniform(-1, 1, (3, 3, 1, 2))), ("bias", np.zeros(2))],
               "out": _dense_w(8, 2)}
    return layers, weights


def bn_model(variance=None, epsilon=1e-3) -> tuple[list, dict]:
    var = np.ones(3) if variance is None else np.asarray(variance, dtype=float)
    layers = [_input(), _dense(activation="linear"),
              {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1, "epsilon": epsilon,
                                                              "center": True, "scale": True}}]
    return layers, {"fc": _dense_w(), "bn": [("gamma", np.ones(3)), ("beta", np.zeros(3)),
                                             ("moving_mean", np.zeros(3)), ("moving_variance", var)]}


def qdense_model(kernel_quantizer=None, activation="quantized_relu(4,2)") -> tuple[list, dict]:
    kq = {"class_name": "quantized_bits", "config": {"bits": 6, "integer": 0, "alpha": 1}} \
        if kernel_quantizer is None else kernel_quantizer
    layers = [_input(), {"class_name": "QDense", "config": {"name": "qfc", "units": 3, "use_bias": True,
                                                            "activation": activation, "kernel_quantizer": kq,
                                                            "bias_quantizer": None}}]
    return layers, {"qfc": _dense_w()}


def reshape_model(target=(2, 2)) -> tuple[list, dict]:
    cfg = {"name": "rs"} if target is None else {"name": "rs", "target_shape": list(target)}
    return [_input(), {"class_name": "Reshape", "config": cfg}, {"class_name": "Flatten", "config": {"name": "fl"}},
            _dense()], {"fc": _dense_w()}


def sequential(layers: list) -> dict:
    return {"class_name": "Sequential", "config": {"name": "tiny", "layers": layers}}


# ----------------------------------------------------------------------------- writers
def write_h5(path: Path, layers: list, weights: dict, config=None) -> None:
    """A Keras 2 whole-model .h5; ``config`` (any attribute value) replaces the JSON config."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(sequential(layers)) if config is None else config
        write_h5_weights(f.create_group("model_weights"), weights)


def write_h5_weights(group, weights: dict) -> None:
    group.attrs["layer_names"] = [n.encode() for n in weights]
    for lname, named in weights.items():
        g = group.create_group(lname)
        g.attrs["weight_names"] = [f"{lname}/{w}:0".encode() for w, _ in named]
        for w, value in named:
            g.create_dataset(f"{lname}/{w}:0", data=value)


def keras3_weights_blob(layers: list, weights: dict, edit: Callable | None = None) -> bytes:
    """``model.weights.h5`` in Keras 3's layout (variables under the snake-case class name)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        root = f.create_group("layers")
        seen: dict[str, int] = {}
        for lc in layers[1:]:
            base = {"Dense": "dense", "Conv2D": "conv2d", "MaxPooling2D": "max_pooling2d",
                    "Flatten": "flatten"}[lc["class_name"]]
            key = base if base not in seen else f"{base}_{seen[base]}"
            seen[base] = seen.get(base, 0) + 1
            v = root.create_group(f"{key}/vars")
            for i, (_, value) in enumerate(weights.get(lc["config"]["name"], [])):
                v.create_dataset(str(i), data=value)
        if edit:
            edit(f)
    return buf.getvalue()


def write_keras(path: Path, layers: list, weights: dict, config: bytes | None = None,
                blob: bytes | None = None, members: dict | None = None, method=zipfile.ZIP_DEFLATED) -> None:
    layers3 = [{**lc, "config": _keras3_shape(lc["config"])} for lc in layers]
    content = {"metadata.json": b"{}",
               "config.json": json.dumps(sequential(layers3)).encode() if config is None else config,
               "model.weights.h5": keras3_weights_blob(layers, weights) if blob is None else blob}
    content.update(members or {})
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in content.items():
            if data is not None:
                z.writestr(name, data)


def _keras3_shape(cfg: dict) -> dict:
    """Keras 3 calls the input shape batch_shape."""
    if SHAPE not in cfg:
        return cfg
    out = {k: v for k, v in cfg.items() if k != SHAPE}
    return {**out, "batch_shape": cfg[SHAPE]}


def write_json(tmp: Path, layers: list, weights: dict) -> None:
    (tmp / "m.json").write_text(json.dumps(sequential(layers)))
    with h5py.File(tmp / "w.h5", "w") as f:
        write_h5_weights(f, weights)


# ----------------------------------------------------------------------------- case makers
def compile_args(model: str, *extra: str) -> tuple[str, ...]:
    return ("compile", f"{{tmp}}/{model}", *extra, "-o", "{tmp}/out")


def h5(cid: str, messages: tuple, model=dense_model, config=None, edit: Callable | None = None) -> Case:
    """A case on ``m.h5`` written from ``model()``; ``edit(f)`` then changes the open file."""
    def setup(tmp: Path) -> None:
        write_h5(tmp / "m.h5", *model(), config=config)
        if edit:
            with h5py.File(tmp / "m.h5", "a") as f:
                edit(f)
    return Case(f"keras-h5-{cid}", compile_args("m.h5"), ("m.h5", *messages), setup)


def h5_layers(cid: str, messages: tuple, layers: list, weights: dict | None = None) -> Case:
    return h5(cid, messages, model=lambda: (layers, weights or {}))


def keras3(cid: str, messages: tuple, model=dense_model, blob: Callable[[], bytes] | None = None, **kw) -> Case:
    def setup(tmp: Path) -> None:
        write_keras(tmp / "m.keras", *model(), blob=blob() if blob else None, **kw)
    return Case(f"keras-zip-{cid}", compile_args("m.keras"), ("m.keras", *messages), setup)


def raw_file(cid: str, name: str, content: bytes | Callable[[], bytes], messages: tuple) -> Case:
    def setup(tmp: Path) -> None:
        (tmp / name).write_bytes(content() if callable(content) else content)
    return Case(f"keras-raw-{cid}", compile_args(name), (name, *messages), setup)


def json_case(cid: str, messages: tuple, model=dense_model, edit: Callable[[Path], None] | None = None) -> Case:
    def setup(tmp: Path) -> None:
        write_json(tmp, *model())
        if edit:
            edit(tmp)
    return Case(f"keras-json-{cid}", compile_args("m.json", "--weights", "{tmp}/w.h5"), messages, setup)


def _weight(layer: str, weight: str, value) -> Callable:
    """An edit replacing one stored weight by ``value``."""
    def edit(f) -> None:
        g = f[f"model_weights/{layer}"]
        del g[f"{layer}/{weight}:0"]
        g.create_dataset(f"{layer}/{weight}:0", data=value)
    return edit


def _attr(path: str, name: str, value) -> Callable:
    def edit(f) -> None:
        f[path].attrs[name] = value
    return edit


def _layer_cfg(**cfg) -> Callable:
    """The dense model with its Dense config changed."""
    return lambda: ([_input(), _dense(**cfg)], {"fc": _dense_w()})


def _conv(**cfg) -> Callable:
    return lambda: conv_model(conv=cfg)


def _pool(**cfg) -> Callable:
    return lambda: conv_model(pool=cfg)


def _onnx_bytes() -> bytes:
    """A valid one-node ONNX model (to be renamed .h5)."""
    from onnx import TensorProto, helper
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph).SerializeToString()


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _bomb_zip(tmp: Path) -> None:
    _declare_size(tmp, "config.json", 2 ** 32 - 2)


def _declare_size(tmp: Path, member: str, size: int) -> None:
    """A .keras whose ``member`` declares ``size`` bytes uncompressed: the directory entry
    is edited, so the file itself stays tiny; it must be refused from the declared size
    alone (a zip bomb)."""
    write_keras(tmp / "m.keras", *dense_model())
    data = bytearray((tmp / "m.keras").read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    while cd != -1:
        name_len = int.from_bytes(data[cd + 28:cd + 30], "little")
        if data[cd + 46:cd + 46 + name_len] == member.encode():
            data[cd + 24:cd + 28] = size.to_bytes(4, "little")  # uncompressed size
        cd = data.rfind(b"PK\x01\x02", 0, cd)
    (tmp / "m.keras").write_bytes(bytes(data))


def _external_kernel(f) -> None:
    """The kernel replaced by an HDF5 external link into a file that does not exist."""
    g = f["model_weights/fc"]
    del g["fc/kernel:0"]
    g["fc/kernel:0"] = h5py.ExternalLink("/nonexistent/elsewhere.h5", "/data")


def _looped_kernel(f) -> None:
    """The kernel replaced by a soft link that points to itself."""
    g = f["model_weights/fc"]
    del g["fc/kernel:0"]
    g["fc/kernel:0"] = h5py.SoftLink("/model_weights/fc/fc/kernel:0")


def _keras3_weights_file(edit: Callable) -> Callable[[Path], None]:
    """The --weights file in Keras 3's save_weights layout, changed by ``edit``."""
    def setup(tmp: Path) -> None:
        (tmp / "w.h5").write_bytes(keras3_weights_blob(*dense_model(), edit))
    return setup


def _encrypted_zip(tmp: Path) -> None:
    write_keras(tmp / "m.keras", *dense_model(), method=zipfile.ZIP_STORED)
    _set_flag_and_method(tmp / "m.keras", flag=0x1)


def _method_zip(tmp: Path) -> None:
    write_keras(tmp / "m.keras", *dense_model(), method=zipfile.ZIP_STORED)
    _set_flag_and_method(tmp / "m.keras", method=9)  # deflate64: not in the standard library


def _set_flag_and_method(path: Path, flag: int = 0, method: int | None = None) -> None:
    """Mark every member (local header and directory entry) encrypted or with another method."""
    data = bytearray(path.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        while at != -1:
            flags = int.from_bytes(data[at + flag_at:at + flag_at + 2], "little") | flag
            data[at + flag_at:at + flag_at + 2] = flags.to_bytes(2, "little")
            if method is not None:
                data[at + flag_at + 2:at + flag_at + 4] = method.to_bytes(2, "little")
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))


def _truncated_zip(tmp: Path) -> None:
    write_keras(tmp / "m.keras", *dense_model())
    data = (tmp / "m.keras").read_bytes()
    (tmp / "m.keras").write_bytes(data[:len(data) // 2])


def _corrupt_member(tmp: Path) -> None:
    """A member whose deflate stream is damaged while the directory is intact."""
    write_keras(tmp / "m.keras", *dense_model())
    with zipfile.ZipFile(tmp / "m.keras") as z:
        at = z.getinfo("config.json").header_offset
    data = bytearray((tmp / "m.keras").read_bytes())
    start = at + 30 + int.from_bytes(data[at + 26:at + 28], "little") + int.from_bytes(data[at + 28:at + 30], "little")
    data[start:start + 8] = b"\xff" * 8
    (tmp / "m.keras").write_bytes(bytes(data))


def _keras3_vars(edit: Callable) -> Callable:
    layers, weights = dense_model()
    return lambda: keras3_weights_blob(layers, weights, edit)


def _rename_var(f) -> None:
    f.move("layers/dense/vars/1", "layers/dense/vars/bias")


def _vars_dataset(f) -> None:
    del f["layers/dense/vars"]
    f["layers/dense"].create_dataset("vars", data=np.zeros(3))


def _external_vars(f) -> None:
    del f["layers/dense/vars"]
    f["layers/dense/vars"] = h5py.ExternalLink("/etc/hostname.h5", "/")


def _nan_keras3(f) -> None:
    del f["layers/dense/vars/0"]
    f["layers/dense/vars"].create_dataset("0", data=np.full((4, 3), np.nan))


def _drop_weights_layer(tmp: Path) -> None:
    with h5py.File(tmp / "w.h5", "a") as f:
        del f["fc"]
        f.attrs["layer_names"] = [b"other"]


def _weights_text(tmp: Path) -> None:
    (tmp / "w.h5").write_text("not weights\n")


def _weights_missing(tmp: Path) -> None:
    (tmp / "w.h5").unlink()


def _json_text(text: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / "m.json").write_text(text)


def _huge_kernel(f) -> None:
    """A kernel declaring 2**25 values, compressed to almost nothing on disk: refused from
    its header, before the data is inflated."""
    g = f["model_weights/fc"]
    del g["fc/kernel:0"]
    g.create_dataset("fc/kernel:0", shape=(2 ** 25,), dtype="f8", chunks=(2 ** 16,), compression="gzip",
                     fillvalue=1.0)


def _huge_config(tmp: Path) -> None:
    """A model_config attribute of 5 MiB (dense attribute storage needs the latest format)."""
    with h5py.File(tmp / "m.h5", "w", libver="latest") as f:
        f.attrs["model_config"] = np.bytes_(b" " * (5 * 2 ** 20) + json.dumps(sequential(dense_model()[0])).encode())


def _weights_dir(tmp: Path) -> None:
    (tmp / "w.h5").unlink()
    (tmp / "w.h5").mkdir()


NAN_KERNEL = np.where(np.eye(4, 3) > 0, np.nan, 0.5)
STRINGS = np.array([b"a", b"b", b"c"])

CASES = [
    # -- the model config attribute --------------------------------------------------------------
    h5("config-not-json", ("model_config", "not valid json"), config="{not json"),
    h5("config-list", ("model config is a json list",), config="[1, 2]"),
    h5("config-string", ("model config is a json string",), config='"Sequential"'),
    h5("config-number", ("model config is a json number",), config="42"),
    h5("config-deep", ("nested hundreds of levels",), config=_deep(50_000)),
    h5("config-deep-object", ("nested", "at most 64 levels"), config='{"a":' * 70 + "1" + "}" * 70),
    h5("config-bytes-not-utf8", ("model_config", "not utf-8"), config=np.bytes_(b"\xff\xfe{")),
    h5("config-opaque", ("model_config", "not json text"), config=np.void(b"\xff\xfe{")),
    h5("config-int-array", ("model_config", "not json text"), config=np.arange(3)),
    h5("config-huge-int", ("not valid json",), config='{"class_name": "Sequential", "units": 1' + "0" * 5000 + "}"),
    h5("config-no-attribute", ("no model architecture", "model_config"),
       edit=lambda f: f.attrs.__delitem__("model_config")),
    h5("top-level-class", ("'Bogus'", "not a sequential or functional"),
       config=json.dumps({"class_name": "Bogus", "config": {}})),
    h5("no-layers", ("has no layers",), config=json.dumps(sequential([]))),
    h5("layers-not-list", ("field 'layers'", "json string"),
       config=json.dumps({"class_name": "Sequential", "config": {"name": "x", "layers": "fc"}})),
    h5("layer-not-object", ("layer 1", "json number"), config=json.dumps(sequential([_input(), 7]))),
    h5("layer-config-null", ("layer 1", "field 'config' is null"),
       config=json.dumps(sequential([_input(), {"class_name": "Dense", "config": None}]))),
    h5("layer-config-list", ("layer 1", "field 'config'", "json list"),
       config=json.dumps(sequential([_input(), {"class_name": "Dense", "config": [1]}]))),
    h5("class-name-missing", ("layer 1", "'class_name' is missing"),
       config=json.dumps(sequential([_input(), {"config": {"name": "fc"}}]))),
    h5("class-name-number", ("layer 1", "'class_name' is 5"),
       config=json.dumps(sequential([_input(), {"class_name": 5, "config": {"name": "fc"}}]))),
    h5("layer-name-number", ("layer 1", "field 'name' is 12"),
       config=json.dumps(sequential([_input(), _dense(name=12)]))),
    h5("layer-name-huge", ("layer 1", "field 'name'", "1 to 1024 characters"),
       config=json.dumps(sequential([_input(), _dense(name="n" * 100_000)]))),
    h5("class-name-huge", ("layer 1", "'class_name' is 100000 characters"),
       config=json.dumps(sequential([_input(), {"class_name": "D" * 100_000, "config": {"name": "fc"}}]))),
    h5("inbound-nodes-number", ("'fc'", "inbound_nodes"),
       config=json.dumps({"class_name": "Functional", "config": {"name": "f", "layers": [
           _input(), {**_dense(), "inbound_nodes": 3}]}})),
    # -- the input shape --------------------------------------------------------------------------
    h5_layers("shape-string-entry", ("'in'", "batch_input_shape", "positive whole number"),
              [_input((None, "4")), _dense()], {"fc": _dense_w()}),
    h5_layers("shape-negative", ("'in'", "batch_input_shape", "-4"), [_input((None, -4)), _dense()]),
    h5_layers("shape-float", ("'in'", "batch_input_shape", "4.5"), [_input((None, 4.5)), _dense()]),
    h5_layers("shape-zero", ("'in'", "batch_input_shape"), [_input((None, 0)), _dense()]),
    h5_layers("shape-not-list", ("'in'", "batch_input_shape", "'abc'"),
              [{"class_name": "InputLayer", "config": {SHAPE: "abc", "name": "in"}}, _dense()]),
    h5_layers("shape-unknown", ("'in'", "batch_input_shape", "unknown"), [_input((None, None)), _dense()]),
    h5_layers("shape-huge", ("'in'", "batch_input_shape", "at most"), [_input((None, 100000, 100000)), _dense()]),
    h5_layers("shape-int", ("'in'", "'batch_input_shape' is 4"),
              [{"class_name": "InputLayer", "config": {SHAPE: 4, "name": "in"}}, _dense()]),
    h5_layers("shape-bool", ("'in'", "batch_input_shape", "true"), [_input((None, True)), _dense()]),
    h5_layers("keras3-shape-string", ("'in'", "'batch_shape'", "'4'"), [_input((None, "4"), "batch_shape"), _dense()]),
    h5_layers("shape-missing", ("'fc'", "input shape", "batch_input_shape"), [_dense()], {"fc": _dense_w()}),
    # -- layer fields -----------------------------------------------------------------------------
    h5("reshape-no-target", ("'rs'", "target_shape", "missing"), model=lambda: reshape_model(None)),
    h5("reshape-wrong-size", ("'rs'", "target_shape", "4 values"), model=lambda: reshape_model((3, 2))),
    h5("reshape-two-unknown", ("'rs'", "target_shape", "one may be -1"), model=lambda: reshape_model((-1, -1))),
    h5("reshape-zero", ("'rs'", "target_shape"), model=lambda: reshape_model((0, 4))),
    h5("dense-no-units", ("'fc'", "'units' is missing"), model=_layer_cfg(units=None)),
    h5("dense-zero-units", ("'fc'", "'units' is 0"), model=_layer_cfg(units=0)),
    h5("dense-huge-units", ("'fc'", "'units' is 1000000000000"), model=_layer_cfg(units=10 ** 12)),
    h5("bn-epsilon-huge-int", ("'bn'", "'epsilon' is 1000", "finite number"), model=lambda: bn_model(epsilon=10 ** 400)),
    h5("q-alpha-huge-int", ("'qfc'", "'alpha' is 3000", "finite number"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": {"bits": 6, "alpha": 3 * 10 ** 400}})),
    h5("dense-string-units", ("'fc'", "'units' is '3'"), model=_layer_cfg(units="3")),
    h5("dense-activation-list", ("'fc'", "'activation'"), model=_layer_cfg(activation=["relu"])),
    h5("conv-no-filters", ("'conv'", "'filters' is missing"), model=_conv(filters=None)),
    h5("conv-zero-filters", ("'conv'", "'filters' is 0"), model=_conv(filters=0)),
    h5("conv-no-kernel-size", ("'conv'", "'kernel_size' is missing"), model=_conv(kernel_size=None)),
    h5("conv-stride-zero", ("'conv'", "'strides' is [0, 0]"), model=_conv(strides=[0, 0])),
    h5("conv-stride-negative", ("'conv'", "'strides' is [-1, 1]"), model=_conv(strides=[-1, 1])),
    h5("conv-kernel-too-big", ("'conv'", "kernel_size", "larger than the input"),
       model=lambda: (lambda ls, ws: (ls, {**ws, "conv": [("kernel", np.zeros((7, 7, 1, 2))), ("bias", np.zeros(2))]}))(
           *conv_model(conv={"kernel_size": [7, 7]}))),
    h5("conv-dilation-string", ("'conv'", "dilation_rate"), model=_conv(dilation_rate="2")),
    h5("conv-padding", ("'conv'", "padding", "'full'"), model=_conv(padding="full")),
    h5("pool-stride-zero", ("'pool'", "'strides' is [0, 2]"), model=_pool(strides=[0, 2])),
    h5("pool-stride-negative", ("'pool'", "'strides' is -2"), model=_pool(strides=-2)),
    h5("pool-size-zero", ("'pool'", "'pool_size' is [0, 0]"), model=_pool(pool_size=[0, 0])),
    h5("pool-too-big", ("'pool'", "pool_size", "larger than the input"), model=_pool(pool_size=[5, 5])),
    h5("bn-negative-variance", ("'bn'", "moving_variance", "-2"), model=lambda: bn_model([1, -2, 1])),
    h5("bn-variance-plus-eps-zero", ("'bn'", "moving_variance", "variance + epsilon > 0"),
       model=lambda: bn_model([1, 0, 1], epsilon=0.0)),
    h5("bn-weight-count", ("'bn'", "3 weight(s) stored", "expected 4"), model=bn_model,
       edit=_attr("model_weights/bn", "weight_names", [b"bn/gamma:0", b"bn/beta:0", b"bn/moving_mean:0"])),
    h5("bn-epsilon-string", ("'bn'", "'epsilon'"), model=lambda: bn_model(epsilon="small")),
    h5("bn-epsilon-nan", ("'bn'", "'epsilon' is nan"), model=lambda: bn_model(epsilon=float("nan"))),
    h5("leaky-alpha-string", ("'leak'", "'alpha' is 'x'"),
       model=lambda: ([_input(), _dense(), {"class_name": "LeakyReLU", "config": {"name": "leak", "alpha": "x"}}],
                      {"fc": _dense_w()})),
    h5("relu-slope-infinite", ("'act'", "'negative_slope' is inf"),
       model=lambda: ([_input(), _dense(), {"class_name": "ReLU", "config": {"name": "act",
                                                                             "negative_slope": float("inf")}}],
                      {"fc": _dense_w()})),
    h5("keras1-kernel-half", ("'conv_1'", "'kernel_size' is [3, None]"), config=json.dumps({
        "class_name": "Sequential", "config": [{"class_name": "Convolution2D", "config": {
            "name": "conv_1", "batch_input_shape": [None, 6, 6, 1], "nb_filter": 2, "nb_row": 3,
            "dim_ordering": "tf"}}]})),
    h5("keras1-input-dim-string", ("'dense_1'", "batch_input_shape", "'four'"), config=json.dumps({
        "class_name": "Sequential", "config": [{"class_name": "Dense", "config": {
            "name": "dense_1", "input_dim": "four", "output_dim": 2}}]})),
    h5("keras-history-number", ("'fc'", "reads ['5']", "not a layer of the model"), config=json.dumps({
        "class_name": "Functional", "config": {"name": "f", "layers": [
            _input(), {**_dense(), "inbound_nodes": [{"args": [{"config": {"keras_history": 5}}]}]}]}})),
    h5("relu-threshold-string", ("'act'", "'threshold'"),
       model=lambda: ([_input(), _dense(), {"class_name": "ReLU", "config": {"name": "act", "threshold": "x"}}],
                      {"fc": _dense_w()})),
    # -- QKeras quantisers ------------------------------------------------------------------------
    h5("q-bits-too-wide", ("'qfc'", "'bits' is 64", "1 to 62"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": {"bits": 64, "integer": 0}})),
    h5("q-bits-zero", ("'qfc'", "'bits' is 0"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": {"bits": 0, "integer": 0}})),
    h5("q-bits-negative", ("'qfc'", "'bits' is -3"), model=lambda: qdense_model(activation="quantized_relu(-3, 0)")),
    h5("q-integer-over-bits", ("'qfc'", "'integer' is 9"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": {"bits": 4, "integer": 9}})),
    h5("q-bits-string", ("'qfc'", "'bits' is 'eight'"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": {"bits": "eight"}})),
    h5("q-alpha-list", ("'qfc'", "'alpha'"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": {"bits": 6, "alpha": [[1]]}})),
    h5("q-unparsable", ("'qfc'", "cannot parse quantiser"), model=lambda: qdense_model(activation="quantized_relu(4,")),
    h5("q-call-expression", ("'qfc'", "cannot parse quantiser"),
       model=lambda: qdense_model(activation="quantized_relu(__import__('os'))")),
    h5("q-too-many-args", ("'qfc'", "cannot parse quantiser"),
       model=lambda: qdense_model(activation="quantized_relu(4,2,0,0,0,0,0,0,0)")),
    h5("q-long-string", ("'qfc'", "cannot parse quantiser"),
       model=lambda: qdense_model(activation="quantized_relu(" + "(" * 5000 + ")" * 5000 + ")")),
    h5("qconv-bits-too-wide", ("'qconv'", "'bits' is 63"), model=lambda: (lambda ls, ws: (
        [ls[0], {"class_name": "QConv2D", "config": {**ls[1]["config"], "name": "qconv",
                                                     "kernel_quantizer": "quantized_bits(63, 0)"}}, *ls[2:]],
        {**ws, "qconv": ws["conv"]}))(*conv_model())),
    h5("q-double-star", ("'qfc'", "cannot parse quantiser"),
       model=lambda: qdense_model(activation="quantized_relu(**{'bits': 4})")),
    h5("q-po2-bits-wide", ("'qfc'", "quantized_po2", "'bits' is 100"),
       model=lambda: qdense_model({"class_name": "quantized_po2", "config": {"bits": 100}})),
    h5("q-ternary-threshold-list", ("'qfc'", "'threshold'"),
       model=lambda: qdense_model("ternary(1, [0.5])")),
    h5("q-class-name-list", ("'qfc'", "not a qkeras quantiser object"),
       model=lambda: qdense_model({"class_name": ["quantized_bits"], "config": {}})),
    h5("q-config-not-object", ("'qfc'", "not a qkeras quantiser object"),
       model=lambda: qdense_model({"class_name": "quantized_bits", "config": "bits=8"})),
    h5("q-quantizer-number", ("'qfc'", "kernel_quantizer"), model=lambda: qdense_model(8)),
    h5("activation-bad-object", ("'fc'", "'activation'", "class_name"),
       model=_layer_cfg(activation={"class_name": "relu", "config": 5})),
    h5("bn-axis-empty", ("'bn'", "'axis' is []"),
       model=lambda: (lambda ls, ws: ([*ls[:2], {**ls[2], "config": {**ls[2]["config"], "axis": []}}], ws))(*bn_model())),
    h5("conv-dilated", ("'conv'", "dilation_rate", "not supported"), model=_conv(dilation_rate=2)),
    h5_layers("too-many-layers", ("2002 layers", "at most 1000"),
              [_input(), _dense()] + [{"class_name": "Dropout", "config": {"name": f"d{i}", "rate": 0.1}}
                                      for i in range(2000)], {"fc": _dense_w()}),
    # -- weights ----------------------------------------------------------------------------------
    h5("weights-group-missing", ("'fc'", "no weights are stored"),
       edit=lambda f: f["model_weights"].__delitem__("fc")),
    h5("weights-dangling-name", ("'fc'", "fc/gamma:0", "not stored"),
       edit=_attr("model_weights/fc", "weight_names", [b"fc/kernel:0", b"fc/gamma:0"])),
    h5("weights-name-numbers", ("'fc'", "weight_names", "not a name"),
       edit=_attr("model_weights/fc", "weight_names", np.array([1, 2]))),
    h5("weights-names-scalar", ("'fc'", "weight_names", "list of names"),
       edit=_attr("model_weights/fc", "weight_names", b"fc/kernel:0")),
    h5("weights-names-many", ("'fc'", "weight_names", "over 1000 names"),
       edit=_attr("model_weights/fc", "weight_names", [f"w{i}".encode() for i in range(2000)])),
    h5("weights-count", ("'fc'", "1 weight(s) stored", "expected 2"),
       edit=_attr("model_weights/fc", "weight_names", [b"fc/kernel:0"])),
    h5("weights-name-is-group", ("'fc'", "'fc'", "not a dataset"),
       edit=_attr("model_weights/fc", "weight_names", [b"fc", b"fc/bias:0"])),
    h5("kernel-scalar", ("'fc'", "'kernel'", "shape []"), edit=_weight("fc", "kernel", 1.5)),
    h5("kernel-strings", ("'fc'", "fc/kernel:0", "byte string"), edit=_weight("fc", "kernel", STRINGS)),
    h5("kernel-complex", ("'fc'", "fc/kernel:0", "complex"), edit=_weight("fc", "kernel", np.ones((4, 3), complex))),
    h5("kernel-bool", ("'fc'", "fc/kernel:0", "boolean"), edit=_weight("fc", "kernel", np.ones((4, 3), bool))),
    h5("kernel-vlen-strings", ("'fc'", "fc/kernel:0", "object or string"),
       edit=_weight("fc", "kernel", np.array(["a", "b"], dtype=h5py.string_dtype()))),
    h5("kernel-compound", ("'fc'", "fc/kernel:0", "compound"),
       edit=_weight("fc", "kernel", np.zeros(3, dtype=[("re", "f8"), ("im", "f8")]))),
    h5("kernel-3d", ("'fc'", "'kernel'", "[4, 3, 1]", "expected [4, 3]"),
       edit=_weight("fc", "kernel", np.ones((4, 3, 1)))),
    h5("weights-external-link", ("'fc'", "fc/kernel:0", "external link", "elsewhere.h5"), edit=_external_kernel),
    h5("weights-soft-link-loop", ("'fc'", "fc/kernel:0", "cannot be opened"), edit=_looped_kernel),
    h5("kernel-wrong-shape", ("'fc'", "'kernel'", "[3, 4]", "expected [4, 3]"),
       edit=_weight("fc", "kernel", np.ones((3, 4)))),
    h5("kernel-nan", ("'fc'", "fc/kernel:0", "non-finite", "nan"), edit=_weight("fc", "kernel", NAN_KERNEL)),
    h5("bias-inf", ("'fc'", "fc/bias:0", "non-finite", "inf"),
       edit=_weight("fc", "bias", np.array([0.0, np.inf, -np.inf]))),
    h5("conv-kernel-wrong-shape", ("'conv'", "'kernel'", "expected [3, 3, 1, 2]"),
       model=lambda: (lambda ls, ws: (ls, {**ws, "conv": [("kernel", np.zeros((3, 3, 2, 2))), ("bias", np.zeros(2))]}))(
           *conv_model())),
    h5("bn-variance-nan", ("'bn'", "moving_variance", "non-finite"),
       model=lambda: bn_model([1, np.nan, 1])),
    h5("kernel-huge-declared", ("'fc'", "fc/kernel:0", "33554432 values"), edit=_huge_kernel),
    h5("weights-split-names-numbers", ("'fc'", "weight_names", "not a name"),
       edit=lambda f: (f["model_weights/fc"].attrs.__delitem__("weight_names"),
                       f["model_weights/fc"].attrs.__setitem__("weight_names0", [b"fc/kernel:0"]),
                       f["model_weights/fc"].attrs.__setitem__("weight_names1", np.array([7])))),
    h5("model-weights-dataset", ("model_weights", "not a group"),
       edit=lambda f: (f.__delitem__("model_weights"), f.create_dataset("model_weights", data=[1]))),
    # -- files that are not what their extension says ---------------------------------------------
    raw_file("h5-text", "m.h5", b"model = Dense(3)\n", ("not a readable hdf5 file", ".keras")),
    raw_file("h5-empty", "m.h5", b"", ("not a readable hdf5 file",)),
    raw_file("h5-onnx", "m.h5", _onnx_bytes, ("not a readable hdf5 file", ".onnx")),
    Case("keras-h5-config-huge", compile_args("m.h5"), ("m.h5", "model_config", "over the limit"), _huge_config),
    raw_file("keras-is-hdf5", "m.keras", lambda: (Path(__file__).parents[2] / "examples/models/qmlp.h5").read_bytes(),
             ("not a readable .keras archive",)),
    Case("keras-raw-keras-directory", compile_args("m.keras"), ("m.keras", "not a readable .keras archive"),
         lambda tmp: (tmp / "m.keras").mkdir()),
    Case("keras-raw-h5-directory", compile_args("m.h5"), ("m.h5", "not a readable hdf5 file"),
         lambda tmp: (tmp / "m.h5").mkdir()),
    raw_file("keras-text", "m.keras", b"hello\n", ("not a readable .keras archive",)),
    raw_file("keras-empty", "m.keras", b"", ("not a readable .keras archive",)),
    # -- .keras archives --------------------------------------------------------------------------
    Case("keras-zip-truncated", compile_args("m.keras"), ("m.keras", "not a readable .keras archive"), _truncated_zip),
    Case("keras-zip-corrupt-member", compile_args("m.keras"), ("m.keras", "'config.json'", "cannot be read"),
         _corrupt_member),
    Case("keras-zip-bomb", compile_args("m.keras"), ("m.keras", "'config.json'", "over the limit"), _bomb_zip),
    Case("keras-zip-encrypted", compile_args("m.keras"), ("m.keras", "encrypted"), _encrypted_zip),
    Case("keras-zip-deflate64", compile_args("m.keras"), ("m.keras", "compression method 9"), _method_zip),
    keras3("bzip2-conv-stride-zero", ("'conv'", "'strides' is [0, 0]"), model=_conv(strides=[0, 0]),
           method=zipfile.ZIP_BZIP2),
    keras3("lzma-kernel-shape", ("'fc'", "expected [4, 3]"),
           model=lambda: ([_input(), _dense()], {"fc": _dense_w(2, 3)}), method=zipfile.ZIP_LZMA),
    Case("keras-zip-weights-bomb", compile_args("m.keras"), ("m.keras", "'model.weights.h5'", "over the limit"),
         lambda tmp: _declare_size(tmp, "model.weights.h5", 2 ** 31)),
    keras3("config-string", ("'config.json'", "json string"), config=b'"Sequential"'),
    keras3("config-layers-object", ("'config.json'", "field 'layers'", "json object"),
           config=json.dumps({"class_name": "Sequential", "config": {"layers": {"a": 1}}}).encode()),
    keras3("no-config", ("no 'config.json'",), members={"config.json": None}),
    keras3("config-binary", ("'config.json'", "not utf-8"), config=b"\x89PNG\xff\xfe"),
    keras3("config-list", ("'config.json'", "json list"), config=b"[]"),
    keras3("config-not-json", ("'config.json'", "not valid json"), config=b"{]"),
    keras3("no-weights", ("no 'model.weights.h5'",), members={"model.weights.h5": None}),
    keras3("weights-not-hdf5", ("'model.weights.h5'", "not a readable hdf5 file"), blob=lambda: b"weights\n"),
    keras3("weights-odd-var-name", ("'fc'", "'bias'", "numbers"), blob=_keras3_vars(_rename_var)),
    keras3("weights-vars-dataset", ("'fc'", "not a group"), blob=_keras3_vars(_vars_dataset)),
    keras3("weights-vars-external", ("'fc'", "'vars'", "external link"), blob=_keras3_vars(_external_vars)),
    keras3("weights-nan", ("'fc'", "non-finite"), blob=_keras3_vars(_nan_keras3)),
    keras3("weights-no-layers", ("'model.weights.h5'", "no 'layers' group"),
           blob=_keras3_vars(lambda f: f.__delitem__("layers"))),
    keras3("conv-stride-zero", ("'conv'", "'strides' is [0, 0]"), model=_conv(strides=[0, 0])),
    # -- the config verb reads models the same way ---
    Case("keras-config-verb-nan", ("config", "{tmp}/m.h5", "-o", "{tmp}/n.yml"), ("m.h5", "'fc'", "non-finite"),
         lambda tmp: write_h5(tmp / "m.h5", [_input(), _dense()], {"fc": [("kernel", NAN_KERNEL), ("bias", np.zeros(3))]}),
         outputs=("n.yml",)),
    Case("keras-config-verb-zip-bomb", ("config", "{tmp}/m.keras", "-o", "{tmp}/n.yml"), ("m.keras", "over the limit"),
         _bomb_zip, outputs=("n.yml",)),
    # -- .json architecture + --weights -----------------------------------------------------------
    json_case("keras3-weights-nan", ("'fc'", "non-finite", "w.h5"), edit=_keras3_weights_file(_nan_keras3)),
    json_case("keras3-weights-odd-name", ("'fc'", "'bias'"), edit=_keras3_weights_file(_rename_var)),
    json_case("weights-missing", ("w.h5", "no such file"), edit=_weights_missing),
    json_case("weights-not-hdf5", ("w.h5", "not a readable hdf5 file", "m.json"), edit=_weights_text),
    json_case("weights-layer-missing", ("m.json", "'fc'", "no weights are stored", "w.h5"), edit=_drop_weights_layer),
    json_case("not-json", ("m.json", "not valid json"), edit=_json_text("{'class_name': ")),
    json_case("deep", ("m.json", "nested"), edit=_json_text(_deep(100_000))),
    json_case("binary", ("m.json", "not utf-8"), edit=lambda tmp: (tmp / "m.json").write_bytes(b"\x00\xff\xfe")),
    json_case("weights-directory", ("w.h5", "not a file"), edit=_weights_dir),
    json_case("string", ("m.json", "json string"), edit=_json_text('"model"')),
    json_case("kernel-shape", ("m.json", "'fc'", "expected [4, 3]", "w.h5"),
              model=lambda: ([_input(), _dense()], {"fc": _dense_w(5, 3)})),
    json_case("units-negative", ("m.json", "'fc'", "'units' is -3"),
              model=lambda: ([_input(), _dense(units=-3)], {"fc": _dense_w()})),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_keras_file(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)


BASE_FILES = [(dense_model, "h5"), (dense_model, "keras"), (dense_model, "json"), (conv_model, "h5"),
              (conv_model, "keras"), (conv_model, "json"), (bn_model, "h5"), (qdense_model, "h5"),
              (reshape_model, "json")]


@pytest.mark.parametrize("model, form", BASE_FILES, ids=lambda v: getattr(v, "__name__", v))
def test_the_base_files_are_read(model, form, tmp_path):
    """The unmodified tiny models are read into an IR graph ending in their last layer, in
    each form the cases use: each case's refusal comes from its own defect."""
    from nnfpga.compiler.frontends.keras import KerasJson, keras_to_ir
    layers, weights = model()
    if form == "json":
        write_json(tmp_path, layers, weights)
        source = KerasJson(tmp_path / "m.json", tmp_path / "w.h5")
    else:
        source = tmp_path / f"m.{form}"
        (write_h5 if form == "h5" else write_keras)(source, layers, weights)
    graph = keras_to_ir(source)
    assert graph.nodes[0].shape == tuple(layers[0]["config"][SHAPE][1:])
    assert graph.nodes[-1].source_layer == layers[-1]["config"]["name"]
