"""Reshape / Flatten: a change of shape in row-major (NHWC) order; values untouched."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops.base import Op, TensorInfo, register


@register
@dataclass
class Reshape(Op):
    op_type = "Reshape"
    target_shape: tuple[int, ...] = ()

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        target = list(self.target_shape)
        size = int(np.prod(x.shape))
        if target.count(-1) == 1:
            known = int(np.prod([t for t in target if t != -1]))
            target[target.index(-1)] = size // known if known else 0
        if size != int(np.prod(target)):
            raise ValueError(f"Reshape {self.name!r}: cannot reshape {x.shape} to {self.target_shape}")
        self.target_shape = tuple(target)
        return TensorInfo(tuple(target), x.type, x.lo, x.hi)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        return xs[0].reshape((xs[0].shape[0], *self.target_shape))

    def params_json(self) -> dict:
        return {"target_shape": list(self.target_shape)}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"target_shape": tuple(d["target_shape"])}
