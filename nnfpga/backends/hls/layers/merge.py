"""Add (signed element-wise sum, exact) and Concatenate (values side by side, exact)."""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext
from nnfpga.ir.fixed import type_for_range

#: indices per line of a table
_PER_LINE = 16


def emit_add(ctx: LayerContext) -> LayerCode:
    """The sum in the exact type (every operand's scale, the sum's whole range), then the
    output type; two's-complement wrap-around makes a partial sum that leaves the range
    harmless, as the whole sum lies in it."""
    node = ctx.node
    infos = [info for _, info, _ in ctx.inputs]
    lo, hi = node.exact_range(infos)
    acc = type_for_range(lo, hi, node.acc_frac(infos))
    acc_t = f"{ctx.id}_acc_t"
    terms = "".join(f"\n        acc {'+' if s > 0 else '-'}= {a}[i];"
                    for s, (a, _, _) in list(zip(node.sign_list(), ctx.inputs))[1:])
    first = "acc = x[i];" if node.sign_list()[0] > 0 else "acc = 0;\n        acc -= x[i];"
    fn = f"""// {cpp_comment(node.name)}: {' '.join(('+' if s > 0 else '-') + ' ' + a for s, (a, _, _) in zip(node.sign_list(), ctx.inputs))} (exact)
{ctx.signature()} {{
{ctx.header_pragmas()}Sum:
    for (int i = 0; i < {ctx.n_out}; i++) {{
#pragma HLS UNROLL
        {acc_t} acc;
        {first}{terms}
        y[i] = acc;
    }}
}}
"""
    return LayerCode(fn, typedefs=[(acc_t, acc, f"{node.name}: exact sum")],
                     summary=f"sum of {len(ctx.inputs)} tensors")


def emit_concatenate(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    dests = node.destinations([tuple(info.shape) for _, info, _ in ctx.inputs])
    copies = []
    for (a, info, _), dst in zip(ctx.inputs, dests):
        rows = ",\n        ".join(", ".join(str(int(i)) for i in dst[k:k + _PER_LINE])
                                  for k in range(0, len(dst), _PER_LINE))
        copies.append(f"""    {{
        static const int to[{len(dst)}] = {{
        {rows}}};
    Copy_{a}:
        for (int i = 0; i < {len(dst)}; i++) {{
#pragma HLS UNROLL
            y[to[i]] = {a}[i];
        }}
    }}
""")
    fn = f"""// {cpp_comment(node.name)}: concatenation along axis {node.axis} -> {list(node.info.shape)} (exact)
{ctx.signature()} {{
{ctx.header_pragmas()}{"".join(copies)}}}
"""
    return LayerCode(fn, summary=f"concatenation of {len(ctx.inputs)} tensors")
