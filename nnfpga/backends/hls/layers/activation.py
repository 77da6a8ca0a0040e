"""Activation: linear, relu, leaky_relu, saturating_leaky_relu, sign, hard_tanh, hard_sigmoid (exact, then the output
conversion), tanh and sigmoid (a table lookup), softmax (exp table, exact sum, reciprocal
table, product).

leaky_relu: the slope is the IR's exact ``alpha_raw * 2**-alpha_frac`` in an
``ap_ufixed<alpha_frac + 1, 1>`` constant; ``x * alpha`` (an exact ap_fixed product) or
``x`` is assigned to a type with ``x_frac + alpha_frac`` fractional bits that holds both
over the input type's whole range, so nothing is lost before the output conversion.

hard_sigmoid: ``x`` clipped to ``[-1, 1]``, shifted right by one bit and ``0.5`` added, in a
type with ``x_frac + 1`` fractional bits that holds ``x`` and ``+-1``: exact, in ``[0, 1]``.

A table lookup converts the input to the table's index type (its rounding and overflow
apply) and reads ``entries[raw - index_type.min_raw]`` (`nnfpga::table_address`); the
entries are the IR's `LookupTable.entries`, written exactly.

Which of these a function is comes from its entry in `nnfpga.ir.ops.activation_functions`
(piecewise-linear, table lookup, or softmax); the code below is the C++ of each.
"""

from __future__ import annotations

from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.layers.base import LayerCode, LayerContext
from nnfpga.backends.hls.literals import check_storable, const_array, exact_decimal
from nnfpga.ir.fixed import FixedType, type_for_range
from nnfpga.ir.tables import LookupTable


#: The piecewise-linear functions `_elementwise` writes C++ for.
ELEMENTWISE = ("linear", "relu", "leaky_relu", "saturating_leaky_relu", "sign", "hard_tanh", "hard_sigmoid")


def supports(fn) -> bool:
    """Whether this backend writes C++ for the activation function ``fn`` (an
    `ActivationFunction`)."""
    return fn.name in ELEMENTWISE if fn.piecewise_linear else fn.table_lookup or fn.name == "softmax"


def emit(ctx: LayerContext) -> LayerCode:
    fn = ctx.node.properties   # a function the IR does not know is refused here
    if not supports(fn):
        raise _unsupported(ctx)
    if fn.piecewise_linear:
        return _elementwise(ctx)
    if fn.table_lookup:
        return _table(ctx)
    if fn.name == "softmax":
        return _softmax(ctx)
    raise _unsupported(ctx)


def _unsupported(ctx: LayerContext) -> ValueError:
    """An activation the IR defines but this backend has no C++ for."""
    return ValueError(f"activation {ctx.node.function!r} of layer {ctx.node.name!r} is not supported by the "
                      "HLS backend")


def _elementwise(ctx: LayerContext) -> LayerCode:
    f, n = ctx.node.function, ctx.n_out
    typedefs = []
    if f == "linear":
        stmt = "nnfpga::convert(y[i], x[i]);"
    elif f == "relu":
        stmt = "if (x[i] > 0) nnfpga::convert(y[i], x[i]); else y[i] = 0;"
    elif f == "leaky_relu":
        node, xt = ctx.node, ctx.x.type
        pre = type_for_range(node.leaky_raw(xt.min_raw), node.leaky_raw(xt.max_raw), xt.frac + node.alpha_frac)
        stmt = _leaky_statement(ctx, pre, "x and x * alpha", "", typedefs) + "\n        nnfpga::convert(y[i], v);"
    elif f == "saturating_leaky_relu":   # leaky_relu at the IR's pre_frac, then the floor alpha * T.min
        node, xt = ctx.node, ctx.x.type
        pf = node.pre_frac(xt.frac)
        shift = pf - xt.frac - node.alpha_frac
        floor = node.saturation_raw(xt.frac)
        pre = type_for_range(min(node.leaky_raw(xt.min_raw) << shift, floor),
                             max(node.leaky_raw(xt.max_raw) << shift, floor), pf)
        lowest = (f"        const {ctx.id}_pre_t lowest = {exact_decimal(floor, pf)};  "
                  "// alpha * the output type's minimum\n")
        stmt = (_leaky_statement(ctx, pre, "x, x * alpha and the saturation", lowest, typedefs)
                + "\n        if (v < lowest) v = lowest;\n        nnfpga::convert(y[i], v);")
    elif f == "sign":   # +1 for x >= 0, -1 below (exact in the output type)
        pre = FixedType(2, 2, True)
        typedefs.append((f"{ctx.id}_pre_t", pre, f"{ctx.node.name}: +-1"))
        stmt = (f"{ctx.id}_pre_t v = (x[i] >= 0) ? {ctx.id}_pre_t(1) : {ctx.id}_pre_t(-1);\n"
                f"        nnfpga::convert(y[i], v);")
    elif f == "hard_tanh":  # clip to [-1, 1] exactly (in a type holding both), then convert
        frac = ctx.x.type.frac
        if frac < 0:
            raise ValueError(f"hard_tanh {ctx.node.name!r} needs an input with fractional bits")
        one = 1 << frac
        pre = type_for_range(min(ctx.x.type.min_raw, -one), max(ctx.x.type.max_raw, one), frac)
        typedefs.append((f"{ctx.id}_pre_t", pre, f"{ctx.node.name}: input and +-1, exactly"))
        stmt = (f"{ctx.id}_pre_t v = x[i];\n"
                f"        if (v > 1) v = 1;\n"
                f"        else if (v < -1) v = -1;\n"
                f"        nnfpga::convert(y[i], v);")
    elif f == "hard_sigmoid":  # clip(0.5 x + 0.5, 0, 1) = 0.5 clip(x, -1, 1) + 0.5, exactly, then convert
        frac = ctx.x.type.frac
        if frac < 0:
            raise ValueError(f"hard_sigmoid {ctx.node.name!r} needs an input with fractional bits")
        one = 1 << (frac + 1)   # 1 at frac + 1
        pre = type_for_range(min(ctx.x.type.min_raw * 2, -one), max(ctx.x.type.max_raw * 2, one), frac + 1)
        typedefs.append((f"{ctx.id}_pre_t", pre, f"{ctx.node.name}: input, +-1 and 0.5 x + 0.5, exactly"))
        stmt = (f"const {ctx.id}_pre_t half = 0.5;\n"
                f"        {ctx.id}_pre_t v = x[i];\n"
                f"        if (v > 1) v = 1;\n"
                f"        else if (v < -1) v = -1;\n"
                f"        v = (v >> 1) + half;  // exact: v has a spare fractional bit\n"
                f"        nnfpga::convert(y[i], v);")
    else:
        raise _unsupported(ctx)
    fn = f"""// {cpp_comment(ctx.node.name)}: {f} on {n} values, then the conversion to {ctx.y_t}
{ctx.signature()} {{
{ctx.header_pragmas()}Elementwise:
    for (int i = 0; i < {n}; i++) {{
#pragma HLS UNROLL
        {stmt}
    }}
}}
"""
    return LayerCode(fn, typedefs, summary=f"{f}")


def _leaky_statement(ctx: LayerContext, pre: FixedType, what: str, constants: str, typedefs: list) -> str:
    """``v``, the exact ``x`` or ``x * alpha`` of a leaky ReLU in type ``pre`` (``what`` it
    holds), after the slope constant and ``constants``; the slope's and ``pre``'s typedefs
    go to ``typedefs``."""
    node = ctx.node
    af = node.alpha_frac
    alpha_t = FixedType(af + 1, 1, False)
    check_storable([node.alpha_raw], alpha_t, f"slope of {node.name!r}")
    typedefs.append((f"{ctx.id}_alpha_t", alpha_t, f"{node.name}: the slope, exactly"))
    typedefs.append((f"{ctx.id}_pre_t", pre, f"{node.name}: {what}, exactly"))
    return (f"const {ctx.id}_alpha_t alpha = {exact_decimal(node.alpha_raw, af)};  // {node.alpha_raw} * 2^-{af}\n"
            f"{constants}"
            f"        {ctx.id}_pre_t v;\n"
            f"        if (x[i] < 0) v = x[i] * alpha;  // exact product\n"
            f"        else v = x[i];")


def _table_file(ctx: LayerContext, table: LookupTable, array: str, ctype: str, role: str) -> dict[str, str]:
    check_storable(table.entries, table.out_type, f"{role} table of {ctx.node.name!r}")
    expected = table.index_type.max_raw - table.index_type.min_raw + 1
    if table.size != expected:
        raise ValueError(f"{role} table of {ctx.node.name!r} has {table.size} entries; its index type "
                         f"{table.index_type.cpp()} addresses {expected}")
    guard = f"NNFPGA_{array.upper()}_H_"
    comment = (f"{ctx.node.name}: {table.function} table, index {table.index_type.cpp()} "
               f"(address = raw - ({table.index_type.min_raw})), entries {table.out_type.cpp()}")
    body = const_array(ctype, array, table.entries, table.out_type.frac, comment)
    return {f"weights/{array}.h": (f"// Generated by nnfpga: the IR's table entries, written exactly.\n"
                                   f"#ifndef {guard}\n#define {guard}\n\n#include \"../defines.h\"\n\n"
                                   f"{body}\n#endif  // {guard}\n")}


def _table(ctx: LayerContext) -> LayerCode:
    node, n = ctx.node, ctx.n_out
    table = node.table
    if table is None:
        raise ValueError(f"{node.function} {node.name!r} has no lookup table")
    if table.out_type != node.info.type:
        raise ValueError(f"{node.name!r}: table output type {table.out_type} differs from the layer's "
                         f"type {node.info.type}")
    typedefs = [(f"{ctx.id}_index_t", table.index_type, f"{node.name}: {table.function} table index")]
    files = _table_file(ctx, table, f"table_{ctx.id}", ctx.y_t, table.function)
    fn = f"""// {cpp_comment(node.name)}: {table.function} by a {table.size}-entry table
{ctx.signature()} {{
{ctx.header_pragmas()}Lookup:
    for (int i = 0; i < {n}; i++) {{
#pragma HLS UNROLL
        {ctx.id}_index_t idx;
        nnfpga::convert(idx, x[i]);  // the IR's index conversion (rounding, saturation)
        y[i] = table_{ctx.id}[nnfpga::table_address(idx)];
    }}
}}
"""
    return LayerCode(fn, typedefs, files=files, summary=f"{table.function} table {table.size}")


def _softmax(ctx: LayerContext) -> LayerCode:
    node, x = ctx.node, ctx.x
    exp, inv = node.table, node.inv_table
    if exp is None or inv is None:
        raise ValueError(f"softmax {node.name!r} needs its exp and reciprocal tables")
    n = int(x.shape[-1])
    rows = ctx.n_in // n
    frac = x.type.frac
    diff = type_for_range(x.lo - x.hi, 0, frac)
    e_lo, e_hi = int(exp.entries.min()), int(exp.entries.max())
    total = type_for_range(min(n * e_lo, 0), max(n * e_hi, 0), exp.out_type.frac)
    i = ctx.id
    typedefs = [(f"{i}_diff_t", diff, f"{node.name}: x - max(x), exactly"),
                (f"{i}_index_t", exp.index_type, f"{node.name}: exp table index"),
                (f"{i}_exp_t", exp.out_type, f"{node.name}: exp table entries"),
                (f"{i}_sum_t", total, f"{node.name}: exact sum of {n} exp entries"),
                (f"{i}_inv_index_t", inv.index_type, f"{node.name}: reciprocal table index"),
                (f"{i}_inv_t", inv.out_type, f"{node.name}: reciprocal table entries")]
    files = {**_table_file(ctx, exp, f"table_{i}", f"{i}_exp_t", "exp"),
             **_table_file(ctx, inv, f"inv_table_{i}", f"{i}_inv_t", "reciprocal")}
    fn = f"""// {cpp_comment(node.name)}: softmax over {n} values ({rows} row(s)): e = exp(x - max x), y = e * (1 / sum e)
{ctx.signature()} {{
{ctx.header_pragmas()}Row:
    for (int r = 0; r < {rows}; r++) {{
#pragma HLS UNROLL
        {ctx.x_t} m = x[r * {n}];
    Max:
        for (int k = 1; k < {n}; k++) {{
#pragma HLS UNROLL
            if (x[r * {n} + k] > m) m = x[r * {n} + k];
        }}
        {i}_exp_t e[{n}];
#pragma HLS ARRAY_PARTITION variable=e complete dim=0
        {i}_sum_t s = 0;
    Exp:
        for (int k = 0; k < {n}; k++) {{
#pragma HLS UNROLL
            {i}_diff_t d = x[r * {n} + k] - m;
            {i}_index_t idx = d;
            e[k] = table_{i}[nnfpga::table_address(idx)];
            s += e[k];
        }}
        {i}_inv_index_t sidx = s;
        {i}_inv_t inv = inv_table_{i}[nnfpga::table_address(sidx)];
    Normalise:
        for (int k = 0; k < {n}; k++) {{
#pragma HLS UNROLL
            nnfpga::convert(y[r * {n} + k], e[k] * inv);  // exact product, then the output conversion
        }}
    }}
}}
"""
    return LayerCode(fn, typedefs, files=files, summary=f"softmax {n}")

