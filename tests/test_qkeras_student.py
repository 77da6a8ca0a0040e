"""A QKeras CNN shaped like the student network of a public ATLAS L0-muon study: a 9x16
hit map, four QConv2D and two QDense layers with alpha='auto_po2' weights and
quantized_relu(4) activations, and a float Dense head.  Compiled with default settings:
the quantised body is bit-exact with QKeras; the output is within the guaranteed bound
against QKeras (`framework_bound`) and argmax-identical on >= 99.9 % of 20,000 inputs; the
firmware is bit-exact in Verilator and GHDL (slow suite)."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.passes.error_bound import accuracy_summary, framework_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate, quantize_input, trace_raw
from tests.conftest import MODELS
from tests.firmware_check import assert_firmware_bit_exact

N_CLASSES = 4


def _student(path, seed: int = 0):
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    weights = dict(kernel_quantizer=quantized_bits(4, 0, alpha="auto_po2"),
                   bias_quantizer=quantized_bits(6, 2, alpha=1), bias_initializer="random_normal")
    inp = keras.Input((9, 16, 1))
    h = QActivation(quantized_bits(2, 1, alpha=1), name="hits")(inp)
    for k, (filters, strides) in enumerate([(4, (1, 2)), (6, 1), (6, (2, 2)), (8, 1)]):
        h = QConv2D(filters, (3, 3), strides=strides, padding="same", name=f"conv{k}", **weights)(h)
        h = QActivation(quantized_relu(4), name=f"relu{k}")(h)
    h = keras.layers.Flatten(name="flat")(h)
    for k, units in enumerate([24, 16]):
        h = QDense(units, name=f"dense{k}", **weights)(h)
        h = QActivation(quantized_relu(4), name=f"drelu{k}")(h)
    out = keras.layers.Dense(N_CLASSES, name="head")(h)
    model = keras.Model(inp, out)
    model.save(path)
    return model


def _hit_maps(n: int, seed: int) -> np.ndarray:
    """RPC-like hit maps: a few hit cells, 1 where hit, 0 elsewhere."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 9, 16, 1)) < 0.12).astype(np.float32)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    path = tmp_path_factory.mktemp("student") / "student.h5"
    return path, _student(path)


def test_quantised_body_is_bit_exact_with_qkeras(student):
    import tf_keras as keras
    path, model = student
    graph = build_graph(path)
    x = _hit_maps(20_000, seed=1)
    body = keras.Model(model.input, model.get_layer("drelu1").output)
    theirs = body.predict(x, batch_size=4096, verbose=0)
    node = graph.node("drelu1")
    ours = node.info.type.to_float(trace_raw(graph, quantize_input(graph, x))["drelu1"])
    assert np.array_equal(ours.reshape(len(x), -1), theirs.reshape(len(x), -1))
    assert len(np.unique(theirs)) > 4   # the activations are not all clipped


def test_output_within_the_bound_against_qkeras_and_argmax_identical(student):
    path, model = student
    graph = build_graph(path)
    x = _hit_maps(20_000, seed=2)
    theirs = model.predict(x, batch_size=4096, verbose=0)
    ours = emulate(graph, x)
    bound = framework_bound(graph)
    assert bound is not None and np.all(bound > 0)   # the float head is not exact
    diff = np.abs(ours - theirs)
    assert np.all(diff <= bound + 1e-5), (diff.max(axis=0), bound)   # + QKeras's own float32 rounding
    agree = np.mean(ours.argmax(axis=1) == theirs.argmax(axis=1))
    assert agree >= 0.999, agree
    summary = accuracy_summary(graph)
    assert summary["error_bound_vs_framework_max"] == float(bound.max())
    assert summary["error_bound_vs_framework_max"] < summary["error_bound_max"]


def test_a_model_that_is_all_qkeras_has_bound_zero():
    """qmlp: input quantiser, QDense layers and quantisers only: golden == QKeras."""
    graph = build_graph(MODELS / "qmlp.h5")
    bound = framework_bound(graph)
    assert bound is not None and np.all(bound == 0)
    assert accuracy_summary(graph)["error_bound_vs_framework_max"] == 0


@pytest.mark.parametrize("changed", ["relu1", "relu3"])
def test_a_changed_quantiser_type_loses_the_zero_bound(changed):
    """A configuration that changes a QKeras quantiser's type makes the firmware round
    where QKeras does not: no bound against QKeras is claimed (first or last quantiser)."""
    import dataclasses

    graph = build_graph(MODELS / "qmlp.h5")
    assert "out_type" in graph.annotations["framework_exact"][changed]
    node = graph.node(changed)
    node.out_type = dataclasses.replace(node.out_type, width=node.out_type.width + 1)
    assert framework_bound(graph) is None


@pytest.mark.slow
def test_student_firmware_is_bit_exact_in_verilator_and_ghdl(tmp_path):
    _student(tmp_path / "student.h5", seed=3)
    report = assert_firmware_bit_exact(tmp_path / "student.h5", _hit_maps(300, seed=4), tmp_path,
                                       sims=("verilator", "ghdl"), clock="240MHz")
    assert report["accuracy"]["error_bound_vs_framework_max"] > 0
