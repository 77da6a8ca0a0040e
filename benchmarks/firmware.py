"""What the physics benchmarks share: compile a model (or a banked ensemble) at the
benchmark clocks, and run its RTL (Verilator) on events beside the golden emulator.

Plain functions on top of nnfpga's API; the benchmarks decide what to compare.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PART = "xcvu9p"
CLOCKS_MHZ = (240, 320)


class Log:
    """Progress lines with the seconds since the benchmark started."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {msg}", flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def hardware_figures(report: dict, seconds: float) -> dict:
    """Latency, II, estimated resources and timing from a compile's report."""
    return {"latency_cycles": report["latency"]["cycles"], "latency_ns": report["latency"]["ns"],
            "ii_cycles": report["ii_cycles"], "resources": report["resources"]["estimate"],
            "timing": report["timing"]["estimate"], "compile_seconds": round(seconds, 2)}


def compile_at_clocks(model, build_dir: Path, name: str, reuse: int | None = None,
                      log: Log | None = None) -> tuple[dict[int, Path], dict[str, dict]]:
    """Compile ``model`` (a path, or a list of paths for a banked ensemble) for `PART` at
    every clock of `CLOCKS_MHZ`; returns the firmware directories by MHz and the hardware
    figures by clock label ("240MHz")."""
    import nnfpga
    dirs, hardware = {}, {}
    for mhz in CLOCKS_MHZ:
        dirs[mhz] = build_dir / f"{name}_{mhz}mhz"
        res = nnfpga.compile(model, target=PART, clock=f"{mhz}MHz", outdir=dirs[mhz], reuse=reuse, name=name)
        hardware[f"{mhz}MHz"] = h = hardware_figures(res.report, res.seconds)
        if log:
            log(f"{name}: compiled at {mhz} MHz in {res.seconds:.1f} s: latency {h['latency_cycles']} cycles "
                f"({h['latency_ns']} ns), II {h['ii_cycles']}, {h['resources']}, "
                f"est. Fmax {h['timing']['fmax_mhz']} MHz")
    return dirs, hardware


class RtlRunner:
    """Runs firmware ``fw_dir`` on float events: golden emulator and Verilator on the
    same quantised inputs, counting the events where they differ (bit for bit)."""

    def __init__(self, fw_dir: Path) -> None:
        from nnfpga.compiler.driver import load_firmware
        self.fw_dir = Path(fw_dir)
        self.graph = load_firmware(fw_dir)
        self.events = 0
        self.mismatches = 0
        self.seconds = 0.0
        self.build_seconds = 0.0

    def raw(self, x: np.ndarray, bank: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(golden, RTL) raw outputs, ``(n, n_outputs)`` each."""
        from nnfpga.ir.emulator import quantize_input, run_raw
        from nnfpga.sim.verilator import run_verilator
        x_raw = quantize_input(self.graph, x)
        n = len(x_raw)
        golden = run_raw(self.graph, x_raw, bank).reshape(n, -1)
        rows = x_raw.reshape(n, -1).astype(np.int64)
        if bank is not None:
            rows = np.concatenate([rows, np.asarray(bank, dtype=np.int64)[:, None]], axis=1)
        stats: dict = {}
        rtl = run_verilator(self.fw_dir, rows, stats=stats)
        self.events += n
        self.mismatches += int(np.any(rtl != golden, axis=1).sum())
        self.seconds += stats.get("run_seconds", 0.0)
        self.build_seconds = max(self.build_seconds, stats.get("build_seconds", 0.0))
        return golden, rtl

    def predict(self, x: np.ndarray, bank: np.ndarray | None = None) -> np.ndarray:
        """The RTL's outputs as real values in the model's output layout."""
        from nnfpga.ir.emulator import user_output
        _, rtl = self.raw(x, bank)
        shape = (len(rtl), *self.graph.output.info.shape)
        return user_output(self.graph, rtl.reshape(shape))

    def summary(self) -> dict:
        return {"events": self.events, "mismatches": self.mismatches,
                "verilator_seconds": round(self.seconds, 2),
                "events_per_second": round(self.events / self.seconds) if self.seconds else None}
