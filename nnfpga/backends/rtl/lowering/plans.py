"""The column plans of the linear layers: every output of a Dense, BankedDense or Conv2D
as its (input index, raw weight) pairs and its bias -- what the lowering (`linear`) builds
and the reuse search (`schedule`) prices, from one description."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.backends.rtl.lowering.builder import strip_zeros, unsupported
from nnfpga.ir.ops import BankedDense, Conv2D, Dense, Op as IrOp
from nnfpga.ir.ops.conv2d import window_geometry


@dataclass
class LinearPlan:
    """A linear layer as lists of weights: output ``j`` is ``sum(w * x[i] for i, w in
    cols[j]) + bias[j]`` (raw integers; weights at ``kf`` fractional bits, biases as
    ``(raw, frac)``).  Dense and Conv2D both lower through it."""

    name: str
    cols: list[list[tuple[int, int]]]
    bias: list[tuple[int, int] | None]
    kf: int
    acc_frac: int
    reuse: int
    description: str
    #: a BankedDense: per output the (input, per-bank weights) pairs and the per-bank
    #: biases at ``acc_frac``
    bank_cols: list[list[tuple[int, tuple[int, ...]]]] | None = None
    bank_bias: list[tuple[int, ...]] | None = None


def dense_plan(dense: Dense, n_in: int, in_frac: int) -> LinearPlan:
    if dense.kernel_q is None:
        raise unsupported(dense, "the layer is not quantised")
    w = dense.kernel_q.raw
    if w.shape != (n_in, dense.n_out):
        raise unsupported(dense, f"kernel shape {w.shape} does not match {n_in} inputs")
    cols = [[(int(i), int(w[i, j])) for i in np.flatnonzero(w[:, j])] for j in range(dense.n_out)]
    bias = biases(dense.bias_q, dense.n_out, lambda j: j)
    kinds = sorted({dense.kernel_q.kind.value})
    return LinearPlan(dense.name, cols, bias, dense.kernel_q.frac, dense.acc_frac(in_frac),
                      reuse_factor_of(dense), f"Dense {n_in}->{dense.n_out} ({', '.join(kinds)} weights)")


def banked_plan(dense: BankedDense, n_in: int, in_frac: int) -> LinearPlan:
    w = dense.kernel_q.raw
    if w.shape[1:] != (n_in, dense.n_out):
        raise unsupported(dense, f"kernel shape {w.shape} does not match {n_in} inputs")
    acc_frac = dense.acc_frac(in_frac)
    cols = [[(int(i), tuple(int(v) for v in w[:, i, j])) for i in np.flatnonzero(np.any(w[:, :, j], axis=0))]
            for j in range(dense.n_out)]
    if dense.bias_q is None:
        bias = [(0,) * dense.banks] * dense.n_out
    else:
        shift = acc_frac - dense.bias_q.frac
        bias = [tuple(int(v) << shift for v in dense.bias_q.raw[:, j]) for j in range(dense.n_out)]
    return LinearPlan(dense.name, [], [None] * dense.n_out, dense.kernel_q.frac, acc_frac, reuse_factor_of(dense),
                      f"BankedDense {n_in}->{dense.n_out} x {dense.banks} banks "
                      f"({dense.kernel_q.kind.value} weights, selected by the bank index)",
                      bank_cols=cols, bank_bias=bias)


def biases(bias_q, n: int, channel) -> list[tuple[int, int] | None]:
    out = []
    for j in range(n):
        raw = 0 if bias_q is None else int(bias_q.raw.reshape(-1)[channel(j)])
        out.append(strip_zeros(raw, bias_q.frac) if raw else None)
    return out


def reuse_factor_of(node: IrOp) -> int:
    r = node.reuse_factor
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
        raise unsupported(node, f"reuse factor {r!r} is not an integer >= 1")
    return int(r)


def conv_plan(conv: Conv2D, in_shape: tuple[int, ...], in_frac: int) -> LinearPlan:
    """Every output element of the convolution as a column of (input index, weight):
    the inputs of its receptive field in NHWC order; zero padding contributes nothing."""
    if conv.kernel_q is None:
        raise unsupported(conv, "the layer is not quantised")
    h, w, c = in_shape
    k = conv.kernel_q.raw
    kh, kw = conv.kernel_size
    f = conv.n_filters
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), (kh, kw), conv.strides, conv.padding)
    cols = []
    for y in range(oh):
        for x in range(ow):
            taps = []
            for dy in range(kh):
                for dx in range(kw):
                    iy, ix = y * conv.strides[0] + dy - pt, x * conv.strides[1] + dx - pl
                    if 0 <= iy < h and 0 <= ix < w:
                        taps += [((iy * w + ix) * c + ch, dy, dx, ch) for ch in range(c)]
            for fi in range(f):
                cols.append([(i, int(k[dy, dx, ch, fi])) for i, dy, dx, ch in taps if k[dy, dx, ch, fi] != 0])
    bias = biases(conv.bias_q, oh * ow * f, lambda j: j % f)
    kinds = sorted({conv.kernel_q.kind.value})
    return LinearPlan(conv.name, cols, bias, conv.kernel_q.frac, conv.acc_frac(in_frac), reuse_factor_of(conv),
                      f"Conv2D {h}x{w}x{c} -> {oh}x{ow}x{f}, {kh}x{kw} kernel, stride {conv.strides}, "
                      f"{conv.padding} ({', '.join(kinds)} weights)")
