"""Dense: ``y = x @ W + b`` on a flat input, exact accumulator, then the output type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops import linear
from nnfpga.ir.ops.base import Op, TensorInfo, convert, output_info, register
from nnfpga.ir.ops.weights import weights_from_json, weights_json
from nnfpga.ir.quant import QuantArray, Quantizer


@register
@dataclass
class Dense(Op):
    op_type = "Dense"
    auto_typed = True
    trimmable = True
    kernel: np.ndarray | None = None          # float (n_in, n_out), as trained
    bias: np.ndarray | None = None            # float (n_out,) or None
    kernel_quantizer: Quantizer | None = None
    bias_quantizer: Quantizer | None = None
    kernel_q: QuantArray | None = None        # integers, set by the quantize pass
    bias_q: QuantArray | None = None
    reuse_factor: int = 1

    @property
    def n_in(self) -> int:
        return int(self.kernel_q.raw.shape[0] if self.kernel_q is not None else self.kernel.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.kernel_q.raw.shape[1] if self.kernel_q is not None else self.kernel.shape[1])

    def _quantized(self) -> QuantArray:
        if self.kernel_q is None:
            raise ValueError(f"layer {self.name!r} has not been quantised")
        return self.kernel_q

    def acc_frac(self, in_frac: int) -> int:
        return linear.acc_frac(in_frac, self._quantized(), self.bias_q)

    def acc_range(self, x: TensorInfo) -> tuple[np.ndarray, np.ndarray, int]:
        frac = self.acc_frac(x.type.frac)
        bias = linear.aligned_bias(self.bias_q, frac, self.n_out)
        return linear.linear_range(self.kernel_q.raw, bias, x.lo, x.hi,
                                   frac - x.type.frac - self.kernel_q.frac)

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if x.shape != (self.n_in,):
            raise ValueError(f"Dense {self.name!r} expects a flat input of {self.n_in} values, got shape {x.shape}")
        lo, hi, _ = self.acc_range(x)
        frac = self.acc_frac(x.type.frac)
        exact = linear.acc_type_for(lo, hi, frac)
        return output_info(self.out_type, exact, int(lo.min()), int(hi.max()), (self.n_out,), frac)

    def accumulate(self, x_raw: np.ndarray, x: TensorInfo) -> np.ndarray:
        """The exact accumulator (raw at `acc_frac`), before output conversion."""
        frac = self.acc_frac(x.type.frac)
        _, _, magnitude = self.acc_range(x)
        bias = linear.aligned_bias(self.bias_q, frac, self.n_out)
        return linear.linear_apply(x_raw, self.kernel_q.raw, bias,
                                   frac - x.type.frac - self.kernel_q.frac,
                                   linear.compute_dtype(magnitude, max(abs(x.lo), abs(x.hi))))

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        acc = self.accumulate(xs[0], ins[0])
        lo, hi, _ = self.acc_range(ins[0])
        return convert(acc, self.acc_frac(ins[0].type.frac), int(lo.min()), int(hi.max()), self.info.type)

    def params_json(self) -> dict:
        return weights_json(self)

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return weights_from_json(d)
