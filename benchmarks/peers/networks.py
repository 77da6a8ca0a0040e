"""The benchmark's networks, their test inputs and their source models' own predictions.

Every network is a saved Keras/QKeras ``.h5`` file; the 3-20-20-20-1 ReLU MLP is built
and trained here (seeded) on first use.  Test inputs are drawn from a fixed seed and put
on the network's input grid (nnfpga's input type), so every tool sees the same values
and no tool's input quantiser changes them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Network:
    name: str
    what: str
    quantised: bool               # QKeras (trained quantised) or float Keras
    path: Callable[[Path], Path]  # the model file, given the cache folder
    inputs: Callable[[np.random.Generator, int], np.ndarray]


def _fixed(rel: str) -> Callable[[Path], Path]:
    return lambda cache: ROOT / rel


def _normal(shape: tuple[int, ...], scale: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.normal(0.0, scale, (n, *shape))


def _hits(rng: np.random.Generator, n: int) -> np.ndarray:
    # RPC hit maps (9 layers x 16 strips): sparse 0/1 with a road of hits
    x = (rng.random((n, 9, 16, 1)) < 0.08).astype(np.float64)
    road = rng.integers(2, 14, n)
    for layer in range(9):
        x[np.arange(n), layer, np.clip(road + rng.integers(-1, 2, n), 0, 15), 0] = 1.0
    return x


def _mlp_3_20_20_20_1(cache: Path) -> Path:
    path = cache / "models" / "mlp_3_20_20_20_1.h5"
    if path.is_file():
        return path
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras
    tf.random.set_seed(7)
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (20000, 3))
    y = np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]
    model = keras.Sequential([keras.layers.InputLayer(input_shape=(3,), name="x")]
                             + [keras.layers.Dense(20, activation="relu", name=f"fc{i}") for i in (1, 2, 3)]
                             + [keras.layers.Dense(1, name="out")], name="mlp_3_20_20_20_1")
    model.compile("adam", "mse")
    model.fit(x, y, epochs=8, batch_size=256, verbose=0)
    # weights on a 2^-8 grid: every tool's weight type holds them exactly, so the
    # designs differ only in how they round the layer outputs
    model.set_weights([np.round(w * 256) / 256 for w in model.get_weights()])
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


NETWORKS: dict[str, Network] = {n.name: n for n in [
    Network("qmlp", "QKeras 16-64-32-32-5 (examples/models/qmlp.h5)", True,
            _fixed("examples/models/qmlp.h5"), _normal((16,), 2.0)),
    Network("mlp3x20", "float 3-20-20-20-1 ReLU MLP (built here, weights on a 2^-8 grid)", False,
            _mlp_3_20_20_20_1, lambda rng, n: rng.uniform(-1, 1, (n, 3))),
    Network("muon_cnn", "QKeras muon-trigger CNN (benchmarks/muon_trigger/models/cnn_pt10.h5)", True,
            _fixed("benchmarks/muon_trigger/models/cnn_pt10.h5"), _hits),
    Network("ringer", "QKeras ringer MLP (benchmarks/electron_ringer/models/qkeras/et0_eta0.h5)", True,
            _fixed("benchmarks/electron_ringer/models/qkeras/et0_eta0.h5"), _normal((100,), 1.0)),
]}


def on_grid(x: np.ndarray, in_type: dict) -> np.ndarray:
    """``x`` rounded and saturated to nnfpga's input type (a dict of ``ir.json``)."""
    from nnfpga.ir.fixed import FixedType
    t = FixedType(in_type["width"], in_type["integer"], in_type["signed"], in_type["rounding"],
                  in_type["overflow"])
    return t.quantize(x) * 2.0 ** -(in_type["width"] - in_type["integer"])


def load_keras(path: Path, quantised: bool):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if quantised:
        from qkeras.utils import load_qmodel
        return load_qmodel(str(path), compile=False)
    import tf_keras
    return tf_keras.models.load_model(path, compile=False)


def source_predict(path: Path, quantised: bool, x: np.ndarray) -> np.ndarray:
    model = load_keras(path, quantised)
    return np.asarray(model.predict(x, batch_size=4096, verbose=0), dtype=np.float64).reshape(len(x), -1)


def hls4ml_module():
    """hls4ml 1.3 with the two shims it needs to read (Q)Keras 2 models."""
    import tf_keras
    sys.modules["keras"] = tf_keras
    if not hasattr(np, "product"):
        np.product = np.prod
    import hls4ml
    return hls4ml
