"""``nnfpga verify OUTDIR --input X``: simulate the firmware and compare it bit for bit
with the golden emulator (exit code 1 on a mismatch)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    v = sub.add_parser("verify", help="simulate the firmware and compare bit for bit with the golden model")
    v.add_argument("outdir")
    v.add_argument("--input", "--data", dest="input", required=True, help="float samples (.npy or .npz)")
    v.add_argument("--sim", default="verilator,ghdl,csim", help="comma-separated: verilator, ghdl, csim")


def run(args: argparse.Namespace) -> int:
    from nnfpga.backends.report.text import print_verify
    from nnfpga.compiler.driver import check_simulators, load_firmware, verify_firmware
    from nnfpga.core.samples import load_bank, load_samples
    load_firmware(args.outdir)
    sims = check_simulators([s.strip() for s in args.sim.split(",") if s.strip()])
    summary = verify_firmware(args.outdir, load_samples(args.input), sims,
                              progress=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True),
                              bank=load_bank(args.input), source=args.input)
    print_verify(summary)
    return 0 if summary["bit_exact"] else 1
