"""What every IR op shares: a name, its inputs, and after inference a shape, a type
and the exact range of raw integers its output can take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from nnfpga.ir.fixed import FixedType

#: op_type -> class, filled by `register`.
OP_CLASSES: dict[str, type["Op"]] = {}


def register(cls: type["Op"]) -> type["Op"]:
    OP_CLASSES[cls.op_type] = cls
    return cls


@dataclass
class TensorInfo:
    """Shape (without batch), type and raw-integer range of one op's output."""

    shape: tuple[int, ...]
    type: FixedType
    lo: int
    hi: int

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "type": self.type.to_json(), "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_json(cls, d: dict) -> "TensorInfo":
        return cls(tuple(d["shape"]), FixedType.from_json(d["type"]), int(d["lo"]), int(d["hi"]))


@dataclass
class Op:
    """Base of all ops.  ``out_type`` is the requested output type (None: exact, chosen
    by range analysis); ``info`` is filled by `infer`."""

    op_type: ClassVar[str] = "op"
    #: What passes may do with the op's output type (an Activation asks its function's
    #: entry in `nnfpga.ir.ops.activation_functions`).  ``auto_typed``: the output is a
    #: conversion whose type the compiler chooses by range analysis (``auto_frac``) and the
    #: configuration's ``output``/``activation`` key sets; ``trimmable``: `trim_precision`
    #: may narrow that type to the range seen in calibration data.
    auto_typed: ClassVar[bool] = False
    trimmable: ClassVar[bool] = False

    name: str
    inputs: list[str]
    out_type: FixedType | None = None
    info: TensorInfo | None = field(default=None, repr=False)
    source_layer: str = ""
    #: For layers of float (unquantised) models: the output gets this many fractional
    #: bits and just enough integer bits for its exact range (set by the assign_types pass).
    auto_frac: int | None = None

    # -- meaning ----------------------------------------------------------------
    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        """Shape, exact output type and raw range from the inputs' (range analysis)."""
        raise NotImplementedError

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        """Golden semantics on raw integers, batch first. Inputs are float64 or int64
        raw arrays; the result has this op's ``info.type``."""
        raise NotImplementedError

    # -- serialisation ----------------------------------------------------------
    def params_json(self) -> dict:
        return {}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {}

    def to_json(self) -> dict:
        return {"op": self.op_type, "name": self.name, "inputs": list(self.inputs),
                "source_layer": self.source_layer, "auto_frac": self.auto_frac,
                "out_type": self.out_type.to_json() if self.out_type else None,
                "info": self.info.to_json() if self.info else None, **self.params_json()}

    @classmethod
    def from_json(cls, d: dict) -> "Op":
        sub = OP_CLASSES[d["op"]]
        op = sub(name=d["name"], inputs=list(d["inputs"]),
                 out_type=FixedType.from_json(d["out_type"]) if d.get("out_type") else None,
                 source_layer=d.get("source_layer", ""), auto_frac=d.get("auto_frac"),
                 **sub.params_from_json(d))
        op.info = TensorInfo.from_json(d["info"]) if d.get("info") else None
        return op


def output_info(requested: FixedType | None, exact: FixedType, lo: int, hi: int,
                shape: tuple[int, ...], in_frac: int) -> TensorInfo:
    """The TensorInfo after converting an exact range ``[lo, hi]`` (raw at ``in_frac``)
    to the requested type; the range is transformed through the same conversion."""
    if requested is None:
        return TensorInfo(shape, exact, lo, hi)
    conv = requested.requantize(np.array([lo, hi], dtype=np.int64), in_frac)
    # WRAP may map the range anywhere in the type; SAT and rounding are monotone.
    if requested.overflow.value == "SAT" or (requested.contains(*_shifted(lo, hi, in_frac, requested))):
        new_lo, new_hi = int(conv[0]), int(conv[1])
    else:
        new_lo, new_hi = requested.min_raw, requested.max_raw
    return TensorInfo(shape, requested, new_lo, new_hi)


def convert(raw: np.ndarray, frac: int, lo: int, hi: int, target: FixedType) -> np.ndarray:
    """``target.requantize(raw, frac)`` for raw values known to lie in ``[lo, hi]``;
    skipped when it cannot change anything (no bits dropped, no overflow possible)."""
    if frac == target.frac and target.contains(lo, hi):
        return raw
    return target.requantize(raw, frac)


def _shifted(lo: int, hi: int, in_frac: int, t: FixedType) -> tuple[int, int]:
    """Range after alignment and rounding but before overflow (floor/ceil bounds)."""
    shift = in_frac - t.frac
    if shift <= 0:
        return lo << -shift, hi << -shift
    return lo >> shift, -((-hi) >> shift)
