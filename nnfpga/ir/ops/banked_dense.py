"""BankedDense: a Dense layer with one weight bank per sample class.

``y = x @ W[bank] + b[bank]``: every sample arrives with a bank index (the graph's
``banks`` side input, e.g. the (E_T, |eta|) bin of an electron candidate) that selects
which of the ``banks`` weight sets is applied.  An ensemble of identically shaped
networks thus becomes one datapath whose weights are read from ROMs, instead of one copy
per member (`nnfpga.compiler.banked.merge_banks` builds such graphs).

Range analysis bounds every product over all banks (`acc_range`): the accumulator type
holds every bank's range, so no bank can overflow it, and a sample's result is exactly
that of its own bank's Dense layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops import linear
from nnfpga.ir.ops.base import Op, TensorInfo, convert, output_info, register
from nnfpga.ir.ops.weights import weights_from_json, weights_json
from nnfpga.ir.quant import QuantArray


@register
@dataclass
class BankedDense(Op):
    op_type = "BankedDense"
    kernel_q: QuantArray | None = None        # integers (banks, n_in, n_out)
    bias_q: QuantArray | None = None          # integers (banks, n_out) or None
    reuse_factor: int = 1
    #: every bank's source layer (for reports and error messages)
    bank_layers: tuple[str, ...] = ()

    # float weights and quantisers live in the member models; these keep the JSON
    # layout of the other weighted ops
    kernel = None
    bias = None
    kernel_quantizer = None
    bias_quantizer = None

    @property
    def banks(self) -> int:
        return int(self.kernel_q.raw.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.kernel_q.raw.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.kernel_q.raw.shape[2])

    def bank_kernel(self, b: int) -> QuantArray:
        return QuantArray(self.kernel_q.raw[b], self.kernel_q.frac, self.kernel_q.kind)

    def bank_bias(self, b: int) -> QuantArray | None:
        return None if self.bias_q is None else QuantArray(self.bias_q.raw[b], self.bias_q.frac)

    def acc_frac(self, in_frac: int) -> int:
        return linear.acc_frac(in_frac, self.kernel_q, self.bias_q)

    def acc_range(self, x: TensorInfo) -> tuple[np.ndarray, np.ndarray, int]:
        """Per-output accumulator range and the largest partial-sum magnitude, bounding
        every term over all banks: ``sum_i [min_b, max_b] x_i w_b[i, j] + [min_b, max_b]
        bias_b[j]`` -- what a datapath whose weights come from a ROM can take, so the RTL
        description derives the very same range."""
        frac = self.acc_frac(x.type.frac)
        shift = frac - x.type.frac - self.kernel_q.frac
        w = self.kernel_q.raw.astype(object) * (1 << shift)
        a, b = w * x.lo, w * x.hi
        lo = np.minimum(a, b).min(axis=0).sum(axis=0)
        hi = np.maximum(a, b).max(axis=0).sum(axis=0)
        big = np.maximum(abs(a), abs(b)).max(axis=0).sum(axis=0)
        biases = np.array([linear.aligned_bias(self.bank_bias(k), frac, self.n_out) for k in range(self.banks)],
                          dtype=object).reshape(self.banks, self.n_out)
        lo = lo + biases.min(axis=0)
        hi = hi + biases.max(axis=0)
        magnitude = int(big.max(initial=0)) + max((abs(int(v)) for v in biases.reshape(-1)), default=0)
        return lo, hi, magnitude

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if self.kernel_q is None or self.kernel_q.raw.ndim != 3:
            raise ValueError(f"BankedDense {self.name!r} needs a (banks, n_in, n_out) integer kernel")
        if self.bias_q is not None and self.bias_q.raw.shape != (self.banks, self.n_out):
            raise ValueError(f"BankedDense {self.name!r}: bias shape {self.bias_q.raw.shape} is not "
                             f"({self.banks}, {self.n_out})")
        if x.shape != (self.n_in,):
            raise ValueError(f"BankedDense {self.name!r} expects a flat input of {self.n_in} values, "
                             f"got shape {x.shape}")
        lo, hi, _ = self.acc_range(x)
        frac = self.acc_frac(x.type.frac)
        exact = linear.acc_type_for(lo, hi, frac)
        return output_info(self.out_type, exact, int(lo.min()), int(hi.max()), (self.n_out,), frac)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo], bank: np.ndarray | None = None
                ) -> np.ndarray:
        if bank is None:
            raise ValueError(f"BankedDense {self.name!r} needs each sample's bank index")
        x, info = xs[0], ins[0]
        bank = np.asarray(bank).reshape(-1)
        if len(bank) != len(x):
            raise ValueError(f"{len(bank)} bank indices for {len(x)} samples")
        frac = self.acc_frac(info.type.frac)
        lo, hi, magnitude = self.acc_range(info)
        dtype = linear.compute_dtype(magnitude, max(abs(info.lo), abs(info.hi)))
        acc = np.zeros((len(x), self.n_out), dtype=dtype)
        shift = frac - info.type.frac - self.kernel_q.frac
        for b in np.unique(bank):
            rows = bank == b
            bias = linear.aligned_bias(self.bank_bias(int(b)), frac, self.n_out)
            acc[rows] = linear.linear_apply(x[rows], self.kernel_q.raw[int(b)], bias, shift, dtype)
        return convert(acc, frac, int(lo.min()), int(hi.max()), self.info.type)

    def params_json(self) -> dict:
        d = weights_json(self)
        d["bank_layers"] = list(self.bank_layers)
        return d

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        w = weights_from_json(d)
        return {"kernel_q": w["kernel_q"], "bias_q": w["bias_q"], "reuse_factor": w["reuse_factor"],
                "bank_layers": tuple(d.get("bank_layers", ()))}
