"""The ``nnfpga`` command line: compile, emulate, verify, report, config.

User mistakes (missing or corrupt files, unsupported layers, unknown parts) print one
paragraph and exit with code 2; a failed verification exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nnfpga.compiler.errors import UserError

EXIT_USER_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnfpga", description="Compile neural networks into bit-exact trigger firmware.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a model into a firmware tree")
    c.add_argument("model", nargs="+",
                   help="model file (.h5, .keras, .onnx, TorchScript .pt/.pth); several models with the "
                        "same layers make one banked ensemble (model k = bank k, selected per sample)")
    c.add_argument("--target", default="xcvu9p", help="FPGA part, short (xcvu9p) or full (xcvu9p-flga2104-2L-e)")
    c.add_argument("--clock", default="240MHz", help="clock frequency, e.g. 240MHz")
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--dump-ir", help="write the IR after each pass into this directory")
    c.add_argument("--reuse", type=int, help="reuse factor of every layer (multiplications per DSP; "
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
    _optimisation_args(c)

    g = sub.add_parser("config", help="write a commented configuration file listing every layer's settings")
    g.add_argument("model", help="model file (.h5, .keras, .onnx, TorchScript .pt/.pth)")
    g.add_argument("-o", "--output", help="the file to write (default: print it); never overwritten")
    g.add_argument("--clock", default="240MHz", help="clock frequency (for --event-rate)")
    _optimisation_args(g)

    e = sub.add_parser("emulate", help="run the golden bit-exact emulator")
    e.add_argument("outdir")
    e.add_argument("--input", required=True, help="float samples (.npy or .npz)")
    e.add_argument("--output", required=True, help="where to write the outputs (.npy)")

    v = sub.add_parser("verify", help="simulate the firmware and compare bit for bit with the golden model")
    v.add_argument("outdir")
    v.add_argument("--input", "--data", dest="input", required=True, help="float samples (.npy or .npz)")
    v.add_argument("--sim", default="verilator,ghdl,csim", help="comma-separated: verilator, ghdl, csim")

    r = sub.add_parser("report", help="print latency, II, resources and timing, write report.html "
                                      "(--synth: Yosys synthesis first)")
    r.add_argument("outdir")
    r.add_argument("--synth", action="store_true",
                   help="synthesise with Yosys synth_xilinx (the Verilog, and the VHDL through GHDL) and "
                        "store the results in report.json/.md/.html")
    r.add_argument("--no-vhdl", dest="vhdl", action="store_false",
                   help="with --synth: skip the VHDL cross-check")
    r.add_argument("--timeout", type=float, help="with --synth: seconds per Yosys run (default 3600)")
    r.add_argument("--memory-gb", type=float, help="with --synth: memory limit per Yosys run (default 16)")
    r.add_argument("--jobs", type=int, default=2, help="with --synth: Yosys runs at once (default 2)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except UserError as e:
        print(f"nnfpga {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _optimisation_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--config", help="configuration file (YAML; see nnfpga config MODEL)")
    c.add_argument("--calibration", help="calibration samples (.npy, or .npz with x [and labels y]) for "
                                         "post-training quantisation and --trim")
    c.add_argument("--labels", help="labels of the calibration samples (.npy), for the auc metric")
    c.add_argument("--max-dsp", type=int, help="DSP budget: choose reuse factors with the least latency")
    c.add_argument("--ii", type=int, help="initiation interval limit (cycles): choose reuse factors")
    c.add_argument("--event-rate", help="event rate to sustain, e.g. 40MHz (with --clock: an II limit)")
    c.add_argument("--trim", action="store_true", default=None,
                   help="narrow compiler-chosen types to the calibration data's range (saturating)")


def _optimisation_kwargs(args) -> dict:
    from nnfpga.compiler.config import load_calibration
    x = y = None
    if args.calibration:
        x, y = load_calibration(args.calibration, args.labels)
    elif args.labels:
        raise UserError("--labels needs --calibration")
    return {"config": args.config, "calibration": x, "labels": y, "max_dsp": args.max_dsp, "ii": args.ii,
            "event_rate": args.event_rate, "trim": args.trim}


def _compile(args) -> int:
    import warnings

    from nnfpga.backends.report.text import print_summary
    from nnfpga.compiler.adjustments import AdjustmentWarning, adjustment_message, optimisation_lines
    from nnfpga.compiler.driver import compile_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdjustmentWarning)   # printed below, once each
        model = args.model[0] if len(args.model) == 1 else args.model
        result = compile_model(model, args.target, args.clock, args.output, dump_ir=args.dump_ir,
                               reuse=args.reuse, name=args.name, library=args.library,
                               axi_stream=args.axi_stream, bunch_crossing=args.bunch_crossing, html=args.html,
                               **_optimisation_kwargs(args))
    for entry in result.adjustments:
        print(f"nnfpga compile: warning: {adjustment_message(entry)}", file=sys.stderr)
    print_summary(result.report, Path(args.output), compact=True)
    for line in optimisation_lines(result.report.get("optimisation", {})):
        print(line)
    what = args.model[0] if len(args.model) == 1 else f"{len(args.model)} models as banks ({', '.join(args.model)})"
    print(f"compiled {what} -> {args.output} in {result.seconds:.2f} s")
    return 0


def _config(args) -> int:
    import warnings

    from nnfpga.api import make_config
    from nnfpga.compiler.adjustments import AdjustmentWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AdjustmentWarning)
        text = make_config(args.model, args.output, clock=args.clock, **_optimisation_kwargs(args))
    for w in caught:
        if issubclass(w.category, AdjustmentWarning):
            print(f"nnfpga config: warning: {w.message}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _emulate(args) -> int:
    from nnfpga.compiler.driver import emulate_firmware, load_bank, load_firmware, load_samples
    load_firmware(args.outdir)  # a wrong directory is the first thing to report
    y = emulate_firmware(args.outdir, load_samples(args.input), load_bank(args.input))
    out = Path(args.output)
    if out.suffix != ".npy":
        raise UserError(f"{out}: the output file must end in .npy")
    np.save(out, y)
    print(f"wrote {y.shape[0]} outputs to {out}")
    return 0


def _verify(args) -> int:
    from nnfpga.backends.report.text import print_verify
    from nnfpga.compiler.driver import load_bank, load_firmware, load_samples, verify_firmware
    load_firmware(args.outdir)
    sims = [s.strip() for s in args.sim.split(",") if s.strip()]
    summary = verify_firmware(args.outdir, load_samples(args.input), sims,
                              progress=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True),
                              bank=load_bank(args.input))
    print_verify(summary)
    return 0 if summary["bit_exact"] else 1


def _report(args) -> int:
    from nnfpga.backends.report.command import run_report
    run_report(args.outdir, synth=args.synth, vhdl=args.vhdl, timeout=args.timeout, memory_gb=args.memory_gb,
               jobs=args.jobs)
    return 0


_COMMANDS = {"compile": _compile, "emulate": _emulate, "verify": _verify, "report": _report, "config": _config}

if __name__ == "__main__":
    sys.exit(main())
