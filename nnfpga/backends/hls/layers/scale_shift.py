"""ScaleShift (an unfolded BatchNorm): ``y = convert(x * s[c] + t[c])`` per element, ``c``
its channel (the last axis), with the exact product and sum in one accumulator type.

ap_fixed's product and sum are exact and the accumulator type is the IR's exact range
at ``max(fx + fs, ft)`` fractional bits, so the value converted is the IR's; a scale
that is ``+-2^k`` is a constant shift after unrolling (HLS strength-reduces it).
"""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers import linear
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext
from nnfpga.ir.ops.linear import acc_type_for


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    kq, _ = linear.quantized(ctx)
    c, n = node.n_channels, ctx.n_out
    lo, hi = node.acc_range(ctx.x)
    frac = node.acc_frac(ctx.x.type.frac)
    acc_t = acc_type_for(lo, hi, frac)
    files, typedefs, shift = linear.weight_files(ctx, (c,))
    typedefs.append((f"{ctx.id}_acc_t", acc_t, f"{node.name}: exact x * scale + shift, {frac} fractional bits"))
    n_mult = int(linear.needs_multiplier(kq).sum())
    plus = f" + {shift}[i % {c}]" if shift else ""
    fn = f"""// {cpp_comment(node.name)}: ScaleShift (BatchNormalization) over {list(ctx.x.shape)}, per channel
// ({c} channels, the last axis) y = x * scale + shift, exact, then the output conversion;
// {n_mult} of the {c} scales need a multiplier (the others are +-2^k: shifts)
{ctx.signature()} {{
{ctx.header_pragmas()}#pragma HLS ARRAY_PARTITION variable=w_{ctx.id} complete dim=0
{f"#pragma HLS ARRAY_PARTITION variable={shift} complete dim=0" + chr(10) if shift else ""}Element:
    for (int i = 0; i < {n}; i++) {{
#pragma HLS UNROLL
        const {ctx.id}_acc_t v = x[i] * w_{ctx.id}[i % {c}]{plus};  // exact product and sum
        nnfpga::convert(y[i], v);  // the IR's output conversion: rounding and overflow of {ctx.y_t}
    }}
}}
"""
    return LayerCode(fn, typedefs, "", files, 1, f"ScaleShift {c} channels, acc {acc_t.cpp()}")
