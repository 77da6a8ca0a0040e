"""Dense: ``y = convert(b + sum_i x_i * W_ij)`` with an exact accumulator.

The accumulator starts from the bias (its fractional bits never exceed the
accumulator's), takes every product exactly and is converted once, at the output, to
the layer's type with that type's rounding and overflow, as `Dense.emulate` does.
"""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers import linear
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    rf = linear.check_reuse(ctx)
    kq, _ = linear.quantized(ctx)
    n_in, n_out = node.n_in, node.n_out
    acc_t, acc_frac = linear.acc_type(ctx)
    files, typedefs, bias = linear.weight_files(ctx, (n_in, n_out))
    typedefs.append((f"{ctx.id}_acc_t", acc_t, f"{node.name}: exact accumulator, {acc_frac} fractional bits"))
    helper, stmt = linear.mac(ctx)
    n_nonzero = int((kq.raw != 0).sum())
    n_mult = int(linear.needs_multiplier(kq).sum())
    init = f"{bias}[j]" if bias else "0"
    body = stmt.format(acc="acc[j]", x="x[i]", w=f"w_{ctx.id}[i][j]")
    fn = f"""// {cpp_comment(node.name)}: Dense {n_in} -> {n_out}, {kq.kind.value} weights,
// {n_nonzero} non-zero, {n_mult} of them need a multiplier (not +-2^k)
{ctx.signature()} {{
{ctx.header_pragmas(rf)}{linear.allocation_pragma(ctx, rf, n_mult)}#pragma HLS ARRAY_PARTITION variable=w_{ctx.id} complete dim=0
{f"#pragma HLS ARRAY_PARTITION variable={bias} complete dim=0" + chr(10) if bias else ""}{linear.dense_body(ctx, n_in, n_out, init, body)}}}
"""
    return LayerCode(fn, typedefs, helper, files, rf,
                     f"Dense {n_in}->{n_out} {kq.kind.value}, acc {acc_t.cpp()}")
