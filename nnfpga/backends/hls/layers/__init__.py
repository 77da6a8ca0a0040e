"""One emitter per IR op: ``emit(LayerContext) -> LayerCode``."""

from __future__ import annotations

from nnfpga.backends.hls.layers import activation, banked_dense, conv2d, dense, gather, maxpool2d, merge, quantize, \
    reshape, scale_shift
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext  # noqa: F401
from nnfpga.ir.ops.activation_functions import ACTIVATION_FUNCTIONS

EMITTERS = {
    "Dense": dense.emit,
    "BankedDense": banked_dense.emit,
    "Activation": activation.emit,
    "Reshape": reshape.emit,
    "Conv2D": conv2d.emit,
    "MaxPool2D": maxpool2d.emit,
    "Gather": gather.emit,
    "ScaleShift": scale_shift.emit,
    "Add": merge.emit_add,
    "Concatenate": merge.emit_concatenate,
    "Quantize": quantize.emit,
}

#: Human-readable list for error messages.
SUPPORTED = ("Input", "Dense (fixed, ternary, binary, po2 weights)", "BankedDense",
             f"Activation ({', '.join(ACTIVATION_FUNCTIONS)})", "Reshape",
             "Conv2D (valid/same, any stride)", "MaxPool2D (valid/same, any stride)",
             "Gather (a fixed re-arrangement: Permute, nearest UpSampling)",
             "ScaleShift (BatchNormalization that is not folded)",
             "Add (signed sum of tensors)", "Concatenate",
             "Quantize (a fixed-point type per element: HGQ2 quantisers)")
