"""Conv2D (NHWC, flat arrays): for each output pixel, an exact accumulator over its
receptive field, as `Conv2D.emulate`.  ``same`` padding adds zeros, which contribute
nothing, so padded positions are skipped (constant conditions after unrolling)."""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers import linear
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext
from nnfpga.ir.ops.conv2d import window_geometry


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    rf = linear.check_reuse(ctx)
    kq, _ = linear.quantized(ctx)
    if node.padding not in ("valid", "same"):
        raise ValueError(f"Conv2D {node.name!r}: padding {node.padding!r} is not supported (valid, same)")
    h, w, c = (int(v) for v in ctx.x.shape)
    kh, kw = node.kernel_size
    sh, sw = (int(s) for s in node.strides)
    f = node.n_filters
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), (kh, kw), (sh, sw), node.padding)
    acc_t, acc_frac = linear.acc_type(ctx)
    files, typedefs, bias = linear.weight_files(ctx, (kh, kw, c, f))
    typedefs.append((f"{ctx.id}_acc_t", acc_t, f"{node.name}: exact accumulator, {acc_frac} fractional bits"))
    helper, stmt = linear.mac(ctx)
    n_mult = multiplications(linear.needs_multiplier(kq), (h, w), (oh, ow), (sh, sw), (pt, pl))
    init = f"{bias}[k]" if bias else "0"
    body = stmt.format(acc="acc[k]", x=f"x[(ih * {w} + iw) * {c} + ci]", w=f"w_{ctx.id}[ky][kx][ci][k]")
    fn = f"""// {cpp_comment(node.name)}: Conv2D {h}x{w}x{c} -> {oh}x{ow}x{f}, kernel {kh}x{kw}, stride {sh}x{sw}, {node.padding} padding,
// {kq.kind.value} weights, {n_mult} multiplications (padded positions skipped)
{ctx.signature()} {{
{ctx.header_pragmas(rf)}{linear.allocation_pragma(ctx, rf, n_mult)}#pragma HLS ARRAY_PARTITION variable=w_{ctx.id} complete dim=0
{f"#pragma HLS ARRAY_PARTITION variable={bias} complete dim=0" + chr(10) if bias else ""}OutRow:
    for (int oy = 0; oy < {oh}; oy++) {{
#pragma HLS UNROLL
    OutCol:
        for (int ox = 0; ox < {ow}; ox++) {{
#pragma HLS UNROLL
            {ctx.id}_acc_t acc[{f}];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
        Bias:
            for (int k = 0; k < {f}; k++) {{
#pragma HLS UNROLL
                acc[k] = {init};
            }}
        KernelRow:
            for (int ky = 0; ky < {kh}; ky++) {{
#pragma HLS UNROLL
            KernelCol:
                for (int kx = 0; kx < {kw}; kx++) {{
#pragma HLS UNROLL
                    const int ih = oy * {sh} + ky - {pt};
                    const int iw = ox * {sw} + kx - {pl};
                    if (ih < 0 || ih >= {h} || iw < 0 || iw >= {w}) continue;  // zero padding
                Channel:
                    for (int ci = 0; ci < {c}; ci++) {{
#pragma HLS UNROLL
                    Filter:
                        for (int k = 0; k < {f}; k++) {{
#pragma HLS UNROLL
                            {body}
                        }}
                    }}
                }}
            }}
        Result:
            for (int k = 0; k < {f}; k++) {{
#pragma HLS UNROLL
                nnfpga::convert(y[(oy * {ow} + ox) * {f} + k], acc[k]);  // output conversion to {ctx.y_t}
            }}
        }}
    }}
}}
"""
    return LayerCode(fn, typedefs, helper, files, rf,
                     f"Conv2D {h}x{w}x{c}->{oh}x{ow}x{f} {kq.kind.value}, acc {acc_t.cpp()}")


def multiplications(mask, shape: tuple[int, int], out: tuple[int, int], strides: tuple[int, int],
                    pads: tuple[int, int]) -> int:
    """Multiplications the unrolled loops perform: for each kernel position, the weights
    ``mask`` marks (`linear.needs_multiplier`) times the output positions whose window
    puts that kernel position inside the image (padded positions are skipped)."""
    (h, w), (oh, ow), (sh, sw), (pt, pl) = shape, out, strides, pads
    kh, kw = mask.shape[:2]
    rows = [sum(0 <= oy * sh + ky - pt < h for oy in range(oh)) for ky in range(kh)]
    cols = [sum(0 <= ox * sw + kx - pl < w for ox in range(ow)) for kx in range(kw)]
    return int(sum(rows[ky] * cols[kx] * int(mask[ky, kx].sum()) for ky in range(kh) for kx in range(kw)))
