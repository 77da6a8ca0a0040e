"""How a computed ONNX tensor lives in the IR (`Val`), and window geometry.

Every computed ONNX tensor is a `Val`: its ONNX shape (batch axis dropped) and where its
values live in the IR -- an IR node, that node's shape, and ``gather``, the order of the
IR's flat data relative to the ONNX tensor's (``ir_flat = onnx_flat[gather]``).  The IR
holds a (C, H, W) tensor as (H, W, C): ``gather`` = `channels_last_order`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops.conv2d import same_padding

#: Standing in for the (symbolic) batch size in folded ``Shape`` results.
BATCH = -(2 ** 40) + 7


def is_identity(g: np.ndarray | None) -> bool:
    return g is None or np.array_equal(g, np.arange(len(g)))


def normalized(g: np.ndarray | None) -> np.ndarray | None:
    return None if is_identity(g) else np.asarray(g, dtype=np.int64)


def same_order(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (is_identity(a) and is_identity(b)) or (a is not None and b is not None and np.array_equal(a, b))


def channels_last_order(shape: tuple[int, int, int]) -> np.ndarray | None:
    """``gather`` of a (C, H, W) tensor held as (H, W, C): ir_flat = onnx_flat[order]."""
    c, h, w = shape
    return normalized(np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1))


def window_modes(size: int, k: int, s: int, pad_before: int, pad_after: int, ceil_mode: bool = False) -> set[str]:
    """Which IR paddings ('valid', TF-style 'same') give exactly ONNX's windows along one axis."""
    span = size + pad_before + pad_after - k
    if span < 0 or s < 1:
        return set()
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + pad_before:
        out -= 1  # ONNX: a last window starting inside the end padding is dropped
    used_after = max(0, (out - 1) * s + k - size - pad_before)
    modes = set()
    if pad_before == 0 and used_after == 0 and out == (size - k) // s + 1:
        modes.add("valid")
    tf_out, tf_before, tf_after = same_padding(size, k, s)
    if (out, pad_before, used_after) == (tf_out, tf_before, tf_after):
        modes.add("same")
    return modes


@dataclass
class Val:
    """One computed ONNX tensor (see the module docstring)."""

    shape: tuple[int, ...]
    node: str | None = None                  # None: the model input, not yet placed in the IR
    ir_shape: tuple[int, ...] | None = None
    gather: np.ndarray | None = None         # ir_flat = onnx_flat[gather]; None: the same order
    src: np.ndarray | None = None            # pending input only: onnx_flat = user_flat[src]
    via: str = ""                            # the layout op that last changed the shape
    qscale: float | None = None              # QuantizeLinear output: ONNX values = IR values / qscale
    ghost: bool = False                      # after a refused node: checked further, never compiled
