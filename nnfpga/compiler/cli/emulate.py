"""``nnfpga emulate OUTDIR --input X --output Y.npy``: run the golden bit-exact emulator
of a compiled firmware tree on float samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnfpga.core.errors import UserError


def add_parser(sub) -> None:
    e = sub.add_parser("emulate", help="run the golden bit-exact emulator")
    e.add_argument("outdir")
    e.add_argument("--input", required=True, help="float samples (.npy or .npz)")
    e.add_argument("--output", required=True, help="where to write the outputs (.npy)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nnfpga.compiler.driver import emulate_firmware, load_firmware
    from nnfpga.core.samples import load_bank, load_samples
    load_firmware(args.outdir)  # a wrong directory is the first thing to report
    y = emulate_firmware(args.outdir, load_samples(args.input), load_bank(args.input))
    out = Path(args.output)
    if out.suffix != ".npy":
        raise UserError(f"{out}: the output file must end in .npy")
    np.save(out, y)
    print(f"wrote {y.shape[0]} outputs to {out}")
    return 0
