"""Ops that read several tensors: the joins of a general graph (skip connections, branches).

* `Add`: the element-wise signed sum ``sum_k signs[k] * x_k`` of tensors of one shape
  (Keras Add and Subtract, ONNX Add/Sub of two computed tensors), exact: every operand
  is aligned to the finest scale among them, and the type holds the sum's whole range;
* `Concatenate`: the tensors side by side along one axis, each value exactly as it was,
  in the type that holds every operand's values (the finest scale, the widest range).

Neither rounds, so the firmware of a join is adders (`Add`) or wiring (`Concatenate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FLOAT64_EXACT_BITS, type_for_range
from nnfpga.ir.ops.base import Op, TensorInfo, convert, output_info, register


def _aligned(x: np.ndarray, shift: int, dtype) -> np.ndarray:
    """Raw integers ``x`` at ``shift`` more fractional bits (exact in ``dtype``)."""
    x = np.asarray(x).astype(dtype)
    return x * (1 << shift) if shift else x


@register
@dataclass
class Add(Op):
    op_type = "Add"
    #: +1 or -1 per input (Subtract: (1, -1)); empty means all +1.
    signs: tuple[int, ...] = ()

    def sign_list(self) -> list[int]:
        return list(self.signs) if self.signs else [1] * len(self.inputs)

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        signs = self.sign_list()
        if len(ins) < 2 or len(signs) != len(ins) or any(s not in (1, -1) for s in signs):
            raise ValueError(f"Add {self.name!r}: {len(ins)} inputs and signs {signs}; it needs two or more "
                             "inputs and a sign of +1 or -1 for each")
        shapes = {tuple(x.shape) for x in ins}
        if len(shapes) != 1:
            raise ValueError(f"Add {self.name!r}: the inputs have shapes {sorted(shapes)}; they must be equal")
        frac = self.acc_frac(ins)
        lo, hi = self.exact_range(ins)
        exact = type_for_range(lo, hi, frac)
        if exact.width > 62:
            raise ValueError(f"Add {self.name!r}: the exact sum needs {exact.width} bits (at most 62)")
        return output_info(self.out_type, exact, lo, hi, ins[0].shape, frac)

    @staticmethod
    def acc_frac(ins: list[TensorInfo]) -> int:
        return max(x.type.frac for x in ins)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        frac = self.acc_frac(ins)
        lo, hi = self.exact_range(ins)
        exact_width = type_for_range(lo, hi, frac).width
        dtype = np.float64 if exact_width <= FLOAT64_EXACT_BITS else np.int64
        acc = None
        for s, x, info in zip(self.sign_list(), xs, ins):
            term = _aligned(x, frac - info.type.frac, dtype)
            acc = (term if s > 0 else -term) if acc is None else (acc + term if s > 0 else acc - term)
        return convert(acc, frac, lo, hi, self.info.type)

    def exact_range(self, ins: list[TensorInfo]) -> tuple[int, int]:
        frac, lo, hi = self.acc_frac(ins), 0, 0
        for s, x in zip(self.sign_list(), ins):
            a, b = x.lo << (frac - x.type.frac), x.hi << (frac - x.type.frac)
            lo, hi = (lo + a, hi + b) if s > 0 else (lo - b, hi - a)
        return lo, hi

    def params_json(self) -> dict:
        return {"signs": list(self.signs)}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"signs": tuple(int(s) for s in d.get("signs", ()))}


@register
@dataclass
class Concatenate(Op):
    op_type = "Concatenate"
    #: The axis of the sample's shape (no batch axis; negative counts from the end).
    axis: int = -1

    def sample_axis(self, rank: int) -> int:
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} for inputs of rank {rank}")
        return axis

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        if len(ins) < 2:
            raise ValueError(f"Concatenate {self.name!r} needs two or more inputs, has {len(ins)}")
        rank = len(ins[0].shape)
        axis = self.sample_axis(rank)
        rest = {tuple(d for k, d in enumerate(x.shape) if k != axis) for x in ins}
        if any(len(x.shape) != rank for x in ins) or len(rest) != 1:
            raise ValueError(f"Concatenate {self.name!r}: inputs of shapes {[list(x.shape) for x in ins]} differ "
                             f"outside axis {self.axis}")
        frac = max(x.type.frac for x in ins)
        lo = min(x.lo << (frac - x.type.frac) for x in ins)
        hi = max(x.hi << (frac - x.type.frac) for x in ins)
        shape = list(ins[0].shape)
        shape[axis] = sum(x.shape[axis] for x in ins)
        return TensorInfo(tuple(shape), type_for_range(lo, hi, frac), lo, hi)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        t = self.info.type
        dtype = np.float64 if t.width <= FLOAT64_EXACT_BITS else np.int64
        parts = [_aligned(x, t.frac - info.type.frac, dtype) for x, info in zip(xs, ins)]
        return np.concatenate(parts, axis=1 + self.sample_axis(len(ins[0].shape)))

    def destinations(self, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        """For each input (of shape ``shapes[k]``), where its values (row-major) go in the
        output (row-major)."""
        axis = self.sample_axis(len(shapes[0]))
        out_shape = list(shapes[0])
        out_shape[axis] = sum(s[axis] for s in shapes)
        flat = np.arange(int(np.prod(out_shape))).reshape(out_shape)
        cuts = np.cumsum([s[axis] for s in shapes])[:-1]
        return [part.reshape(-1) for part in np.split(flat, cuts, axis=axis)]

    def params_json(self) -> dict:
        return {"axis": self.axis}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"axis": int(d.get("axis", -1))}

