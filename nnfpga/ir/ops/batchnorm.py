"""BatchNorm as trained (float).  It has no fixed-point meaning of its own: the
`fold_batchnorm` pass merges it into the preceding Dense/Conv2D before quantisation, or
replaces it by a `ScaleShift` (exact per-channel scale and shift) anywhere else."""

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
        raise ValueError(f"BatchNorm {self.name!r} has no fixed-point meaning: run fold_batchnorm, which "
                         "folds it into the layer before it or makes it a ScaleShift")

    def params_json(self) -> dict:
        return {k: arr_json(getattr(self, k)) for k in ("gamma", "beta", "mean", "variance")} | {
            "epsilon": self.epsilon}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {k: arr_from_json(d[k]) for k in ("gamma", "beta", "mean", "variance")} | {
            "epsilon": float(d["epsilon"])}
