"""Run the wrapper benches (`nnfpga.sim.cocotb_wrappers`) on a firmware directory with
cocotb's Python runner: the Verilog under Icarus or Verilator, the VHDL under GHDL.

`run_axis_cocotb(fw_dir, x_raw, want_raw, ...)` streams the samples through the
``<top>_axis`` wrapper with random input gaps and random back-pressure;
`run_bx_cocotb(fw_dir, x_raw, want_raw, ...)` sends them as bunch-crossing frames through
``<top>_bx``.  Both need ``rtl.json`` and ``wrappers.json`` (`write_rtl`,
`write_wrappers`), raise `SimulationError` on any error the bench found, and return its
result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnfpga.backends.rtl.wrappers import read_wrappers
from nnfpga.backends.rtl.wrappers.common import core_sources
from nnfpga.backends.rtl.writer import read_summary
from nnfpga.sim.cocotb_run import packed_samples, run_bench
from nnfpga.sim.errors import SimulationError

#: The default AXI4-Stream schedule: (cycles, p_valid, p_ready), repeated in turn.  First
#: the full rate (every sample offered, the sink always ready), then the sink stalled long
#: enough to fill the FIFO, then random gaps and random back-pressure of several strengths.
AXIS_PHASES = ((300, 1.0, 1.0), (400, 1.0, 0.0), (1500, 0.7, 0.5), (600, 1.0, 0.15), (800, 0.3, 0.9),
               (200, 0.0, 0.0), (1500, 0.9, 0.7))


def _run(fw_dir: Path, info: dict, plan: dict, simulator: str, testcase: str, stimulus: dict) -> dict:
    lang = "vhdl" if simulator == "ghdl" else "verilog"
    sources = [fw_dir / f for f in core_sources(info, lang)] + [fw_dir / plan["files"][lang]]
    return run_bench(simulator, sources, plan["top"], fw_dir / "sim" / f"cocotb_{testcase}_{simulator}",
                     "nnfpga.sim.cocotb_wrappers", stimulus, f"cocotb ({simulator}, {testcase})", testcase)


def run_axis_cocotb(fw_dir: Path | str, x_raw, want_raw, simulator: str = "icarus", seed: int = 1,
                    phases=AXIS_PHASES, max_cycles: int | None = None) -> dict:
    """Stream ``x_raw`` through the AXI4-Stream wrapper; expect ``want_raw`` on ``m_axis``.

    ``phases``: (cycles, p_valid, p_ready) in turn (`AXIS_PHASES`).  Returns the bench's
    result: ``accepted`` / ``delivered`` (cycles of the input and output transfers),
    ``cycles``, ``max_outstanding`` (the most samples accepted and not yet handed out).
    """
    fw_dir = Path(fw_dir).resolve()
    info = read_summary(fw_dir)
    plan = read_wrappers(fw_dir).get("axi_stream")
    if plan is None:
        raise SimulationError(f"{fw_dir}: no AXI4-Stream wrapper in wrappers.json (write_wrappers(axi_stream=True))")
    xs, ws = packed_samples(info, x_raw, want_raw)
    rng = np.random.default_rng(seed)
    width = plan["s_axis_tdata_width"]
    junk = int.from_bytes(rng.bytes(width // 8), "little")
    if max_cycles is None:
        max_cycles = 20 * (len(xs) + 10) * plan["ii_cycles"] + 100 * plan["latency_cycles"] + 10_000
    stimulus = {"x": [str(v) for v in xs], "want": [str(v) for v in ws], "ii": plan["ii_cycles"],
                "fifo_depth": plan["fifo_depth"], "junk": str(junk), "seed": seed,
                "phases": [list(p) for p in phases], "max_cycles": max_cycles}
    return _run(fw_dir, info, plan, simulator, "axis_stream", stimulus)


def run_bx_cocotb(fw_dir: Path | str, x_raw, want_raw, simulator: str = "icarus", seed: int = 1,
                  gaps=None, aborts=None) -> dict:
    """Send ``x_raw`` as bunch-crossing frames through ``<top>_bx``; expect ``want_raw``.

    ``gaps``: per frame the empty crossings before it (default none: frames back to back);
    ``aborts``: per frame the words of a partial frame sent just before it (default none).
    Returns the bench's result: ``outputs``, ``starts`` (the cycle of each frame's
    ``bx_start``) and ``cycles``.
    """
    fw_dir = Path(fw_dir).resolve()
    info = read_summary(fw_dir)
    plan = read_wrappers(fw_dir).get("bunch_crossing")
    if plan is None:
        raise SimulationError(f"{fw_dir}: no bunch-crossing wrapper in wrappers.json "
                              "(write_wrappers(bx_clock_mhz=...))")
    xs, ws = packed_samples(info, x_raw, want_raw)
    n = len(xs)
    gaps = [0] * n if gaps is None else [int(g) for g in gaps]
    aborts = [0] * n if aborts is None else [int(a) for a in aborts]
    if len(gaps) != n or len(aborts) != n or min(gaps, default=0) < 0 or \
            any(not 0 <= a < plan["words_per_bx"] for a in aborts):
        raise ValueError("gaps: one number >= 0 per frame; aborts: one number 0 .. N-1 per frame")
    stimulus = {"words_per_bx": plan["words_per_bx"], "word_width": plan["word_width"],
                "latency": plan["latency_cycles"], "seed": seed,
                "frames": [{"x": str(a), "want": str(b), "gap": g, "abort": ab}
                           for a, b, g, ab in zip(xs, ws, gaps, aborts)]}
    return _run(fw_dir, info, plan, simulator, "bunch_crossing", stimulus)
