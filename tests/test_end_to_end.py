"""End to end through the command line: a shipped QKeras model is compiled, its golden
model equals QKeras, and Verilator, GHDL and the HLS C-sim all match the golden model
bit for bit on 10,000 samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnfpga.compiler.cli import main
from tests.conftest import MODELS

N_SAMPLES = 10_000


def _events(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    return (means[rng.integers(0, 5, n)] + rng.normal(0, 1.5, (n, 16))).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["qmlp.h5", "ternary_mlp.h5"])
def test_qkeras_model_verifies_bit_exactly_everywhere(model, tmp_path):
    from qkeras.utils import load_qmodel

    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / model), "--target", "xcvu9p", "--clock", "240MHz", "-o", str(out)]) == 0
    x = _events(N_SAMPLES, seed=42)
    np.savez(tmp_path / "events.npz", x=x)

    # the golden model (as the CLI computes it) equals QKeras predict
    assert main(["emulate", str(out), "--input", str(tmp_path / "events.npz"), "--output", str(tmp_path / "y.npy")]) == 0
    reference = load_qmodel(str(MODELS / model), compile=False).predict(x, batch_size=4096, verbose=0)
    assert np.array_equal(np.load(tmp_path / "y.npy"), reference)

    # every simulator equals the golden model
    assert main(["verify", str(out), "--data", str(tmp_path / "events.npz"), "--sim", "verilator,ghdl,csim"]) == 0
    summary = json.loads((out / "verify.json").read_text())
    assert summary["samples"] == N_SAMPLES and summary["bit_exact"]
    for sim in ("verilator", "ghdl", "csim"):
        assert summary["results"][sim]["mismatches"] == 0
        assert summary["results"][sim]["samples"] == N_SAMPLES
