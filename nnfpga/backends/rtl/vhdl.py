"""VHDL-2008 printer of a `Netlist`: one file with a package ``<top>_pkg`` (the core's
constants: latency, II, port widths, element types, every name prefixed ``<TOP>_``) and
the entity ``<top>`` with one architecture.  The file is meant to be compiled into the
core's own VHDL library (``nnfpga_<top>`` unless configured; `names.default_library`);
nothing in it refers to a library by name, so any library works.

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

Ports stay ``std_logic_vector``: inputs are converted where they are sliced from
``in_data``, outputs where they are packed into ``out_data``.

Structure (chosen for simulation speed, measured on the 16-64-32-32-5 example MLP:
numeric_std signals 13 samples/s, integer signals with concurrent assignments 210/s,
integer variables in one process per layer with register signals 700/s, the same with
the inner registers as variables 2,400/s; GHDL spends its time on function calls, then
on signal updates and process wake-ups): each layer that has registers is one clocked
process.  Its logic and its inner registers are process *variables*; only the layer's
output registers (read by the next layer) are signals.  The process is written last
pipeline stage first: the logic of stage ``s`` and the registers of stage ``s + 1``, for
``s`` from the highest down.  A combinational variable is written before it is read
(combinational logic to a synthesis tool); a register variable is read by its stage's
logic before the assignment further down gives it its next value (a flip-flop).
Combinational values read outside their layer (the output wiring, ``in_data`` slices
read by the next layer) are concurrent signal assignments.
"""

from __future__ import annotations

from nnfpga.backends.rtl.common import bits, header_lines, op_note, wrap_signed
from nnfpga.backends.rtl.names import PACKAGE_SUFFIX, default_library, unit_name
from nnfpga.backends.rtl.netlist import (Acc, Bit, Clip, Counter, InputSlice, Max, Mul, MulConst, Mux,
                                        Netlist, Op, Reg, Requant, Rom, RomTable, STATEFUL, Shr, Signal,
                                        Sum, ValidTap, Wrap, acyclic_pass, flat_ops)

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


def _convert(s: Signal, y: Signal) -> str:
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
        return _convert(op.a, y)
    if isinstance(op, Mux):
        sel = op.sel
        text = "".join(f"{_convert(op.inputs[k], y)} when {sel.name} = {k} else " for k in range(sel.lo, sel.hi))
        return text + _convert(op.inputs[sel.hi], y)
    if isinstance(op, Mul):
        aw = op.a.width + (0 if op.a.signed else 1)
        bw = op.b.width + (0 if op.b.signed else 1)
        prod = f"{_cast(op.a, aw)} * {_cast(op.b, bw)}"
        return _to(y, prod if aw + bw == w else f"lowbits({prod}, {w})" if aw + bw > w
                   else f"resize({prod}, {w})")
    if isinstance(op, Max):
        cw = max(op.a.width, op.b.width) + 1
        return f"{_convert(op.a, y)} when {_cast(op.a, cw)} > {_cast(op.b, cw)} else {_convert(op.b, y)}"
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
        return f"{a.name} / {m}" if a.lo >= 0 else f"({a.name} - ({a.name} mod {m})) / {m}"
    if isinstance(op, Bit):
        if a.lo >= 0:
            return f"({a.name} / {1 << op.k}) mod 2" if op.k <= 30 else None
        if op.k >= a.width - 1:
            return f"1 when {a.name} < 0 else 0"
        return f"({a.name} mod {2 << op.k}) / {1 << op.k}" if op.k < 30 else None
    if isinstance(op, Clip):
        text = ""
        if op.lo is not None:
            text += f"{_lit(op.lo)} when {a.name} < {_lit(op.lo)} else "
        if op.hi is not None:
            text += f"{_lit(op.hi)} when {a.name} > {_lit(op.hi)} else "
        return text + a.name
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


def _expr(op: Op) -> str:
    """The right-hand side of the assignment of ``op.out`` in its own representation."""
    e = _int_expr(op)
    if e is not None:
        return e
    e = _vec_expr(op)
    return f"to_integer({e})" if is_int(op.out) else e


def _int_table(t: RomTable) -> bool:
    return fits_integer(*t.entry_range)


def _decl_type(s: Signal) -> str:
    return f"integer range {s.lo} to {s.hi}" if is_int(s) else _vtype(s)


def _rom_decl(t: RomTable) -> list[str]:
    lines = [f"  -- {t.note}" if t.note else f"  -- table {t.name}"]
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
        items = [_typed_lit(e, dummy) for e in t.entries]
        per = 4
    lines.append(f"  constant {t.name} : {t.name}_t := (")
    for k in range(0, len(items), per):
        sep = "," if k + per < len(items) else ""
        lines.append("    " + ", ".join(items[k:k + per]) + sep)
    lines.append("  );")
    return lines


# --------------------------------------------------------------------------- structure
def _layer_runs(nl: Netlist) -> list[list[Op]]:
    """The operations of the netlist in order, in runs of one layer each."""
    runs: list[list[Op]] = []
    for op in nl.ops:
        if not runs or runs[-1][0].out.layer != op.out.layer:
            runs.append([])
        runs[-1].append(op)
    return runs


def _signals(nl: Netlist, runs: list[list[Op]]) -> set[int]:
    """ids of the results that are VHDL signals; every other result is a variable of its
    layer's process.  Signals: the results read outside their layer (the next layer's
    inputs, the output wiring), everything of a layer without registers (concurrent
    assignments), and what a concurrent assignment reads within its layer."""
    run_of: dict[int, int] = {}
    step: dict[int, Op] = {}
    need: set[int] = set()
    for k, ops in enumerate(runs):
        prims = flat_ops(ops)
        has_regs = False
        for s in prims:
            i = id(s.out)
            run_of[i] = k
            step[i] = s
            if isinstance(s, (Reg, Counter, Acc)):
                has_regs = True
                if _is_stateful(s):
                    need.add(i)
        if not has_regs:
            need.update(id(s.out) for s in prims)
    need |= {id(s) for s in nl.outputs if id(s) in step}
    for i, op in step.items():
        k = run_of[i]
        for s in op.operands():
            j = run_of.get(id(s))
            if j is not None and j != k:
                need.add(id(s))
    stack = [i for i in need if not isinstance(step[i], (Reg, Counter, Acc))]
    while stack:  # a concurrent assignment reads signals only
        for s in step[stack.pop()].operands():
            if id(s) in step and id(s) not in need:
                need.add(id(s))
                if not isinstance(step[id(s)], (Reg, Counter, Acc)):
                    stack.append(id(s))
    return need


def _stateful(s: Op, ind: str) -> list[str]:
    """A counter, an accumulator or a register with enable/reset, inside a clocked process."""
    y = s.out
    if isinstance(s, Counter):
        return [f"{ind}if rst = '1' then", f"{ind}  {y.name} <= {s.n};",
                f"{ind}elsif {s.start.name} = 1 then", f"{ind}  {y.name} <= 0;",
                f"{ind}elsif {y.name} /= {s.n} then", f"{ind}  {y.name} <= {y.name} + 1;",
                f"{ind}end if;"]
    if isinstance(s, Acc):
        sel = s.sel.name
        if is_int(y):
            load = s.a.name if is_int(s.a) else f"to_integer({s.a.name})"
        else:
            load = _convert(s.a, y)
        lines = [f"{ind}if {sel} = {s.first} then", f"{ind}  {y.name} <= {load};"]
        if s.last > s.first:
            lines += [f"{ind}elsif {sel} > {s.first} and {sel} <= {s.last} then", f"{ind}  {y.name} <= {_expr(s)};"]
        return lines + [f"{ind}end if;"]
    lines = []
    cond = "if"
    if s.reset is not None:
        lines += [f"{ind}if rst = '1' then", f"{ind}  {y.name} <= {s.reset if is_int(y) else _typed_lit(s.reset, y)};"]
        cond = "elsif"
    if s.en is not None:
        lines += [f"{ind}{cond} {s.en.name} = 1 then", f"{ind}  {y.name} <= {_expr(s)};"]
    else:
        lines += [f"{ind}else", f"{ind}  {y.name} <= {_expr(s)};"]
    return lines + [f"{ind}end if;"]


def _init(s: Op) -> str:
    """The power-up value of a register that has a reset value (a counter: idle)."""
    v = s.n if isinstance(s, Counter) else (s.reset if isinstance(s, Reg) else None)
    if v is None:
        return ""
    return f" := {v}" if is_int(s.out) else f" := {_typed_lit(v, s.out)}"


def _is_stateful(s: Op) -> bool:
    return isinstance(s, STATEFUL) or (isinstance(s, Reg) and not s.plain)


def _assignments(steps: list[tuple[Op, Op]], ind: str, signals: set[int]) -> list[str]:
    """``(operation, primitive step)`` pairs as assignments (``<=`` to a signal, ``:=`` to a
    variable), each operation's note above its first step."""
    lines: list[str] = []
    append = lines.append
    last = None
    for op, s in steps:
        if op is not last:
            note = s.note if isinstance(s, Reg) else op_note(op)
            if note:
                lines += [f"{ind}-- {line}" for line in note.splitlines() if line]
            last = op
        if _is_stateful(s):
            lines += _stateful(s, ind)
            continue
        append(f"{ind}{s.out.name} {'<=' if id(s.out) in signals else ':='} {_expr(s)};")
    return lines


def _process_order(steps: list[tuple[Op, Op]], signals: set[int]) -> list[tuple[Op, Op]]:
    """Statement order inside a layer's process: a variable is written before it is read
    (combinational), a register variable is read before it is written (a flip-flop).
    Among the orders that respect this, last pipeline stage first, then netlist order:
    the logic of stage ``s`` and the registers it feeds (stage ``s + 1``), for ``s`` from
    the highest down."""
    import heapq

    n = len(steps)
    priority = [-_logic_stage(s) for _, s in steps]
    # The order is the topological one that takes the smallest (priority, position) among
    # the ready statements at every step.  When sorting by that key already respects
    # every constraint (the usual case), that greedy order is the sorted order itself.
    order = sorted(range(n), key=priority.__getitem__)  # stable: ties by position
    rank = [0] * n
    for r, k in enumerate(order):
        rank[k] = r
    # positions of the results that are variables (a signal imposes no order)
    pos = {id(s.out): k for k, (_, s) in enumerate(steps) if id(s.out) not in signals}

    def edges():
        """(earlier, later) position pairs."""
        for k, (_, s) in enumerate(steps):
            for x in s.operands():
                j = pos.get(id(x))
                if j is not None:
                    yield (k, j) if isinstance(steps[j][1], Reg) else (j, k)

    if all(rank[a] < rank[c] for a, c in edges()):
        return [steps[k] for k in order]
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for a, c in edges():
        succ[a].append(c)
        indeg[c] += 1
    heap = [(priority[k], k) for k in range(n) if indeg[k] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(k)
        for c in succ[k]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(heap, (priority[c], c))
    order = [steps[k] for k in order]
    if len(order) != len(steps):
        raise AssertionError("the VHDL printer found a cycle among the variables of a process")
    return order


def _logic_stage(s: Op) -> int:
    """The stage of the logic an operation belongs to (a register: that of its input)."""
    return s.out.stage - 1 if isinstance(s, Reg) else s.out.stage


def package_lines(nl: Netlist) -> list[str]:
    """The package ``<top>_pkg``: the numbers a surrounding design needs (to delay other
    data by the latency, to size buses), each constant prefixed with the top's name so that
    the packages of several cores can be used at once."""
    pkg, p = unit_name(nl.name, PACKAGE_SUFFIX), nl.name.upper()
    rows = [("LATENCY", "positive", nl.latency, "clock cycles from in_valid to out_valid"),
            ("II", "positive", nl.ii, "initiation interval: cycles between accepted inputs")]
    for side, n, t, bus in (("IN", nl.n_in, nl.in_type, nl.in_bus_width),
                            ("OUT", nl.n_out, nl.out_type, nl.out_bus_width)):
        what = "in_data" if side == "IN" else "out_data"
        rows += [(f"N_{side}PUTS", "positive", n, f"elements in {what}"),
                 (f"{side}_WIDTH", "positive", t.width, f"bits per element of {what} ({t})"),
                 (f"{side}_FRAC", "integer", t.frac, "fractional bits: value = raw * 2**-frac"),
                 (f"{side}_SIGNED", "boolean", str(t.signed).lower(), "two's complement elements"),
                 (f"{side}_BUS_WIDTH", "positive", bus, f"bits of {what}")]
    width = max(len(f"{p}_{r[0]}") for r in rows)
    lines = ["", f"-- Constants of the core {nl.name} (the same numbers as rtl.json).",
             f"package {pkg} is"]
    for key, typ, value, note in rows:
        lines.append(f"  constant {f'{p}_{key}':<{width}} : {typ:<8} := {value};  -- {note}")
    return lines + [f"end package {pkg};"]


@acyclic_pass
def print_vhdl(nl: Netlist, library: str | None = None) -> str:
    """The VHDL file of ``nl`` (``library``, default ``nnfpga_<top>``, is named in the
    header: the file compiles into any library)."""
    L = nl.latency
    lib = library or default_library(nl.name)
    out: list[str] = ["-- " + line if line else "--" for line in header_lines(nl, "VHDL-2008")]
    out += ["--", f"-- Design units: package {unit_name(nl.name, PACKAGE_SUFFIX)}, entity {nl.name}; "
            f"compile this file into the library {lib}",
            f"-- (e.g. ghdl -a --std=08 --work={lib}; Vivado read_vhdl -vhdl2008 -library {lib}) and "
            f"instantiate entity {lib}.{nl.name}."]
    out += package_lines(nl)
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
            "  -- Signals of range within +-(2**31 - 1) are integers of exactly that range; wider",
            "  -- ones are numeric_std signed/unsigned of exactly their width.", "",
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
    runs = _layer_runs(nl)
    signals = _signals(nl, runs)
    for ops in runs:
        drivers = [s for s in flat_ops(ops) if id(s.out) in signals]
        if drivers:
            out += ["", f"  -- {ops[0].out.layer}"]
            out += [f"  signal {s.out.name} : {_decl_type(s.out)}{_init(s)};" for s in drivers]
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
    for ops in runs:
        layer = ops[0].out.layer
        out += ["", f"  -- ===== {layer} " + "=" * max(0, 60 - len(layer))]
        steps = [(op, s) for op in ops for s in (op.steps if isinstance(op, Requant) else (op,))]
        # concurrent assignments (combinational signals) and the process body; the stages
        # of the registers
        conc, inner, reg_stages = [], [], set()
        for p in steps:
            s = p[1]
            if isinstance(s, (Reg, Counter, Acc)):
                inner.append(p)
                reg_stages.add(s.out.stage)
            else:
                (conc if id(s.out) in signals else inner).append(p)
        if not reg_stages:  # no registers: concurrent assignments only
            out += _assignments(steps, "  ", signals)
            continue
        out += _assignments(conc, "  ", signals)
        body = _process_order(inner, signals)
        stages = sorted(reg_stages)
        out += [f"  -- {layer}: one clocked process (pipeline stage{'s' if len(stages) > 1 else ''} "
                f"{', '.join(map(str, stages))}); logic and inner registers are variables, the",
                "  -- layer's output registers signals.  Written last stage first: a register variable is",
                "  -- read before it is assigned its next value, which makes it a flip-flop.",
                "  process (clk)"]
        groups: list[tuple[int, list[tuple[Op, Op]]]] = []
        for p in body:
            s = p[1]
            if id(s.out) not in signals:
                out.append(f"    variable {s.out.name} : {_decl_type(s.out)};")
            st = _logic_stage(s)
            if not groups or groups[-1][0] != st:
                groups.append((st, []))
            groups[-1][1].append(p)
        out += ["  begin", "    if rising_edge(clk) then"]
        for st, group in groups:
            out.append(f"      -- stage {st} logic and the registers of stage {st + 1}")
            out += _assignments(group, "      ", signals)
        out += ["    end if;", "  end process;"]
    out += ["", "  -- outputs"]
    wo = nl.out_type.width
    for j, s in enumerate(nl.outputs):
        sl = f"out_data({(j + 1) * wo - 1} downto {j * wo})"
        if s.is_const:
            out.append(f'  {sl} <= "{bits(s.value, wo)}";  -- constant {s.value}')
        elif is_int(s):
            conv = "to_signed" if nl.out_type.signed else "to_unsigned"
            out.append(f"  {sl} <= std_logic_vector({conv}({s.name}, {wo}));")
        elif s.width == wo:
            out.append(f"  {sl} <= std_logic_vector({s.name});")
        else:
            out.append(f"  {sl} <= std_logic_vector(resize({s.name}, {wo}));")
    out += ["", "end architecture rtl;", ""]
    return "\n".join(out)
