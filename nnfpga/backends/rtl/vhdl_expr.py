"""VHDL expressions of the RTL description's operations, for the printer `vhdl`.

Two representations, chosen per signal:

* **integer**: a signal whose range fits a VHDL integer (``|value| <= 2**31 - 1``) is an
  ``integer range lo to hi`` with exactly the netlist range (a synthesis tool sizes it
  from that range, so it has exactly the netlist width), and its arithmetic is integer
  arithmetic.  GHDL simulates integer operations some 30 times faster than numeric_std
  function calls.  The rules:

  - ``Shr`` (arithmetic shift right, floor): ``(a - (a mod M)) / M`` with ``M = 2**s``
    (``mod`` floors for a positive divisor; the division is then exact, so VHDL's
    truncating ``/`` does no harm); ``a / M`` when ``a`` is never negative;
  - ``Bit`` k: ``(a mod 2M) / M`` with ``M = 2**k`` (``(a / M) mod 2`` when ``a >= 0``);
  - ``Wrap`` to ``w`` bits: ``a mod 2**w`` (unsigned) or
    ``((a + 2**(w-1)) mod 2**w) - 2**(w-1)`` (signed);
  - ``Clip``: comparisons;  ``Sum``: ``+``/``-`` with left shifts as products by ``2**k``;
    ``MulConst``: ``*``;  ``Rom``: an array of integers indexed by the address.

  Every partial result of an expression is checked (here, at print time) to stay inside
  the integer range; an operation whose expression could leave it is printed with
  numeric_std instead.

* **numeric_std**: a signal wider than that is ``signed``/``unsigned`` of exactly its
  width, and every expression driving it is computed as ``signed(W-1 downto 0)`` with
  ``W`` its width; operands are sign/zero-extended (or cut) to ``W`` by `_cast`, so the
  result is the exact value modulo ``2**W``, which the range analysis guarantees is the
  exact value.  Integer operands enter through ``to_signed``; an integer result leaves
  through ``to_integer``.
"""

from __future__ import annotations

from nnfpga.backends.escape import vhdl_comment
from nnfpga.backends.rtl.common import bits, clip_sides, wrap_signed
from nnfpga.backends.rtl.netlist import (Acc, Bit, Clip, InputSlice, Max, Mul, MulConst, Mux, Op, Reg, Rom,
                                        RomTable, Shr, Signal, Sum, ValidTap, Wrap)

_INT_LIMIT = 1 << 31  # numeric_std literals: to_signed(v, w) for |v| < 2**31
#: The largest magnitude of an integer-typed value: VHDL guarantees -(2**31-1) .. 2**31-1.
INT_MAX = (1 << 31) - 1


def fits_integer(lo: int, hi: int) -> bool:
    return -INT_MAX <= lo and hi <= INT_MAX


def is_int(s: Signal) -> bool:
    """Is ``s`` (a constant or a driven signal) printed as a VHDL integer?"""
    return fits_integer(s.lo, s.hi)


# --------------------------------------------------------------------------- numeric_std
def _vtype(s: Signal) -> str:
    return f"{'signed' if s.signed else 'unsigned'}({s.width - 1} downto 0)"


def _signed_lit(value: int, width: int) -> str:
    """A ``signed(width-1 downto 0)`` literal holding ``value`` modulo 2**width."""
    v = wrap_signed(value, width)
    if -_INT_LIMIT < v < _INT_LIMIT:
        return f"to_signed({v}, {width})"
    return f'signed\'("{bits(v, width)}")'


def typed_lit(value: int, s: Signal) -> str:
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
    if is_int(s):  # an integer operand of a numeric_std expression
        if s.signed or width > w:
            e = f"to_signed({s.name}, {max(w, width)})"
        else:
            e = f"signed(to_unsigned({s.name}, {w}))"
        return e if max(w, width) == width else f"lowbits({e}, {width})"
    if w == width:
        return s.name if s.signed else f"signed({s.name})"
    if w > width:
        return f"signed({s.name}({width - 1} downto 0))"
    return f"resize({s.name}, {width})" if s.signed else f"signed(resize({s.name}, {width}))"


def convert(s: Signal, y: Signal) -> str:
    """``s`` as ``y``'s type and width (extended, or its low bits): no arithmetic."""
    width, kind = y.width, ("signed" if y.signed else "unsigned")
    if s.is_const or is_int(s):
        return _to(y, _cast(s, width))
    w = s.width
    e = s.name if w == width else (f"{s.name}({width - 1} downto 0)" if w > width
                                   else f"resize({s.name}, {width})")
    return e if s.signed == y.signed else f"{kind}({e})"


def _to(s: Signal, signed_expr: str) -> str:
    """Convert a ``signed`` expression of ``s``'s width to ``s``'s type."""
    return signed_expr if s.signed else f"unsigned({signed_expr})"


def _vec_expr(op: Op) -> str:
    """The numeric_std expression of ``op``, of the type and width of ``op.out`` (its
    operands may be integers: `_cast` converts them)."""
    y = op.out
    w = y.width
    if isinstance(op, InputSlice):
        t = op.elem_type
        sl = f"in_data({op.lsb + t.width - 1} downto {op.lsb})"
        return f"signed({sl})" if y.signed else f"unsigned({sl})"
    if isinstance(op, MulConst):
        # operands of their natural widths (GHDL's synthesis writes invalid Verilog when it
        # has to sign-extend a constant factor); the product is exact, then cut to w bits
        cw = abs(op.c).bit_length() + 1
        aw = op.a.width + (0 if op.a.signed else 1)
        prod = f"{_cast(op.a, aw)} * {_signed_lit(op.c, cw)}"
        return _to(y, prod if aw + cw == w else f"lowbits({prod}, {w})")
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
        a = op.a  # wider than the integer range (else the integer rule applies)
        if op.s + w <= a.width:
            sl = f"{a.name}({op.s + w - 1} downto {op.s})"
            return sl if a.signed == y.signed else (f"signed({sl})" if y.signed else f"unsigned({sl})")
        return _to(y, f"lowbits(shift_right({_cast(a, op.s + w)}, {op.s}), {w})")
    if isinstance(op, Bit):
        sl = f"{op.a.name}({op.k} downto {op.k})"
        return f"unsigned({sl})" if op.a.signed else sl
    if isinstance(op, Clip):
        a = op.a
        return "".join(f"{typed_lit(b, y)} when {a.name} {rel} {typed_lit(b, a)} else "
                       for rel, b in clip_sides(op)) + convert(a, y)
    if isinstance(op, Wrap):
        return convert(op.a, y)
    if isinstance(op, Rom):
        t = op.table
        addr = op.a.name if is_int(op.a) else f"to_integer({op.a.name})"
        if _int_table(t):
            return _to(y, f"to_signed({t.name}({addr}), {w})") if y.signed else \
                f"to_unsigned({t.name}({addr}), {w})"
        e = f"{t.name}({addr})"
        if w < t.width:
            e += f"({w - 1} downto 0)"
        if t.signed == y.signed:
            return e
        return f"signed({e})" if y.signed else f"unsigned({e})"
    if isinstance(op, Reg):
        return convert(op.a, y)
    if isinstance(op, Mux):
        sel = op.sel
        text = "".join(f"{convert(op.inputs[k], y)} when {sel.name} = {k} else " for k in range(sel.lo, sel.hi))
        return text + convert(op.inputs[sel.hi], y)
    if isinstance(op, Mul):
        aw = op.a.width + (0 if op.a.signed else 1)
        bw = op.b.width + (0 if op.b.signed else 1)
        prod = f"{_cast(op.a, aw)} * {_cast(op.b, bw)}"
        return _to(y, prod if aw + bw == w else f"lowbits({prod}, {w})" if aw + bw > w
                   else f"resize({prod}, {w})")
    if isinstance(op, Max):
        cw = max(op.a.width, op.b.width) + 1
        return f"{convert(op.a, y)} when {_cast(op.a, cw)} > {_cast(op.b, cw)} else {convert(op.b, y)}"
    if isinstance(op, Acc):
        return _to(y, f"{_cast(y, w)} + {_cast(op.a, w)}")
    raise TypeError(f"the VHDL printer has no rule for {op.kind}")


# --------------------------------------------------------------------------- integers
def _lit(v: int) -> str:
    return str(v) if v >= 0 else f"({v})"


def _int_sum(op: Sum) -> str | None:
    """``op`` as an integer expression, or None when a partial sum could leave the range."""
    parts = [t for t in op.terms if not t.neg] + [t for t in op.terms if t.neg]  # positive terms first
    lo = hi = 0
    text = ""
    for k, t in enumerate(parts):
        tlo, thi = t.range()
        lo, hi = lo + tlo, hi + thi
        # the term and the partial sum fit (the integer range is symmetric: so does the
        # term's negation)
        if not (fits_integer(tlo, thi) and fits_integer(lo, hi)):
            return None
        if t.sig.is_const:
            v = t.sig.value << t.shift
            e = str(abs(v))
            neg = t.neg != (v < 0)
        else:
            e = t.sig.name + (f" * {1 << t.shift}" if t.shift else "")
            neg = t.neg
        if k == 0:
            text = ("-" if neg else "") + e
        else:
            text += f" {'-' if neg else '+'} {e}"
    if op.bound is not None and text:
        # a bound the terms do not show (shifted copies of one input): it holds once the
        # logic has settled; the clamp keeps GHDL's range checks quiet in between (as Shr)
        lo, hi = op.range()
        text = f"maximum({lo}, minimum({hi}, {text}))"
    return text or "0"


def _int_expr(op: Op) -> str | None:
    """``op`` as an integer expression (operands and result are integers), or None when
    the integer rules do not apply (see the module doc)."""
    y = op.out
    if not is_int(y):
        return None
    if isinstance(op, Sum):  # the commonest; `_int_sum` checks every term, so every operand
        return _int_sum(op)
    if not all(s.is_const or is_int(s) for s in op.operands()):
        return None
    if isinstance(op, Reg):
        return op.a.name
    if isinstance(op, InputSlice):
        t = op.elem_type
        sl = f"in_data({op.lsb + t.width - 1} downto {op.lsb})"
        return f"to_integer({'signed' if t.signed else 'unsigned'}({sl}))"
    if isinstance(op, MulConst):
        return f"{op.a.name} * {_lit(op.c)}"
    a = getattr(op, "a", None)
    if isinstance(op, Shr):
        if op.s > 30:
            return None
        m = 1 << op.s
        e = f"{a.name} / {m}" if a.lo >= 0 else f"({a.name} - ({a.name} mod {m})) / {m}"
        lo, hi = op.range()
        if (lo, hi) != (a.lo >> op.s, a.hi >> op.s):
            # A bound the operand's range does not show (a rounding adder's correction
            # bit): it holds once the logic has settled, but at time 0 and between delta
            # cycles every integer signal holds its range's left end, and GHDL checks the
            # integer range of every assignment.  The clamp changes no settled value.
            e = f"maximum({lo}, minimum({hi}, {e}))"
        return e
    if isinstance(op, Bit):
        if a.lo >= 0:
            return f"({a.name} / {1 << op.k}) mod 2" if op.k <= 30 else None
        if op.k >= a.width - 1:
            return f"1 when {a.name} < 0 else 0"
        return f"({a.name} mod {2 << op.k}) / {1 << op.k}" if op.k < 30 else None
    if isinstance(op, Clip):
        return "".join(f"{_lit(b)} when {a.name} {rel} {_lit(b)} else " for rel, b in clip_sides(op)) + a.name
    if isinstance(op, Wrap):
        w = y.width
        if w > 30 or not fits_integer(a.lo + (1 << (w - 1)), a.hi + (1 << (w - 1))):
            return None
        if not y.signed:
            return f"{a.name} mod {1 << w}"
        h = 1 << (w - 1)
        return f"(({a.name} + {h}) mod {1 << w}) - {h}"
    if isinstance(op, Rom):
        return f"{op.table.name}({a.name})" if _int_table(op.table) else None
    if isinstance(op, ValidTap):
        v = "in_valid" if op.delay == 0 else f"valid_sr({op.delay - 1})"
        return f"1 when {v} = '1' else 0"
    if isinstance(op, Mux):
        sel = op.sel
        text = "".join(f"{_operand(op.inputs[k])} when {sel.name} = {k} else " for k in range(sel.lo, sel.hi))
        return text + _operand(op.inputs[sel.hi])
    if isinstance(op, Mul):
        return f"{_operand(op.a)} * {_operand(op.b)}"
    if isinstance(op, Max):
        return f"{_operand(op.a)} when {_operand(op.a)} > {_operand(op.b)} else {_operand(op.b)}"
    if isinstance(op, Acc):
        if not fits_integer(y.lo + min(a.lo, 0), y.hi + max(a.hi, 0)):
            return None
        return f"{y.name} + {a.name}"
    raise TypeError(f"the VHDL printer has no rule for {op.kind}")


def _operand(s: Signal) -> str:
    return _lit(s.value) if s.is_const else s.name


def expr(op: Op) -> str:
    """The right-hand side of the assignment of ``op.out`` in its own representation."""
    e = _int_expr(op)
    if e is not None:
        return e
    e = _vec_expr(op)
    if not is_int(op.out):
        return e
    lo, hi = op.out.lo, op.out.hi
    if lo > 0 or hi < 0:
        # until the registers hold values, a vector reads as metavalues and to_integer
        # gives 0, outside this integer's range, which GHDL checks on every assignment;
        # the clamp changes no settled value (as Shr's in `_int_expr`)
        return f"maximum({lo}, minimum({hi}, to_integer({e})))"
    return f"to_integer({e})"


def _int_table(t: RomTable) -> bool:
    return fits_integer(*t.entry_range)


def decl_type(s: Signal) -> str:
    return f"integer range {s.lo} to {s.hi}" if is_int(s) else _vtype(s)


def rom_decl(t: RomTable) -> list[str]:
    lines = [f"  -- {vhdl_comment(t.note)}" if t.note else f"  -- table {t.name}"]
    if _int_table(t):
        lo, hi = t.entry_range
        lines.append(f"  type {t.name}_t is array (0 to {len(t.entries) - 1}) of "
                     f"integer range {lo} to {hi};")
        items = [str(e) for e in t.entries]
        per = 16
    else:
        kind = "signed" if t.signed else "unsigned"
        lines.append(f"  type {t.name}_t is array (0 to {len(t.entries) - 1}) of {kind}({t.width - 1} downto 0);")
        dummy = Signal("rom", *t.entry_range)
        items = [typed_lit(e, dummy) for e in t.entries]
        per = 4
    lines.append(f"  constant {t.name} : {t.name}_t := (")
    for k in range(0, len(items), per):
        sep = "," if k + per < len(items) else ""
        lines.append("    " + ", ".join(items[k:k + per]) + sep)
    lines.append("  );")
    return lines
