"""Train the NeuralRinger ensemble: 25 MLPs (one per (E_T, |eta|) bin), float and QKeras.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.electron_ringer.train

* float (Keras 2 / tf_keras): 100 -> N tanh -> 1 tanh, N = NEURONS (5), trained on
  Norm1 rings with targets +1 (electron) / -1 (jet) and mean squared error, as the
  original NeuralRinger; saved as ``models/float/<bin>.h5``.
* qkeras: the same 100 -> N -> 1 network fully quantised, started from the float weights
  and trained on (quantisation-aware): input quantized_bits(16, 0), weights and biases
  quantized_bits(10, 3) (alpha=1), hidden activation quantized_bits(8, 0) -- a
  quantised *hard* tanh (saturating at -1 and 1 - 2^-7), because nnfpga's bit-exact
  QKeras path accepts quantized_bits/quantized_relu activations but no quantised tanh
  --, and a linear output trained with the mean squared error of tanh(output): the
  ringer's output tanh is monotonic, so thresholding the linear output is the same
  decision and the firmware needs no output table (a clipped quantised output would
  pile confident electrons up on its largest value and tie them).  Saved as
  ``models/qkeras/<bin>.h5``.
* ``models/thresholds.json``: per bin and flavour the output threshold that keeps
  PD = TARGET_PD (0.95) on the validation electrons (20% of the training sample), the
  trigger's configuration used by figures.py.

Data: the training sample (electron seed 11, jet seed 12) and the test sample (seeds 21,
22) of generator.generate, cached as .npz in ``.cache/`` (not shipped; regenerated on
demand, deterministic).  TensorFlow is seeded with op determinism on.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.electron_ringer import generator as G  # noqa: E402
from benchmarks.electron_ringer.rings import N_RINGS  # noqa: E402

MODELS_DIR = HERE / "models"
CACHE_DIR = HERE / ".cache"
NEURONS = 5
TARGET_PD = 0.95
N_TRAIN_PER_CLASS = 60_000     # ~2,400 per bin and class
N_TEST_PER_CLASS = 50_000      # ~2,000 per bin and class
SEEDS = {"train": (11, 12), "test": (21, 22)}
VAL_FRACTION = 0.2
FLAVOURS = ("float", "qkeras")


def bin_name(b: int) -> str:
    ie, ia = divmod(int(b), len(G.ETA_EDGES) - 1)
    return f"et{ie}_eta{ia}"


def model_path(flavour: str, b: int) -> Path:
    return MODELS_DIR / flavour / f"{bin_name(b)}.h5"


def sample(which: str) -> G.RingEvents:
    """The training or test sample (electrons then jets), cached."""
    n = N_TRAIN_PER_CLASS if which == "train" else N_TEST_PER_CLASS
    se, sj = SEEDS[which]
    path = CACHE_DIR / f"{which}_{n}_{se}_{sj}.npz"
    if path.exists():
        d = np.load(path)
        shapes = {k[6:]: d[k] for k in d.files if k.startswith("shape_")}
        return G.RingEvents(d["rings"], d["et"], d["eta"], d["mu"], d["is_electron"], shapes)
    t0 = time.perf_counter()
    ev = G.RingEvents.concatenate([G.generate("electron", n, se), G.generate("jet", n, sj)])
    CACHE_DIR.mkdir(exist_ok=True)
    # written whole, then renamed: a concurrent reader never sees half a file
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(tmp, rings=ev.rings, et=ev.et, eta=ev.eta, mu=ev.mu, is_electron=ev.is_electron,
             **{f"shape_{k}": v for k, v in ev.shapes.items()})
    os.replace(tmp, path)
    print(f"generated the {which} sample ({len(ev)} events) in {time.perf_counter() - t0:.0f} s", flush=True)
    return ev


def split(ev: G.RingEvents, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of bin b's training and validation events (deterministic: every 5th event
    of the bin is validation)."""
    idx = np.nonzero(ev.bin == b)[0]
    val = np.zeros(len(idx), bool)
    val[::int(round(1 / VAL_FRACTION))] = True
    return idx[~val], idx[val]


def build(flavour: str, name: str, neurons: int = NEURONS):
    import tf_keras as keras
    if flavour == "float":
        return keras.Sequential([keras.Input((N_RINGS,), name="rings"),
                                 keras.layers.Dense(neurons, activation="tanh", name="hidden",
                                                    kernel_initializer=keras.initializers.GlorotUniform(seed=1)),
                                 keras.layers.Dense(1, activation="tanh", name="output",
                                                    kernel_initializer=keras.initializers.GlorotUniform(seed=2))],
                                name=name)
    from qkeras import QActivation, QDense, quantized_bits
    wq, bq = quantized_bits(10, 3, alpha=1), quantized_bits(10, 3, alpha=1)
    return keras.Sequential([keras.Input((N_RINGS,), name="rings"),
                             QActivation(quantized_bits(16, 0, alpha=1), name="q_in"),
                             QDense(neurons, kernel_quantizer=wq, bias_quantizer=bq, name="hidden"),
                             QActivation(quantized_bits(8, 0, alpha=1), name="hard_tanh"),
                             QDense(1, kernel_quantizer=wq, bias_quantizer=bq, name="output")], name=name)


def load(flavour: str, b: int):
    import tf_keras as keras
    if flavour == "float":
        return keras.models.load_model(model_path(flavour, b), compile=False)
    from qkeras.utils import load_qmodel
    return load_qmodel(str(model_path(flavour, b)), compile=False)


def threshold_for_pd(scores_signal: np.ndarray, target: float = TARGET_PD) -> float:
    """The largest output threshold t with mean(score > t) >= target (fires when > t);
    tied scores are kept together, so the PD reached may exceed the target."""
    s = np.sort(np.asarray(scores_signal, dtype=np.float64).ravel())
    values = np.unique(s)
    above = 1 - np.searchsorted(s, values, side="right") / len(s)    # PD for t = each value
    ok = np.nonzero(above >= target)[0]
    return float(values[ok[-1]]) if len(ok) else float(np.nextafter(s[0], -np.inf))


def tanh_mse(y_true, y_pred):
    """Mean squared error of tanh(output) (the QKeras flavour's linear output)."""
    import tensorflow as tf
    return tf.reduce_mean(tf.square(tf.tanh(y_pred) - y_true), axis=-1)


def _fit(model, x, y, xv, yv, epochs: int, lr: float, loss="mse") -> None:
    import tf_keras as keras
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=128, shuffle=True, verbose=0,
              callbacks=[stop])


def train_bin(train: G.RingEvents, b: int, x_all: np.ndarray, y_all: np.ndarray, flavours=FLAVOURS) -> dict:
    import tf_keras as keras
    tr, va = split(train, b)
    x, y, xv, yv = x_all[tr], y_all[tr], x_all[va], y_all[va]
    name = bin_name(b)
    if "float" in flavours:
        keras.utils.set_random_seed(1000 + b)
        fm = build("float", name)
        _fit(fm, x, y, xv, yv, epochs=150, lr=1e-2)
        model_path("float", b).parent.mkdir(parents=True, exist_ok=True)
        fm.save(model_path("float", b), include_optimizer=False)
    else:
        fm = load("float", b)
    keras.utils.set_random_seed(2000 + b)
    qm = build("qkeras", name)
    qm.get_layer("hidden").set_weights(fm.get_layer("hidden").get_weights())
    qm.get_layer("output").set_weights(fm.get_layer("output").get_weights())
    _fit(qm, x, y, xv, yv, epochs=60, lr=1e-3, loss=tanh_mse)
    model_path("qkeras", b).parent.mkdir(parents=True, exist_ok=True)
    qm.save(model_path("qkeras", b), include_optimizer=False)
    out = {"bin": b, "label": G.bin_label(b), "n_train": int(len(tr)), "n_val": int(len(va))}
    for flavour, m in (("float", fm), ("qkeras", qm)):
        sv = m.predict(xv, batch_size=4096, verbose=0).ravel()
        thr = threshold_for_pd(sv[yv > 0])
        out[flavour] = {"threshold": thr, "val_pd": float(np.mean(sv[yv > 0] > thr)),
                        "val_fa": float(np.mean(sv[yv < 0] > thr)),
                        "max_abs_weight": float(max(np.abs(w).max() for w in m.get_weights()))}
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bins", type=int, nargs="*", help="train only these bins (0-24)")
    ap.add_argument("--flavours", nargs="*", default=list(FLAVOURS), choices=FLAVOURS,
                    help="'qkeras' alone re-trains the quantised nets from the saved float ones")
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("set TF_USE_LEGACY_KERAS=1 (QKeras needs legacy Keras)")
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    train = sample("train")
    x_all = train.normalised()
    y_all = np.where(train.is_electron, 1.0, -1.0).astype(np.float32)
    thr_path = MODELS_DIR / "thresholds.json"
    log = json.loads(thr_path.read_text()) if thr_path.exists() else {"target_pd": TARGET_PD, "bins": {}}
    t_all = time.perf_counter()
    for b in range(G.N_BINS):
        if args.bins and b not in args.bins:
            continue
        t0 = time.perf_counter()
        r = train_bin(train, b, x_all, y_all, tuple(args.flavours))
        r["train_seconds"] = round(time.perf_counter() - t0, 1)
        log["bins"][str(b)] = r
        print(f"bin {b:2d} {r['label']:32s} float val FA {r['float']['val_fa']:.4f}  "
              f"qkeras val FA {r['qkeras']['val_fa']:.4f}  ({r['train_seconds']} s)", flush=True)
    if not args.bins:   # a full run: record its wall-clock time
        log[f"train_seconds_total_{'+'.join(args.flavours)}"] = round(time.perf_counter() - t_all, 1)
    MODELS_DIR.mkdir(exist_ok=True)
    thr_path.write_text(json.dumps(log, indent=1) + "\n")


if __name__ == "__main__":
    main()
