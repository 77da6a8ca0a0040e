"""Quantize (a per-element quantiser, HGQ2): each element converted to its own type.

The elements are grouped by type; each group converts its elements with one typedef
(``nnfpga::convert``: ap_fixed's rounding and overflow of that type), a signed SAT_SYM
group then lifts the one value below ``-max`` (the type's minimum) to ``-max``, and the
result goes into the output, the union type, which holds it exactly.  An element of
width 0 is the constant 0.  After unrolling every element is its own rounding logic.
"""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext

_PER_LINE = 16


def _table(index) -> str:
    rows = [", ".join(str(int(i)) for i in index[k:k + _PER_LINE]) for k in range(0, len(index), _PER_LINE)]
    return ",\n        ".join(rows)


def emit(ctx: LayerContext) -> LayerCode:
    node = ctx.node
    typedefs = []
    body = []
    for g_no, g in enumerate(node.groups(tuple(ctx.x.shape))):
        n = len(g.index)
        table = f"    static const int index{g_no}[{n}] = {{\n        {_table(g.index)}}};\n"
        if g.type is None:
            body.append(f"{table}Zero{g_no}:\n    for (int t = 0; t < {n}; t++) {{\n#pragma HLS UNROLL\n"
                        f"        y[index{g_no}[t]] = 0;  // width 0: the constant 0\n    }}\n")
            continue
        t_name = f"{ctx.id}_q{g_no}_t"
        typedefs.append((t_name, g.type, f"{node.name}: the type of {n} element(s)"))
        sym = ""
        if g.symmetric:
            low = (g.type.min_raw + 1) * g.type.lsb   # exact in a double (at most 62 bits, a power-of-two scale)
            sym = (f"        if (v < {t_name}({low!r})) v = {t_name}({low!r});  "
                   "// SAT_SYM: the range is symmetric\n")
        body.append(f"{table}Group{g_no}:\n    for (int t = 0; t < {n}; t++) {{\n#pragma HLS UNROLL\n"
                    f"        {t_name} v;\n        nnfpga::convert(v, x[index{g_no}[t]]);  // rounding and overflow "
                    f"of {g.type}\n{sym}        y[index{g_no}[t]] = v;  // exact in {ctx.y_t}\n    }}\n")
    fn = f"""// {cpp_comment(node.name)}: Quantize {list(ctx.x.shape)}, a type per element ({len(typedefs)} types,
// {node.rounding}/{node.overflow}), held exactly in the union type
{ctx.signature()} {{
{ctx.header_pragmas()}{"".join(body)}}}
"""
    return LayerCode(fn, typedefs, summary=f"Quantize, {len(typedefs)} element types")
