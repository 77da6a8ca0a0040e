"""Optimised firmware end to end: pruning and a DSP budget, measured in the report that
`nnfpga compile` writes and checked bit for bit in RTL simulation (Verilator) against
the golden emulator (issue 7, "Done when")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnfpga.compiler.cli import main
from tests.conftest import MODELS, needs_verilator

FLOAT = MODELS / "float_mlp.h5"
N_SAMPLES = 2000


def _events(n: int, seed: int) -> np.ndarray:
    """The toy inputs float_mlp was trained on (x / 4), a quarter of them four times
    wider so that the input type's saturation is exercised too."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    x = (means[rng.integers(0, 5, n)] + rng.normal(0, 1.0, (n, 16))) / 4
    x[: n // 4] *= 4
    return x.astype(np.float32)


def _compile(tmp_path, name: str, *args: str) -> dict:
    out = tmp_path / name
    assert main(["compile", str(FLOAT), "--target", "xcvu9p", "--clock", "240MHz", "-o", str(out), *args]) == 0
    return json.loads((out / "report.json").read_text())


def _verilator(tmp_path, name: str) -> dict:
    np.save(tmp_path / "x.npy", _events(N_SAMPLES, seed=11))
    assert main(["verify", str(tmp_path / name), "--input", str(tmp_path / "x.npy"), "--sim", "verilator"]) == 0
    summary = json.loads((tmp_path / name / "verify.json").read_text())
    assert summary["bit_exact"] and summary["samples"] == N_SAMPLES
    result = summary["results"]["verilator"]
    assert result["samples"] == N_SAMPLES and result["mismatches"] == 0 and result["mismatched_values"] == 0
    return summary


@needs_verilator
def test_pruning_half_the_weights_cuts_dsps_and_verifies_bit_exactly(tmp_path):
    dense = _compile(tmp_path, "dense")
    (tmp_path / "prune.yml").write_text("pruning:\n  sparsity: 0.5\n")
    pruned = _compile(tmp_path, "pruned", "--config", str(tmp_path / "prune.yml"))
    # half of every layer's weights are zero, and nothing else changed: reuse 1 everywhere
    layers = pruned["optimisation"]["pruning"]["layers"]
    assert {x["layer"] for x in layers} == {"hidden1", "hidden2", "score"}
    assert all(x["zero_after"] == x["weights"] // 2 for x in layers)
    assert sum(x["zero_after"] for x in layers) == sum(x["weights"] for x in layers) // 2
    assert all(x["reuse_factor"] == 1 for r in (dense, pruned) for x in r["layers"] if x["op"] == "Dense")
    before, after = dense["resources"]["estimate"]["dsp"], pruned["resources"]["estimate"]["dsp"]
    reduction = 1 - after / before
    print(f"DSP {before} -> {after} ({reduction:.1%} fewer) with 50% of the weights pruned")
    assert reduction >= 0.45, (before, after)
    summary = _verilator(tmp_path, "pruned")
    print(f"pruned firmware: Verilator bit-exact on {summary['samples']} samples")


@needs_verilator
def test_max_dsp_design_is_within_budget_and_verifies_bit_exactly(tmp_path):
    budget = 100
    unconstrained = _compile(tmp_path, "parallel")
    assert unconstrained["resources"]["estimate"]["dsp"] > budget          # the budget binds
    report = _compile(tmp_path, "budget", "--max-dsp", str(budget))
    dsp = report["resources"]["estimate"]["dsp"]
    choice = report["optimisation"]["reuse"]
    reuse = [x["reuse_factor"] for x in report["layers"] if x["op"] == "Dense"]
    print(f"--max-dsp {budget}: report DSP {dsp} (cost model {choice['dsp']}), reuse {reuse}, "
          f"II {report['ii_cycles']}, latency {report['latency']['cycles']} cycles "
          f"(fully parallel: {unconstrained['resources']['estimate']['dsp']} DSP, "
          f"{unconstrained['latency']['cycles']} cycles)")
    assert dsp <= budget and choice["dsp"] <= budget
    assert report["ii_cycles"] == max(reuse) > 1
    summary = _verilator(tmp_path, "budget")           # also checks the latency and II cycle by cycle
    print(f"budget firmware: Verilator bit-exact on {summary['samples']} samples")
