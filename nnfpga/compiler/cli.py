"""The ``nnfpga`` command line: compile, emulate, verify, report.

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
    c.add_argument("model", help="model file (.h5, .keras, .onnx, TorchScript .pt/.pth)")
    c.add_argument("--target", default="xcvu9p", help="FPGA part, short (xcvu9p) or full (xcvu9p-flga2104-2L-e)")
    c.add_argument("--clock", default="240MHz", help="clock frequency, e.g. 240MHz")
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--dump-ir", help="write the IR after each pass into this directory")

    e = sub.add_parser("emulate", help="run the golden bit-exact emulator")
    e.add_argument("outdir")
    e.add_argument("--input", required=True, help="float samples (.npy or .npz)")
    e.add_argument("--output", required=True, help="where to write the outputs (.npy)")

    v = sub.add_parser("verify", help="simulate the firmware and compare bit for bit with the golden model")
    v.add_argument("outdir")
    v.add_argument("--input", "--data", dest="input", required=True, help="float samples (.npy or .npz)")
    v.add_argument("--sim", default="verilator,ghdl,csim", help="comma-separated: verilator, ghdl, csim")

    r = sub.add_parser("report", help="print latency, II and resources")
    r.add_argument("outdir")
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


def _compile(args) -> int:
    from nnfpga.backends.report.text import print_summary
    from nnfpga.compiler.driver import compile_model
    result = compile_model(args.model, args.target, args.clock, args.output, dump_ir=args.dump_ir)
    print_summary(result.report, Path(args.output), compact=True)
    print(f"compiled {args.model} -> {args.output} in {result.seconds:.2f} s")
    return 0


def _emulate(args) -> int:
    from nnfpga.compiler.driver import emulate_firmware, load_firmware, load_samples
    load_firmware(args.outdir)  # a wrong directory is the first thing to report
    y = emulate_firmware(args.outdir, load_samples(args.input))
    out = Path(args.output)
    if out.suffix != ".npy":
        raise UserError(f"{out}: the output file must end in .npy")
    np.save(out, y)
    print(f"wrote {y.shape[0]} outputs to {out}")
    return 0


def _verify(args) -> int:
    from nnfpga.backends.report.text import print_verify
    from nnfpga.compiler.driver import load_firmware, load_samples, verify_firmware
    load_firmware(args.outdir)
    sims = [s.strip() for s in args.sim.split(",") if s.strip()]
    summary = verify_firmware(args.outdir, load_samples(args.input), sims,
                              progress=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    print_verify(summary)
    return 0 if summary["bit_exact"] else 1


def _report(args) -> int:
    from nnfpga.api import report
    from nnfpga.backends.report.text import print_summary
    print_summary(report(args.outdir), Path(args.outdir), compact=False)
    return 0


_COMMANDS = {"compile": _compile, "emulate": _emulate, "verify": _verify, "report": _report}

if __name__ == "__main__":
    sys.exit(main())
