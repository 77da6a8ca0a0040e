"""``nnfpga verify OUTDIR --input X``: simulate the firmware and compare it bit for bit
with the golden emulator (exit code 1 on a mismatch).

Progress goes to stderr: on a terminal a live line (rich) showing the step under way and
its elapsed time, otherwise one plain line per step; the builds of the simulators
(`nnfpga.sim.build_cache`) say whether they build or reuse."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(sub) -> None:
    v = sub.add_parser("verify", help="simulate the firmware and compare bit for bit with the golden model")
    v.add_argument("outdir")
    v.add_argument("--input", "--data", dest="input", required=True, help="float samples (.npy or .npz)")
    v.add_argument("--sim", default="verilator,ghdl,csim", help="comma-separated: verilator, ghdl, csim")


class StepPrinter:
    """Prints progress: `step` starts a step that may take a while (``live``: shown with a
    spinner and its running time, then left as a line with its duration), `line` prints
    a plain line (ending the step under way)."""

    def __init__(self, stream=None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = (self.stream.isatty() if live is None else live)
        self._progress = None
        self._task = None
        self._step = ("", 0.0)

    def __enter__(self) -> "StepPrinter":
        if self.live:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=Console(file=self.stream), transient=True)
            self._progress.start()
        return self

    def step(self, msg: str) -> None:
        self._finish()
        if self._progress is None:
            print(f"  {msg}", file=self.stream, flush=True)
            return
        self._step = (msg, time.perf_counter())
        self._task = self._progress.add_task(msg, total=None)

    def line(self, msg: str) -> None:
        self._finish()
        if self._progress is None:
            print(f"  {msg}", file=self.stream, flush=True)
        else:
            self._progress.console.print(f"  {msg}", markup=False, highlight=False)

    def _finish(self) -> None:
        if self._progress is None or self._task is None:
            return
        msg, start = self._step
        self._progress.remove_task(self._task)
        self._progress.console.print(f"  {msg} ({time.perf_counter() - start:.1f} s)", markup=False,
                                     highlight=False)
        self._task = None

    def __exit__(self, *exc) -> None:
        self._finish()
        if self._progress is not None:
            self._progress.stop()


def run(args: argparse.Namespace) -> int:
    from nnfpga.backends.report.text import print_verify
    from nnfpga.compiler.driver import check_simulators, load_firmware, verify_firmware
    from nnfpga.core.samples import load_bank, load_samples
    from nnfpga.sim import build_cache
    load_firmware(args.outdir)
    sims = check_simulators([s.strip() for s in args.sim.split(",") if s.strip()])
    with StepPrinter() as printer:
        sim = {"name": ""}

        def progress(msg: str) -> None:
            name, _, rest = msg.partition(": ")
            sim["name"] = name
            if not rest.startswith("simulating "):  # each simulator says so itself, after its build
                printer.line(msg)

        with build_cache.progress(lambda msg: printer.step(f"{sim['name']}: {msg}")):
            summary = verify_firmware(args.outdir, load_samples(args.input), sims, progress=progress,
                                      bank=load_bank(args.input), source=args.input)
    print_verify(summary)
    import shlex
    from pathlib import Path
    out = shlex.quote(args.outdir)
    print(f"wrote {Path(args.outdir) / 'verify.json'} (and the Verification section of the report)")
    print(f"next: nnfpga report {out} --synth (Yosys resources and timing)" if summary["bit_exact"] else
          f"next: nnfpga emulate {out} --input {shlex.quote(args.input)} --output golden.npy (the golden "
          "outputs, to compare with the mismatching samples)")
    return 0 if summary["bit_exact"] else 1
