"""QKeras layers with every combination of their own activation and a following
QActivation, bit-exact against QKeras ``predict`` (golden), and against Verilator, GHDL and
C-sim (slow).

The rule checked: a quantiser of the source model sees the exact value the framework
computes before it (the exact accumulator, plus an exact activation such as relu or
linear): the compiler adds no rounding of its own before it.  The precisions are chosen
so that the accumulators have more fractional bits (12) than the compiler's default
activation precision (10): a rounding the compiler added would show.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate

#: input quantiser quantized_bits(8, 2): 5 fractional bits, values in [-4, 4 - 2**-5]
IN_BITS, IN_INT = 8, 2
IN_FRAC = IN_BITS - 1 - IN_INT

#: (quantiser name, bits, integer) or a Keras activation name
OWN = {"linear": "linear", "relu": "relu", "qrelu": ("quantized_relu", 6, 2), "qbits": ("quantized_bits", 6, 2)}
AFTER = {"qrelu": ("quantized_relu", 5, 1), "qbits": ("quantized_bits", 5, 1), "none": None}
KINDS = ("dense", "conv")
COMBINATIONS = list(itertools.product(KINDS, OWN, AFTER))


def _quantiser(spec: tuple):
    from qkeras import quantized_bits, quantized_relu
    name, bits, integer = spec
    return quantized_relu(bits, integer) if name == "quantized_relu" else quantized_bits(bits, integer, alpha=1)


def build_model(kind: str, own: str, after: str, seed: int = 0):
    """A one-layer QKeras model: input quantiser, QDense/QConv2D (8-bit weights with 7
    fractional bits, its own activation ``own``), then ``after`` (or nothing)."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits
    keras.utils.set_random_seed(seed)
    shape = (12,) if kind == "dense" else (6, 6, 2)
    inp = keras.Input(shape)
    h = QActivation(quantized_bits(IN_BITS, IN_INT, alpha=1), name="q_in")(inp)
    act = OWN[own] if own in ("linear", "relu") else _quantiser(OWN[own])
    common = dict(kernel_quantizer=quantized_bits(8, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1),
                  bias_initializer=keras.initializers.RandomUniform(-1, 1), activation=act, name="layer")
    if kind == "dense":
        h = QDense(6, kernel_initializer=keras.initializers.RandomUniform(-0.6, 0.6), **common)(h)
    else:
        h = QConv2D(3, (3, 3), kernel_initializer=keras.initializers.RandomUniform(-0.4, 0.4), **common)(h)
    if AFTER[after] is not None:
        h = QActivation(_quantiser(AFTER[after]), name="q_after")(h)
    if kind == "conv":
        h = keras.layers.Flatten(name="flat")(h)
    return keras.Model(inp, h)


def on_grid(shape: tuple, n: int, seed: int) -> np.ndarray:
    """Inputs on the input quantiser's grid (so QKeras's and our input rounding agree trivially)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(-(1 << (IN_BITS - 1)), 1 << (IN_BITS - 1), (n, *shape))
    return (raw * 2.0 ** -IN_FRAC).astype(np.float32)


def _saved(tmp_path, kind, own, after):
    model = build_model(kind, own, after)
    path = tmp_path / f"{kind}_{own}_{after}.h5"
    model.save(path)
    return model, path


@pytest.mark.parametrize("kind,own,after", COMBINATIONS)
def test_golden_equals_qkeras(kind, own, after, tmp_path):
    model, path = _saved(tmp_path, kind, own, after)
    x = on_grid(model.input_shape[1:], 400, seed=1)
    theirs = model.predict(x, batch_size=400, verbose=0).reshape(len(x), -1)
    ours = emulate(build_graph(path), x)
    assert ours.shape == theirs.shape
    bad = np.argwhere(ours != theirs)
    assert len(bad) == 0, (f"{len(bad)} of {ours.size} values differ, first at {bad[:3].tolist()}: "
                           f"ours {ours[tuple(bad[0])]}, QKeras {theirs[tuple(bad[0])]}")


def test_no_compiler_rounding_before_a_quantiser(tmp_path):
    """The relu between the layer and its quantiser keeps the accumulator's fractional bits."""
    _, path = _saved(tmp_path, "conv", "relu", "qrelu")
    graph = build_graph(path)
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["layer_relu"].info.type.frac == IN_FRAC + 7
    assert nodes["layer_relu"].auto_frac is None


def test_quantiser_after_pooling_sees_the_exact_relu(tmp_path):
    """QConv2D(activation='relu'), MaxPooling2D, Flatten, then the quantiser."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, quantized_bits, quantized_relu
    keras.utils.set_random_seed(4)
    inp = keras.Input((6, 6, 2))
    h = QActivation(quantized_bits(IN_BITS, IN_INT, alpha=1), name="q_in")(inp)
    h = QConv2D(3, (3, 3), kernel_quantizer=quantized_bits(8, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1),
                kernel_initializer=keras.initializers.RandomUniform(-0.4, 0.4), activation="relu", name="layer")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    h = QActivation(quantized_relu(5, 1), name="q_after")(h)
    model = keras.Model(inp, h)
    model.save(tmp_path / "m.h5")
    x = on_grid((6, 6, 2), 400, seed=3)
    theirs = model.predict(x, batch_size=400, verbose=0)
    ours = emulate(build_graph(tmp_path / "m.h5"), x)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} values differ"


def build_mnist_like(seed: int = 0):
    """Like the public QKeras MNIST CNN: QConv2D(activation='relu') then
    QActivation(quantized_relu), MaxPooling2D, again, Flatten, QDense; the softmax head is
    left out (logits compared)."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    inp = keras.Input((12, 12, 1))
    h = QActivation(quantized_bits(8, 0, alpha=1), name="q_in")(inp)
    h = QConv2D(4, (3, 3), kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                bias_initializer="random_normal", activation="relu", name="conv2d_0_m")(h)
    h = QActivation(quantized_relu(6, 2), name="act0_m")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool_0")(h)
    h = QConv2D(6, (3, 3), kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                bias_initializer="random_normal", activation="relu", name="conv2d_1_m")(h)
    h = QActivation(quantized_relu(6, 2), name="act1_m")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool_1")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = QDense(10, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="dense")(h)
    return keras.Model(inp, h)


def test_mnist_like_cnn_logits_equal_qkeras(tmp_path):
    model = build_mnist_like()
    model.save(tmp_path / "cnn.h5")
    rng = np.random.default_rng(2)
    x = (rng.integers(0, 128, (500, 12, 12, 1)) * 2.0 ** -7).astype(np.float32)   # on quantized_bits(8, 0)'s grid
    theirs = model.predict(x, batch_size=500, verbose=0)
    ours = emulate(build_graph(tmp_path / "cnn.h5"), x)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} logits differ"


@pytest.mark.slow
@pytest.mark.parametrize("kind,own,after", [("dense", "relu", "qrelu"), ("conv", "relu", "qbits"),
                                            ("conv", "linear", "qrelu"), ("dense", "qbits", "qrelu")])
def test_golden_verilator_ghdl_csim_agree(kind, own, after, tmp_path):
    from nnfpga.compiler.cli import main
    model, path = _saved(tmp_path, kind, own, after)
    x = on_grid(model.input_shape[1:], 300, seed=5)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "fw"
    assert main(["compile", str(path), "--target", "xcvu9p", "--clock", "200MHz", "-o", str(out)]) == 0
    assert main(["emulate", str(out), "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npy")]) == 0
    theirs = model.predict(x, batch_size=300, verbose=0).reshape(len(x), -1)
    assert np.array_equal(np.load(tmp_path / "y.npy"), theirs)
    assert main(["verify", str(out), "--data", str(tmp_path / "x.npz"), "--sim", "verilator,ghdl,csim"]) == 0
    summary = json.loads((out / "verify.json").read_text())
    assert summary["bit_exact"]
    for sim in ("verilator", "ghdl", "csim"):
        assert summary["results"][sim]["mismatches"] == 0 and summary["results"][sim]["samples"] == len(x)
