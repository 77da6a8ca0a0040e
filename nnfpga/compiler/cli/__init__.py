"""The ``nnfpga`` command line: compile, config, emulate, verify, report.

One module per verb: it declares the verb's arguments (``add_parser``) and runs it
(``run``), importing the compiler only when it runs, so ``nnfpga --help`` stays fast.

User mistakes (missing or corrupt files, unsupported layers, unknown parts) print one
paragraph and exit with code 2; a failed verification exits with 1.
"""

from __future__ import annotations

import argparse
import sys

from nnfpga.compiler.cli import compile as compile_verb
from nnfpga.compiler.cli import config as config_verb
from nnfpga.compiler.cli import emulate as emulate_verb
from nnfpga.compiler.cli import report as report_verb
from nnfpga.compiler.cli import verify as verify_verb
from nnfpga.core.errors import UserError

EXIT_USER_ERROR = 2

#: The verbs in the order ``nnfpga --help`` lists them.
VERBS = {"compile": compile_verb, "config": config_verb, "emulate": emulate_verb, "verify": verify_verb,
         "report": report_verb}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnfpga", description="Compile neural networks into bit-exact trigger firmware.")
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS.values():
        verb.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return VERBS[args.command].run(args)
    except UserError as e:
        print(f"nnfpga {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
