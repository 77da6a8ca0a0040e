"""Lookup tables for non-linear functions, defined once in the IR.

A table converts its input to ``index_type`` (that type's rounding and overflow apply,
normally RND and SAT), uses ``raw - index_type.min_raw`` as the address, and returns the
entry: raw integers of ``out_type``.  The golden emulator, the HLS code and the RTL ROMs
all read these very entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType

FUNCTIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "exp": np.exp,
    "reciprocal": lambda x: 1.0 / np.maximum(x, 2.0 ** -30),
}


@dataclass(frozen=True)
class LookupTable:
    function: str
    index_type: FixedType
    out_type: FixedType
    entries: np.ndarray

    @classmethod
    def build(cls, function: str, index_type: FixedType, out_type: FixedType) -> "LookupTable":
        if function not in FUNCTIONS:
            raise ValueError(f"no table for function {function!r}; known: {sorted(FUNCTIONS)}")
        if index_type.width > 16:
            raise ValueError(f"table index of {index_type.width} bits is too large (at most 16)")
        raw = np.arange(index_type.min_raw, index_type.max_raw + 1, dtype=np.float64)
        values = FUNCTIONS[function](index_type.to_float(raw))
        entries = out_type.quantize(values).astype(np.int64)
        return cls(function, index_type, out_type, entries)

    @property
    def size(self) -> int:
        return len(self.entries)

    def address(self, x_raw: np.ndarray, x_frac: int) -> np.ndarray:
        idx = self.index_type.requantize(x_raw, x_frac)
        return (np.asarray(idx, dtype=np.int64) - self.index_type.min_raw)

    def lookup(self, x_raw: np.ndarray, x_frac: int) -> np.ndarray:
        out = self.entries[self.address(x_raw, x_frac)]
        return out.astype(x_raw.dtype if np.asarray(x_raw).dtype.kind == "f" else np.int64)

    def to_json(self) -> dict:
        # The entries are the table's definition from here on: the emulator, the HLS code
        # and the RTL ROMs all read these integers (never a recomputation).
        return {"function": self.function, "index_type": self.index_type.to_json(),
                "out_type": self.out_type.to_json(), "entries": self.entries.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "LookupTable":
        return cls(d["function"], FixedType.from_json(d["index_type"]),
                   FixedType.from_json(d["out_type"]), np.asarray(d["entries"], dtype=np.int64))
