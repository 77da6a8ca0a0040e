"""The RTL lowering: an IR graph to the `Netlist` both HDL printers print.

* `builder`: the building kit (`Builder`, `RtlConfig`, shared helpers);
* one module per op family: `linear` (Dense, BankedDense, Conv2D; `multiplier_units`
  for reuse factors above 1), `conversions` (piecewise-linear activations), `tables`
  (tanh, sigmoid, softmax), `pool` (MaxPool2D), `scale_shift` (ScaleShift: an unfolded
  BatchNorm);
* `plans`: a linear layer's outputs as (input, weight) columns, read by `linear` and `schedule`;
* `schedule`: the schedule of a linear layer and its cost, shared with the reuse search;
* `network`: `lower`, dispatching each node to its rule (`LAYER_RULES`).
"""

from nnfpga.backends.rtl.lowering.builder import RtlConfig, RtlUnsupportedError
from nnfpga.backends.rtl.lowering.network import lower

__all__ = ["RtlConfig", "RtlUnsupportedError", "lower"]
