"""RTL backend speed (prints figures; tests never time anything).

    python benchmarks/rtl_speed.py [--samples 1000000]

For the target trigger CNN of the RTL suites (9x16x1 hit map, four 3x3 valid
convolutions, flatten, Dense 10, 10, 2, 4-bit quantisers; `tests.rtl_models.trigger_cnn`)
the shipped QKeras MLP and float-trained tanh MLP at reuse 1 and 4, and the ternary MLP:

* RTL emission time (lowering to the RTL description + printing VHDL and Verilog),
* the Verilator harness build time (once per design) and its throughput in samples/s
  (simulation loop only, inputs back to back), checked bit-exact against the golden
  emulator on every sample,
* latency (cycles, and ns at 240 MHz), II and scheduled multipliers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _designs():
    from nnfpga.compiler.pipeline import build_graph
    from tests.rtl_models import set_reuse, trigger_cnn
    models = ROOT / "examples" / "models"
    for reuse in (1, 4):
        yield f"trigger_cnn (9x16) R={reuse}", trigger_cnn(reuse=reuse)
        yield f"qmlp 16-64-32-32-5 R={reuse}", set_reuse(build_graph(models / "qmlp.h5"), reuse)
    yield "ternary_mlp R=1", build_graph(models / "ternary_mlp.h5")
    for reuse in (1, 4):
        yield f"float_mlp (tanh) R={reuse}", set_reuse(build_graph(models / "float_mlp.h5"), reuse)


def main() -> None:
    from nnfpga.backends.rtl import write_rtl
    from nnfpga.ir.emulator import run_raw
    from nnfpga.ir.emulator import quantize_input
    from nnfpga.sim.verilator import run_verilator
    from tests.irmodels import random_inputs

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    args = p.parse_args()
    streams = max(1, min(os.cpu_count() or 1, 4))
    print(f"samples/s: one model instance, and {streams} instances in parallel threads (one per core; "
          "what run_verilator does for large batches)")
    print(f"{'design':28s} {'emit s':>7s} {'build s':>8s} {'samples/s':>12s} {f'x{streams} s/s':>12s} {'latency':>8s} "
          f"{'ns@240':>7s} {'II':>3s} {'mults':>6s}  bit-exact")
    for name, graph in _designs():
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            info = write_rtl(graph, tmp)
            emit = time.perf_counter() - t0
            x = quantize_input(graph, random_inputs(graph, args.samples, seed=7)).astype(np.int64)
            stats: dict = {}
            y = run_verilator(tmp, x, stats=stats, streams=1)
            par: dict = {}
            y2 = run_verilator(tmp, x, stats=par, streams=streams)
            want = run_raw(graph, x)
            exact = bool(np.array_equal(y, want) and np.array_equal(y2, want))
            mults = info["multipliers"]
            print(f"{name:28s} {emit:7.2f} {stats['build_seconds']:8.1f} {stats['samples_per_second']:12,.0f} "
                  f"{par['samples_per_second']:12,.0f} "
                  f"{info['latency_cycles']:8d} {info['latency_cycles'] * 1000 / 240:7.1f} {info['ii_cycles']:3d} "
                  f"{mults:6d}  {exact} ({len(x):,} samples)")


if __name__ == "__main__":
    main()
