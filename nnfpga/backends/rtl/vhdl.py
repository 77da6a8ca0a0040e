"""VHDL-2008 printer of a `Netlist` (ieee.numeric_std; one entity, one architecture).

Internal signals are ``signed``/``unsigned`` of exactly their netlist width.  Every
arithmetic expression is computed as ``signed(W-1 downto 0)`` with ``W`` the width of the
signal it drives; operands are sign/zero-extended (or cut) to ``W`` by `_cast`, so the
result is the exact value modulo ``2**W``, which the range analysis guarantees is the
exact value.
"""

from __future__ import annotations

from nnfpga.backends.rtl.common import bits, header_lines, op_note, sections, wrap_signed
from nnfpga.backends.rtl.netlist import (Bit, Clip, InputSlice, MulConst, Netlist, Op, Reg,
                                        Requant, Rom, RomTable, Shr, Signal, Sum, Wrap)

_INT_LIMIT = 1 << 31  # VHDL integers are (at least) 32 bits


def _vtype(s: Signal) -> str:
    return f"{'signed' if s.signed else 'unsigned'}({s.width - 1} downto 0)"


def _signed_lit(value: int, width: int) -> str:
    """A ``signed(width-1 downto 0)`` literal holding ``value`` modulo 2**width."""
    v = wrap_signed(value, width)
    if -_INT_LIMIT < v < _INT_LIMIT:
        return f"to_signed({v}, {width})"
    return f'signed\'("{bits(v, width)}")'


def _typed_lit(value: int, s: Signal) -> str:
    """A literal of ``s``'s own type and width (``value`` is representable in it)."""
    if s.signed:
        return _signed_lit(value, s.width)
    if value < _INT_LIMIT:
        return f"to_unsigned({value}, {s.width})"
    return f'unsigned\'("{bits(value, s.width)}")'


def _cast(s: Signal, width: int) -> str:
    """``s`` as ``signed(width-1 downto 0)``: extended by its signedness, or its low bits."""
    if s.is_const:
        return _signed_lit(s.value, width)
    w = s.width
    if w == width:
        return s.name if s.signed else f"signed({s.name})"
    if w > width:
        return f"signed({s.name}({width - 1} downto 0))"
    return f"resize({s.name}, {width})" if s.signed else f"signed(resize({s.name}, {width}))"


def _convert(s: Signal, y: Signal) -> str:
    """``s`` as ``y``'s type and width (extended, or its low bits): no arithmetic."""
    width, kind = y.width, ("signed" if y.signed else "unsigned")
    if s.is_const:
        return _to(y, _signed_lit(s.value, width))
    w = s.width
    e = s.name if w == width else (f"{s.name}({width - 1} downto 0)" if w > width
                                   else f"resize({s.name}, {width})")
    return e if s.signed == y.signed else f"{kind}({e})"


def _to(s: Signal, signed_expr: str) -> str:
    """Convert a ``signed`` expression of ``s``'s width to ``s``'s type."""
    return signed_expr if s.signed else f"unsigned({signed_expr})"


def _expr(op: Op) -> str:
    y = op.out
    w = y.width
    if isinstance(op, InputSlice):
        t = op.elem_type
        sl = f"in_data({op.lsb + t.width - 1} downto {op.lsb})"
        return f"signed({sl})" if y.signed else f"unsigned({sl})"
    if isinstance(op, MulConst):
        cw = abs(op.c).bit_length() + 1
        return _to(y, f"lowbits({_cast(op.a, w)} * {_signed_lit(op.c, cw)}, {w})")
    if isinstance(op, Sum):
        parts = []
        for t in op.terms:
            if t.shift >= w:
                continue  # contributes 0 modulo 2**w
            e = _cast(t.sig, w)
            if t.shift:
                e = f"shift_left({e}, {t.shift})"
            parts.append((t.neg, e))
        if not parts:
            return _to(y, _signed_lit(0, w))
        parts.sort(key=lambda p: p[0])  # positive terms first
        text = ("-" if parts[0][0] else "") + parts[0][1]
        for neg, e in parts[1:]:
            text += f" {'-' if neg else '+'} {e}"
        return _to(y, text)
    if isinstance(op, Shr):
        a = op.a
        if op.s + w <= a.width:
            sl = f"{a.name}({op.s + w - 1} downto {op.s})"
            return sl if a.signed == y.signed else (f"signed({sl})" if y.signed else f"unsigned({sl})")
        return _to(y, f"lowbits(shift_right({_cast(a, op.s + w)}, {op.s}), {w})")
    if isinstance(op, Bit):
        sl = f"{op.a.name}({op.k} downto {op.k})"
        return f"unsigned({sl})" if op.a.signed else sl
    if isinstance(op, Clip):
        a = op.a
        text = ""
        if op.lo is not None:
            text += f"{_typed_lit(op.lo, y)} when {a.name} < {_typed_lit(op.lo, a)} else "
        if op.hi is not None:
            text += f"{_typed_lit(op.hi, y)} when {a.name} > {_typed_lit(op.hi, a)} else "
        return text + _convert(a, y)
    if isinstance(op, Wrap):
        return _convert(op.a, y)
    if isinstance(op, Rom):
        t = op.table
        e = f"{t.name}(to_integer({op.a.name}))"
        if w < t.width:
            e += f"({w - 1} downto 0)"
        if t.signed == y.signed:
            return e
        return f"signed({e})" if y.signed else f"unsigned({e})"
    if isinstance(op, Reg):
        return op.a.name
    raise TypeError(f"the VHDL printer has no rule for {op.kind}")


def _rom_decl(t: RomTable) -> list[str]:
    kind = "signed" if t.signed else "unsigned"
    lines = [f"  -- {t.note}" if t.note else f"  -- table {t.name}",
             f"  type {t.name}_t is array (0 to {len(t.entries) - 1}) of {kind}({t.width - 1} downto 0);",
             f"  constant {t.name} : {t.name}_t := ("]
    dummy = Signal("rom", min(t.entries), max(t.entries))
    items = [_typed_lit(e, dummy) for e in t.entries]
    for k in range(0, len(items), 4):
        sep = "," if k + 4 < len(items) else ""
        lines.append("    " + ", ".join(items[k:k + 4]) + sep)
    lines.append("  );")
    return lines


def _comb(op: Op, ind: str) -> list[str]:
    lines = [f"{ind}-- {line}" for line in op_note(op).splitlines() if line]
    if isinstance(op, Requant):
        for step in op.steps:
            lines.append(f"{ind}{step.out.name} <= {_expr(step)};")
    else:
        lines.append(f"{ind}{op.out.name} <= {_expr(op)};")
    return lines


def print_vhdl(nl: Netlist) -> str:
    L = nl.latency
    out: list[str] = ["-- " + line if line else "--" for line in header_lines(nl, "VHDL-2008")]
    out += ["", "library ieee;", "use ieee.std_logic_1164.all;", "use ieee.numeric_std.all;", "",
            f"entity {nl.name} is",
            "  port (",
            "    clk       : in  std_logic;",
            "    rst       : in  std_logic;  -- synchronous, active high; clears the valid pipeline",
            "    in_valid  : in  std_logic;",
            f"    in_data   : in  std_logic_vector({nl.in_bus_width - 1} downto 0);",
            "    out_valid : out std_logic;",
            f"    out_data  : out std_logic_vector({nl.out_bus_width - 1} downto 0)",
            "  );",
            f"end entity {nl.name};", "",
            f"architecture rtl of {nl.name} is", "",
            "  -- the low w bits of x (numeric_std's resize would keep the sign bit instead)",
            "  function lowbits(x : signed; w : positive) return signed is",
            "    variable v : signed(x'length - 1 downto 0) := x;",
            "  begin",
            "    return v(w - 1 downto 0);",
            "  end function lowbits;", "",
            f"  signal valid_sr : std_logic_vector({L - 1} downto 0);"]
    for t in nl.tables():
        out.append("")
        out += _rom_decl(t)
    secs = sections(nl)
    for sec in secs:
        out.append("")
        out.append(f"  -- {sec.layer}")
        sigs = [s.out for op in sec.comb for s in (op.steps if isinstance(op, Requant) else [op])]
        sigs += [r.out for st in sorted(sec.regs) for r in sec.regs[st]]
        for s in sigs:
            out.append(f"  signal {s.name} : {_vtype(s)};")
    out += ["", "begin", "",
            "  -- valid pipeline: out_valid is in_valid delayed by the latency",
            "  process (clk)",
            "  begin",
            "    if rising_edge(clk) then",
            "      if rst = '1' then",
            "        valid_sr <= (others => '0');",
            "      else",
            ("        valid_sr(0) <= in_valid;" if L == 1 else
             f"        valid_sr <= valid_sr({L - 2} downto 0) & in_valid;"),
            "      end if;",
            "    end if;",
            "  end process;",
            f"  out_valid <= valid_sr({L - 1});"]
    for sec in secs:
        out += ["", f"  -- ===== {sec.layer} " + "=" * max(0, 60 - len(sec.layer))]
        for op in sec.comb:
            out += _comb(op, "  ")
        for st in sorted(sec.regs):
            regs = sec.regs[st]
            out += [f"  -- {sec.layer}: registers of pipeline stage {st}",
                    "  process (clk)", "  begin", "    if rising_edge(clk) then"]
            for r in regs:
                if r.note:
                    out.append(f"      -- {r.note}")
                out.append(f"      {r.out.name} <= {r.a.name};")
            out += ["    end if;", "  end process;"]
    out += ["", "  -- outputs"]
    wo = nl.out_type.width
    for j, s in enumerate(nl.outputs):
        sl = f"out_data({(j + 1) * wo - 1} downto {j * wo})"
        if s.is_const:
            out.append(f'  {sl} <= "{bits(s.value, wo)}";  -- constant {s.value}')
        elif s.width == wo:
            out.append(f"  {sl} <= std_logic_vector({s.name});")
        else:
            out.append(f"  {sl} <= std_logic_vector(resize({s.name}, {wo}));")
    out += ["", "end architecture rtl;", ""]
    return "\n".join(out)
