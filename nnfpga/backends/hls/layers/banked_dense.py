"""BankedDense: ``y = convert(b[bank] + sum_i x_i * W[bank]_ij)``, the weights of the
sample's bank read from constant arrays indexed by the bank index.

As in Dense the accumulator is exact (its type from the IR's range analysis over every
bank) and converted once, at the output.  The arrays are partitioned over inputs and
outputs but not over banks: every weight position becomes a small ROM of one entry per
bank feeding its multiplier.
"""

from __future__ import annotations

import numpy as np

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers import linear
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext

#: The bank index argument of the top function and of every banked layer function.
BANK_TYPE = "bank_t"


def signature(ctx: LayerContext) -> str:
    return (f"static void {ctx.function_name}(const {ctx.x_t} x[{ctx.n_in}], const {BANK_TYPE} bank, "
            f"{ctx.y_t} y[{ctx.n_out}])")


def multiplications(kq) -> int:
    """Weight positions that take a multiplier: non-zero in some bank, and either
    different between banks (a variable operand) or not a power of two."""
    raw = np.asarray(kq.raw)
    varies = np.any(raw != raw[:1], axis=0)
    return int((varies | linear.needs_multiplier(type(kq)(raw[0], kq.frac, kq.kind))).sum())


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    rf = linear.check_reuse(ctx)
    kq, _ = linear.quantized(ctx)
    banks, n_in, n_out = node.banks, node.n_in, node.n_out
    acc_t, acc_frac = linear.acc_type(ctx)
    files, typedefs, bias = linear.weight_files(ctx, (banks, n_in, n_out), (banks, n_out))
    typedefs.append((f"{ctx.id}_acc_t", acc_t, f"{node.name}: exact accumulator, {acc_frac} fractional bits"))
    helper, stmt = linear.mac(ctx)
    n_mult = multiplications(kq)
    init = f"{bias}[bank][j]" if bias else "0"
    body = stmt.format(acc="acc[j]", x="x[i]", w=f"w_{ctx.id}[bank][i][j]")
    partition = "".join(f"#pragma HLS ARRAY_PARTITION variable={a} complete dim={d}\n"
                        for a, dims in ((f"w_{ctx.id}", (2, 3)), (bias, (2,))) if a for d in dims)
    fn = f"""// {cpp_comment(node.name)}: BankedDense {n_in} -> {n_out} x {banks} banks, {kq.kind.value} weights,
// the sample's bank selects its weights; {n_mult} weight positions need a multiplier
{signature(ctx)} {{
{ctx.header_pragmas(rf)}{linear.allocation_pragma(ctx, rf, n_mult)}{partition}{linear.dense_body(ctx, n_in, n_out, init, body)}}}
"""
    return LayerCode(fn, typedefs, helper, files, rf,
                     f"BankedDense {n_in}->{n_out} x {banks} banks {kq.kind.value}, acc {acc_t.cpp()}")
