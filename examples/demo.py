"""`make demo`: compile the shipped QKeras MLP for xcvu9p at 240 MHz, verify it in
Verilator, GHDL and the HLS C-sim against the golden model, and print the report.

It runs the same commands a user types (shown as it goes).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fw-demo"


def run(*args: str) -> None:
    cmd = [sys.executable, "-m", "nnfpga", *args]
    print(f"\n$ nnfpga {shlex.join(args)}", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    rng = np.random.default_rng(2026)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    events = (means[rng.integers(0, 5, 10000)] + rng.normal(0, 1.5, (10000, 16))).astype(np.float32)
    OUT.parent.mkdir(exist_ok=True)
    data = ROOT / "fw-demo-events.npz"
    np.savez(data, x=events)
    try:
        run("compile", "examples/models/qmlp.h5", "--target", "xcvu9p", "--clock", "240MHz", "-o", "fw-demo")
        run("verify", "fw-demo", "--data", data.name)
        run("report", "fw-demo")
    except subprocess.CalledProcessError as e:
        print(f"demo failed: {shlex.join(e.cmd)} exited with {e.returncode}", file=sys.stderr)
        return 1
    finally:
        data.unlink(missing_ok=True)
    print(closing())
    return 0


def closing() -> str:
    """Where the demo's output is and what to run next."""
    folder = OUT.relative_to(ROOT)
    return (f"\ndemo done: the firmware is in {folder}/ (vhdl/, verilog/, hls/, vivado/), its report in "
            f"{folder}/report.html.\nnext:\n"
            f"  nnfpga report {folder} --synth          # Yosys: synthesised resources and timing\n"
            f"  nnfpga verify {folder} --input x.npy    # your own samples through the simulators\n"
            "  nnfpga compile MODEL.h5 --target xcvu13p --clock 320MHz -o fw   # your model")


if __name__ == "__main__":
    sys.exit(main())
