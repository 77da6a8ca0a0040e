"""Train the muon-trigger networks (QKeras, fully quantised) and save them in models/.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.muon_trigger.train [--only NAME ...]

Deterministic: data from fixed generator seeds, TensorFlow seeded with op determinism.
Every model is fully quantised (input quantiser, quantised weights and biases with
alpha=1, quantized_relu activations, linear outputs), so nnfpga's golden emulator equals
QKeras predict bit for bit.  Models (see README.md):

* ``dense_pt10`` / ``dense_pt20``: ternary dense net on the flattened 9x16 map,
  144 -> 64 -> 32 -> 1 (logit for pT > 10 / 20 GeV; fires when the logit is > 0).
* ``cnn_pt10`` / ``cnn_pt20``: the published student CNN on 9x16x1: four 3x3 valid
  convolutions with 1, 1, 6, 6 filters (-> 1x8x6 = 48), dense 10, 10, 2 (two logits;
  fires when logit[1] > logit[0]); 4-bit weights, 4-bit activations.
* ``cnn_qpt``: the same CNN with one linear output regressing t = q x 10 GeV / pT.
* ``mlp3_qpt``: the 3 -> 20 -> 20 -> 20 -> 1 ReLU MLP of the published RPC study on the
  three station deviations (generator.station_features), regressing t = q x 10 GeV / pT.

The estimated pT of a regression model is 10 GeV / |t| (t clipped to |t| >= 0.1); a
regression fires when pT_est > threshold and at least 5 of the 9 layers have a hit
(``coincidence``: the regressions are trained on muons only and say nothing about empty
or noise-only windows).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.muon_trigger import generator as gen  # noqa: E402

MODELS_DIR = HERE / "models"
TRAIN_SEED, VAL_SEED = 101, 102        # generator seeds of the training / validation sets
N_TRAIN_MUONS, N_TRAIN_NOISE = 200_000, 20_000
N_VAL_MUONS, N_VAL_NOISE = 20_000, 2_000
T_SCALE = 10.0                          # regression target t = q * T_SCALE / pT


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str            # "classifier" or "regression"
    inputs: str          # "flat" (144), "image" (9x16x1) or "features" (3)
    threshold: float | None = None   # GeV, classifiers only
    outputs: int = 1     # classifier logits: 1 (fires when > 0) or 2 (fires when [1] > [0])

    @property
    def path(self) -> Path:
        return MODELS_DIR / f"{self.name}.h5"


SPECS = [
    Spec("dense_pt10", "classifier", "flat", 10.0, 1),
    Spec("dense_pt20", "classifier", "flat", 20.0, 1),
    Spec("cnn_pt10", "classifier", "image", 10.0, 2),
    Spec("cnn_pt20", "classifier", "image", 20.0, 2),
    Spec("cnn_qpt", "regression", "image"),
    Spec("mlp3_qpt", "regression", "features"),
]


def model_inputs(spec: Spec, events: gen.MuonEvents) -> np.ndarray:
    if spec.inputs == "flat":
        return events.flat()
    if spec.inputs == "image":
        return events.images()
    return gen.station_features(events.hits)


MIN_LAYERS = 5   # coincidence for regressions: hits in at least 5 of the 9 layers of the window


def coincidence(hits: np.ndarray, min_layers: int = MIN_LAYERS) -> np.ndarray:
    """The muon-candidate condition of the regressions: at least ``min_layers`` layers of
    the window have a hit (a majority coincidence; plain logic outside the network)."""
    return (np.asarray(hits).reshape(len(hits), gen.N_LAYERS, -1).max(axis=-1) > 0).sum(axis=1) >= min_layers


def decision(spec: Spec, y: np.ndarray, threshold: float | None = None, hits: np.ndarray | None = None) -> np.ndarray:
    """Trigger decision from raw network outputs.

    Classifiers fire on their own output.  A regression only estimates the pT of a muon
    candidate (it was trained on muons), so it fires when pT_est > threshold (GeV) *and*
    the window passes the 5-of-9-layers coincidence (``hits`` required)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if spec.kind == "classifier":
        return y[:, 0] > 0 if spec.outputs == 1 else y[:, 1] > y[:, 0]
    if hits is None:
        raise ValueError(f"{spec.name}: a regression's decision needs the hit maps (coincidence)")
    return (pt_estimate(y) > (threshold if threshold is not None else spec.threshold)) & coincidence(hits)


def pt_estimate(y: np.ndarray) -> np.ndarray:
    t = np.abs(np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0])
    return T_SCALE / np.maximum(t, T_SCALE / 100.0)


# ---------------------------------------------------------------------------- models
def build(spec: Spec):
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu, ternary

    bias_q = quantized_bits(8, 3, alpha=1)
    if spec.inputs == "flat":
        init = keras.initializers.RandomUniform(-1.0, 1.0, seed=1)   # ternary threshold is 0.33
        inp = keras.Input((gen.N_LAYERS * gen.N_STRIPS,), name="hits")
        h = QActivation(quantized_bits(2, 1, alpha=1), name="q_in")(inp)   # 0/1 exactly
        for i, width in enumerate((64, 32)):
            h = QDense(width, kernel_quantizer=ternary(alpha=1), bias_quantizer=bias_q,
                       kernel_initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=10 + i),
                       name=f"fc{i + 1}")(h)
            h = QActivation(quantized_relu(4, 2), name=f"relu{i + 1}")(h)
        out = QDense(1, kernel_quantizer=ternary(alpha=1), bias_quantizer=bias_q, kernel_initializer=init,
                     name="logit")(h)
    elif spec.inputs == "image":
        wq = quantized_bits(4, 0, alpha=1)
        inp = keras.Input((gen.N_LAYERS, gen.N_STRIPS, 1), name="hits")
        h = QActivation(quantized_bits(2, 1, alpha=1), name="q_in")(inp)
        for i, filters in enumerate((1, 1, 6, 6)):
            h = QConv2D(filters, (3, 3), padding="valid", kernel_quantizer=wq, bias_quantizer=bias_q,
                        kernel_initializer=keras.initializers.HeUniform(seed=20 + i), name=f"conv{i + 1}")(h)
            h = QActivation(quantized_relu(4, 2), name=f"conv{i + 1}_relu")(h)
        h = keras.layers.Flatten(name="flatten")(h)
        for i in range(2):
            h = QDense(10, kernel_quantizer=wq, bias_quantizer=bias_q,
                       kernel_initializer=keras.initializers.HeUniform(seed=30 + i), name=f"fc{i + 1}")(h)
            h = QActivation(quantized_relu(4, 2), name=f"fc{i + 1}_relu")(h)
        n_out = 2 if spec.kind == "classifier" else 1
        out = QDense(n_out, kernel_quantizer=wq, bias_quantizer=bias_q,
                     kernel_initializer=keras.initializers.HeUniform(seed=40), name="output")(h)
    else:
        inp = keras.Input((3,), name="station_deviations")
        h = QActivation(quantized_bits(10, 4, alpha=1), name="q_in")(inp)
        for i in range(3):
            h = QDense(20, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=bias_q,
                       kernel_initializer=keras.initializers.HeUniform(seed=50 + i), name=f"fc{i + 1}")(h)
            h = QActivation(quantized_relu(8, 3), name=f"relu{i + 1}")(h)
        out = QDense(1, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=bias_q,
                     kernel_initializer=keras.initializers.HeUniform(seed=60), name="output")(h)
    return keras.Model(inp, out, name=spec.name)


def targets(spec: Spec, events: gen.MuonEvents) -> np.ndarray:
    if spec.kind == "classifier":
        return ((events.pt > spec.threshold) & events.is_muon).astype(np.float32)
    return (T_SCALE * events.q_over_pt()).astype(np.float32)


def train_one(spec: Spec, train: gen.MuonEvents, val: gen.MuonEvents, epochs: int) -> dict:
    import tf_keras as keras

    keras.utils.set_random_seed(7)
    model = build(spec)
    sel_tr = np.ones(len(train), bool) if spec.kind == "classifier" else train.is_muon
    sel_va = np.ones(len(val), bool) if spec.kind == "classifier" else val.is_muon
    x_tr, y_tr = model_inputs(spec, train)[sel_tr], targets(spec, train)[sel_tr]
    x_va, y_va = model_inputs(spec, val)[sel_va], targets(spec, val)[sel_va]
    if spec.kind == "classifier":
        loss = keras.losses.BinaryCrossentropy(from_logits=True) if spec.outputs == 1 else \
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = keras.losses.Huber(delta=0.5)
    steps = epochs * int(np.ceil(len(x_tr) / 512))
    lr = keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    t0 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=epochs, batch_size=512,
                     shuffle=True, verbose=0)
    seconds = time.perf_counter() - t0
    pred = model.predict(x_va, batch_size=4096, verbose=0)
    if spec.kind == "classifier":
        fired = decision(spec, pred)
        metric = {"val_accuracy": float(np.mean(fired == (y_va > 0.5)))}
    else:
        rel = (pt_estimate(pred) - val.pt[sel_va]) / val.pt[sel_va]
        metric = {"val_median_abs_rel_pt_error": float(np.median(np.abs(rel)))}
    model.save(spec.path, include_optimizer=False)
    return {"name": spec.name, "epochs": epochs, "train_seconds": round(seconds, 1),
            "final_loss": float(hist.history["loss"][-1]), "final_val_loss": float(hist.history["val_loss"][-1]),
            **metric, "file_bytes": spec.path.stat().st_size}


EPOCHS = {"flat": 12, "image": 10, "features": 15}


def main(argv: list[str] | None = None) -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="train only these models")
    ap.add_argument("--epochs", type=int, help="override the number of epochs (smoke tests)")
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("set TF_USE_LEGACY_KERAS=1 (QKeras needs legacy Keras)")
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    MODELS_DIR.mkdir(exist_ok=True)
    train = gen.generate(N_TRAIN_MUONS, N_TRAIN_NOISE, seed=TRAIN_SEED)
    val = gen.generate(N_VAL_MUONS, N_VAL_NOISE, seed=VAL_SEED)
    log_path = MODELS_DIR / "training_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    for spec in SPECS:
        if args.only and spec.name not in args.only:
            continue
        r = train_one(spec, train, val, args.epochs or EPOCHS[spec.inputs])
        print(json.dumps(r))
        log[spec.name] = r
    log_path.write_text(json.dumps(log, indent=1) + "\n")


if __name__ == "__main__":
    main()
