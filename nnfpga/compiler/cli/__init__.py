"""The ``nnfpga`` command line: compile, config, emulate, verify, report, explore.

One module per verb: it declares the verb's arguments (``add_parser``) and runs it
(``run``), importing the compiler only when it runs, so ``nnfpga --help`` stays fast.

User mistakes (missing or corrupt files, unsupported layers, unknown parts) print one
paragraph and exit with code 2; a failed verification exits with 1.  Anything else is a
bug of ours: a short report says so, the traceback goes to a file it names, exit code 3
(``NNFPGA_DEBUG=1`` lets the exception through instead).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback

from nnfpga.compiler.cli import compile as compile_verb
from nnfpga.compiler.cli import config as config_verb
from nnfpga.compiler.cli import emulate as emulate_verb
from nnfpga.compiler.cli import explore as explore_verb
from nnfpga.compiler.cli import report as report_verb
from nnfpga.compiler.cli import verify as verify_verb
from nnfpga.core.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3

#: The verbs in the order ``nnfpga --help`` lists them.
VERBS = {"compile": compile_verb, "config": config_verb, "emulate": emulate_verb, "verify": verify_verb,
         "report": report_verb, "explore": explore_verb}


def _parser() -> argparse.ArgumentParser:
    from nnfpga.core.version import __version__
    p = argparse.ArgumentParser(prog="nnfpga", description="Compile neural networks into bit-exact trigger firmware.")
    p.add_argument("--version", action="version", version=f"nnfpga {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS.values():
        verb.add_parser(sub)
    return p


#: Options that take a value: a value starting with '-' (``--clock -5MHz``) is attached to
#: its option, so argparse does not take it for an option and say only "expected one
#: argument"; the option's own check then names the value and what is allowed.
_VALUE_OPTIONS = ("--clock", "--reuse", "--ii", "--max-dsp", "--event-rate", "--target", "--jobs", "--timeout",
                  "--memory-gb", "--name", "--library", "--sweep", "--search", "--seed", "--scheduler")


def _attach_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and argv[i + 1] not in ("-o", "-h") and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _attach_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad option value (printed by argparse, exit code 2)
        return 0 if e.code is None else e.code if isinstance(e.code, int) else EXIT_USER_ERROR
    try:
        return VERBS[args.command].run(args)
    except UserError as e:
        print(f"nnfpga {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("NNFPGA_DEBUG"):
            raise
        return _internal_error(args.command, argv, e)


def _internal_error(command: str, argv: list[str] | None, error: Exception) -> int:
    """A bug, not the user's mistake: say so in a few lines and keep the traceback in a file."""
    from nnfpga.core.version import __version__
    fd, path = tempfile.mkstemp(prefix="nnfpga-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"nnfpga {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.write(f"command: nnfpga {' '.join(sys.argv[1:] if argv is None else argv)}\n\n")
        f.write("".join(traceback.format_exception(error)))
    first = (str(error).splitlines() or [""])[0][:200]
    print(f"nnfpga {command}: internal error (a bug in nnfpga, not a problem with your input): "
          f"{type(error).__name__}: {first}\n"
          f"The details are in {path}; please send that file, with the model if you can, "
          "to the nnfpga developers (see README, 'Reporting a bug').", file=sys.stderr)
    return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
