"""ScaleShift: ``y = x * s + t`` per channel (the last axis), exact, then the output type.

It is what a BatchNorm becomes where it cannot be folded into a preceding Dense/Conv2D
(after an activation, a pooling, on the input; `fold_batchnorm`).  The float scale and
shift are held as ``kernel`` and ``bias`` with their quantisers and integers, under the
names a Dense uses, so the weight machinery (`quantize_weights`, the configuration's
``weight``/``bias`` keys, post-training quantisation) treats them alike: ``s_q = kernel_q``
and ``t_q = bias_q``.  The product ``x * s_q`` and the sum with ``t_q`` keep every bit
(fractional bits ``max(fx + fs, ft)``, integer range from range analysis per channel); the
one conversion is to the output type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops.base import Op, TensorInfo, convert, output_info, register
from nnfpga.ir.ops.linear import acc_type_for
from nnfpga.ir.ops.weights import arr_from_json, arr_json
from nnfpga.ir.quant import QuantArray, Quantizer


@register
@dataclass
class ScaleShift(Op):
    op_type = "ScaleShift"
    auto_typed = True
    trimmable = True
    kernel: np.ndarray | None = None          # float scale s, (C,), as trained
    bias: np.ndarray | None = None            # float shift t, (C,)
    kernel_quantizer: Quantizer | None = None
    bias_quantizer: Quantizer | None = None
    kernel_q: QuantArray | None = None        # integers, set by the quantize pass
    bias_q: QuantArray | None = None

    @property
    def n_channels(self) -> int:
        return int(self.kernel_q.raw.shape[-1] if self.kernel_q is not None else np.shape(self.kernel)[-1])

    def _quantized(self) -> QuantArray:
        if self.kernel_q is None:
            raise ValueError(f"layer {self.name!r} has not been quantised")
        return self.kernel_q

    def acc_frac(self, in_frac: int) -> int:
        frac = in_frac + self._quantized().frac
        return max(frac, self.bias_q.frac) if self.bias_q is not None else frac

    def scale_raw(self, in_frac: int) -> np.ndarray:
        """``s_q`` as python ints at the product's alignment: ``x_raw * this`` is at `acc_frac`."""
        kq = self._quantized()
        shift = self.acc_frac(in_frac) - in_frac - kq.frac
        return np.array([int(v) << shift for v in kq.raw.reshape(-1)], dtype=object)

    def shift_raw(self, in_frac: int) -> np.ndarray:
        """``t_q`` as python ints at `acc_frac` (zeros without a shift)."""
        frac = self.acc_frac(in_frac)
        if self.bias_q is None:
            return np.zeros(self.n_channels, dtype=object)
        return np.array([int(v) << (frac - self.bias_q.frac) for v in self.bias_q.raw.reshape(-1)], dtype=object)

    def acc_range(self, x: TensorInfo) -> tuple[np.ndarray, np.ndarray]:
        """Per channel, the exact range of ``x * s_q + t_q`` (raw at `acc_frac`)."""
        s, t = self.scale_raw(x.type.frac), self.shift_raw(x.type.frac)
        a, b = s * x.lo, s * x.hi
        return np.minimum(a, b) + t, np.maximum(a, b) + t

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if not x.shape or x.shape[-1] != self.n_channels:
            raise ValueError(f"ScaleShift {self.name!r} has {self.n_channels} channels; its input has shape "
                             f"{x.shape} (the channels are the last axis)")
        lo, hi = self.acc_range(x)
        frac = self.acc_frac(x.type.frac)
        exact = acc_type_for(lo, hi, frac)
        if exact.width > 62:
            raise ValueError(f"ScaleShift {self.name!r}: x * scale + shift needs {exact.width} bits "
                             "(at most 62); narrow the scale, the shift or the input")
        return output_info(self.out_type, exact, int(lo.min()), int(hi.max()), tuple(x.shape), frac)

    def accumulate(self, x_raw: np.ndarray, x: TensorInfo) -> np.ndarray:
        """The exact ``x * s_q + t_q`` (int64, raw at `acc_frac`), before the output conversion."""
        s = self.scale_raw(x.type.frac).astype(np.int64)
        t = self.shift_raw(x.type.frac).astype(np.int64)
        return np.asarray(x_raw).astype(np.int64) * s + t   # broadcast over the last axis

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        acc = self.accumulate(xs[0], ins[0])
        lo, hi = self.acc_range(ins[0])
        return convert(acc, self.acc_frac(ins[0].type.frac), int(lo.min()), int(hi.max()), self.info.type)

    def params_json(self) -> dict:
        return {"kernel": arr_json(self.kernel), "bias": arr_json(self.bias),
                "kernel_quantizer": self.kernel_quantizer.to_json() if self.kernel_quantizer else None,
                "bias_quantizer": self.bias_quantizer.to_json() if self.bias_quantizer else None,
                "kernel_q": self.kernel_q.to_json() if self.kernel_q else None,
                "bias_q": self.bias_q.to_json() if self.bias_q else None}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"kernel": arr_from_json(d["kernel"]), "bias": arr_from_json(d["bias"]),
                "kernel_quantizer": Quantizer.from_json(d["kernel_quantizer"]),
                "bias_quantizer": Quantizer.from_json(d["bias_quantizer"]),
                "kernel_q": QuantArray.from_json(d["kernel_q"]) if d["kernel_q"] else None,
                "bias_q": QuantArray.from_json(d["bias_q"]) if d["bias_q"] else None}
