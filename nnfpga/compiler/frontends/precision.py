"""`Precision`: the fixed-point types a frontend gives the parts of a float (unquantised)
model — its input, weights, activations and activation tables.

Every frontend (Keras, ONNX, PyTorch through ONNX) reads it, and the configuration file's
``defaults`` and the API's ``precision=`` make one; so it sits beside the frontends, not
inside one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.tables import LookupTable


@dataclass
class Precision:
    """Types for the parts of a float (unquantised) model."""

    input_type: FixedType = FixedType(16, 6, True, Rounding.RND, Overflow.SAT)
    weight_frac: int = 10
    activation_frac: int = 10
    table_index_bits: int = 10

    def table(self, function: str) -> LookupTable:
        n = self.table_index_bits
        f = self.activation_frac
        if function == "tanh":   # index range [-4, 4), output [-1, 1]
            return LookupTable.build("tanh", FixedType(n, 3, True, Rounding.RND, Overflow.SAT),
                                     FixedType(f + 2, 2, True, Rounding.RND, Overflow.SAT))
        if function == "sigmoid":  # index range [-8, 8), output [0, 1]
            return LookupTable.build("sigmoid", FixedType(n, 4, True, Rounding.RND, Overflow.SAT),
                                     FixedType(f + 1, 1, False, Rounding.RND, Overflow.SAT))
        raise ValueError(function)

    def softmax_tables(self, n_classes: int) -> tuple[LookupTable, LookupTable, FixedType]:
        n, f = self.table_index_bits, self.activation_frac
        exp = LookupTable.build("exp", FixedType(n, 4, True, Rounding.RND, Overflow.SAT),
                                FixedType(f + 8, 1, False, Rounding.RND, Overflow.SAT))
        int_bits = max(int(np.ceil(np.log2(n_classes + 1))), 1)
        inv = LookupTable.build("reciprocal", FixedType(n, int_bits, False, Rounding.RND, Overflow.SAT),
                                FixedType(f + 8, 1, False, Rounding.RND, Overflow.SAT))
        return exp, inv, FixedType(f + 1, 1, False, Rounding.RND, Overflow.SAT)
