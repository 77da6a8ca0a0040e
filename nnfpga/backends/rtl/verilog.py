"""Verilog-2005 printer of a `Netlist`; mirrors `vhdl` statement for statement.

Every arithmetic expression is written with all operands exactly ``W`` bits wide (``W``
the width of the driven signal): operands are sign/zero-extended by concatenation or cut
to their low bits, constants are ``W``-bit literals.  The result is the exact value
modulo ``2**W``, which the range analysis guarantees is the exact value, and no
implicit Verilog width or signedness rule is involved (Verilator lints it clean).
Only comparisons read signedness: a signal of negative range is declared ``signed``
and compared with ``signed`` literals of its own width.
"""

from __future__ import annotations

from typing import Callable

from nnfpga.backends.escape import verilog_comment
from nnfpga.backends.rtl.acyclic import acyclic_pass
from nnfpga.backends.rtl.common import (clip_sides, header_lines, op_note, sections, stateful_lines, table_declarations,
                                       wrap_unsigned)
from nnfpga.backends.rtl.netlist import (Acc, Bit, Clip, Counter, InputSlice, Max, Mul, MulConst, Mux,
                                        Netlist, Op, Reg, Requant, Rom, RomTable, Shr, Signal, Sum,
                                        ValidTap, Wrap)
from nnfpga.backends.rtl.structural import Sig
from nnfpga.backends.rtl.structural_print import core_ports, port_lines, signal_line


def _decl(kind: str, s: Signal) -> str:
    sign = "signed " if s.signed else ""
    return f"{kind} {sign}[{s.width - 1}:0] {s.name};"


def _lit(value: int, width: int, signed: bool = False) -> str:
    """``width``-bit literal with the bit pattern of ``value`` modulo 2**width."""
    return f"{width}'{'s' if signed else ''}h{wrap_unsigned(value, width):x}"


def _fill(s: Signal, n: int) -> str:
    """``n`` extension bits of ``s``: copies of its sign bit, or zeros."""
    if not s.signed:
        return f"{n}'d0"
    bit = f"{s.name}[{s.width - 1}]"
    return bit if n == 1 else f"{{{n}{{{bit}}}}}"


def _cast(s: Signal, width: int) -> str:
    """``s`` as exactly ``width`` bits: extended by its signedness, or its low bits."""
    if s.is_const:
        return _lit(s.value, width)
    w = s.width
    if w == width:
        return s.name
    if w > width:
        return f"{s.name}[{width - 1}:0]"
    return f"{{{_fill(s, width - w)}, {s.name}}}"


def _slice_ext(s: Signal, lsb: int, width: int) -> str:
    """Bits ``[lsb + width - 1 : lsb]`` of ``s`` extended by its signedness."""
    w = s.width
    if lsb + width <= w:
        return f"{s.name}[{lsb + width - 1}:{lsb}]"
    if lsb >= w:
        return f"{{{_fill(s, width)}}}"
    return f"{{{_fill(s, lsb + width - w)}, {s.name}[{w - 1}:{lsb}]}}"


def _sum(op: Sum, w: int) -> str:
    parts = []
    for t in op.terms:
        if t.shift >= w:
            continue  # contributes 0 modulo 2**w
        e = _cast(t.sig, w - t.shift)
        if t.shift:
            e = f"{{{e}, {t.shift}'d0}}"
        parts.append((t.neg, e))
    if not parts:
        return _lit(0, w)
    parts = [p for p in parts if not p[0]] + [p for p in parts if p[0]]  # positive terms first (stable)
    text = ("-" if parts[0][0] else "") + parts[0][1]
    for neg, e in parts[1:]:
        text += f" {'-' if neg else '+'} {e}"
    return text


def _choose(cases, default: str) -> str:
    """The first value whose condition holds, else ``default``: ``(condition, value)`` pairs."""
    return "".join(f"({c}) ? {v} : " for c, v in cases) + default


#: The expression of each combinational operation (and a register's input), exactly ``w``
#: bits wide (``w`` its output's width).
_RULES: dict[type, Callable[..., str]] = {
    InputSlice: lambda op, w: f"in_data[{op.lsb + op.elem_type.width - 1}:{op.lsb}]",
    MulConst: lambda op, w: f"{_cast(op.a, w)} * {_lit(op.c, w)}",
    Sum: _sum,
    Shr: lambda op, w: _slice_ext(op.a, op.s, w),
    Bit: lambda op, w: f"{op.a.name}[{op.k}]",
    Clip: lambda op, w: _choose([(f"{op.a.name} {rel} {_lit(b, op.a.width, op.a.signed)}", _lit(b, w))
                                 for rel, b in clip_sides(op)], _cast(op.a, w)),
    Wrap: lambda op, w: _cast(op.a, w),
    Rom: lambda op, w: f"{op.table.name}[{_rom_address(op)}]" + (f"[{w - 1}:0]" if w < op.table.width else ""),
    Reg: lambda op, w: _cast(op.a, w),
    ValidTap: lambda op, w: "in_valid" if op.delay == 0 else f"valid_sr[{op.delay - 1}]",
    Mux: lambda op, w: _choose([(f"{op.sel.name} == {_lit(k, op.sel.width)}", _cast(op.inputs[k], w))
                                for k in range(op.sel.lo, op.sel.hi)], _cast(op.inputs[op.sel.hi], w)),
    # signed operands of their natural widths (a DSP's shape), extended by the context
    Mul: lambda op, w: f"{_factor(op.a, w)} * {_factor(op.b, w)}",
    Acc: lambda op, w: f"{op.out.name} + {_cast(op.a, w)}",  # an accumulator's sum
    Max: lambda op, w: _choose([(f"$signed({_cast(op.a, _max_w(op))}) > $signed({_cast(op.b, _max_w(op))})",
                                 _cast(op.a, w))], _cast(op.b, w)),
}


def _rom_address(op: Rom) -> str:
    """The address zero-extended to the table's index width: an address whose range
    reaches only the low part of the table is narrower, and Verilator -Wall rejects an
    array index narrower than the array needs (WIDTHEXPAND)."""
    need = max(1, (len(op.table.entries) - 1).bit_length())
    pad = need - op.a.width
    return f"{{{pad}'b0, {op.a.name}}}" if pad > 0 else op.a.name


def _max_w(op: Max) -> int:
    """The width both operands of a comparison of ``max`` are extended to: no overflow."""
    return max(op.a.width, op.b.width) + 1


def _expr(op: Op) -> str:
    rule = _RULES.get(type(op))
    if rule is None:
        raise TypeError(f"the Verilog printer has no rule for {op.kind}")
    return rule(op, op.out.width)


def _signed(s: Signal) -> str:
    """``s`` as a signed expression of its value (one more bit when it is unsigned)."""
    if s.is_const:
        return f"$signed({_lit(s.value, abs(s.value).bit_length() + 1)})"
    return f"$signed({s.name})" if s.signed else f"$signed({{1'b0, {s.name}}})"


def _factor(s: Signal, w: int) -> str:
    """A factor of a ``w``-bit product: `_signed`, or only the low ``w`` bits of an
    operand wider than the product (the range analysis knows the product fits in ``w``
    bits; the low bits of the factors give its low bits, and Verilator -Wall rejects the
    implicit truncation of a wider product, WIDTHTRUNC)."""
    natural = abs(s.value).bit_length() + 1 if s.is_const else s.width + (0 if s.signed else 1)
    if natural <= w:
        return _signed(s)
    if s.is_const:
        return f"$signed({_lit(s.value, w)})"
    return f"$signed({s.name})" if s.width == w else f"$signed({s.name}[{w - 1}:0])"


def _stateful(op: Op, ind: str) -> list[str]:
    """An always block for a counter, an accumulator, or a register with enable/reset."""
    return stateful_lines(op, ind, "verilog", lambda v, like: _lit(v, like.width), _expr,
                          lambda acc: _cast(acc.a, acc.out.width))


def _rom_decl(t: RomTable) -> list[str]:
    width = t.width
    lines = [f"  // {verilog_comment(t.note)}" if t.note else f"  // table {t.name}",
             f"  reg [{width - 1}:0] {t.name} [0:{len(t.entries) - 1}];",
             "  initial begin"]
    for k, e in enumerate(t.entries):
        lines.append(f"    {t.name}[{k}] = {_lit(e, width)};")
    lines.append("  end")
    return lines


def _comb(op: Op, ind: str) -> list[str]:
    note = op_note(op)
    lines = [f"{ind}// {verilog_comment(line)}" for line in note.splitlines() if line] if note else []
    if isinstance(op, (Counter, Acc)) or (isinstance(op, Reg) and not op.plain):
        return lines + _stateful(op, ind)
    for step in (op.steps if isinstance(op, Requant) else [op]):
        if isinstance(step, Mul):
            lines += ["/* verilator lint_off WIDTHEXPAND */",
                      f"{ind}assign {step.out.name} = {_expr(step)};",
                      "/* verilator lint_on WIDTHEXPAND */"]
        else:
            lines.append(f"{ind}assign {step.out.name} = {_expr(step)};")
    return lines


@acyclic_pass
def print_verilog(nl: Netlist) -> str:
    L = nl.latency
    out = ["// " + verilog_comment(line) if line else "//" for line in header_lines(nl, "Verilog-2005")]
    out += ["", "`default_nettype none",
            "// Rounding drops low bits and zero weights leave inputs unread, by design:",
            "/* verilator lint_off UNUSEDSIGNAL */", "",
            f"module {nl.name} (",
            *port_lines(core_ports(nl.in_bus_width, nl.out_bus_width), "verilog"),
            ");", "",
            signal_line(Sig("valid_sr", L), "verilog", register=True)]
    out += table_declarations(nl, _rom_decl)
    secs = sections(nl)
    for sec in secs:
        out.append("")
        out.append(f"  // {verilog_comment(sec.layer)}")
        for op in sec.comb:
            for step in (op.steps if isinstance(op, Requant) else [op]):
                kind = "reg" if isinstance(step, (Counter, Acc, Reg)) else "wire"
                out.append("  " + _decl(kind, step.out))
        for st in sorted(sec.regs):
            for r in sec.regs[st]:
                out.append("  " + _decl("reg", r.out))
    out += ["",
            "  // valid pipeline: out_valid is in_valid delayed by the latency",
            "  always @(posedge clk) begin",
            "    if (rst)",
            f"      valid_sr <= {L}'d0;",
            "    else",
            ("      valid_sr <= in_valid;" if L == 1 else
             f"      valid_sr <= {{valid_sr[{L - 2}:0], in_valid}};"),
            "  end",
            f"  assign out_valid = valid_sr[{L - 1}];"]
    for sec in secs:
        layer = verilog_comment(sec.layer)
        out += ["", f"  // ===== {layer} " + "=" * max(0, 60 - len(layer))]
        for op in sec.comb:
            out += _comb(op, "  ")
        for st in sorted(sec.regs):
            out += [f"  // {layer}: registers of pipeline stage {st}",
                    "  always @(posedge clk) begin"]
            for r in sec.regs[st]:
                if r.note:
                    out.append(f"    // {verilog_comment(r.note)}")
                out.append(f"    {r.out.name} <= {r.a.name};")
            out.append("  end")
    out += ["", "  // outputs"]
    wo = nl.out_type.width
    for j, s in enumerate(nl.outputs):
        sl = f"out_data[{(j + 1) * wo - 1}:{j * wo}]"
        note = f"  // constant {s.value}" if s.is_const else ""
        out.append(f"  assign {sl} = {_cast(s, wo)};{note}")
    out += ["", "endmodule", "", "/* verilator lint_on UNUSEDSIGNAL */", "`default_nettype wire", ""]
    return "\n".join(out)

