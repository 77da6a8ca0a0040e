"""``nnfpga emulate OUTDIR --input X --output Y.npy``: run the golden bit-exact emulator
of a compiled firmware tree on float samples."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from nnfpga.core.errors import UserError


def add_parser(sub) -> None:
    e = sub.add_parser("emulate", help="run the golden bit-exact emulator")
    e.add_argument("outdir")
    e.add_argument("--input", required=True, help="float samples (.npy or .npz)")
    e.add_argument("--output", required=True, help="where to write the outputs (.npy; an existing file is replaced)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nnfpga.compiler.driver import emulate_firmware, load_firmware
    from nnfpga.core.samples import load_bank, load_samples
    load_firmware(args.outdir)  # a wrong directory is the first thing to report
    out = Path(args.output)
    _check_output(out)
    y = emulate_firmware(args.outdir, load_samples(args.input), load_bank(args.input), source=args.input)
    np.save(out, y)
    print(f"wrote {y.shape[0]} outputs to {out}")
    # the emulator is the golden model: the firmware's simulation must match it bit by bit
    print(f"next: nnfpga verify {shlex.quote(args.outdir)} --input {shlex.quote(args.input)} "
          "(simulate the firmware on the same samples; it must match these outputs bit by bit)")
    return 0


def _check_output(out: Path) -> None:
    """Before emulating: ``--output`` is a .npy file that can be written (an existing file
    is replaced, as documented)."""
    if out.is_dir():
        raise UserError(f"{out}: --output names a folder; give the .npy file to write, e.g. {out / 'y.npy'}")
    if out.suffix != ".npy":
        raise UserError(f"{out}: the --output file must end in .npy")
    if not out.parent.is_dir():
        raise UserError(f"{out}: the folder {out.parent} of --output does not exist; create it first")
