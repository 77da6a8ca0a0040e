"""BatchNorm as trained (float).  It has no fixed-point meaning of its own: the
`fold_batchnorm` pass merges it into the preceding Dense/Conv2D before quantisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops.base import Op, TensorInfo, register
from nnfpga.ir.ops.weights import arr_from_json, arr_json


@register
@dataclass
class BatchNorm(Op):
    op_type = "BatchNorm"
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    epsilon: float = 1e-3

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """``y = x * scale + shift`` (float64)."""
        n = len(self.mean)
        gamma = self.gamma if self.gamma is not None else np.ones(n)
        beta = self.beta if self.beta is not None else np.zeros(n)
        scale = gamma / np.sqrt(self.variance + self.epsilon)
        return scale, beta - self.mean * scale

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        raise ValueError(f"BatchNorm {self.name!r} must follow a Dense or Conv2D layer so it can be "
                         "folded into its weights; a free-standing BatchNorm is not supported")

    def params_json(self) -> dict:
        return {k: arr_json(getattr(self, k)) for k in ("gamma", "beta", "mean", "variance")} | {
            "epsilon": self.epsilon}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {k: arr_from_json(d[k]) for k in ("gamma", "beta", "mean", "variance")} | {
            "epsilon": float(d["epsilon"])}
