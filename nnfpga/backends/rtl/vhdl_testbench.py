"""The VHDL-2008 test benches of cores: one generator (`vhdl_testbench`) for the frame every
bench shares -- context clauses, the entity with its file generics, constants and port
signals, the instance of the design under test, a 10 ns clock, one main process that
holds reset for four edges and stops the clock when it is done -- and the main process of
the file-driven bench that GHDL runs (`logging_process`).

Benches built on it: the self-checking bench shipped with a core
(`nnfpga.backends.integration.testbench`), the bench of `nnfpga.sim.ghdl`, and the test
of two cores side by side (tests/test_integration.py).

The logging bench reads one line per clock cycle, ``1 <hex> [<hex> ...]`` (a sample: one
word per input bus, all presented with ``in_valid``) or ``0`` (an idle cycle: every input
bus inverted, so that it carries changing junk), and writes ``I <cycle>`` for every
sample the design captures and ``<tag> <cycle> <hex>`` for every cycle an output channel
shows its valid bit.  ``cycle`` counts the rising edges after the reset: a sample is
logged at the edge that captures it and an output at the edge just after it appears (the
bench reads the outputs before the design's registers update), so an output due ``L``
cycles after its input is logged exactly ``L`` cycles after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Edges the main process holds ``rst`` high for.
RESET_EDGES = 4


def hex_bits(width: int) -> int:
    """``width`` rounded up to whole hex digits (the words of the vector files)."""
    return 4 * -(-width // 4)


def slv(width: int | str) -> str:
    return f"std_logic_vector({width} - 1 downto 0)" if isinstance(width, str) else \
        f"std_logic_vector({width - 1} downto 0)"


@dataclass
class Bench:
    """What differs between benches; `vhdl_testbench` prints the rest."""

    name: str
    #: comment text (without markers) at the top
    header: list[str]
    #: the design under test, as ``<library>.<entity>``
    dut: str
    #: (formal, bench signal) pairs of its port map
    port_map: list[tuple[str, str]]
    #: (name, type, initial value or "") of the bench signals other than clk/rst/done
    signals: list[tuple[str, str, str]]
    #: declarations and statements of the main process after the reset
    process_decls: list[str]
    process_body: list[str]
    #: (name, default or None) generics, the file names
    generics: list[tuple[str, str | None]] = field(default_factory=lambda: [("IN_FILE", None), ("OUT_FILE", None)])
    #: (name, type, value, note) constants of the architecture
    constants: list[tuple[str, str, str | int, str]] = field(default_factory=list)
    #: context clauses after ieee.std_logic_1164 and std.textio (libraries, packages)
    context: list[str] = field(default_factory=list)


def vhdl_testbench(b: Bench) -> str:
    out = ["-- " + line if line else "--" for line in b.header]
    out += ["", "library ieee;", "use ieee.std_logic_1164.all;", "use std.textio.all;", *b.context, "",
            f"entity {b.name} is", "  generic ("]
    out += [f"    {g} : string" + ("" if d is None else f' := "{d}"') + (";" if k + 1 < len(b.generics) else "")
            for k, (g, d) in enumerate(b.generics)]
    out += ["  );", f"end entity {b.name};", "", f"architecture sim of {b.name} is"]
    out += [f"  constant {c} : {t} := {v};" + (f"  -- {note}" if note else "") for c, t, v, note in b.constants]
    signals = [("clk", "std_logic", "'0'"), ("rst", "std_logic", "'1'"), *b.signals, ("done", "boolean", "false")]
    pad = max(len(s) for s, _, _ in signals)
    out += [f"  signal {s:<{pad}} : {t}{f' := {v}' if v else ''};" for s, t, v in signals]
    out += ["begin", f"  dut : entity {b.dut}", "    port map ("]
    out += [f"      {f} => {a}{',' if k + 1 < len(b.port_map) else ''}" for k, (f, a) in enumerate(b.port_map)]
    out += ["    );", "", "  clk <= not clk after 5 ns when not done;", "", "  main : process"]
    out += ["    " + line if line else "" for line in b.process_decls]
    out += ["  begin", "    rst <= '1';", f"    for k in 1 to {RESET_EDGES} loop", "      wait until rising_edge(clk);",
            "    end loop;", "    rst <= '0';"]
    out += ["    " + line if line else "" for line in b.process_body]
    out += ["    done <= true;", "    wait;", "  end process main;", "end architecture sim;", ""]
    return "\n".join(out)


@dataclass
class Channel:
    """An output channel of a logging bench: its tag in the log, valid and data signals."""

    tag: str
    valid: str
    data: str
    width: int


def logging_process(inputs: list[tuple[str, int]], outputs: list[Channel], tail: int,
                    in_valid: str = "in_valid") -> tuple[list[str], list[str]]:
    """Declarations and body of the main process of a logging bench (see the module doc):
    ``inputs`` are (signal, width) of the input buses in the order of the words of a
    line; after the last line it runs ``tail`` more edges."""
    decls = ["file fin  : text open read_mode is IN_FILE;", "file fout : text open write_mode is OUT_FILE;",
             "variable l, lo : line;", "variable flag  : integer;", "variable cycle : natural := 0;"]
    decls += [f"variable w_{s} : {slv(hex_bits(w))};" for s, w in inputs]
    decls += [f"variable o_{c.data} : {slv(hex_bits(c.width))};" for c in outputs]
    decls += ["-- one clock edge: log the sample the design captures at it and the outputs it shows",
              "-- just before it (its registers update after this process has read them)",
              "procedure edge is", "begin", "  wait until rising_edge(clk);", "  cycle := cycle + 1;",
              f"  if {in_valid} = '1' then",
              "    write(lo, string'(\"I \")); write(lo, cycle); writeline(fout, lo);", "  end if;"]
    for c in outputs:
        o = f"o_{c.data}"
        decls += [f"  if {c.valid} = '1' then", f"    {o} := (others => '0'); {o}({c.data}'range) := {c.data};",
                  f"    write(lo, string'(\"{c.tag} \")); write(lo, cycle); write(lo, ' '); hwrite(lo, {o});",
                  "    writeline(fout, lo);", "  end if;"]
    decls += ["end procedure edge;"]
    body = ["while not endfile(fin) loop", "  readline(fin, l);", "  read(l, flag);", "  if flag = 1 then"]
    body += [f"    hread(l, w_{s}); {s} <= w_{s}({s}'range);" for s, _ in inputs]
    body += [f"    {in_valid} <= '1';", "  else"]
    body += [f"    {s} <= not {s};" for s, _ in inputs]
    body += [f"    {in_valid} <= '0';", "  end if;", "  edge;", "end loop;", f"{in_valid} <= '0';",
             f"for k in 1 to {tail} loop", "  edge;", "end loop;"]
    return decls, body


def core_signals(in_width: int | str, out_width: int | str) -> list[tuple[str, str, str]]:
    """The bench signals of a core's ports other than clk and rst."""
    return [("in_valid", "std_logic", "'0'"), ("in_data", slv(in_width), "(others => '0')"),
            ("out_valid", "std_logic", ""), ("out_data", slv(out_width), "")]


#: The port map of a core onto `core_signals`.
CORE_PORT_MAP = [(p, p) for p in ("clk", "rst", "in_valid", "in_data", "out_valid", "out_data")]
