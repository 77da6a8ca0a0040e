"""HDL identifiers: legal in VHDL and Verilog at once, unique without regard to case."""

from __future__ import annotations

import hashlib
import re

VHDL_KEYWORDS = frozenset("""
abs access after alias all and architecture array assert assume assume_guarantee attribute begin
block body buffer bus case component configuration constant context cover default disconnect
downto else elsif end entity exit fairness file for force function generate generic group guarded
if impure in inertial inout is label library linkage literal loop map mod nand new next nor not
null of on open or others out package parameter port postponed procedure process property
protected pure range record register reject release rem report restrict restrict_guarantee return
rol ror select sequence severity shared signal sla sll sra srl strong subtype then to transport
type unaffected units until use variable vmode vprop vunit wait when while with xnor xor
""".split())

VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign
default defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule
endprimitive endspecify endtable endtask event for force forever fork function generate genvar
highz0 highz1 if ifnone incdir include initial inout input instance integer join large liblist
library localparam macromodule medium module nand negedge nmos nor noshowcancelled not notif0
notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup
pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran
rtranif0 rtranif1 scalared showcancelled signed small specify specparam strong0 strong1 supply0
supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire
vectored wait wand weak0 weak1 while wire wor xnor xor
bit byte int logic shortint longint
""".split())

#: Names the printers use themselves (ports, helpers); never given to a netlist signal.
RESERVED = frozenset({"clk", "rst", "in_valid", "in_data", "out_valid", "out_data", "valid_sr",
                      "lowbits", "ieee", "std", "work", "rtl", "numeric_std", "std_logic_1164"})


_CLEAN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

#: The longest identifier derived from a name.  A core's name is also the stem of its
#: files (``<name>_timing_summary_synth.rpt`` is the longest, 28 characters more), and
#: file names are limited to 255 bytes; 64 leaves room and stays readable in tools.
MAX_IDENTIFIER = 64


def bounded(ident: str, source: object, limit: int = MAX_IDENTIFIER) -> str:
    """``ident`` when it has at most ``limit`` characters; otherwise its start and a short
    hash of ``source`` (the text it came from), so that two long names that share their
    first characters still differ, and the same name always gives the same identifier."""
    if len(ident) <= limit:
        return ident
    digest = hashlib.sha256(str(source).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{ident[:limit - 9].rstrip('_')}_{digest}"


def sanitize(text: str, fallback: str = "n") -> str:
    """Lower-case identifier: letters, digits, single underscores, starting with a letter,
    at most `MAX_IDENTIFIER` characters."""
    if isinstance(text, str) and len(text) <= MAX_IDENTIFIER and _CLEAN.fullmatch(text):
        return text  # already one (the lowering's own names: the common case)
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    s = re.sub(r"_+", "_", s)
    if not s:
        s = fallback
    if not s[0].isalpha():
        s = f"{fallback}_{s}"
    return bounded(s, text)


_ALL_RESERVED = VHDL_KEYWORDS | VERILOG_KEYWORDS | RESERVED


def is_reserved(name: str) -> bool:
    return name.lower() in _ALL_RESERVED


def top_name(model_name: str) -> str:
    """The entity/module name for a model: sanitised, never a keyword."""
    s = sanitize(model_name, "nn")
    return f"{s}_nn" if is_reserved(s) else s


class Namer:
    """Hands out unique identifiers (case-insensitive, as VHDL requires)."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self._taken = {t.lower() for t in (taken or set())}

    def take(self, name: str) -> str:
        base = sanitize(name)
        cand, k = base, 1
        key = cand.lower()
        while key in self._taken or key in _ALL_RESERVED:
            cand, k = f"{base}_{k}", k + 1
            key = cand.lower()
        self._taken.add(key)
        return cand

    def snapshot(self) -> frozenset[str]:
        """The names taken so far, for `restore` (operations built and then discarded)."""
        return frozenset(self._taken)

    def restore(self, taken: frozenset[str]) -> None:
        self._taken = set(taken)


# --------------------------------------------------------------------------- design units
#: Suffix of the VHDL package of a core (its constants); every design unit of a core is
#: ``<name>`` or ``<name>_<suffix>`` (`unit_name`), so two cores never clash.
PACKAGE_SUFFIX = "pkg"


def check_identifier(text: str, what: str) -> str:
    """``text`` unchanged when it is a legal lower-case VHDL and Verilog identifier that is
    no keyword (letters, digits, single underscores, starting with a letter); otherwise
    ValueError naming the legal spelling.  Nothing is normalised silently."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what} must be a non-empty identifier, got {text!r}")
    legal = sanitize(text, "nn")
    if len(text) > MAX_IDENTIFIER:
        raise ValueError(f"{what} has {len(text)} characters; at most {MAX_IDENTIFIER} are supported (it names "
                         f"the core's files and design units); for example {legal!r}")
    if legal != text:
        raise ValueError(f"{what} {text!r} is not a legal VHDL/Verilog identifier (lower-case letters, digits "
                         f"and single underscores, starting with a letter); for example {legal!r}")
    if is_reserved(text):
        raise ValueError(f"{what} {text!r} is a VHDL/Verilog keyword or a name nnfpga uses itself; "
                         f"for example {text + '_nn'!r}")
    return text


def default_library(name: str) -> str:
    """The VHDL library of a core named ``name``: ``nnfpga_<name>`` (bounded like any
    identifier, `bounded`)."""
    return bounded(f"nnfpga_{name}", name)


def unit_name(name: str, suffix: str) -> str:
    """The name of a further design unit (package, wrapper) of the core ``name``."""
    return f"{name}_{suffix}"
