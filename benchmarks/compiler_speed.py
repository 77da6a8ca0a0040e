"""Compiler and golden-emulator speed (prints figures; tests never time anything).

    python benchmarks/compiler_speed.py

* compile time (frontend, passes, all backends) of the shipped models, in a fresh
  process each, and whether TensorFlow got imported; and of a 10k-parameter dense IR
  model (64-128-16-5, 6-bit weights, no zero weights: the backends only).  Each figure
  is the best of ``RUNS`` fresh processes (timings on a shared machine vary by tens of
  percent from run to run), with Python's byte-code cache on as in an installed package:
  ``PYTHONDONTWRITEBYTECODE`` (set in some environments) would add Python's own
  compilation of every nnfpga module, about 0.2 s, to each compile;
* golden emulator throughput for the 16-64-32-32-5 QKeras MLP with 6-bit weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
RUNS = 3

_COMPILE = """
import sys, time, json
t0 = time.perf_counter()
from nnfpga.compiler.driver import compile_model
t1 = time.perf_counter()
model = sys.argv[1]
if model.startswith("ir:"):  # a random dense IR model "ir:64-128-16-5", built before the clock starts
    sys.path.insert(0, ".")
    from tests.irmodels import random_mlp
    model = random_mlp([int(v) for v in model[3:].split("-")], seed=0, sparsity=0.0, name="dense_ir")
    t1 = time.perf_counter()
r = compile_model(model, "xcvu9p", "240MHz", sys.argv[2])
t2 = time.perf_counter()
params = sum(n.kernel_q.raw.size + (n.bias_q.raw.size if n.bias_q is not None else 0)
             for n in r.graph.nodes if hasattr(n, "kernel_q") and n.kernel_q is not None)
print(json.dumps({"import_s": t1 - t0, "compile_s": t2 - t1, "params": params,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def compile_times(runs: int = RUNS) -> None:
    print(f"compile time (best of {runs} fresh processes; compile_s excludes the Python import of nnfpga)")
    with tempfile.TemporaryDirectory() as cache:
        # the byte-code cache in a directory of its own: the source tree stays clean
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for model in ("qmlp.h5", "ternary_mlp.h5", "float_mlp.h5", "float_mlp.keras", "ir:64-128-16-5"):
            _compile_time(model, runs, env)


def _compile_time(model: str, runs: int, env: dict) -> None:
    import json
    src = model if model.startswith("ir:") else str(MODELS / model)
    rs = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", _COMPILE, src, f"{tmp}/fw"],
                                 check=True, capture_output=True, text=True, cwd=ROOT, env=env)
        rs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r = min(rs, key=lambda x: x["compile_s"])
    every = ", ".join(f"{x['compile_s']:.2f}" for x in rs)
    print(f"  {model:18s} {r['params']:6d} parameters  compile {r['compile_s']:.3f} s  "
          f"(runs: {every}; import {r['import_s']:.2f} s)  "
          f"tensorflow imported: {any(x['tensorflow_imported'] for x in rs)}")


def emulator_throughput(n: int = 1_000_000, batch: int = 100_000) -> None:
    from nnfpga.compiler.pipeline import build_graph
    from nnfpga.ir.emulator import emulate
    graph = build_graph(MODELS / "qmlp.h5")
    x = np.random.default_rng(0).normal(0, 1.5, (n, 16)).astype(np.float32)
    emulate(graph, x[:batch])  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, n, batch):
            emulate(graph, x[i:i + batch])
        best = max(best, n / (time.perf_counter() - start))
    print(f"golden emulator, 16-64-32-32-5 MLP, 6-bit weights: {best:,.0f} samples/s "
          f"(best of 3 runs over {n:,} samples, batches of {batch:,})")


if __name__ == "__main__":
    compile_times()
    emulator_throughput()
