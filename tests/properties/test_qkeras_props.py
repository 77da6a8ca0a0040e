"""Hypothesis: the golden model equals QKeras ``predict`` on random fixed-point QKeras MLPs.

Random stacks of QDense layers (1-8 units; quantized_bits (alpha 1, 'auto_po2' or a
power of two per output channel) / ternary / binary / quantized_po2 (with or without
max_value) kernels; their own activation linear, relu or quantized_relu; an optional
QActivation quantized_relu (negative_slope 0 or 1) / quantized_bits (signed or unsigned)
after), an input quantiser quantized_bits,
inputs on its grid (minimum, maximum, zero, random).  Where QKeras is exact: every value
is a short fixed-point number, and the widths (<= 8 bits, <= 8 units, <= 3 layers) keep
every accumulator far inside float32's 24-bit mantissa, so QKeras's float32 arithmetic
computes the exact values the IR defines.  The models are built live (no saved file is
needed: `build_graph` reads a Keras model).  Derandomised, no example database.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate


@st.composite
def kernel_quantizers(draw) -> tuple:
    kind = draw(st.sampled_from(["quantized_bits", "quantized_bits", "ternary", "binary", "quantized_po2",
                                 "auto_po2", "alpha_po2", "po2_max"]))
    if kind in ("quantized_bits", "auto_po2"):
        return kind, draw(st.integers(2, 6)), draw(st.integers(0, 1))
    if kind == "alpha_po2":   # a power-of-two alpha per output channel (exponents -2..1)
        return kind, draw(st.integers(2, 6)), draw(st.integers(0, 1)), draw(st.integers(0, 2 ** 31 - 1))
    if kind == "quantized_po2":
        return kind, draw(st.integers(3, 5)), 0
    if kind == "po2_max":
        # bits <= 4: with max_value <= 1 the smallest exponent is -8, as quantized_po2(5)'s
        return kind, draw(st.integers(3, 4)), draw(st.sampled_from([0.5, 1.0, 1.5, 2.0]))
    return kind, 0, 0


@st.composite
def activations(draw) -> tuple | None:
    kind = draw(st.sampled_from(["none", "quantized_relu", "quantized_bits", "relu_slope1", "unsigned_bits"]))
    if kind == "none":
        return None
    bits = draw(st.integers(2, 8))
    return kind, bits, draw(st.integers(0, min(3, bits - 1)))


@st.composite
def qkeras_specs(draw) -> dict:
    in_bits = draw(st.integers(3, 8))
    return {"seed": draw(st.integers(0, 2 ** 31 - 1)), "n_in": draw(st.integers(1, 8)),
            "input": (in_bits, draw(st.integers(0, min(3, in_bits - 1)))),
            "layers": [{"units": draw(st.integers(1, 8)), "kernel": draw(kernel_quantizers()),
                        "own": draw(st.sampled_from(["linear", "relu", "quantized_relu"])),
                        "own_bits": draw(st.integers(3, 8)), "after": draw(activations())}
                       for _ in range(draw(st.integers(1, 3)))]}


def _quantiser(kind: str, bits: int, integer, seed: int = 0, units: int = 1):
    from qkeras import binary, quantized_bits, quantized_po2, quantized_relu, ternary
    if kind == "quantized_bits":
        return quantized_bits(bits, integer, alpha=1)
    if kind == "auto_po2":
        return quantized_bits(bits, integer, alpha="auto_po2")
    if kind == "alpha_po2":
        exps = np.random.default_rng(seed).integers(-2, 2, units)
        return quantized_bits(bits, integer, alpha=[float(2.0 ** e) for e in exps])
    if kind == "po2_max":
        return quantized_po2(bits, max_value=integer)
    if kind == "quantized_relu":
        return quantized_relu(bits, integer)
    if kind == "relu_slope1":
        return quantized_relu(bits, integer, negative_slope=1.0)
    if kind == "unsigned_bits":
        return quantized_bits(bits, integer, keep_negative=False, alpha=1)
    if kind == "quantized_po2":
        return quantized_po2(bits)
    return ternary(alpha=1) if kind == "ternary" else binary(alpha=1)


def build_model(spec: dict):
    import tf_keras as keras
    from qkeras import QActivation, QDense
    keras.utils.set_random_seed(spec["seed"])
    inp = keras.Input((spec["n_in"],))
    h = QActivation(_quantiser("quantized_bits", *spec["input"]), name="q_in")(inp)
    for k, layer in enumerate(spec["layers"]):
        own = layer["own"]
        act = _quantiser("quantized_relu", layer["own_bits"], 2) if own == "quantized_relu" else own
        kernel = layer["kernel"] if len(layer["kernel"]) == 3 else (*layer["kernel"], layer["units"])
        h = QDense(layer["units"], kernel_quantizer=_quantiser(*kernel),
                   bias_quantizer=_quantiser("quantized_bits", 6, 2),
                   kernel_initializer=keras.initializers.RandomUniform(-1, 1),
                   bias_initializer=keras.initializers.RandomUniform(-1, 1), activation=act, name=f"fc{k}")(h)
        if layer["after"] is not None:
            h = QActivation(_quantiser(*layer["after"]), name=f"q{k}")(h)
    return keras.Model(inp, h)


def grid(spec: dict, n: int) -> np.ndarray:
    """Inputs on the input quantiser's grid (quantized_bits(b, i): b - 1 - i fractional
    bits), extremes and zero first."""
    bits, integer = spec["input"]
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    rng = np.random.default_rng(spec["seed"])
    shape = (spec["n_in"],)
    raw = [np.full(shape, lo), np.full(shape, hi), np.zeros(shape)]
    raw += [rng.integers(lo, hi, shape, endpoint=True) for _ in range(n - 3)]
    return (np.stack(raw) * 2.0 ** -(bits - 1 - integer)).astype(np.float32)


def run_profile(examples: int, kinds: set | None = None) -> int:
    """Check ``examples`` random models; ``kinds`` (if given) collects the kernel and
    activation quantiser kinds the checked models used."""
    checked = [0]

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
    @given(qkeras_specs())
    def check(spec):
        model = build_model(spec)
        x = grid(spec, 64)
        theirs = model.predict(x, batch_size=len(x), verbose=0).reshape(len(x), -1)
        ours = emulate(build_graph(model), x).reshape(len(x), -1)
        bad = np.argwhere(ours != theirs)
        assert len(bad) == 0, (f"{len(bad)} of {ours.size} values differ, first at {bad[:3].tolist()}: "
                               f"golden {ours[tuple(bad[0])]}, QKeras {theirs[tuple(bad[0])]}; spec {spec!r}")
        checked[0] += 1
        if kinds is not None:
            kinds.update(layer["kernel"][0] for layer in spec["layers"])
            kinds.update(layer["after"][0] for layer in spec["layers"] if layer["after"] is not None)

    check()
    print(f"\nQKeras properties: {checked[0]} random QKeras models, golden == predict on every input")
    return checked[0]


def test_golden_equals_qkeras_fast():
    assert run_profile(3) == 3


@pytest.mark.slow
def test_golden_equals_qkeras_slow():
    kinds: set = set()
    assert run_profile(40, kinds) == 40
    # the per-channel, max_value, slope-1 and unsigned quantisers were among those checked
    assert {"auto_po2", "alpha_po2", "po2_max", "relu_slope1", "unsigned_bits"} <= kinds, kinds
