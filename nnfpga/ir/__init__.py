"""The fixed-point IR: types, ops, the graph and the golden emulator."""

from nnfpga.ir.fixed import FixedType, Overflow, Rounding  # noqa: F401
from nnfpga.ir.graph import Graph  # noqa: F401
