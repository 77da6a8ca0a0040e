"""Models of the RTL suites (time-multiplexed schedules, convolutions, pooling, softmax),
built directly in the IR (no TensorFlow) unless the name says QKeras/Keras."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, MaxPool2D, Reshape
from nnfpga.ir.quant import Quantizer, WeightKind

RELU4 = FixedType(4, 2, False, Rounding.RND_CONV, Overflow.SAT)


def set_reuse(graph: Graph, reuse: int) -> Graph:
    """The same graph with every Dense/Conv2D at reuse factor ``reuse``."""
    for n in graph.nodes:
        if isinstance(n, (Dense, Conv2D)):
            n.reuse_factor = reuse
    return graph


def _wq(kind: str, bits: int = 4) -> Quantizer:
    return {"fixed": Quantizer(WeightKind.FIXED, FixedType(bits, 1, True, Rounding.RND_CONV, Overflow.SAT)),
            "ternary": Quantizer(WeightKind.TERNARY), "binary": Quantizer(WeightKind.BINARY),
            "po2": Quantizer(WeightKind.PO2, min_exp=-3, max_exp=0)}[kind]


BQ = Quantizer(WeightKind.FIXED, FixedType(4, 3, True, Rounding.RND_CONV, Overflow.SAT))


def _conv(name, src, rng, cin, f, kind="fixed", k=(3, 3), strides=(1, 1), padding="valid"):
    w = rng.normal(0, 0.5, (*k, cin, f))
    c = Conv2D(name, [src], kernel=w, bias=rng.normal(0, 0.5, f), kernel_quantizer=_wq(kind),
               bias_quantizer=BQ, strides=strides, padding=padding)
    c.kernel_q = _wq(kind).apply(w)
    c.bias_q = BQ.apply(c.bias)
    return c


def _dense(name, src, rng, a, b, kind="fixed"):
    w = rng.normal(0, 1 / np.sqrt(a), (a, b))
    d = Dense(name, [src], kernel=w, bias=rng.normal(0, 0.5, b), kernel_quantizer=_wq(kind), bias_quantizer=BQ)
    d.kernel_q = _wq(kind).apply(w)
    d.bias_q = BQ.apply(d.bias)
    return d


def _relu(name, src):
    return Activation(name, [src], function="relu", out_type=RELU4)


def trigger_cnn(seed: int = 0, kind: str = "fixed", reuse: int = 1) -> Graph:
    """The target CNN: a 9x16x1 hit map, four 3x3 valid convolutions with 1, 1, 6, 6
    filters (4-bit weights, 4-bit ReLUs), flatten, Dense 10, 10, 2."""
    rng = np.random.default_rng(seed)
    nodes = [Input("input", [], out_type=FixedType(4, 3, True, Rounding.RND_CONV, Overflow.SAT), shape=(9, 16, 1))]
    cin = 1
    for k, f in enumerate((1, 1, 6, 6)):
        nodes.append(_conv(f"conv{k + 1}", nodes[-1].name, rng, cin, f, kind))
        nodes.append(_relu(f"relu_c{k + 1}", nodes[-1].name))
        cin = f
    nodes.append(Reshape("flatten", [nodes[-1].name], target_shape=(-1,)))
    n_in = 1 * 8 * 6
    for k, u in enumerate((10, 10)):
        nodes.append(_dense(f"fc{k + 1}", nodes[-1].name, rng, n_in, u, kind))
        nodes.append(_relu(f"relu_d{k + 1}", nodes[-1].name))
        n_in = u
    nodes.append(_dense("out", nodes[-1].name, rng, n_in, 2, kind))
    return set_reuse(assign_types(Graph("trigger_cnn", nodes, [nodes[-1].name])), reuse)


def pool_cnn(seed: int = 0, padding: str = "same", softmax: bool = True, reuse: int = 1) -> Graph:
    """Conv2D (``padding``, stride (1, 2)), MaxPool2D 2x2 (``padding``), a 2x2
    convolution, MaxPool2D 3x2 stride (2, 1), flatten, Dense 5 and softmax."""
    from nnfpga.compiler.frontends.precision import Precision
    rng = np.random.default_rng(seed)
    nodes = [Input("input", [], out_type=FixedType(6, 3, True, Rounding.RND_CONV, Overflow.SAT), shape=(12, 13, 2))]
    nodes.append(_conv("conv_a", "input", rng, 2, 3, strides=(1, 2), padding=padding))
    nodes.append(_relu("relu_a", "conv_a"))
    nodes.append(MaxPool2D("pool_a", ["relu_a"], pool_size=(2, 2), strides=(2, 2), padding=padding))
    nodes.append(_conv("conv_b", "pool_a", rng, 3, 4, k=(2, 2), padding=padding))
    nodes.append(Activation("lin_b", ["conv_b"], function="linear",
                            out_type=FixedType(6, 3, True, Rounding.RND, Overflow.SAT)))
    nodes.append(MaxPool2D("pool_b", ["lin_b"], pool_size=(3, 2), strides=(2, 1), padding=padding))
    nodes.append(Reshape("flatten", ["pool_b"], target_shape=(-1,)))
    g = assign_types(Graph("pool_cnn", nodes, ["flatten"]))
    n_flat = int(np.prod(g.nodes[-1].info.shape))
    nodes.append(_dense("logits", "flatten", rng, n_flat, 5))
    if softmax:
        exp, inv, out_t = Precision().softmax_tables(5)
        nodes.append(Activation("softmax", ["logits"], function="softmax", table=exp, inv_table=inv,
                                out_type=out_t))
    return set_reuse(assign_types(Graph("pool_cnn", nodes, [nodes[-1].name])), reuse)


def softmax_mlp(seed: int = 0, n_out: int = 5, reuse: int = 1) -> Graph:
    from nnfpga.compiler.frontends.precision import Precision
    rng = np.random.default_rng(seed)
    nodes = [Input("input", [], out_type=FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT), shape=(10,))]
    nodes.append(_dense("fc1", "input", rng, 10, 12))
    nodes.append(_relu("relu1", "fc1"))
    nodes.append(_dense("fc2", "relu1", rng, 12, n_out))
    exp, inv, out_t = Precision().softmax_tables(n_out)
    nodes.append(Activation("softmax", ["fc2"], function="softmax", table=exp, inv_table=inv, out_type=out_t))
    return set_reuse(assign_types(Graph("softmax_mlp", nodes, ["softmax"])), reuse)


# --------------------------------------------------------------------------- Keras/QKeras
def _keras():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras
    return keras


def qkeras_trigger_cnn(path: Path, seed: int = 5) -> Path:
    """The target CNN as a QKeras model file (4-bit quantisers everywhere)."""
    keras = _keras()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    inp = keras.Input((9, 16, 1))
    h = QActivation(quantized_bits(4, 2, alpha=1), name="q_in")(inp)
    for k, f in enumerate((1, 1, 6, 6)):
        h = QConv2D(f, (3, 3), padding="valid", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                    bias_quantizer=quantized_bits(4, 2, alpha=1), bias_initializer="random_normal",
                    name=f"conv{k + 1}")(h)
        h = QActivation(quantized_relu(4, 2), name=f"relu_c{k + 1}")(h)
    h = keras.layers.Flatten(name="flat")(h)
    for k, u in enumerate((10, 10)):
        h = QDense(u, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 2, alpha=1),
                   name=f"fc{k + 1}")(h)
        h = QActivation(quantized_relu(4, 2), name=f"relu_d{k + 1}")(h)
    out = QDense(2, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 2, alpha=1),
                 name="out")(h)
    keras.Model(inp, out).save(path)
    return path


def keras_tanh_mlp(path: Path, seed: int = 2) -> Path:
    """A float Keras MLP 16-24-12-4 trained for a few epochs, tanh output."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (2000, 16)).astype(np.float32)
    y = np.tanh(x[:, :4] * x[:, 4:8] + 0.3 * x[:, 8:12]).astype(np.float32)
    m = keras.Sequential([keras.Input((16,)), keras.layers.Dense(24, activation="relu"),
                          keras.layers.Dense(12, activation="relu"), keras.layers.Dense(4, activation="tanh")])
    m.compile("adam", "mse")
    m.fit(x, y, epochs=3, batch_size=64, verbose=0)
    m.save(path)
    return path
