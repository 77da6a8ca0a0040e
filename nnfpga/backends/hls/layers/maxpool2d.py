"""MaxPool2D (NHWC, flat arrays): the maximum over each window's real cells (TF's
``same`` padding never wins a max), then the output conversion."""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext
from nnfpga.ir.ops.conv2d import window_geometry


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    if node.padding not in ("valid", "same"):
        raise ValueError(f"MaxPool2D {node.name!r}: padding {node.padding!r} is not supported (valid, same)")
    h, w, c = (int(v) for v in ctx.x.shape)
    ph, pw = (int(v) for v in node.pool_size)
    sh, sw = (int(s) for s in node.strides)
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), (ph, pw), (sh, sw), node.padding)
    fn = f"""// {cpp_comment(node.name)}: MaxPool2D {h}x{w}x{c} -> {oh}x{ow}x{c}, pool {ph}x{pw}, stride {sh}x{sw}, {node.padding} padding
{ctx.signature()} {{
{ctx.header_pragmas()}OutRow:
    for (int oy = 0; oy < {oh}; oy++) {{
#pragma HLS UNROLL
    OutCol:
        for (int ox = 0; ox < {ow}; ox++) {{
#pragma HLS UNROLL
        Channel:
            for (int ci = 0; ci < {c}; ci++) {{
#pragma HLS UNROLL
                {ctx.x_t} m = 0;
                bool first = true;
            PoolRow:
                for (int ky = 0; ky < {ph}; ky++) {{
#pragma HLS UNROLL
                PoolCol:
                    for (int kx = 0; kx < {pw}; kx++) {{
#pragma HLS UNROLL
                        const int ih = oy * {sh} + ky - {pt};
                        const int iw = ox * {sw} + kx - {pl};
                        if (ih < 0 || ih >= {h} || iw < 0 || iw >= {w}) continue;  // padding
                        const {ctx.x_t} v = x[(ih * {w} + iw) * {c} + ci];
                        if (first || v > m) m = v;
                        first = false;
                    }}
                }}
                nnfpga::convert(y[(oy * {ow} + ox) * {c} + ci], m);  // output conversion to {ctx.y_t}
            }}
        }}
    }}
}}
"""
    return LayerCode(fn, summary=f"MaxPool2D {h}x{w}x{c}->{oh}x{ow}x{c}")
