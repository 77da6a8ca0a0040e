"""``nnfpga config MODEL [-o FILE]``: write (or print) a commented configuration file
listing every layer's settings."""

from __future__ import annotations

import argparse
import shlex
import sys

from pathlib import Path

from nnfpga.compiler.cli.options import add_optimisation_args, clock, clock_note, optimisation_kwargs
from nnfpga.core.errors import UserError


def add_parser(sub) -> None:
    g = sub.add_parser("config", help="write a commented configuration file listing every layer's settings")
    g.add_argument("model", help="model file (.h5, .keras, .onnx, TorchScript .pt/.pth, Keras .json with --weights)")
    g.add_argument("--weights", metavar="FILE",
                   help="weights (.h5, from model.save_weights) of a Keras .json architecture file given as MODEL")
    g.add_argument("-o", "--output", help="the file to write (default: print it); never overwritten")
    g.add_argument("--clock", default="240MHz", type=clock,
                   help="clock frequency (for --event-rate, and the pipeline registers the reuse search prices; "
                        "a bare number is MHz)")
    g.add_argument("--trust-model-code", action="store_true",
                   help="allow running the code inside a TorchScript .pt/.pth model file (refused otherwise)")
    add_optimisation_args(g)


def run(args: argparse.Namespace) -> int:
    import warnings

    from nnfpga.api import make_config
    from nnfpga.compiler.adjustments import AdjustmentWarning
    from nnfpga.compiler.frontends.pytorch import trusting_model_code
    clock_note(args.clock, "config")
    if args.output:
        check_new_file(Path(args.output), "-o")
    with warnings.catch_warnings(record=True) as caught, trusting_model_code(args.trust_model_code):
        warnings.simplefilter("always", AdjustmentWarning)
        text = make_config(args.model, args.output, weights=args.weights, clock=args.clock, **optimisation_kwargs(args))
    for w in caught:
        if issubclass(w.category, AdjustmentWarning):
            print(f"nnfpga config: warning: {w.message}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    # on stderr when the YAML goes to stdout, so that a redirected file stays YAML
    config_file = shlex.quote(args.output or "nnfpga.yml")
    print(f"next: {'' if args.output else 'save it (-o nnfpga.yml), edit it, then '}nnfpga compile "
          f"{shlex.quote(args.model)} --config {config_file} -o fw",
          file=sys.stdout if args.output else sys.stderr)
    return 0


def check_new_file(path: Path, flag: str) -> None:
    """Before any work: ``path`` can be created (its folder exists; it is not a folder, nor a file)."""
    if path.is_dir():
        raise UserError(f"{path}: {flag} names a folder; give the file to write, e.g. {path / 'nnfpga.yml'}")
    if path.exists():
        raise UserError(f"{path}: exists; nnfpga config does not overwrite files (give a new name for {flag})")
    if not path.parent.is_dir():
        raise UserError(f"{path}: the folder {path.parent} does not exist; create it first or choose another "
                        f"path for {flag}")
