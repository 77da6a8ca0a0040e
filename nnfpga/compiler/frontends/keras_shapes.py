"""Each layer of a Keras chain checked against the shape that reaches it: its size
fields, the number and shapes of its weights, and values that have no meaning
(negative batch-norm variance).  Run before the IR is built, so a wrong file is refused
naming the file, the layer and the field rather than failing inside the compiler."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nnfpga.compiler.frontends import keras_checks as kc
from nnfpga.core.errors import UserError

Shape = tuple[int, ...]


def check_chain(layers: list[dict], weights: dict[str, list[np.ndarray]], source: str,
                weights_file: str) -> list[Shape]:
    """Walk the chain from the input shape the first layers declare; raise a `UserError`
    at the first layer whose config or weights do not fit.  Returns the shape that
    reaches each layer and, last, the model's output shape (Keras shapes, no batch)."""
    shape: Shape | None = None
    shapes: list[Shape] = []
    for lc in layers:
        cls, cfg, name = lc["class_name"], lc["config"], kc.layer_name(lc)
        where = f"{source}: layer {name!r} ({cls})"
        if shape is None:
            found = kc.input_shape(cfg if "build_config" not in lc else {**cfg, "build_config": lc["build_config"]},
                                   where)
            if found is None:
                raise UserError(f"{where}: the model's input shape is not given; the first layer needs field "
                                "'batch_input_shape' (Keras 2) or 'batch_shape' (Keras 3)")
            shape = found[0]
        shapes.append(shape)
        check = _CHECKS.get(cls)
        if check is not None:
            shape = check(cfg, shape, _Weights(weights.get(name), where, weights_file), where)
    return shapes + [shape]


class _Weights:
    """A layer's stored weights and what to say when they do not fit."""

    def __init__(self, arrays: list[np.ndarray] | None, where: str, weights_file: str):
        self.arrays, self.where, self.file = arrays or [], where, weights_file

    def expect(self, named: list[tuple[str, Shape]]) -> list[np.ndarray]:
        if not self.arrays:
            raise UserError(f"{self.where}: no weights are stored for this layer in {self.file}; it needs "
                            f"{_listed(named)}")
        if len(self.arrays) != len(named):
            raise UserError(f"{self.where}: {len(self.arrays)} weight(s) stored in {self.file}, expected "
                            f"{len(named)}: {_listed(named)}")
        for (what, shape), w in zip(named, self.arrays):
            if w.shape != shape:
                raise UserError(f"{self.where}: weight {what!r} in {self.file} has shape {list(w.shape)}, expected "
                                f"{list(shape)} from the layer's config and its input shape")
        return self.arrays


def _listed(named: list[tuple[str, Shape]]) -> str:
    return ", ".join(f"{w} {list(s)}" for w, s in named)


def _with_bias(cfg: dict, kernel: Shape, n_out: int) -> list[tuple[str, Shape]]:
    named = [("kernel", kernel)]
    if cfg.get("use_bias", True):
        named.append(("bias", (n_out,)))
    return named


def _common(cfg: dict, where: str) -> None:
    kc.check_activation_field(cfg, "activation", where)
    kc.check_quantizer_field(cfg, "kernel_quantizer", where)
    kc.check_quantizer_field(cfg, "bias_quantizer", where)


def _dense(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    units = kc.positive_int(cfg, "units", where)
    _common(cfg, where)
    w.expect(_with_bias(cfg, (shape[-1], units), units))
    out = shape[:-1] + (units,)
    kc.check_size(out, where, "the output shape")
    return out


def _image(shape: Shape, where: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UserError(f"{where}: the input has shape {list(shape)}; this layer needs an (height, width, "
                        "channels) input")
    return shape  # type: ignore[return-value]


def _window(shape: Shape, size: tuple[int, int], strides: tuple[int, int], padding, field: str,
            where: str) -> tuple[int, int]:
    if padding not in ("valid", "same"):
        raise UserError(f"{where}: field 'padding' is {kc.short(padding)}; supported: 'valid', 'same'")
    if padding == "same":
        return -(-shape[0] // strides[0]), -(-shape[1] // strides[1])
    if size[0] > shape[0] or size[1] > shape[1]:
        raise UserError(f"{where}: field {field!r} {list(size)} is larger than the input {list(shape[:2])} "
                        "(height, width) with padding 'valid'")
    return (shape[0] - size[0]) // strides[0] + 1, (shape[1] - size[1]) // strides[1] + 1


def _conv2d(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    filters = kc.positive_int(cfg, "filters", where)
    kernel = kc.int_pair(cfg, "kernel_size", where)
    strides = kc.int_pair(cfg, "strides", where, default=1)
    kc.int_pair(cfg, "dilation_rate", where, default=1)
    _common(cfg, where)
    h, wd, c = _image(shape, where)
    out = _window(shape, kernel, strides, cfg.get("padding", "valid"), "kernel_size", where) + (filters,)
    w.expect(_with_bias(cfg, kernel + (c, filters), filters))
    kc.check_size(out, where, "the output shape")
    return out


def _sequence(shape: Shape, where: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise UserError(f"{where}: the input has shape {list(shape)}; this layer needs a (steps, channels) input")
    return shape  # type: ignore[return-value]


def _padding_1d(cfg: dict, where: str) -> str:
    padding = cfg.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise UserError(f"{where}: field 'padding' is {kc.short(padding)}; supported: 'valid', 'same'"
                        + (" (causal padding is not supported)" if padding == "causal" else ""))
    return padding


def _conv1d(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    filters = kc.positive_int(cfg, "filters", where)
    kernel = kc.int_single(cfg, "kernel_size", where)
    strides = kc.int_single(cfg, "strides", where, default=1)
    if kc.int_single(cfg, "dilation_rate", where, default=1) != 1 or cfg.get("groups", 1) != 1:
        raise UserError(f"{where}: field 'dilation_rate' is {kc.short(cfg.get('dilation_rate', 1))} and 'groups' is "
                        f"{kc.short(cfg.get('groups', 1))}: dilated or grouped convolutions are not supported; "
                        "use dilation_rate 1 and groups 1")
    _common(cfg, where)
    steps, c = _sequence(shape, where)
    out = _window((1, steps), (1, kernel), (1, strides), _padding_1d(cfg, where), "kernel_size", where)[1:]
    w.expect(_with_bias(cfg, (kernel, c, filters), filters))
    kc.check_size(out + (filters,), where, "the output shape")
    return out + (filters,)


def _maxpool1d(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    pool = kc.int_single(cfg, "pool_size", where, default=2)
    strides = kc.int_single(cfg, "strides", where) if cfg.get("strides") is not None else pool
    steps, c = _sequence(shape, where)
    return _window((1, steps), (1, pool), (1, strides), _padding_1d(cfg, where), "pool_size", where)[1:] + (c,)


def _avgpool(cfg: dict, shape: Shape, w: _Weights, where: str, rank: int) -> Shape:
    """Average pooling: 'valid' padding only (Keras's 'same' divides the edge windows by
    their real cells, another divisor per position)."""
    if cfg.get("padding", "valid") != "valid":
        raise UserError(f"{where}: padding {kc.short(cfg.get('padding'))} is not supported for average pooling; "
                        "only 'valid' (a 'same' window at the edge averages fewer cells)")
    if rank == 1:
        return _maxpool1d(cfg, shape, w, where)
    return _maxpool(cfg, shape, w, where)


def _global_maxpool(cfg: dict, shape: Shape, w: _Weights, where: str, rank: int) -> Shape:
    if len(shape) != rank + 1:
        raise UserError(f"{where}: the input has shape {list(shape)}; this layer needs a "
                        f"{'(steps, channels)' if rank == 1 else '(height, width, channels)'} input")
    return (1,) * rank + shape[-1:] if cfg.get("keepdims", False) else shape[-1:]


def _permute(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    dims = cfg.get("dims")
    if not (isinstance(dims, (list, tuple)) and sorted(dims) == list(range(1, len(shape) + 1))):
        raise UserError(f"{where}: field 'dims' is {kc.short(dims)}; for an input of shape {list(shape)} it must "
                        f"order the axes 1..{len(shape)} (the batch axis is not counted)")
    return tuple(shape[d - 1] for d in dims)


def _upsampling(cfg: dict, shape: Shape, w: _Weights, where: str, rank: int) -> Shape:
    if cfg.get("interpolation", "nearest") != "nearest":
        raise UserError(f"{where}: interpolation {kc.short(cfg.get('interpolation'))} is not supported; "
                        "only 'nearest'")
    if rank == 1:
        size = (kc.int_single(cfg, "size", where, default=2),)
        _sequence(shape, where)
    else:
        size = kc.int_pair(cfg, "size", where, default=2)
        _image(shape, where)
    out = tuple(d * s for d, s in zip(shape, size)) + shape[rank:]
    kc.check_size(out, where, "the output shape")
    return out


def _maxpool(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    pool = kc.int_pair(cfg, "pool_size", where, default=2)
    strides = kc.int_pair(cfg, "strides", where, default=pool) if cfg.get("strides") is not None else pool
    _image(shape, where)
    return _window(shape, pool, strides, cfg.get("padding", "valid"), "pool_size", where) + (shape[2],)


def _flatten(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    return (math.prod(shape),)


def _reshape(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    target = cfg.get("target_shape")
    ok = isinstance(target, (list, tuple)) and target and all(kc.is_int(d) and (d > 0 or d == -1) for d in target) \
        and sum(d == -1 for d in target) <= 1
    if not ok:
        raise UserError(f"{where}: field 'target_shape' is {'missing' if target is None else repr(target)}; it "
                        "must be a list of positive whole numbers (one may be -1)")
    size, known = math.prod(shape), math.prod(d for d in target if d != -1)
    if (-1 in target and size % known) or (-1 not in target and size != known):
        raise UserError(f"{where}: field 'target_shape' {target} does not hold the input's {size} values "
                        f"(input shape {list(shape)})")
    return tuple(size // known if d == -1 else d for d in target)


def _batchnorm(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    for field in ("gamma_quantizer", "beta_quantizer", "mean_quantizer", "variance_quantizer"):   # QKeras
        kc.check_quantizer_field(cfg, field, where)
    kc.check_activation_field(cfg, "activation", where)
    eps = cfg.get("epsilon", 1e-3)
    if not kc.is_number(eps) or eps < 0:
        raise UserError(f"{where}: field 'epsilon' is {kc.short(eps)}; it must be a finite number >= 0")
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if not kc.is_int(axis):
        raise UserError(f"{where}: field 'axis' is {kc.short(cfg.get('axis'))}; it must be one axis (a whole number, "
                        "-1 for the channels)")
    if axis not in (-1, len(shape)):   # the IR normalises the channels, the last axis
        raise UserError(f"{where}: field 'axis' is {axis} on an input of shape {list(shape)}; only "
                        f"BatchNormalization over the last axis (-1 or {len(shape)}) is supported")
    n = (shape[-1],)
    named = [(k, n) for k, on in (("gamma", cfg.get("scale", True)), ("beta", cfg.get("center", True))) if on]
    arrays = w.expect(named + [("moving_mean", n), ("moving_variance", n)])
    variance = arrays[-1]
    bad = np.flatnonzero((variance < 0) | (variance + eps <= 0))
    if bad.size:
        i = int(bad[0])
        raise UserError(f"{where}: weight 'moving_variance' in {w.file} is {variance[i]:g} at channel {i} "
                        f"(epsilon {eps:g}); a variance must be >= 0 and variance + epsilon > 0")
    return shape


def _activation(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    kc.check_activation_field(cfg, "activation", where)
    return shape


def _relu(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    for field in ("max_value", "threshold", "negative_slope"):
        kc.optional_number(cfg, field, where)
    return shape


def _leaky(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    for field in ("alpha", "negative_slope"):
        kc.optional_number(cfg, field, where)
    return shape


def _same(cfg: dict, shape: Shape, w: _Weights, where: str) -> Shape:
    return shape


def _of_rank(check, rank: int) -> Callable[[dict, Shape, _Weights, str], Shape]:
    return lambda cfg, shape, w, where: check(cfg, shape, w, where, rank)


_CHECKS: dict[str, Callable[[dict, Shape, _Weights, str], Shape]] = {
    "Dense": _dense, "QDense": _dense, "Conv2D": _conv2d, "QConv2D": _conv2d, "MaxPooling2D": _maxpool,
    "MaxPool2D": _maxpool, "Flatten": _flatten, "Reshape": _reshape, "BatchNormalization": _batchnorm,
    "QBatchNormalization": _batchnorm,
    "Activation": _activation, "QActivation": _activation, "ReLU": _relu, "LeakyReLU": _leaky,
    "Dropout": _same, "InputLayer": _same, "Rescaling": _same, "Conv1D": _conv1d, "QConv1D": _conv1d, "MaxPooling1D": _maxpool1d,
    "MaxPool1D": _maxpool1d, "Permute": _permute,
}
# Keras's long and short names of the global and average poolings, and upsampling, by rank
for _rank in (1, 2):
    for _names, _check in (((f"GlobalMaxPooling{_rank}D", f"GlobalMaxPool{_rank}D", f"GlobalAveragePooling{_rank}D",
                             f"GlobalAvgPool{_rank}D"), _global_maxpool),
                           ((f"AveragePooling{_rank}D", f"AvgPool{_rank}D"), _avgpool),
                           ((f"UpSampling{_rank}D",), _upsampling)):
        _CHECKS.update(dict.fromkeys(_names, _of_rank(_check, _rank)))
