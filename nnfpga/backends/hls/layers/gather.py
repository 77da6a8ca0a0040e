"""Gather: ``y[i] = x[index[i]]`` with a constant index table (wiring after synthesis)."""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext

#: indices per line of the table
_PER_LINE = 16


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    if node.info.type != ctx.x.type:
        raise ValueError(f"Gather {node.name!r} changes the type from {ctx.x.type} to {node.info.type}")
    rows = [", ".join(str(int(i)) for i in node.index[k:k + _PER_LINE]) for k in range(0, len(node.index), _PER_LINE)]
    table = ",\n        ".join(rows)
    fn = f"""// {cpp_comment(node.name)}: gather {list(ctx.x.shape)} -> {list(node.info.shape)} (a fixed re-arrangement)
{ctx.signature()} {{
{ctx.header_pragmas()}    static const int index[{ctx.n_out}] = {{
        {table}}};
Copy:
    for (int i = 0; i < {ctx.n_out}; i++) {{
#pragma HLS UNROLL
        y[i] = x[index[i]];
    }}
}}
"""
    return LayerCode(fn, summary=f"gather to {list(node.info.shape)}")
