"""The VHDL-2008 and Verilog-2005 text of a structural module (`structural`): one walk over
the description, and every construct's two spellings side by side in one table (`SYNTAX`),
so that the two files of a wrapper say the same thing line for line.

VHDL typing: a one-bit signal is ``std_logic``, a vector ``std_logic_vector``; counting goes
through ``unsigned``; a comparison is a VHDL ``boolean``, which stands as it is in a
condition and becomes ``'1' when .. else '0'`` where it is assigned as a bit (`_assigned`).
Verilog needs none of this: there every expression is its value.
"""

from __future__ import annotations

from nnfpga.backends.rtl.common import bits
from nnfpga.backends.rtl.structural import (Add, And, Cat, Eq, Expr, If, Index, Instance, Lit, Mem, Module, Not,
                                           Process, Read, Set, Sig, Slice, Stmt, Write, has_compare, header_lines)

#: Column of each language in `SYNTAX`.
LANGUAGES = {"vhdl": 0, "verilog": 1}
VHDL, VERILOG = LANGUAGES["vhdl"], LANGUAGES["verilog"]

#: Every construct as (VHDL, Verilog); a tuple of lines where it takes several.
SYNTAX: dict[str, tuple] = {
    "language": ("VHDL-2008", "Verilog-2005"),
    "comment": ("--", "//"),
    "prologue": (("", "library ieee;", "use ieee.std_logic_1164.all;", "use ieee.numeric_std.all;", "",
                  "entity {name} is", "  port ("),
                 ("", "`default_nettype none", "// padding bits of the buses are left unread, by design:",
                  "/* verilator lint_off UNUSEDSIGNAL */", "", "module {name} (")),
    "port": ("    {name:<{pad}} : {dir:<3} {type}{sep}{note}", "    {vdir} wire {type}{name}{sep}{note}"),
    "port_sep": (";", ","),
    "ports_end": (("  );", "end entity {name};", "", "architecture rtl of {name} is", ""), (");", "")),
    "bit_type": ("std_logic", ""),
    "vector_type": ("std_logic_vector({hi} downto 0)", "[{hi}:0] "),
    "signal": ("  signal {name} : {type}{init};", "  {kind} {type}{name};"),
    "memory": (("  type {name}_t is array (0 to {last}) of {type};", "  signal {name} : {name}_t;"),
               ("  reg {type}{name} [0:{last}];",)),
    "begin": (("", "begin", ""), ("",)),
    "assign": ("  {target} <= {value};", "  assign {target} = {value};"),
    "process": (("  process ({clock})", "  begin", "    if rising_edge({clock}) then"),
                ("  always @(posedge {clock}) begin",)),
    "process_indent": ("      ", "    "),
    "process_end": (("    end if;", "  end process;"), ("  end",)),
    "instance": (("  {label} : entity work.{entity}", "    port map ("), ("  {entity} {label} (",)),
    "connection": ("      {formal:<{pad}} => {actual}{sep}", "    .{formal}({actual}){sep}"),
    "instance_end": ("    );", "  );"),
    "epilogue": (("end architecture rtl;", ""),
                 ("endmodule", "", "/* verilator lint_on UNUSEDSIGNAL */", "`default_nettype wire", "")),
    "set": ("{target} <= {value};", "{target} <= {value};"),
    "write": ("{mem}(to_integer(unsigned({addr}))) <= {data};", "{mem}[{addr}] <= {data};"),
    "if": ("if {cond} then", "if ({cond}) begin"),
    "elif": ("elsif {cond} then", "end else if ({cond}) begin"),
    "else": ("else", "end else begin"),
    "end_if": ("end if;", "end"),
    # expressions
    "bit": ("'{value}'", "1'b{value}"),
    "vector": ('"{bits}"', "{width}'d{value}"),
    "not": ("not {a}", "~{a}"),
    "and": (" and ", " & "),
    "eq": ("=", "=="),
    "ne": ("/=", "!="),
    "add": ("std_logic_vector(unsigned({a}) {sign} {k})", "{a} {sign} {width}'d{k}"),
    "slice": ("{sig}({hi} downto {lo})", "{sig}[{hi}:{lo}]"),
    "index": ("{sig}({k})", "{sig}[{k}]"),
    "cat": ("{parts}", "{{{parts}}}"),
    "cat_sep": (" & ", ", "),
    "read": ("{mem}(to_integer(unsigned({addr})))", "{mem}[{addr}]"),
}


def _say(key: str, lang: int, **fields) -> str:
    return SYNTAX[key][lang].format(**fields)


def _lines(key: str, lang: int, **fields) -> list[str]:
    return [line.format(**fields) for line in SYNTAX[key][lang]]


def _type(width: int | None, lang: int) -> str:
    return _say("bit_type", lang) if width is None else _say("vector_type", lang, hi=width - 1)


# --------------------------------------------------------------------------- expressions
def _value(e: Expr, lang: int) -> str:
    """``e`` as a value: VHDL ``std_logic`` / ``std_logic_vector``, a Verilog expression of
    exactly its width (`structural.width_of`)."""
    if isinstance(e, Sig):
        return e.name
    if isinstance(e, Lit):
        return _say("bit" if e.width is None else "vector", lang, value=e.value, width=e.width,
                    bits=bits(e.value, e.width or 1))
    if isinstance(e, Not):
        return _say("not", lang, a=_operand(e.a, lang))
    if isinstance(e, And):
        return SYNTAX["and"][lang].join(_operand(t, lang) for t in e.terms)
    if isinstance(e, Eq):
        if lang == VHDL:
            raise ValueError("a comparison is a boolean in VHDL: use it as a condition or assign it to a bit")
        return f"{_value(e.a, lang)} {SYNTAX['ne' if e.negate else 'eq'][lang]} {_value(e.b, lang)}"
    if isinstance(e, Add):
        return _say("add", lang, a=e.a.name, sign="-" if e.k < 0 else "+", k=abs(e.k), width=e.a.width)
    if isinstance(e, Slice):
        return _say("slice", lang, sig=e.sig.name, hi=e.hi, lo=e.lo)
    if isinstance(e, Index):
        return _say("index", lang, sig=e.sig.name, k=e.k)
    if isinstance(e, Cat):
        return _say("cat", lang, parts=SYNTAX["cat_sep"][lang].join(_value(p, lang) for p in e.parts))
    if isinstance(e, Read):
        return _say("read", lang, mem=e.mem.name, addr=_value(e.addr, lang))
    raise TypeError(f"not an expression: {e!r}")


def _operand(e: Expr, lang: int) -> str:
    """``e`` as an operand of a logic operator: parenthesised unless it is a name."""
    simple = isinstance(e, (Sig, Lit, Index, Slice)) or (isinstance(e, Not) and isinstance(e.a, (Sig, Index)))
    return _value(e, lang) if simple else f"({_value(e, lang)})"


def _cond(e: Expr, lang: int) -> str:
    """``e`` (one bit) as a condition: a VHDL ``boolean``, a Verilog value."""
    if lang == VERILOG:
        return _value(e, lang)
    if isinstance(e, (Sig, Index)):
        return f"{_value(e, lang)} = '1'"
    if isinstance(e, Not):
        return f"{_value(e.a, lang)} = '0'" if isinstance(e.a, (Sig, Index)) else f"not ({_cond(e.a, lang)})"
    if isinstance(e, And):
        return " and ".join(_cond(t, lang) for t in e.terms)
    if isinstance(e, Eq):
        op = SYNTAX["ne" if e.negate else "eq"][lang]
        if isinstance(e.b, Lit) and e.b.width is not None:  # a vector and a number
            return f"unsigned({_value(e.a, lang)}) {op} {e.b.value}"
        return f"{_value(e.a, lang)} {op} {_value(e.b, lang)}"
    raise TypeError(f"not a condition: {e!r}")


def _assigned(target: Sig, e: Expr, lang: int) -> str:
    """The right-hand side of an assignment of ``e`` to ``target``."""
    if lang == VHDL:
        if isinstance(e, Lit) and e.width is not None and e.value == 0:
            return "(others => '0')"
        if target.width is None and has_compare(e):
            return f"'1' when {_cond(e, lang)} else '0'"
    return _value(e, lang)


# --------------------------------------------------------------------------- statements
def _statements(body: list[Stmt], ind: str, lang: int) -> list[str]:
    lines: list[str] = []
    for s in body:
        if isinstance(s, Set):
            lines.append(ind + _say("set", lang, target=s.target.name, value=_assigned(s.target, s.value, lang)))
        elif isinstance(s, Write):
            lines.append(ind + _say("write", lang, mem=s.mem.name, addr=_value(s.addr, lang),
                                    data=_value(s.data, lang)))
        else:
            word = "if"
            while True:  # an else branch that is one `if` is an elsif
                lines.append(ind + _say(word, lang, cond=_cond(s.cond, lang)))
                lines += _statements(s.then, ind + "  ", lang)
                if len(s.orelse) == 1 and isinstance(s.orelse[0], If):
                    s, word = s.orelse[0], "elif"
                    continue
                if s.orelse:
                    lines.append(ind + _say("else", lang))
                    lines += _statements(s.orelse, ind + "  ", lang)
                break
            lines.append(ind + _say("end_if", lang))
    return lines


# --------------------------------------------------------------------------- the module
def port_lines(ports: list[tuple[Sig, str]], language: str) -> list[str]:
    """The port list of an entity/module, one port a line (the core's printers use it too)."""
    lang = LANGUAGES[language]
    mark = SYNTAX["comment"][lang]
    pad = max(len(s.name) for s, _ in ports)
    return [_say("port", lang, name=s.name, pad=pad, dir=d, vdir="input " if d == "in" else "output",
                 type=_type(s.width, lang), sep=SYNTAX["port_sep"][lang] if k + 1 < len(ports) else "",
                 note=f"  {mark} {s.note}" if s.note else "")
            for k, (s, d) in enumerate(ports)]


def signal_line(s: Sig, language: str, register: bool) -> str:
    """The declaration of ``s`` (without its power-up value); ``register``: driven by a process."""
    lang = LANGUAGES[language]
    return _say("signal", lang, name=s.name, type=_type(s.width, lang), init="", kind="reg" if register else "wire")


def core_ports(in_bus_width: int, out_bus_width: int) -> list[tuple[Sig, str]]:
    """The ports of a core (DESIGN: clk, rst, in_valid, in_data, out_valid, out_data)."""
    return [(Sig("clk"), "in"), (Sig("rst", note="synchronous, active high; clears the valid pipeline"), "in"),
            (Sig("in_valid"), "in"), (Sig("in_data", in_bus_width), "in"),
            (Sig("out_valid"), "out"), (Sig("out_data", out_bus_width), "out")]


def print_module(m: Module, language: str) -> str:
    """The text of ``m`` in ``language`` (``"vhdl"`` or ``"verilog"``)."""
    lang = LANGUAGES[language]
    m.check()
    mark = SYNTAX["comment"][lang]
    out = [f"{mark} {line}" if line else mark for line in header_lines(m, SYNTAX["language"][lang])]
    out += _lines("prologue", lang, name=m.name)
    out += port_lines(m.ports, language)
    out += _lines("ports_end", lang, name=m.name)
    regs = m.registers()
    for d in m.decls:
        if d.note:
            out.append(f"  {mark} {d.note}")
        if isinstance(d, Mem):
            out += _lines("memory", lang, name=d.name, last=d.depth - 1, type=_type(d.width, lang))
            continue
        # the power-up value: VHDL only, as the core's printers (Verilator flags one on a
        # register that also has a reset)
        init = "" if d.init is None else f" := {_assigned(d, Lit(d.init, d.width), lang)}"
        out.append(_say("signal", lang, name=d.name, type=_type(d.width, lang), init=init,
                        kind="reg" if id(d) in regs else "wire"))
    out += _lines("begin", lang)
    for item in m.items:
        if not hasattr(item, "target") and out[-1]:
            out.append("")  # a blank line before each process and the instance
        if getattr(item, "note", ""):
            out.append(f"  {mark} {item.note}")
        if isinstance(item, Process):
            out += _lines("process", lang, clock=item.clock.name)
            out += _statements(item.body, SYNTAX["process_indent"][lang], lang)
            out += _lines("process_end", lang)
        elif isinstance(item, Instance):
            out += _lines("instance", lang, label=item.label, entity=item.entity)
            pad = max(len(f) for f, _ in item.ports)
            out += [_say("connection", lang, formal=f, pad=pad, actual=_value(a, lang),
                         sep="," if k + 1 < len(item.ports) else "") for k, (f, a) in enumerate(item.ports)]
            out.append(SYNTAX["instance_end"][lang])
        else:
            out.append(_say("assign", lang, target=item.target.name, value=_assigned(item.target, item.value, lang)))
    if out[-1]:
        out.append("")
    return "\n".join(out + _lines("epilogue", lang))

