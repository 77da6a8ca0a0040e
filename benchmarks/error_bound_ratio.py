"""The guaranteed error bound (report.json ``accuracy``) against the largest error seen
on 100,000 inputs drawn uniformly from the input type's range (prints figures; the
tests in tests/test_error_bound.py check soundness and the ratio).

    python benchmarks/error_bound_ratio.py

For float_mlp.h5, float_mlp.keras and a float 16-64-32-32-5 ReLU MLP (tf_keras, Glorot
weights, seed 21, as in the tests): the bound, the observed maximum, their ratio and
the time the bound pass took.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
sys.path.insert(0, str(ROOT))

N_SAMPLES = 100_000


def mlp_16_64_32_32_5(folder: Path) -> Path:
    """The float 16-64-32-32-5 ReLU MLP of the issue (same construction as the tests)."""
    import tf_keras as keras
    keras.utils.set_random_seed(21)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(5)])
    path = folder / "mlp_16_64_32_32_5.h5"
    model.save(path)
    return path


def measure(path: Path) -> tuple[float, float, float]:
    """(bound, observed maximum, seconds of the bound pass)."""
    from nnfpga.compiler.float_reference import float_forward
    from nnfpga.compiler.passes.error_bound import error_bound
    from nnfpga.compiler.pipeline import build_graph
    from nnfpga.ir.emulator import emulate
    graph = build_graph(path)
    t0 = time.perf_counter()
    bound = error_bound(graph)
    seconds = time.perf_counter() - t0
    t = graph.input.info.type
    x = np.random.default_rng(0).uniform(t.min_value, t.max_value, (N_SAMPLES, *graph.input.info.shape))
    observed = np.abs(emulate(graph, x) - float_forward(graph, x)).max()
    return float(bound.max()), float(observed), seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        models = [MODELS / "float_mlp.h5", MODELS / "float_mlp.keras", mlp_16_64_32_32_5(Path(tmp))]
        print(f"{'model':<24} {'bound':>10} {'observed':>10} {'ratio':>7} {'pass s':>7}")
        for path in models:
            bound, observed, seconds = measure(path)
            print(f"{path.name:<24} {bound:>10.4g} {observed:>10.4g} {bound / observed:>7.2f} {seconds:>7.2f}")


if __name__ == "__main__":
    main()
