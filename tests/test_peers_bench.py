"""The peer benchmark's own logic that runs without .venv-peers: the config that turns
QKeras's half-to-even quantisers into da4ml's round-half-up, and the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import nnfpga
from benchmarks.peers.bench import rnd_config, write_table

QMLP = Path(__file__).resolve().parents[1] / "examples" / "models" / "qmlp.h5"


def _round_half_up_forward(ir: dict, x: np.ndarray) -> np.ndarray:
    """qmlp's function written independently, every RND_CONV output rounded half up."""
    def deq(q):
        return np.asarray(q["raw"], dtype=np.float64).reshape(q["shape"]) * 2.0 ** -q["frac"]

    def requant(v, t):
        f = t["width"] - t["integer"]
        raw = np.floor(v * 2.0 ** f + 0.5) if t["rounding"] in ("RND", "RND_CONV") else np.floor(v * 2.0 ** f)
        lo = -2 ** (t["width"] - 1) if t["signed"] else 0
        hi = 2 ** (t["width"] - 1) - 1 if t["signed"] else 2 ** t["width"] - 1
        return np.clip(raw, lo, hi) * 2.0 ** -f

    v = x
    for n in ir["nodes"][1:]:
        if n["op"] == "Dense":
            v = v @ deq(n["kernel_q"]) + deq(n["bias_q"])
        else:
            assert n["op"] == "Activation" and n["function"] == "relu"
            v = requant(np.maximum(v, 0), n["out_type"])
    return v


def test_rnd_config_gives_round_half_up_everywhere(tmp_path):
    nnfpga.compile(str(QMLP), target="xcvu9p", clock="320MHz", outdir=str(tmp_path / "fw"))
    ir = json.loads((tmp_path / "fw" / "ir.json").read_text())
    cfg = rnd_config(ir, tmp_path / "rnd.yml")
    nnfpga.compile(str(QMLP), target="xcvu9p", clock="320MHz", outdir=str(tmp_path / "rnd"), config=str(cfg))
    rnd_ir = json.loads((tmp_path / "rnd" / "ir.json").read_text())
    roundings = {n["name"]: n["out_type"]["rounding"] for n in rnd_ir["nodes"]
                 if n["op"] == "Activation"}
    assert roundings and set(roundings.values()) == {"RND"}

    # inputs on qmlp's input grid (fixed<8,4>), many of them landing on rounding ties
    x = np.random.default_rng(3).integers(-128, 128, (3000, 16)) / 16.0
    want = _round_half_up_forward(rnd_ir, x)
    got = nnfpga.emulate(str(tmp_path / "rnd"), x).reshape(want.shape)
    assert np.array_equal(got, want)
    # and the change matters: the half-to-even design differs on some events
    even = nnfpga.emulate(str(tmp_path / "fw"), x).reshape(want.shape)
    assert np.any(even != want)


def test_table_has_one_row_per_design_and_well_formed_cells(tmp_path):
    base = {"network": "qmlp", "latency_cycles": 8, "compile_seconds": 1.5, "own_check_ok": True,
            "own_check": "Verilator RTL vs golden emulator: 0/10 events differ",
            "vs_source": {"mismatched_events": 0, "events": 10, "max_abs_diff": 0.0},
            "synth": {"lut": 1234, "ff": 56, "dsp": 0, "carry4": 7, "fmax_mhz": 400.0}}
    recs = [base | {"tool": "nnfpga", "clock_mhz": 320.0},
            base | {"tool": "da4ml", "clock_mhz": 320.0, "function": "RND", "own_check_ok": False},
            base | {"tool": "hls4ml", "clock_mhz": None, "latency_cycles": None, "synth": None,
                    "csim_events_per_second": 1000}]
    out = tmp_path / "t.md"
    write_table(recs, out, "test")
    rows = [line for line in out.read_text().splitlines() if line.startswith("| qmlp")]
    assert len(rows) == 3
    assert len({row.count("|") for row in rows}) == 1  # no cell breaks the columns
    assert "| 8 | 25 | 1,234 |" in rows[0]  # 8 cycles at 320 MHz = 25 ns; LUTs
    assert "FAILED" in rows[1]
    assert "n/a (needs Vitis HLS)" in rows[2]
