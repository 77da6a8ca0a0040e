"""Activations: linear (a plain type conversion), relu, hard_tanh, tanh, sigmoid, softmax.

relu / linear / hard_tanh are exact operations followed by the conversion to the
output type (QKeras ``quantized_relu`` is relu into an unsigned RND_CONV/SAT type).
tanh and sigmoid are `LookupTable`s.  softmax is ``e_i = exp_table(x_i - max x)``,
``s = sum e_i`` (exact), ``r = inv_table(s)``, ``y_i = e_i * r`` converted to the output
type; subtracting the maximum keeps the arg-max entry at ``exp(0) = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType, type_for_range
from nnfpga.ir.ops.base import Op, TensorInfo, convert, output_info, register
from nnfpga.ir.tables import LookupTable

FUNCTIONS = ("linear", "relu", "hard_tanh", "tanh", "sigmoid", "softmax")


@register
@dataclass
class Activation(Op):
    op_type = "Activation"
    function: str = "linear"
    table: LookupTable | None = None          # tanh, sigmoid; exp for softmax
    inv_table: LookupTable | None = None      # softmax's reciprocal

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise ValueError(f"activation {self.function!r} of {self.name!r} is not supported; "
                             f"supported: {', '.join(FUNCTIONS)}")

    def _pre(self, x: TensorInfo) -> tuple[int, int, FixedType]:
        """Exact range and type before the output conversion."""
        f = self.function
        if f == "relu":
            lo, hi = max(x.lo, 0), max(x.hi, 0)
        elif f == "hard_tanh":
            one = 1 << max(x.type.frac, 0)
            lo, hi = min(max(x.lo, -one), one), max(min(x.hi, one), -one)
        else:
            lo, hi = x.lo, x.hi
        return lo, hi, type_for_range(lo, hi, x.type.frac)

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if self.function in ("tanh", "sigmoid"):
            t = self.table
            return TensorInfo(x.shape, t.out_type, int(t.entries.min()), int(t.entries.max()))
        if self.function == "softmax":
            if self.out_type is None:
                raise ValueError(f"softmax {self.name!r} needs an output type")
            return TensorInfo(x.shape, self.out_type, 0, self.out_type.max_raw)
        if self.function == "hard_tanh" and x.type.frac < 0:
            raise ValueError(f"hard_tanh {self.name!r} needs an input with fractional bits")
        lo, hi, exact = self._pre(x)
        return output_info(self.out_type, exact, lo, hi, x.shape, x.type.frac)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        x, info = xs[0], ins[0]
        f = self.function
        if f in ("tanh", "sigmoid"):
            return self.table.lookup(x, info.type.frac)
        if f == "softmax":
            return self._softmax(x, info)
        if f == "relu":
            x = np.maximum(x, 0)
        elif f == "hard_tanh":
            one = 1 << info.type.frac
            x = np.clip(x, -one, one)
        lo, hi, _ = self._pre(info)
        return convert(x, info.type.frac, lo, hi, self.info.type)

    def _softmax(self, x: np.ndarray, info: TensorInfo) -> np.ndarray:
        shifted = x - x.max(axis=-1, keepdims=True)      # exact, <= 0
        e = self.table.lookup(shifted, info.type.frac)   # raw at exp out frac
        s = e.sum(axis=-1, keepdims=True)
        r = self.inv_table.lookup(s, self.table.out_type.frac)
        prod = e * r
        return self.info.type.requantize(prod, self.table.out_type.frac + self.inv_table.out_type.frac)

    def params_json(self) -> dict:
        return {"function": self.function,
                "table": self.table.to_json() if self.table else None,
                "inv_table": self.inv_table.to_json() if self.inv_table else None}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"function": d["function"],
                "table": LookupTable.from_json(d["table"]) if d.get("table") else None,
                "inv_table": LookupTable.from_json(d["inv_table"]) if d.get("inv_table") else None}
