"""Builds small HGQ2 (Keras 3, JAX) models for tests/test_hgq2.py; run with the
.venv-peers interpreter (HGQ2 cannot share the main environment).

usage: python make_models.py OUT_DIR [NAME ...]

Each model NAME is saved as OUT_DIR/NAME.keras with OUT_DIR/NAME.npz holding ``x`` (inputs
on the input quantiser's grid, well inside its range) and ``y`` (HGQ2's own
``model.predict`` of them).  The bitwidths, HGQ2's trainable per-element weights, are set
to random integers so every quantiser is heterogeneous, and a few training steps move the
weights off any grid."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq.config import QuantizerConfig  # noqa: E402
from hgq.layers import QConv2D, QDense, QMaxPooling2D, Quantizer  # noqa: E402

RNG = np.random.default_rng(7)


def _kif(round_mode="RND", overflow="WRAP", place="datalane", **kw):
    return QuantizerConfig("kif", place, round_mode=round_mode, overflow_mode=overflow, **kw)


def _kbi(round_mode="RND", overflow="SAT_SYM", place="weight", **kw):
    return QuantizerConfig("kbi", place, round_mode=round_mode, overflow_mode=overflow, **kw)


def dense_seq():
    """Quantizer -> QDense(relu) -> QDense, Sequential, default quantiser kinds."""
    return keras.Sequential([
        keras.layers.InputLayer(shape=(6,)),
        Quantizer(_kif(overflow="SAT"), name="inq"),
        QDense(8, activation="relu", name="d1"),
        QDense(3, name="d2"),
    ], name="hgq_dense_seq")


def dense_functional():
    """The same chain as a functional model, other round/overflow modes, an output quantiser."""
    x = keras.Input((5,))
    h = Quantizer(_kif(round_mode="TRN", overflow="WRAP"), name="inq")(x)
    h = QDense(7, activation="relu", name="d1", iq_conf=_kif(round_mode="RND_CONV", overflow="SAT_SYM"),
               kq_conf=_kbi(round_mode="RND_CONV", overflow="WRAP"), bq_conf=_kbi(place="bias"))(h)
    h = QDense(4, name="d2", iq_conf=_kif(round_mode="RND", overflow="WRAP"), enable_oq=True,
               oq_conf=_kif(round_mode="TRN", overflow="SAT"),
               kq_conf=QuantizerConfig("kif", "weight", round_mode="TRN", overflow_mode="SAT"))(h)
    return keras.Model(x, h, name="hgq_dense_functional")


def conv():
    """Quantizer -> QConv2D(relu) -> QMaxPooling2D -> Flatten -> QDense, with kbi activation
    quantisers and trainable WRAP weight quantisers (which HGQ2 only rounds at inference)."""
    return keras.Sequential([
        keras.layers.InputLayer(shape=(6, 6, 2)),
        Quantizer(_kbi(overflow="SAT", place="datalane"), name="inq"),
        QConv2D(3, (3, 3), activation="relu", name="c1", padding="same",
                kq_conf=QuantizerConfig("kif", "weight", round_mode="RND", overflow_mode="WRAP")),
        QMaxPooling2D((2, 2), name="pool", enable_oq=True, oq_conf=_kif(round_mode="TRN", overflow="SAT")),
        keras.layers.Flatten(name="flat"),
        QDense(2, name="d1", iq_conf=_kbi(round_mode="RND_CONV", overflow="WRAP", place="datalane"),
               kq_conf=_kbi(round_mode="RND", overflow="WRAP")),
    ], name="hgq_conv")


MODELS = {"dense_seq": dense_seq, "dense_functional": dense_functional, "conv": conv}


def _randomise_bits(model) -> None:
    """Random integer bitwidths per element (HGQ2's bits are weights named b/i/f), and
    kernels of unit spread, so that weights overflow their quantisers' ranges too."""
    for w in model.weights:
        leaf = w.path.split("/")[-1]
        shape = tuple(w.shape)
        if leaf == "kernel":
            w.assign(RNG.normal(0, 1, shape).astype("float32"))
        elif leaf == "f":
            w.assign(RNG.integers(2, 6, shape).astype("float32"))
        elif leaf == "b":
            w.assign(RNG.integers(3, 8, shape).astype("float32"))
        elif leaf == "i" and "kq" in w.path:
            w.assign(RNG.integers(-1, 2, shape).astype("float32"))   # i = -1: |w| >= 0.5 overflows
        elif leaf == "i":
            w.assign(RNG.integers(1, 4, shape).astype("float32"))
    # one element of each kif input quantiser of width k + i + f <= 0: HGQ2's constant 0
    by_path = {w.path: w for w in model.weights}
    for path, w in by_path.items():
        if "_iq/" in path and path.endswith("/f"):
            i = by_path[path[:-1] + "i"]
            for var, value in ((w, 0.0), (i, -1.0)):
                a = np.array(var.numpy())
                a.reshape(-1)[0] = value
                var.assign(a)


def _input_grid(model, n: int) -> np.ndarray:
    """Inputs on the grid of the input quantiser's finest element (the compiled model's
    input type), over twice the range of its widest element: every element rounds, and
    some overflow."""
    q = model.get_layer("inq").quantizer
    f, i = np.asarray(q.f), np.asarray(q.i)
    frac, integer = int(f.max()), int(i.max())
    shape = model.inputs[0].shape[1:]
    top = 2 ** (integer + frac + 1)
    return (RNG.integers(-top, top, (n, *shape)) / 2.0 ** frac).astype("float32")


def build(name: str, out: str) -> None:
    keras.utils.set_random_seed(3)
    model = MODELS[name]()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x_train = RNG.normal(size=(256, *model.inputs[0].shape[1:])).astype("float32")
    y_train = RNG.normal(size=(256, *model.outputs[0].shape[1:])).astype("float32")
    model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    _randomise_bits(model)
    x = _input_grid(model, 512)
    model.save(os.path.join(out, f"{name}.keras"))
    y = model.predict(x, verbose=0)
    np.savez(os.path.join(out, f"{name}.npz"), x=x, y=y)


if __name__ == "__main__":
    out_dir = sys.argv[1]
    for model_name in sys.argv[2:] or MODELS:
        build(model_name, out_dir)
