"""Conv2D (channels last, NHWC): ``valid`` or ``same`` padding (Keras/TF rules), any
stride; the arithmetic is Dense's on each receptive field (exact accumulator)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.ir.ops import linear
from nnfpga.ir.ops.base import Op, TensorInfo, output_info, register
from nnfpga.ir.ops.weights import weights_from_json, weights_json
from nnfpga.ir.quant import QuantArray, Quantizer


def averaging_kernel(pool: tuple[int, int], channels: int) -> np.ndarray:
    """The (kh, kw, C, C) kernel of average pooling as a convolution: each channel's
    window cells summed with weight 1 / (cells), no mixing of channels.  A power-of-two
    number of cells gives an exact weight (the firmware: wiring and a shift); otherwise
    the weight is rounded like any float weight and the error bound covers it."""
    kernel = np.zeros((*pool, channels, channels))
    kernel[:, :, np.arange(channels), np.arange(channels)] = 1.0 / (pool[0] * pool[1])
    return kernel


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of TensorFlow's ``same`` padding."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def window_geometry(shape: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
                    padding: str) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Output (h, w) and pads (top, bottom, left, right) for a sliding window."""
    (h, w), (kh, kw), (sh, sw) = shape, kernel, strides
    if padding == "valid":
        return ((h - kh) // sh + 1, (w - kw) // sw + 1), (0, 0, 0, 0)
    oh, pt, pb = same_padding(h, kh, sh)
    ow, pl, pr = same_padding(w, kw, sw)
    return (oh, ow), (pt, pb, pl, pr)


def windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
            padding: str, pad_value: float = 0) -> np.ndarray:
    """(B, OH, OW, kh, kw, C) view of every window of an NHWC batch."""
    (oh, ow), (pt, pb, pl, pr) = window_geometry(x.shape[1:3], kernel, strides, padding)
    if any((pt, pb, pl, pr)):
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    v = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(1, 2))  # B,H',W',C,kh,kw
    v = v[:, ::strides[0], ::strides[1]][:, :oh, :ow]
    return np.moveaxis(v, 3, 5)


@register
@dataclass
class Conv2D(Op):
    op_type = "Conv2D"
    auto_typed = True
    trimmable = True
    kernel: np.ndarray | None = None          # float (kh, kw, cin, cout)
    bias: np.ndarray | None = None
    kernel_quantizer: Quantizer | None = None
    bias_quantizer: Quantizer | None = None
    kernel_q: QuantArray | None = None        # integers (kh, kw, cin, cout)
    bias_q: QuantArray | None = None
    reuse_factor: int = 1
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"

    @property
    def kernel_size(self) -> tuple[int, int]:
        k = self.kernel_q.raw if self.kernel_q is not None else self.kernel
        return int(k.shape[0]), int(k.shape[1])

    @property
    def n_filters(self) -> int:
        k = self.kernel_q.raw if self.kernel_q is not None else self.kernel
        return int(k.shape[3])

    def _w2d(self) -> np.ndarray:
        if self.kernel_q is None:
            raise ValueError(f"layer {self.name!r} has not been quantised")
        return self.kernel_q.raw.reshape(-1, self.n_filters)

    def acc_frac(self, in_frac: int) -> int:
        return linear.acc_frac(in_frac, self.kernel_q, self.bias_q)

    def acc_range(self, x: TensorInfo) -> tuple[np.ndarray, np.ndarray, int]:
        frac = self.acc_frac(x.type.frac)
        bias = linear.aligned_bias(self.bias_q, frac, self.n_filters)
        lo, hi = x.lo, x.hi
        if self.padding == "same":  # padded positions hold zero
            lo, hi = min(lo, 0), max(hi, 0)
        return linear.linear_range(self._w2d(), bias, lo, hi, frac - x.type.frac - self.kernel_q.frac)

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if len(x.shape) != 3:
            raise ValueError(f"Conv2D {self.name!r} expects an (H, W, C) input, got shape {x.shape}")
        if x.shape[2] != self.kernel_q.raw.shape[2]:
            raise ValueError(f"Conv2D {self.name!r} expects {self.kernel_q.raw.shape[2]} channels, got {x.shape[2]}")
        (oh, ow), _ = window_geometry(x.shape[:2], self.kernel_size, self.strides, self.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2D {self.name!r}: kernel {self.kernel_size} does not fit input {x.shape}")
        lo, hi, _ = self.acc_range(x)
        frac = self.acc_frac(x.type.frac)
        exact = linear.acc_type_for(lo, hi, frac)
        return output_info(self.out_type, exact, int(lo.min()), int(hi.max()), (oh, ow, self.n_filters), frac)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        x, info = xs[0], ins[0]
        frac = self.acc_frac(info.type.frac)
        _, _, magnitude = self.acc_range(info)
        win = windows(x, self.kernel_size, self.strides, self.padding)
        b, oh, ow = win.shape[:3]
        cols = win.reshape(b * oh * ow, -1)
        bias = linear.aligned_bias(self.bias_q, frac, self.n_filters)
        acc = linear.linear_apply(cols, self._w2d(), bias, frac - info.type.frac - self.kernel_q.frac,
                                  linear.compute_dtype(magnitude, max(abs(info.lo), abs(info.hi))))
        return self.info.type.requantize(acc.reshape(b, oh, ow, -1), frac)

    def params_json(self) -> dict:
        return {**weights_json(self), "strides": list(self.strides), "padding": self.padding}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {**weights_from_json(d), "strides": tuple(d["strides"]), "padding": d["padding"]}
