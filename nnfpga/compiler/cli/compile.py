"""``nnfpga compile MODEL... -o OUTDIR``: compile a model (or several as banks) into a
firmware tree and print its summary."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from nnfpga.compiler.cli.options import add_optimisation_args, clock, clock_note, count, optimisation_kwargs, part
from nnfpga.core.errors import UserError


def add_parser(sub) -> None:
    c = sub.add_parser("compile", help="compile a model into a firmware tree")
    c.add_argument("model", nargs="+",
                   help="model file (.h5, .keras, .onnx, TorchScript .pt/.pth, Keras .json with --weights); several models with the "
                        "same layers make one banked ensemble (model k = bank k, selected per sample)")
    c.add_argument("--weights", metavar="FILE",
                   help="weights (.h5, from model.save_weights) of a Keras .json architecture file given as MODEL")
    c.add_argument("--target", default="xcvu9p", type=part, help="FPGA part, short (xcvu9p) or full (xcvu9p-flga2104-2L-e)")
    c.add_argument("--clock", default="240MHz", type=clock,
                   help="clock frequency, e.g. 240MHz, 0.24GHz or 4.1667ns (a bare number is MHz)")
    c.add_argument("--pipeline", default="auto",
                   help="where the RTL's pipeline registers go: auto (default: from the clock and the part's "
                        "delays, so a lower clock gives fewer cycles), levels=N (a register every N adder-tree "
                        "levels, 2 after each multiplier) or levels=N,mult=M")
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--dump-ir", help="write the IR after each pass into this directory")
    c.add_argument("--reuse", type=count, help="reuse factor of every layer (multiplications per DSP; "
                                             "per-layer config entries override it)")
    c.add_argument("--name", help="name of the core: the top entity/module, prefix of its other design "
                                  "units and files (default: the model's name)")
    c.add_argument("--library", help="VHDL library of the core (default: nnfpga_<name>)")
    c.add_argument("--axi-stream", action="store_true",
                   help="also write an AXI4-Stream wrapper with back-pressure (<name>_axis)")
    c.add_argument("--html", action="store_true",
                   help="also write report.html with plots now (otherwise nnfpga report writes it)")
    c.add_argument("--bunch-crossing", action="store_true",
                   help="also write a bunch-crossing wrapper: the input frame arrives over clock/40MHz "
                        "words per 25 ns crossing (<name>_bx)")
    c.add_argument("--trust-model-code", action="store_true",
                   help="allow running the code inside a TorchScript .pt/.pth model file (refused otherwise)")
    c.add_argument("--max-multiplications", type=int, metavar="N",
                   help="refuse a design with more multiplications (or weights, or values in one tensor) "
                        "than N; default 65536 (see nnfpga/compiler/size_guard.py)")
    c.add_argument("--data", metavar="FILE",
                   help="samples (.npy, or .npz with x, optional 0/1 or class labels y, and bank indices "
                        "bank for a banked ensemble): run the golden fixed-point model and the source framework "
                        "(Keras, onnxruntime, PyTorch) on them and put the comparison into the report")
    add_optimisation_args(c)


def run(args: argparse.Namespace) -> int:
    import warnings

    from nnfpga.backends.report.text import print_summary
    from nnfpga.compiler.adjustments import AdjustmentWarning, adjustment_message, optimisation_lines
    from nnfpga.compiler.driver import compile_model
    from nnfpga.compiler.frontends.pytorch import trusting_model_code
    clock_note(args.clock, "compile")
    data = None
    if args.data is not None:  # before the compile: a bad file fails at once
        from nnfpga.compiler.data_accuracy import load_data
        data = load_data(args.data)
    with warnings.catch_warnings(), trusting_model_code(args.trust_model_code):
        warnings.simplefilter("ignore", AdjustmentWarning)   # printed below, once each
        model = args.model[0] if len(args.model) == 1 else args.model
        if args.weights is not None and len(args.model) != 1:
            raise UserError("--weights goes with one Keras .json architecture file, not with several models")
        if len(args.model) == 1:
            from nnfpga.compiler.frontends.keras import KerasJson, with_weights
            model = with_weights(model, args.weights)
            if args.weights is None and isinstance(model, KerasJson):
                print(f"note: the weights of {model.architecture} are read from {model.weights} (the file beside it "
                      "with the same name; --weights FILE chooses another)", file=sys.stderr)
        result = compile_model(model, args.target, args.clock, args.output, dump_ir=args.dump_ir,
                               reuse=args.reuse, name=args.name, library=args.library,
                               axi_stream=args.axi_stream, bunch_crossing=args.bunch_crossing, html=args.html,
                               max_multiplications=args.max_multiplications, data=data,
                               pipeline=args.pipeline, **optimisation_kwargs(args))
    for entry in result.adjustments:
        print(f"nnfpga compile: warning: {adjustment_message(entry)}", file=sys.stderr)
    print_summary(result.report, Path(args.output), compact=True)
    for line in optimisation_lines(result.report.get("optimisation", {})):
        print(line)
    print_data_accuracy(result.report, "compile")
    what = args.model[0] if len(args.model) == 1 else f"{len(args.model)} models as banks ({', '.join(args.model)})"
    print(f"compiled {what} -> {args.output} in {result.seconds:.2f} s")
    print(f"wrote {written(Path(args.output))}")
    out, samples = shlex.quote(args.output), shlex.quote(getattr(args, "calibration", None) or "x.npy")
    print(f"next: nnfpga report {out} --synth (Yosys resources and timing), "
          f"nnfpga verify {out} --input {samples} (simulate, compare bit by bit)")
    return 0


def written(outdir: Path) -> str:
    """``fw/: hls/, report.json, ...``: what a compile left in its output directory (read
    at its normalised path, as the compile wrote it: ``a/../fw`` needs no folder ``a``)."""
    import os
    where = Path(os.path.abspath(outdir))
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in where.iterdir() if not p.name.startswith("."))
    return f"{outdir}/: {', '.join(entries)}"


def print_data_accuracy(report: dict, verb: str) -> None:
    """The ``--data`` figures and, when inputs saturate, a warning naming them."""
    from nnfpga.compiler.data_accuracy import saturation_warning, summary_line
    section = report.get("data_accuracy")
    if section is None:
        return
    warning = saturation_warning(section)
    if warning:
        print(f"nnfpga {verb}: warning: {warning}", file=sys.stderr)
    print(f"accuracy {summary_line(section)}")
