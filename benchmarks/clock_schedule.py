"""Latency and the analytic Fmax estimate of every example and benchmark model at 240,
320 and 400 MHz (prints a Markdown table; tests/test_clock_schedule.py checks that 240 MHz
gives fewer cycles than 400 MHz and that every estimate meets its clock).

    python benchmarks/clock_schedule.py

Each model is compiled for xcvu9p with the default ``--pipeline auto``; the figures are
``report.json``'s ``latency.cycles``, ``latency.ns`` and ``timing.estimate.fmax_mhz`` (the
whole netlist's critical path by the delay model of `nnfpga.backends.rtl.timing`).
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLOCKS = ("240MHz", "320MHz", "400MHz")


def models() -> list[str]:
    ringer = ROOT / "benchmarks/electron_ringer/models"
    found = (glob.glob(str(ROOT / "examples/models/*.h5")) + glob.glob(str(ROOT / "benchmarks/muon_trigger/models/*.h5"))
             + [str(ringer / "float/et0_eta0.h5"), str(ringer / "qkeras/et0_eta0.h5")])   # one MLP of each ensemble
    return sorted(found)


def main() -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from nnfpga.compiler.driver import compile_model
    print("| model | " + " | ".join(f"{c}: cycles (ns), Fmax est." for c in CLOCKS) + " |")
    print("|---|" + "---|" * len(CLOCKS))
    with tempfile.TemporaryDirectory() as tmp:
        for path in models():
            cells = []
            for clock in CLOCKS:
                out = Path(tmp) / clock
                compile_model(path, clock=clock, outdir=out)
                r = json.loads((out / "report.json").read_text())
                fmax = r["timing"]["estimate"]["fmax_mhz"]
                cells.append(f"{r['latency']['cycles']} ({r['latency']['ns']:g}), {fmax:g} MHz")
            print(f"| {Path(path).relative_to(ROOT)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
