"""Quantize (a per-element quantiser, HGQ2): each element requantised to its own type,
then registered (one cycle).

An element's requantisation is the rounding adder and shift, clamp or wrap of its own type
(`Builder.requant`), a signed SAT_SYM element then a clamp at ``-max``; an element whose
type drops no bit and cannot overflow is wiring, a width-0 element the constant 0.  Each
value keeps its own fractional bits (the union type's grid is reached by wiring).
"""

from __future__ import annotations

from nnfpga.backends.rtl.lowering.builder import Builder, RtlConfig, Value, check_in_ir_range
from nnfpga.backends.rtl.netlist import LayerInfo, Reg, const, flat_ops
from nnfpga.ir.ops import Quantize


def lower_quantize(b: Builder, node: Quantize, xs: list[Value], shape: tuple[int, ...], cfg: RtlConfig
                   ) -> tuple[list[Value], LayerInfo]:
    b.layer = node.name
    first_op = len(b.ops)
    outs: list[Value | None] = [None] * len(xs)
    for g in node.groups(shape):
        for j in g.index:
            v, f = xs[j]
            if g.type is None:
                outs[j] = (const(0, 0), 0)
                continue
            q, fq = b.requant(f"{node.name}_q{j}", v, f, g.type, note=f"{node.name}[{j}]: requantize to {g.type}")
            if g.symmetric and q.lo * 2 ** (g.type.frac - fq) <= g.type.min_raw:
                if fq < g.type.frac:   # a deferred left shift: the clamp needs the type's own grid
                    q, fq = b.materialize(f"{node.name}_at{j}", q, fq, g.type.frac), g.type.frac
                q = b.clip(f"{node.name}_sym{j}", q, g.type.min_raw + 1, None, fq)
            outs[j] = (b.reg(f"{node.name}_y{j}", q, fq), fq)
    values: list[Value] = [o for o in outs if o is not None]
    check_in_ir_range(node, values)
    layer_ops = flat_ops(b.ops[first_op:])
    return values, LayerInfo(
        name=node.name, kind="quantize", nodes=[node.name], latency=1, first_stage=-1,
        register_bits=sum(op.out.width for op in layer_ops if isinstance(op, Reg)),
        description=f"Quantize, a type per element -> {node.info.type}")
