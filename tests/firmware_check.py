"""The slow tests' common check: compile a model file, and the firmware equals the golden
model bit for bit in the simulators (and the golden model equals the framework's own
outputs when they are given)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def assert_firmware_bit_exact(model: Path, x: np.ndarray, folder: Path, framework: np.ndarray | None = None,
                              sims: tuple[str, ...] = ("verilator", "ghdl", "csim"), clock: str = "200MHz") -> dict:
    """Compile ``model`` for xcvu9p at ``clock`` into ``folder / "fw"``; with ``framework``
    (the source framework's outputs on ``x``) the emulated outputs must equal it; then
    ``nnfpga verify`` on ``x`` in ``sims``: every sample bit-exact.  Returns report.json."""
    from nnfpga.compiler.cli import main
    np.savez(folder / "x.npz", x=x)
    out = folder / "fw"
    assert main(["compile", str(model), "--target", "xcvu9p", "--clock", clock, "-o", str(out)]) == 0
    if framework is not None:
        assert main(["emulate", str(out), "--input", str(folder / "x.npz"), "--output", str(folder / "y.npy")]) == 0
        assert np.array_equal(np.load(folder / "y.npy"), framework)
    assert main(["verify", str(out), "--data", str(folder / "x.npz"), "--sim", ",".join(sims)]) == 0
    summary = json.loads((out / "verify.json").read_text())
    assert summary["bit_exact"]
    for sim in sims:
        assert summary["results"][sim]["mismatches"] == 0 and summary["results"][sim]["samples"] == len(x)
    return json.loads((out / "report.json").read_text())
