"""User text (model and layer names, file paths) as data in generated files.

A name from a model file can hold anything: newlines, comment delimiters, quotes,
backslashes, ``$``/``[``/``{`` (Tcl substitutions), non-ASCII.  Identifiers are derived by
the sanitisers (`nnfpga.backends.rtl.names`, `nnfpga.backends.hls.names`); free text goes
through exactly one function here per target language, so no generated file ever
parses differently because of a name.

Every function returns one line of printable ASCII: a control or non-ASCII character, and
the backslash itself, are written as Python-style escapes (``\\n``, ``\\xe9``, ``\\u4e2d``),
which is readable and reversible, and no language below treats specially inside the
context it is used in.
"""

from __future__ import annotations

import html
import re

#: Words that synthesis and lint tools read as directives when a comment starts with them
#: (``-- synthesis translate_off``, ``// verilator lint_off``, ``// pragma protect``).
#: A name must never switch a tool's behaviour, so their first letter is escaped wherever
#: they occur (the printer, not the escape, decides where in a comment a name goes).
_DIRECTIVE_WORDS = re.compile(
    r"(?i)\b(synthesis|synopsys|pragma|translate_off|translate_on|verilator|cadence|altera|"
    r"xilinx|rtl_synthesis|exemplar|ambit|lint_off|lint_on|coverage|psl|vhdl_comp_off|vhdl_comp_on)\b")


def one_line(text: object) -> str:
    """``text`` as one line of printable ASCII, the backslash included only as an escape."""
    out = []
    for c in str(text):
        if c == "\\":
            out.append("\\\\")
        elif " " <= c <= "~":
            out.append(c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x100:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return "".join(out)


def _no_directives(text: str) -> str:
    return _DIRECTIVE_WORDS.sub(lambda m: f"\\x{ord(m.group(0)[0]):02x}{m.group(0)[1:]}", text)


def _no_trailing_backslash(text: str) -> str:
    # A line ending in a backslash continues a C++ // comment (and a Tcl # comment) onto
    # the next line; `one_line` doubles backslashes, so a closing space ends it safely.
    return text + " " if text.endswith("\\") else text


def vhdl_comment(text: object) -> str:
    """Text for a VHDL ``--`` comment (ends at the line's end; no directive words)."""
    return _no_directives(one_line(text))


def verilog_comment(text: object) -> str:
    """Text for a Verilog ``//`` comment: one line, no directive words; ``/*`` and ``*/``
    are broken up too, so the text may also stand in a block comment."""
    return _no_directives(one_line(text)).replace("/*", "/ *").replace("*/", "* /")


def cpp_comment(text: object) -> str:
    """Text for a C++ ``//`` or ``/* */`` comment: one line, no line splice, no trigraph
    (``??/`` is a backslash under -trigraphs), no block-comment delimiter, no directive word."""
    s = _no_directives(one_line(text)).replace("/*", "/ *").replace("*/", "* /").replace("??", "?\\x3f")
    return _no_trailing_backslash(s)


def tcl_comment(text: object) -> str:
    """Text for a Tcl (and XDC) ``#`` comment: one line that does not end in a backslash
    (a backslash-newline would continue the comment onto the next command)."""
    return _no_trailing_backslash(one_line(text))


def tcl_word(text: object) -> str:
    """``text`` as one Tcl word whose value is exactly ``text``: brace-quoted (no
    substitution at all) when it is printable ASCII without braces or backslashes,
    otherwise double-quoted with every special character escaped."""
    text = str(text)
    if all(" " <= c <= "~" and c not in "{}\\" for c in text):
        return "{" + text + "}"
    out = []
    for c in text:
        if c in '\\$[]"{};':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


#: Characters Markdown (or HTML inside it, or a math extension) reads anywhere in a line;
#: those that matter only at a line's start (``-``, ``+``, ``1.``) never start one here.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#|<>~&$])")


def markdown_text(text: object) -> str:
    """Text for a Markdown paragraph, heading or table cell (never at a line's start):
    one line, every character Markdown would interpret escaped with a backslash."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _escaped_for_markdown(str(text)))


def _escaped_for_markdown(text: str) -> str:
    # one_line writes a backslash as two; Markdown then shows each escaped, so render
    # control characters as escapes but leave the backslash to the Markdown escaping.
    return "".join(one_line(c) if c != "\\" else c for c in text)


def html_text(text: object) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(one_line(text), quote=True)


def matplotlib_text(text: object) -> str:
    """Text for a matplotlib label: one line, ``$`` escaped (a pair would start mathtext,
    whose parser fails on most names)."""
    return one_line(text).replace("$", r"\$")


def rich_text(text: object) -> str:
    """Text for a rich console string: ``[`` escaped, so a name never reads as markup
    (``[/]`` in a layer name would otherwise stop the printing with an error)."""
    from rich.markup import escape
    return escape(one_line(text))
