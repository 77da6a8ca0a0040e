"""VHDL-2008 printer of a `Netlist`: one file with a package ``<top>_pkg`` (the core's
constants: latency, II, port widths, element types, every name prefixed ``<TOP>_``) and
the entity ``<top>`` with one architecture.  The file is meant to be compiled into the
core's own VHDL library (``nnfpga_<top>`` unless configured; `names.default_library`);
nothing in it refers to a library by name, so any library works.

Signals are VHDL integers where their range allows and numeric_std vectors otherwise
(`vhdl_expr` writes every expression).  Ports stay ``std_logic_vector``: inputs are
converted where they are sliced from ``in_data``, outputs where they are packed into
``out_data``.

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

from nnfpga.backends.escape import vhdl_comment
from nnfpga.backends.rtl.acyclic import acyclic_pass
from nnfpga.backends.rtl.common import bits, header_lines, op_note, stateful_lines, table_declarations
from nnfpga.backends.rtl.names import PACKAGE_SUFFIX, default_library, unit_name
from nnfpga.backends.rtl.netlist import Acc, Counter, Netlist, Op, Reg, Requant, STATEFUL, Signal, flat_ops
from nnfpga.backends.rtl.structural import Sig
from nnfpga.backends.rtl.structural_print import core_ports, port_lines, signal_line
from nnfpga.backends.rtl.vhdl_expr import convert, decl_type, expr, is_int, rom_decl, typed_lit


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
    return stateful_lines(s, ind, "vhdl", _literal, expr, _acc_load)


def _literal(value: int, like: Signal) -> str:
    return str(value) if is_int(like) else typed_lit(value, like)


def _acc_load(s: Acc) -> str:
    """An accumulator's first term, of the accumulator's type."""
    if is_int(s.out):
        return s.a.name if is_int(s.a) else f"to_integer({s.a.name})"
    return convert(s.a, s.out)


def _init(s: Op) -> str:
    """The power-up value of a register that has a reset value (a counter: idle)."""
    v = s.n if isinstance(s, Counter) else (s.reset if isinstance(s, Reg) else None)
    if v is None:
        return ""
    return f" := {v}" if is_int(s.out) else f" := {typed_lit(v, s.out)}"


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
                lines += [f"{ind}-- {vhdl_comment(line)}" for line in note.splitlines() if line]
            last = op
        if _is_stateful(s):
            lines += _stateful(s, ind)
            continue
        append(f"{ind}{s.out.name} {'<=' if id(s.out) in signals else ':='} {expr(s)};")
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
    out: list[str] = ["-- " + vhdl_comment(line) if line else "--" for line in header_lines(nl, "VHDL-2008")]
    out += ["--", f"-- Design units: package {unit_name(nl.name, PACKAGE_SUFFIX)}, entity {nl.name}; "
            f"compile this file into the library {lib}",
            f"-- (e.g. ghdl -a --std=08 --work={lib}; Vivado read_vhdl -vhdl2008 -library {lib}) and "
            f"instantiate entity {lib}.{nl.name}."]
    out += package_lines(nl)
    out += ["", "library ieee;", "use ieee.std_logic_1164.all;", "use ieee.numeric_std.all;", "",
            f"entity {nl.name} is",
            "  port (",
            *port_lines(core_ports(nl.in_bus_width, nl.out_bus_width), "vhdl"),
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
            signal_line(Sig("valid_sr", L), "vhdl", register=True)]
    out += table_declarations(nl, rom_decl)
    runs = _layer_runs(nl)
    signals = _signals(nl, runs)
    for ops in runs:
        drivers = [s for s in flat_ops(ops) if id(s.out) in signals]
        if drivers:
            out += ["", f"  -- {vhdl_comment(ops[0].out.layer)}"]
            out += [f"  signal {s.out.name} : {decl_type(s.out)}{_init(s)};" for s in drivers]
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
        layer = vhdl_comment(ops[0].out.layer)
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
                out.append(f"    variable {s.out.name} : {decl_type(s.out)};")
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

