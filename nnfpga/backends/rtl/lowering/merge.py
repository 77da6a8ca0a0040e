"""The joins of a general graph: Add (an adder per element) and Concatenate (wiring).

Branches reach a join after different numbers of pipeline registers: every operand is
first delayed to the latest operand's stage (`aligned`), so the join's output holds one
sample, and every output of the network has one fixed latency.  Add sums the aligned
operands exactly (each at its own scale, aligned by the adder), converts to the IR type
when it has one that drops bits or overflows, and registers the result (one cycle);
Concatenate is wiring after the alignment (no cycle).
"""

from __future__ import annotations

from nnfpga.backends.rtl.lowering.builder import Builder, Value, check_in_ir_range, counted_layer
from nnfpga.backends.rtl.netlist import LayerInfo, Term
from nnfpga.ir.ops import Add, Concatenate


def aligned(b: Builder, name: str, operands: list[list[Value]]) -> tuple[list[list[Value]], int]:
    """The operands' values, each delayed to the latest stage among them; and that stage."""
    stages = [v.stage for values in operands for v, _ in values if not v.is_const]
    target = max(stages, default=0)
    out = []
    for k, values in enumerate(operands):
        out.append([(v if v.is_const else b.delay(f"{name}_a{k}_{j}", v, target - v.stage), f)
                    for j, (v, f) in enumerate(values)])
    return out, target


def lower_add(b: Builder, node: Add, operands: list[list[Value]]) -> tuple[list[Value], LayerInfo]:
    b.layer = node.name
    first_op = len(b.ops)
    operands, _ = aligned(b, node.name, operands)
    outs = []
    for j in range(len(operands[0])):
        vals = [values[j] for values in operands]
        frac = max(f for _, f in vals)
        v = b.sum(f"{node.name}_s{j}", [Term(s, frac - f, sign < 0) for sign, (s, f) in zip(node.sign_list(), vals)],
                  frac, note=f"{node.name}[{j}]: exact sum")
        v, f = b.requant(f"{node.name}_q{j}", v, frac, node.info.type,
                         note=f"{node.name}[{j}]: requantize to {node.info.type}")
        outs.append((b.reg(f"{node.name}_y{j}", v, f), f))
    check_in_ir_range(node, outs)
    return outs, counted_layer(
        b.ops[first_op:], name=node.name, kind="add", nodes=[node.name], latency=1, first_stage=-1,
        description=f"sum of {len(operands)} tensors -> {node.info.type}")


def lower_concatenate(b: Builder, node: Concatenate, operands: list[list[Value]], shapes: list[tuple[int, ...]]
                      ) -> tuple[list[Value], LayerInfo]:
    """Wiring, after the operands' alignment (registers only where branches differ)."""
    b.layer = node.name
    first_op = len(b.ops)
    operands, _ = aligned(b, node.name, operands)
    out: list[Value | None] = [None] * sum(len(v) for v in operands)
    for values, dst in zip(operands, node.destinations(shapes)):
        for v, d in zip(values, dst):
            out[int(d)] = v
    return out, counted_layer(
        b.ops[first_op:], name=node.name, kind="concatenate", nodes=[node.name], latency=0, first_stage=-1,
        description=f"concatenation of {len(operands)} tensors (wiring, branches aligned)")
