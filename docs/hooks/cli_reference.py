"""MkDocs hook: the command-line reference, generated from nnfpga's argparse parser.

`docs/cli.md` holds the marker `<!-- cli-reference -->`; at build time it is replaced by
`cli_reference_markdown(nnfpga.compiler.cli._parser())`, so the page can never drift from
the options the program accepts.  `tests/test_docs.py` calls the same function.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MARKER = "<!-- cli-reference -->"
ROOT = Path(__file__).resolve().parents[2]


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(verb, one-line help, parser) for every verb, in the parser's order."""
    out = []
    for action in parser._actions:  # argparse keeps no public list of sub-commands
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for verb, sub in action.choices.items():
                out.append((verb, helps.get(verb, ""), sub))
    return out


def _escape(text: str) -> str:
    # Help strings name things like <name>: keep them literal in Markdown tables.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("+", "*") else "")
    metavar = ""
    if action.nargs != 0:
        metavar = " " + (action.metavar or action.dest.upper())
    return ", ".join(f"`{s}{metavar}`" for s in action.option_strings)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" in text:
        text = text.replace("%(default)s", str(action.default))
    notes = []
    if not action.option_strings and not text:
        notes.append("positional")
    if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings \
            and "default" not in text:
        notes.append(f"default `{action.default}`")
    if action.required and action.option_strings:
        notes.append("required")
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    note = "; ".join(notes)
    if not text:
        return note
    return _escape(text) + (f" ({note})" if note else "")


def cli_reference_markdown(parser: argparse.ArgumentParser) -> str:
    """Markdown for every verb of ``parser``: usage, description and a table of every
    argument (positional and optional, ``--help`` included) with its help text."""
    lines = [f"`{parser.prog}` verbs: " + ", ".join(f"[`{v}`](#{v})" for v, _, _ in _subparsers(parser)) + ".", ""]
    for verb, summary, sub in _subparsers(parser):
        lines += [f"## {verb}", ""]
        if summary:
            lines += [_escape(summary[0].upper() + summary[1:]) + ".", ""]
        if sub.description:
            lines += [_escape(sub.description), ""]
        usage = sub.format_usage().replace("usage: ", "", 1).rstrip()  # argparse's own line breaks
        lines += ["```text", usage, "```", ""]
        lines += ["| argument | meaning |", "| --- | --- |"]
        for action in sub._actions:
            lines.append(f"| {_invocation(action)} | {_help(action) or '&nbsp;'} |")
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: fill the marker of the CLI page."""
    if MARKER not in markdown:
        return markdown
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from nnfpga.compiler.cli import _parser
    return markdown.replace(MARKER, cli_reference_markdown(_parser()))
