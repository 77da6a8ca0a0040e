"""Input: float samples enter here and are quantised to the model's input type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops.base import Op, TensorInfo, register


@register
@dataclass
class Input(Op):
    op_type = "Input"
    shape: tuple[int, ...] = ()

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        if self.out_type is None:
            raise ValueError(f"input {self.name!r} has no fixed-point type")
        return TensorInfo(tuple(self.shape), self.out_type, self.out_type.min_raw, self.out_type.max_raw)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        return xs[0]  # already quantised by the emulator's entry point

    def params_json(self) -> dict:
        return {"shape": list(self.shape)}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"shape": tuple(d["shape"])}
