"""MaxPool2D (NHWC): the maximum is exact, so the output type is the input's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops.base import Op, TensorInfo, output_info, register
from nnfpga.ir.ops.conv2d import window_geometry, windows


@register
@dataclass
class MaxPool2D(Op):
    op_type = "MaxPool2D"
    pool_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    padding: str = "valid"

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if len(x.shape) != 3:
            raise ValueError(f"MaxPool2D {self.name!r} expects an (H, W, C) input, got shape {x.shape}")
        (oh, ow), _ = window_geometry(x.shape[:2], self.pool_size, self.strides, self.padding)
        return output_info(self.out_type, x.type, x.lo, x.hi, (oh, ow, x.shape[2]), x.type.frac)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        # TF's same-padded max pool ignores padded cells: pad with the type's minimum.
        win = windows(xs[0], self.pool_size, self.strides, self.padding, pad_value=ins[0].type.min_raw)
        m = win.max(axis=(3, 4))
        return self.info.type.requantize(m, ins[0].type.frac)

    def params_json(self) -> dict:
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"pool_size": tuple(d["pool_size"]), "strides": tuple(d["strides"]), "padding": d["padding"]}
