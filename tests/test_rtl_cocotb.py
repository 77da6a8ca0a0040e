"""cocotb benches (`nnfpga.sim.cocotb_bench`, run with cocotb's Python runner): out_valid
exactly at the reported latency, and the golden outputs, for samples every II cycles
and with random gaps, at reuse 1 and 4; Verilog under Icarus (and Verilator in the slow
suite), VHDL under GHDL."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from nnfpga.backends.rtl import write_rtl
from nnfpga.ir.emulator import run_raw
from tests.rtl_models import set_reuse, softmax_mlp
from tests.conftest import have
from tests.test_rtl import inputs, model

def _require(simulator: str) -> None:
    present = {"icarus": shutil.which("iverilog") is not None and shutil.which("vvp") is not None,
               "ghdl": have("ghdl"), "verilator": have("verilator")}[simulator]
    assert present, f"{simulator} is not installed: run `make setup` (scripts/setup.sh)"


def _case(reuse: int, softmax: bool):
    g = softmax_mlp(reuse=reuse) if softmax else set_reuse(model([8, 12, 6, 4], "fixed", "relu", 5, dense=True),
                                                          reuse)
    x = inputs(g, 120, seed=reuse)
    gaps = np.random.default_rng(reuse).integers(0, 4, len(x))
    gaps[:40] = 0  # first back to back (every II cycles), then with gaps
    return g, x, gaps


def _run(tmp_path, simulator, reuse, softmax):
    from nnfpga.sim.cocotb_run import run_cocotb
    g, x, gaps = _case(reuse, softmax)
    info = write_rtl(g, tmp_path)
    assert info["ii_cycles"] == reuse
    res = run_cocotb(tmp_path, x, run_raw(g, x), simulator=simulator, gaps=gaps)
    assert len(res["outputs"]) == len(x) and res["n_errors"] == 0
    assert res["cycles"] >= reuse * len(x) + info["latency_cycles"]


@pytest.mark.parametrize("simulator", ["icarus", "ghdl"])
@pytest.mark.parametrize("reuse", [1, 4])
@pytest.mark.parametrize("softmax", [False, True])
def test_cocotb_latency_and_outputs(tmp_path, simulator, reuse, softmax):
    _require(simulator)
    _run(tmp_path, simulator, reuse, softmax)


@pytest.mark.slow
@pytest.mark.parametrize("reuse", [1, 4])
def test_cocotb_verilator(tmp_path, reuse):
    _require("verilator")
    _run(tmp_path, "verilator", reuse, False)


@pytest.mark.parametrize("simulator", ["icarus", "ghdl"])
@pytest.mark.parametrize("reuse", [1, 4])
def test_cocotb_reset_in_the_middle_of_the_stream(tmp_path, simulator, reuse):
    """A reset clears the samples in flight (their out_valid never comes), and the samples
    after it come out at the latency with the right values, even when the first follows
    the reset sooner than II cycles after the last sample before it."""
    from nnfpga.sim.cocotb_run import run_cocotb
    _require(simulator)
    g, x, gaps = _case(reuse, False)
    info = write_rtl(g, tmp_path)
    latency = info["latency_cycles"]
    resets = {50: (2, 1), 80: (1, 3), 100: (latency + 4, 2)}
    res = run_cocotb(tmp_path, x, run_raw(g, x), simulator=simulator, gaps=gaps, resets=resets)
    lost = set(res["lost"])
    assert {49, 79} <= lost and 99 not in lost and not lost & {50, 80, 100}
    want = np.delete(run_raw(g, x), sorted(lost), axis=0)
    assert len(res["outputs"]) == len(want) == len(x) - len(lost) and res["n_errors"] == 0


def test_cocotb_bench_catches_a_wrong_latency(tmp_path):
    """The bench fails when rtl.json claims another latency than the RTL has."""
    import json

    from nnfpga.sim.cocotb_run import run_cocotb
    from nnfpga.sim.errors import SimulationError
    _require("icarus")
    g, x, gaps = _case(4, False)
    info = write_rtl(g, tmp_path)
    info["latency_cycles"] += 1
    (tmp_path / "rtl.json").write_text(json.dumps(info))
    with pytest.raises(SimulationError, match="out_valid is 1, expected 0"):
        run_cocotb(tmp_path, x[:20], run_raw(g, x[:20]), simulator="icarus", gaps=gaps[:20])
