"""The user's layout of a model's input or output, where it differs from the IR's.

The IR computes channels-last (NHWC) and flattens in that order.  A model trained
channels-first (ONNX, PyTorch: NCHW) is converted to that layout by its frontend, while
its users keep feeding samples, and reading results, in the layout of their original
model.  A `Layout` records that correspondence at one boundary of the graph: a pure
re-ordering of the elements of one sample, applied by the golden emulator's entry points
(`nnfpga.ir.emulator.quantize_input` and `user_output`).  The firmware, the backends and
the raw-integer functions (`run_raw`, `trace_raw`) see only the IR's order.

``order[i]`` is the position, in the user's row-major flattened sample of shape
``shape``, of the IR's flattened element ``i``: ``ir_flat = user_flat[order]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    shape: tuple[int, ...]   # one sample as the user sees it (no batch axis)
    order: tuple[int, ...]   # ir_flat = user_flat[order]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "order", tuple(int(i) for i in self.order))
        n = int(np.prod(self.shape, dtype=np.int64))
        if len(self.order) != n or sorted(self.order) != list(range(n)):
            raise ValueError(f"layout order is not a permutation of the {n} elements of shape {self.shape}")

    @property
    def size(self) -> int:
        return len(self.order)

    def to_ir(self, x: np.ndarray, ir_shape: tuple[int, ...]) -> np.ndarray:
        """A batch in the user's layout ``(B, *shape)`` as the IR's ``(B, *ir_shape)``."""
        x = np.asarray(x)
        return x.reshape(len(x), -1)[:, np.asarray(self.order, dtype=np.int64)].reshape((len(x), *ir_shape))

    def to_user(self, y: np.ndarray) -> np.ndarray:
        """A batch in the IR's layout ``(B, *ir_shape)`` as the user's ``(B, *shape)``."""
        y = np.asarray(y)
        flat = y.reshape(len(y), -1)
        out = np.empty_like(flat)
        out[:, np.asarray(self.order, dtype=np.int64)] = flat
        return out.reshape((len(y), *self.shape))

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "order": list(self.order)}

    @classmethod
    def from_json(cls, d: dict | None) -> "Layout | None":
        return None if d is None else cls(tuple(d["shape"]), tuple(d["order"]))
