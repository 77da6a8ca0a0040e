"""Validation of a Keras model file's contents before any IR is built.

A model file is untrusted input: its JSON config may be malformed, nested without end
or hold fields of the wrong type, and its weights may have the wrong shape, the wrong
dtype, or NaN/Inf values.  Every check here returns or raises one `UserError` paragraph
naming the file, the layer and the field, so the builder (`keras._Builder`) only ever
sees a config and weights it can use.

Limits (so a hostile file is refused quickly and without unbounded memory):
`MAX_CONFIG_BYTES` for the JSON config, `MAX_JSON_DEPTH` levels of nesting in it,
`MAX_WEIGHT_VALUES` values in one weight tensor (checked from the HDF5 header, before
the data is read) and `MAX_TENSOR_VALUES` values in any layer's input or output.
"""

from __future__ import annotations

import json
import math

import numpy as np

from nnfpga.core.errors import UserError

#: Largest JSON model config read (bytes); trigger models' configs are a few kB.
MAX_CONFIG_BYTES = 4 * 2 ** 20
#: Deepest nesting of lists and objects accepted in a JSON model config.
MAX_JSON_DEPTH = 64
#: Largest weight tensor read (values); checked from the file's header before reading.
MAX_WEIGHT_VALUES = 2 ** 24
#: Largest tensor (values, batch excluded) a layer may take or produce.
MAX_TENSOR_VALUES = 2 ** 24
#: Longest layer or class name accepted (they are named in messages; the firmware's
#: identifiers derived from them are bounded separately, `backends/rtl/names.py`).
MAX_NAME = 1024
#: Most layers read from one model (trigger networks have tens; a layer's config is
#: about 1-4 kB, so `MAX_CONFIG_BYTES` holds this many).
MAX_LAYERS = 1000


# ----------------------------------------------------------------------------- JSON
def parse_config(raw, where: str) -> dict:
    """A saved model config (bytes or str) as a dict, or a `UserError` saying why not."""
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw.item()
    if not isinstance(raw, (bytes, str)):
        raise UserError(f"{where}: the model config is stored as {_stored(raw)}, not JSON text; "
                        "a Keras model file holds its architecture as a JSON string")
    if len(raw) > MAX_CONFIG_BYTES:
        raise UserError(f"{where}: the model config is {len(raw)} bytes, over the limit of "
                        f"{MAX_CONFIG_BYTES} bytes for a model config")
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: the model config is not UTF-8 text ({e}); a Keras model "
                        "config is JSON") from None
    too_deep = (f"{where}: the model config is nested {{}} levels deep; at most {MAX_JSON_DEPTH} levels "
                "are read (a Keras config needs about 10)")
    try:
        config = json.loads(text)
    except RecursionError:  # the C parser's guard, long before the C stack runs out
        raise UserError(too_deep.format("hundreds of")) from None
    except ValueError as e:  # JSONDecodeError, and integers too long to convert
        raise UserError(f"{where}: the model config is not valid JSON ({e})") from None
    depth = _depth_over(config, MAX_JSON_DEPTH)
    if depth is not None:
        raise UserError(too_deep.format(f"more than {depth - 1}"))
    if not isinstance(config, dict):
        raise UserError(f"{where}: the model config is a JSON {json_kind(config)}, not an object with "
                        "'class_name' and 'config' (a Keras Sequential or Functional model)")
    return config


def _stored(raw) -> str:
    if isinstance(raw, np.ndarray):
        return f"an array of {raw.dtype} with shape {list(raw.shape)}"
    return f"a value of type {getattr(raw, 'dtype', type(raw).__name__)}"


def _depth_over(value, limit: int) -> int | None:
    """The nesting depth of parsed JSON if it exceeds ``limit`` (else None), walked level
    by level so no depth can exhaust Python's stack."""
    level, depth = [value] if isinstance(value, (dict, list)) else [], 1
    while level:
        if depth > limit:
            return depth
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v) if isinstance(c, (dict, list))]
        depth += 1
    return None


def json_kind(value) -> str:
    kinds = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------- layer list
def check_layer_list(layers: list, where: str, model: str) -> None:
    """Every entry an object with a string ``class_name`` and an object ``config`` whose
    ``name`` (if any) is a string.  ``model``: the model's class, for the message."""
    if not layers:
        raise UserError(f"{where}: the model has no layers; a model needs at least one layer after its input")
    if len(layers) > MAX_LAYERS:
        raise UserError(f"{where}: the model has {len(layers)} layers; at most {MAX_LAYERS} are read")
    for i, lc in enumerate(layers):
        at = f"{where}: layer {i}"
        if not isinstance(lc, dict):
            raise UserError(f"{where}: the model config of the {model} holds no layer list: its entry {i} (layer "
                            f"{i}) is a JSON {json_kind(lc)}, not an object with 'class_name' and 'config'")
        cls = lc.get("class_name")
        if not isinstance(cls, str):
            raise UserError(f"{at}: field 'class_name' is {'missing' if cls is None else repr(cls)}; "
                            "it must be the layer's class name, a string such as 'Dense'")
        cfg = lc.get("config")
        if not isinstance(cfg, dict):
            raise UserError(f"{at} ({cls}): field 'config' is {'null' if cfg is None else 'a JSON ' + json_kind(cfg)}; "
                            "it must be an object holding the layer's settings")
        if len(cls) > MAX_NAME:
            raise UserError(f"{at}: field 'class_name' is {len(cls)} characters long; a class name has at most "
                            f"{MAX_NAME}")
        name = cfg.get("name", lc.get("name"))
        if name is not None and not (isinstance(name, str) and 0 < len(name) <= MAX_NAME):
            raise UserError(f"{at} ({cls}): field 'name' is {short(name)}; a layer name must be a string of 1 to "
                            f"{MAX_NAME} characters")


def layer_name(lc: dict) -> str:
    return lc.get("config", {}).get("name") or lc.get("name") or lc["class_name"].lower()


# ----------------------------------------------------------------------------- weights
def load_weight(obj, where: str, weight: str) -> np.ndarray:
    """One stored weight tensor as float64: a real numeric HDF5 dataset of bounded size
    with finite values.  The header (shape, dtype) is checked before the data is read."""
    import h5py
    at = f"{where}: weight {weight!r}"
    if not isinstance(obj, h5py.Dataset):
        raise UserError(f"{at} is an HDF5 {type(obj).__name__}, not a dataset of numbers")
    kind = obj.dtype.kind
    if kind not in "fiu":
        raise UserError(f"{at} has dtype {obj.dtype} ({_dtype_kind(kind)}); weights must be real numbers "
                        "(float or integer)")
    if obj.shape is None or obj.size > MAX_WEIGHT_VALUES:
        raise UserError(f"{at} holds {obj.size if obj.shape is not None else 'no'} values; a weight may hold "
                        f"1 to {MAX_WEIGHT_VALUES} values")
    try:
        values = np.asarray(obj[()], dtype=np.float64)
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"{at} cannot be read ({e})") from None
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0]) if values.ndim else ()
        raise UserError(f"{at} holds {int(bad.sum())} non-finite value(s) (first: {values[index]} at index "
                        f"{list(index)}); weights must be finite numbers")
    return values


def _dtype_kind(kind: str) -> str:
    return {"b": "boolean", "c": "complex", "S": "byte string", "U": "string", "O": "object or string",
            "V": "compound", "M": "date", "m": "time delta"}.get(kind, "not numeric")


# ----------------------------------------------------------------------------- fields
def is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_number(v) -> bool:
    """An int or float with a finite float value (a JSON int may be too large for one)."""
    if not (is_int(v) or isinstance(v, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def positive_int(cfg: dict, field: str, where: str, default=None) -> int:
    v = cfg.get(field, default)
    if v is None:
        raise UserError(f"{where}: field {field!r} is missing; it must be a positive whole number")
    if not is_int(v) or not 0 < v <= MAX_TENSOR_VALUES:
        raise UserError(f"{where}: field {field!r} is {short(v)}; it must be a whole number from 1 to "
                        f"{MAX_TENSOR_VALUES}")
    return int(v)


def int_pair(cfg: dict, field: str, where: str, default=None) -> tuple[int, int]:
    """A Keras 2-D size (``kernel_size``, ``strides``, ``pool_size``): an int or a pair of
    positive ints."""
    v = cfg.get(field, default)
    if v is None:
        raise UserError(f"{where}: field {field!r} is missing; it must be a positive whole number or a pair of them")
    pair = [v, v] if is_int(v) else v
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(is_int(p) and p > 0 for p in pair)):
        raise UserError(f"{where}: field {field!r} is {short(v)}; it must be a positive whole number or a pair of them")
    return int(pair[0]), int(pair[1])


def int_single(cfg: dict, field: str, where: str, default=None) -> int:
    """A Keras 1-D size (``kernel_size``, ``strides``, ``pool_size`` of a 1-D layer): a
    positive int or a list holding one."""
    v = cfg.get(field, default)
    one = v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v
    if not (is_int(one) and one > 0):
        raise UserError(f"{where}: field {field!r} is {'missing' if v is None else short(v)}; it must be a positive "
                        "whole number (or a list of one)")
    return int(one)


def optional_number(cfg: dict, field: str, where: str) -> None:
    v = cfg.get(field)
    if v is not None and not is_number(v):
        raise UserError(f"{where}: field {field!r} is {short(v)}; it must be a finite number (or null)")


def check_activation_field(cfg: dict, field: str, where: str) -> None:
    v = cfg.get(field)
    serialised = isinstance(v, dict) and isinstance(v.get("class_name"), str) and \
        isinstance(v.get("config", {}), dict)
    if v is not None and not (isinstance(v, str) or serialised):
        raise UserError(f"{where}: field {field!r} is {short(v)}; it must be an activation name (a string) or "
                        "an object with a string 'class_name' and an object 'config' (a QKeras quantiser)")


def short(v) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def check_quantizer_field(cfg: dict, field: str, where: str) -> None:
    v = cfg.get(field)
    if v is not None and not isinstance(v, (str, dict)):
        raise UserError(f"{where}: field {field!r} is {short(v)}; it must be a QKeras quantiser (a string such as "
                        "'quantized_bits(8,0)' or an object) or null")


def input_shape(cfg: dict, where: str) -> tuple[tuple[int, ...], str] | None:
    """The model input shape (batch dimension dropped) a layer config declares, with the
    field it came from; None when it declares none."""
    for field in ("batch_input_shape", "batch_shape"):
        if cfg.get(field) is not None:
            return _shape(cfg[field], field, where), field
    build = cfg.get("build_config")
    if isinstance(build, dict) and build.get("input_shape") is not None:
        return _shape(build["input_shape"], "build_config.input_shape", where), "build_config.input_shape"
    return None


def _shape(v, field: str, where: str) -> tuple[int, ...]:
    if not isinstance(v, (list, tuple)) or len(v) < 2:
        raise UserError(f"{where}: field {field!r} is {short(v)}; it must be a list [batch, dim, ...] with at least "
                        "one dimension after the batch")
    dims = v[1:]
    if any(d is None for d in dims):
        raise UserError(f"{where}: field {field!r} {short(v)} has unknown (null) dimensions; fixed shapes are "
                        "needed for firmware")
    if not all(is_int(d) and d > 0 for d in dims):
        raise UserError(f"{where}: field {field!r} is {short(v)}; each dimension after the batch must be a "
                        "positive whole number")
    shape = tuple(int(d) for d in dims)
    check_size(shape, where, f"the input shape ({field})")
    return shape


def check_size(shape: tuple[int, ...], where: str, what: str) -> None:
    if math.prod(shape) > MAX_TENSOR_VALUES:
        raise UserError(f"{where}: {what} {list(shape)} holds {math.prod(shape)} values; at most "
                        f"{MAX_TENSOR_VALUES} are supported")
