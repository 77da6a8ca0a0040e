"""Train the small models shipped in ``examples/models`` (deterministic from seeds).

    TF_USE_LEGACY_KERAS=1 python examples/train_models.py

The task is a toy five-class "jet tagging" problem: 16 features drawn from Gaussian
clusters whose means depend on the class.  The models are small on purpose: they are
the demo and the test fixtures, not physics results (see benchmarks/ for those).

* ``qmlp.h5``       QKeras 16-64-32-32-5, inputs quantized_bits(8,3), weights
                    quantized_bits(6,0), biases quantized_bits(8,3), quantized_relu(6,2):
                    every tensor quantised, so the golden model equals QKeras bit for bit.
* ``ternary_mlp.h5`` QKeras 16-64-32-5 with ternary weights and quantized_relu(4,2).
* ``float_mlp.h5``  plain Keras 16-32-16-1 with tanh hidden layers, sigmoid output.
* ``float_mlp.keras`` the same architecture saved by Keras 3 (written by a Keras 3
                    subprocess, since this script runs legacy Keras for QKeras).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"


def toy_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    y = rng.integers(0, 5, n)
    x = means[y] + rng.normal(0, 1.0, (n, 16))
    return x.astype(np.float32), y


def train_qkeras() -> None:
    import tensorflow as tf
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu, ternary

    tf.random.set_seed(7)
    x, y = toy_data(20000, 1)
    onehot = np.eye(5)[y]

    def qmlp(widths, kernel_q, relu_q, name):
        inp = keras.Input((16,), name="features")
        h = QActivation(quantized_bits(8, 3, alpha=1), name="q_in")(inp)
        for i, w in enumerate(widths):
            h = QDense(w, kernel_quantizer=kernel_q, bias_quantizer=quantized_bits(8, 3, alpha=1),
                       kernel_initializer=keras.initializers.HeNormal(seed=i), name=f"fc{i + 1}")(h)
            h = QActivation(relu_q, name=f"relu{i + 1}")(h)
        out = QDense(5, kernel_quantizer=kernel_q, bias_quantizer=quantized_bits(8, 3, alpha=1),
                     kernel_initializer=keras.initializers.HeNormal(seed=99), name="output")(h)
        return keras.Model(inp, out, name=name)

    for model, fname in ((qmlp([64, 32, 32], quantized_bits(6, 0, alpha=1), quantized_relu(6, 2), "qmlp"),
                          "qmlp.h5"),
                         (qmlp([64, 32], ternary(alpha=1), quantized_relu(4, 2), "ternary_mlp"),
                          "ternary_mlp.h5")):
        model.compile(optimizer=keras.optimizers.Adam(3e-3),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.fit(x, onehot, epochs=8, batch_size=256, verbose=0, shuffle=False)
        acc = model.evaluate(*_test(onehot=True), verbose=0)[1]
        print(f"{fname}: test accuracy {acc:.3f}")
        model.save(MODELS / fname)

    fm = keras.Sequential([keras.Input((16,), name="features"),
                           keras.layers.Dense(32, activation="tanh", name="hidden1"),
                           keras.layers.Dense(16, activation="tanh", name="hidden2"),
                           keras.layers.Dense(1, activation="sigmoid", name="score")], name="float_mlp")
    fm.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    fm.fit(x / 4, (y == 0).astype(np.float32), epochs=5, batch_size=256, verbose=0, shuffle=False)
    print(f"float_mlp.h5: test accuracy {fm.evaluate(_test()[0] / 4, (_test()[1] == 0), verbose=0)[1]:.3f}")
    fm.save(MODELS / "float_mlp.h5")


def _test(onehot: bool = False):
    x, y = toy_data(4000, 2)
    return (x, np.eye(5)[y]) if onehot else (x, y)


def train_keras3() -> None:
    import keras

    keras.utils.set_random_seed(11)
    x, y = toy_data(20000, 1)
    m = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="tanh", name="hidden1"),
                          keras.layers.Dense(16, activation="relu", name="hidden2"),
                          keras.layers.Dense(1, activation="sigmoid", name="score")], name="float_mlp_k3")
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    m.fit(x / 4, (y == 0).astype(np.float32), epochs=3, batch_size=256, verbose=0, shuffle=False)
    m.save(MODELS / "float_mlp.keras")
    print("float_mlp.keras written")


if __name__ == "__main__":
    MODELS.mkdir(exist_ok=True)
    if len(sys.argv) > 1 and sys.argv[1] == "--keras3":
        train_keras3()
    else:
        if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
            sys.exit("set TF_USE_LEGACY_KERAS=1 (QKeras needs legacy Keras)")
        train_qkeras()
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
        subprocess.run([sys.executable, __file__, "--keras3"], check=True, env=env)
