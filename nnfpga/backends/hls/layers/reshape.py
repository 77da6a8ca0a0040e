"""Reshape / Flatten: the data are already flat in row-major (NHWC) order, so the
layer is a copy (wiring after synthesis)."""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext


def emit(ctx: LayerContext) -> LayerCode:
    if ctx.node.info.type != ctx.x.type:
        raise ValueError(f"Reshape {ctx.node.name!r} changes the type from {ctx.x.type} to {ctx.node.info.type}")
    fn = f"""// {cpp_comment(ctx.node.name)}: reshape {list(ctx.x.shape)} -> {list(ctx.node.info.shape)} (row-major, a copy)
{ctx.signature()} {{
{ctx.header_pragmas()}Copy:
    for (int i = 0; i < {ctx.n_out}; i++) {{
#pragma HLS UNROLL
        y[i] = x[i];
    }}
}}
"""
    return LayerCode(fn, summary=f"reshape to {list(ctx.node.info.shape)}")
