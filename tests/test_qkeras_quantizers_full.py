"""QKeras quantiser options beyond the plain ``quantized_bits(bits, integer, alpha=1)``,
each bit-exact against QKeras ``predict`` or refused by name.

* ``quantized_bits(alpha='auto_po2')``: per-channel power-of-two scales QKeras derives
  from the float weights (the models give their channels very different magnitudes, so
  the scales differ, which the tests check);
* ``quantized_bits`` with a power-of-two alpha, one or one per output channel;
* ``keep_negative=False`` (unsigned) for weights and activations;
* ``quantized_po2(bits, max_value)``; ``quantized_relu(negative_slope=1)`` and
  ``negative_slope=2**-k`` (saturating_leaky_relu);
* ``quantized_tanh`` / ``quantized_sigmoid`` with QKeras's hard sigmoid;
* ``alpha='auto'`` and alphas that are not powers of two: QKeras's float32 weights as
  float constants, within the bound stated against QKeras;
* refusals: 'auto_po2' or an alpha other than 1 on an activation, a scale at a rounding
  tie (and, for the exact quantiser `weight_quantizer` alone, float alphas).
"""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.frontends import qkeras_quantizers as qq
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate
from nnfpga.ir.quant import Quantizer, WeightKind

#: input quantiser quantized_bits(8, 2): 5 fractional bits
IN_BITS, IN_INT = 8, 2
#: each output channel's weight magnitude: spread over ~10 octaves, so auto_po2 scales differ
CHANNEL_SCALE = np.array([1.0, 0.05, 3.0, 0.004, 0.3, 0.7])


def on_grid(shape: tuple, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(-(1 << (IN_BITS - 1)), 1 << (IN_BITS - 1), (n, *shape))
    return (raw * 2.0 ** -(IN_BITS - 1 - IN_INT)).astype(np.float32)


def build(kind: str, kernel_q, bias_q=None, act=None, after=None, seed: int = 0, units: int = 6):
    """Input quantiser, then a QDense or QConv2D (``units`` outputs, channel c's weights
    scaled by ``CHANNEL_SCALE[c]``), then ``after`` (a QActivation quantiser) if given."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits
    keras.utils.set_random_seed(seed)
    shape = (10,) if kind == "dense" else (5, 5, 2)
    inp = keras.Input(shape)
    h = QActivation(quantized_bits(IN_BITS, IN_INT, alpha=1), name="q_in")(inp)
    common = dict(kernel_quantizer=kernel_q, bias_quantizer=bias_q or quantized_bits(8, 3, alpha=1),
                  bias_initializer=keras.initializers.RandomUniform(-1, 1), activation=act or "linear",
                  name="layer")
    layer = QDense(units, **common) if kind == "dense" else QConv2D(units, (3, 3), **common)
    h = layer(h)
    kernel, bias = layer.get_weights()
    rng = np.random.default_rng(seed)
    layer.set_weights([(rng.uniform(-1, 1, kernel.shape) * CHANNEL_SCALE[:units]).astype(np.float32), bias])
    if after is not None:
        h = QActivation(after, name="q_after")(h)
    if kind == "conv":
        h = keras.layers.Flatten(name="flat")(h)
    return keras.Model(inp, h)


def check_equal(model, tmp_path, n: int = 300):
    path = tmp_path / "m.h5"
    model.save(path)
    x = on_grid(model.input_shape[1:], n, seed=1)
    theirs = model.predict(x, batch_size=n, verbose=0).reshape(n, -1)
    graph = build_graph(path)
    ours = emulate(graph, x).reshape(n, -1)
    bad = np.argwhere(ours != theirs)
    assert len(bad) == 0, (f"{len(bad)} of {ours.size} values differ, first at {bad[:3].tolist()}: "
                           f"ours {ours[tuple(bad[0])]}, QKeras {theirs[tuple(bad[0])]}")
    return graph, theirs


def _layer(graph):
    return next(n for n in graph.nodes if n.name == "layer")


def assert_refused(call, prefix: str, words: list[str]) -> None:
    """``call`` raises a UserError whose message starts with ``prefix`` (the file, the
    layer, the quantiser) and names every one of ``words``."""
    with pytest.raises(UserError) as e:
        call()
    msg = str(e.value)
    assert msg.startswith(prefix), msg
    for w in words:
        assert w in msg, msg


# ----------------------------------------------------------------------------- auto_po2
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("bits,integer", [(6, 0), (4, 1)])
def test_auto_po2_kernel_equals_qkeras(kind, bits, integer, tmp_path):
    from qkeras import quantized_bits
    model = build(kind, quantized_bits(bits, integer, alpha="auto_po2"))
    graph, theirs = check_equal(model, tmp_path)
    assert np.any(theirs != 0)
    # the IR weights are QKeras's quantised weights
    layer = model.get_layer("layer")
    quantiser = layer.kernel_quantizer_internal
    qk = quantiser(layer.kernel).numpy()
    assert np.array_equal(_layer(graph).kernel_q.value, qk.astype(np.float64))
    # and the channels really got different power-of-two scales in QKeras
    scale = quantiser.scale.numpy().reshape(-1)
    assert len(set(scale.tolist())) >= 3, scale
    assert np.all(np.frexp(scale)[0] == 0.5)


def test_auto_po2_bias_equals_qkeras(tmp_path):
    """A 1-D array (a bias) gets one scale per element, as QKeras computes it."""
    from qkeras import quantized_bits
    model = build("dense", quantized_bits(6, 0, alpha="auto_po2"), bias_q=quantized_bits(5, 1, alpha="auto_po2"))
    check_equal(model, tmp_path)


def test_auto_po2_with_quantised_activation_after(tmp_path):
    from qkeras import quantized_bits, quantized_relu
    model = build("conv", quantized_bits(5, 0, alpha="auto_po2"), after=quantized_relu(6, 2))
    check_equal(model, tmp_path)


def test_auto_po2_refuses_a_scale_at_a_rounding_tie():
    """One input, bits=4: the first scale is 2 * |w| / 14; |w| = 7 * sqrt(2) / 8 puts its
    log2 at -2.5, a tie that float32 rounding decides."""
    w = np.array([[7 * np.sqrt(2) / 8, 0.5]], dtype=np.float32)
    spec = qq.parse_quantizer("quantized_bits(4, 0, alpha='auto_po2')", "m.h5: layer 'fc' (QDense)")
    with pytest.raises(UserError, match=r"m.h5: layer 'fc' \(QDense\): kernel_quantizer quantized_bits\(alpha="
                                        r"'auto_po2'\): the scale of output channel 0 .*rounding tie"):
        qq.weight_quantizer(spec, "m.h5: layer 'fc' (QDense)", w, "kernel_quantizer")
    w[0, 0] *= 1.01   # away from the tie: accepted
    assert qq.weight_quantizer(spec, "m.h5: layer 'fc' (QDense)", w, "kernel_quantizer").auto_po2


# ----------------------------------------------------------------------------- power-of-two alpha
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("alpha", [0.5, 4, [1, 0.5, 2, 0.125, 1, 0.25]])
def test_power_of_two_alpha_equals_qkeras(kind, alpha, tmp_path):
    from qkeras import quantized_bits
    model = build(kind, quantized_bits(6, 1, alpha=alpha), bias_q=quantized_bits(6, 2, alpha=alpha))
    graph, theirs = check_equal(model, tmp_path)
    assert np.any(theirs != 0)
    node = _layer(graph)
    if isinstance(alpha, list):
        assert node.kernel_quantizer.channel_exp == (0, -1, 1, -3, 0, -2)


def test_alpha_list_needs_one_per_channel():
    spec = qq.parse_quantizer("quantized_bits(6, 0, alpha=[1, 2, 4])", "w")
    with pytest.raises(UserError, match=r"'layer': kernel_quantizer quantized_bits argument 'alpha' lists 3 "
                                        r"scales for 2 output channels"):
        qq.weight_quantizer(spec, "'layer'", np.zeros((4, 2)), "kernel_quantizer")


@pytest.mark.parametrize("text,words", [
    ("quantized_bits(6, 0, alpha='auto')", ["'alpha' is 'auto'", "float32 least-squares", "auto_po2"]),
    ("quantized_bits(6, 0, alpha=0.3)", ["'alpha' is 0.3", "not a power of two", "float32"]),
    ("quantized_bits(6, 0, alpha=[1, 0.75])", ["0.75 is not a power of two", "one per output channel"]),
    ("quantized_bits(6, 0, alpha='best')", ["'alpha' is 'best'", "supported"]),
    ("quantized_bits(6, 0, symmetric=1, alpha=1)", ["'symmetric' is 1", "auto_po2"]),
])
def test_weight_alpha_refused_by_name(text, words):
    spec = qq.parse_quantizer(text, "m.h5: layer 'fc' (QDense)")
    assert_refused(lambda: qq.weight_quantizer(spec, "m.h5: layer 'fc' (QDense)", np.ones((3, 2)),
                                               "kernel_quantizer"),
                   "m.h5: layer 'fc' (QDense): kernel_quantizer quantized_bits argument", words)


@pytest.mark.parametrize("text,words", [
    ("quantized_bits(6, 0, alpha='auto_po2')", ["'alpha' is 'auto_po2'", "each batch of data"]),
    ("quantized_bits(6, 0, alpha=0.3)", ["'alpha' is 0.3", "not a power of two"]),
    ("quantized_bits(6, 0, alpha=[1, 2])", ["'alpha' is [1, 2]", "one power of two"]),
    ("quantized_bits(6, 0, alpha=0.25)", ["'alpha' is 0.25", "multiplies the rounded activation", "None or 1"]),
])
def test_activation_alpha_refused_by_name(text, words):
    assert_refused(lambda: qq.activation_of(qq.parse_quantizer(text, "w"), "m.h5: layer 'q' (QActivation)"),
                   "m.h5: layer 'q' (QActivation): activation quantized_bits argument 'alpha'", words)


# ----------------------------------------------------------------------------- float scales
FLOAT_SCALED = ["quantized_bits(6, 0, alpha='auto')", "quantized_bits(4, 2, alpha='auto')",
                "quantized_bits(5, 1, alpha=0.3)", "quantized_bits(6, 0, symmetric=1, alpha=0.77)",
                "quantized_bits(6, 0, keep_negative=False, alpha=0.3)",
                "quantized_bits(5, 1, alpha=[0.7, 1.3, 0.2, 3, 1, 0.9])"]


def _qbits(text: str | None):
    """The QKeras quantiser object of ``text`` (QKeras's own parser takes no lists)."""
    import qkeras
    if text is None:
        return None
    spec = qq.parse_quantizer(text, "test")
    return getattr(qkeras, spec.name)(**spec.params)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("text", FLOAT_SCALED)
def test_float_scaled_weights_are_qkeras_float32_weights(kind, text):
    """alpha='auto' and alphas that are not powers of two: the layer's weights are
    exactly the float32 array QKeras's quantiser returns, and no IR quantiser."""
    model = build(kind, _qbits(text))
    layer = model.get_layer("layer")
    qk = layer.kernel_quantizer_internal(layer.kernel).numpy()
    spec = qq.parse_quantizer(text, "w")
    weights, q = qq.layer_weights(spec, "w", layer.get_weights()[0], "kernel_quantizer")
    assert q is None and weights.dtype == np.float32
    assert np.array_equal(weights, qk)
    assert len(np.unique(np.abs(qk))) > 4   # really quantised to a few levels per channel, not zero


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("kernel_q,bias_q,after", [
    (FLOAT_SCALED[0], None, None), (FLOAT_SCALED[0], "quantized_bits(6, 2, alpha='auto')", None),
    (FLOAT_SCALED[5], None, None), ("quantized_bits(6, 0, alpha=1)", FLOAT_SCALED[2], None),
    (FLOAT_SCALED[0], None, "quantized_relu(6, 2)"), (FLOAT_SCALED[1], None, "quantized_bits(5, 2)"),
    (FLOAT_SCALED[5], None, "quantized_relu(5, 1, negative_slope=0.25)")])
def test_float_scaled_layer_within_bound_of_qkeras(kind, kernel_q, bias_q, after, tmp_path):
    """The layer is not exact against QKeras (its weights get the compiler's own type):
    the bound against QKeras is finite, above 0, and holds on 2,000 inputs (plus QKeras's
    own float32 accumulation, which the bound leaves out: 1e-5 here).  A QKeras quantiser
    after the layer rounds both: the bound grows by at most one of its steps."""
    from nnfpga.compiler.passes.error_bound import FRAMEWORK_EXACT, accuracy_summary, framework_bound
    model = build(kind, _qbits(kernel_q), bias_q=_qbits(bias_q), after=_qbits(after))
    path = tmp_path / "m.h5"
    model.save(path)
    n = 2000
    x = on_grid(model.input_shape[1:], n, seed=1)
    theirs = model.predict(x, batch_size=n, verbose=0).reshape(n, -1)
    graph = build_graph(path)
    ours = emulate(graph, x).reshape(n, -1)
    # the input quantiser is exact against QKeras, the layer is not (no mark, or a float bias)
    assert graph.annotations[FRAMEWORK_EXACT].get("layer", {"float_bias": True})["float_bias"]
    bound = framework_bound(graph)
    assert bound is not None and np.all(np.isfinite(bound)) and bound.max() > 0
    summary = accuracy_summary(graph)
    assert summary["error_bound_vs_framework_max"] == pytest.approx(float(bound.max()))
    assert summary["error_bound_max"] is not None
    err = np.abs(ours - theirs)
    assert err.max() > 0   # the weights' rounding shows: the layer is really not bit-exact
    assert np.all(err <= bound + 1e-5), (err.max(axis=0), bound)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("text", ["quantized_bits(4, 0, symmetric=1, alpha=1)", "quantized_bits(3, 1, symmetric=1)",
                                  "quantized_bits(5, 1, symmetric=1, alpha=[1, 0.5, 2, 0.125, 1, 0.25])"])
def test_symmetric_power_of_two_weights_equal_qkeras(kind, text, tmp_path):
    """symmetric=1 clips at -(2**(bits-1) - 1) levels (no saturating type's range), but
    with power-of-two alphas QKeras's weights are exact constants on a binary grid: held
    exactly, bit-exact against predict, and marked exact (bound 0 against QKeras)."""
    from nnfpga.compiler.passes.error_bound import framework_bound
    model = build(kind, _qbits(text), bias_q=_qbits("quantized_bits(6, 2, symmetric=1, alpha=1)"))
    graph, theirs = check_equal(model, tmp_path)
    layer = model.get_layer("layer")
    qk = layer.kernel_quantizer_internal(layer.kernel).numpy()
    assert np.array_equal(_layer(graph).kernel_q.value, qk.astype(np.float64))
    # the channel of magnitude 3 saturates both ways: at -(2**(bits-1) - 1) levels, not -2**(bits-1)
    assert qk.min() == -qk.max()
    assert np.array_equal(framework_bound(graph), np.zeros(theirs.shape[1]))


# ----------------------------------------------------------------------------- keep_negative=False
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_unsigned_weights_and_activation_equal_qkeras(kind, tmp_path):
    from qkeras import quantized_bits
    model = build(kind, quantized_bits(5, 0, keep_negative=False, alpha=1),
                  bias_q=quantized_bits(6, 2, keep_negative=False, alpha=1),
                  after=quantized_bits(6, 2, keep_negative=False, alpha=1))
    graph, theirs = check_equal(model, tmp_path)
    assert np.any(theirs > 0) and np.all(theirs >= 0)
    node = _layer(graph)
    assert not node.kernel_quantizer.type.signed and node.kernel_q.raw.min() == 0


# ----------------------------------------------------------------------------- quantized_po2(max_value)
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("bits,max_value", [(4, 0.5), (5, 2.0), (4, 1.5), (3, 1.0)])
def test_po2_max_value_equals_qkeras(kind, bits, max_value, tmp_path):
    """max_value <= 1 frees the exponent's sign bit (a wider range of small exponents);
    magnitudes at or above max_value are taken as max_value before rounding in log2
    (1.5 rounds to 2)."""
    from qkeras import quantized_po2
    model = build(kind, quantized_po2(bits, max_value=max_value))
    graph, theirs = check_equal(model, tmp_path)
    layer = model.get_layer("layer")
    qk = layer.kernel_quantizer_internal(layer.kernel).numpy()
    assert np.array_equal(_layer(graph).kernel_q.value, qk.astype(np.float64))
    # the clip mattered: the largest weights are above max_value and were clipped
    assert np.abs(layer.get_weights()[0]).max() > max_value
    assert np.abs(qk).max() == 2.0 ** np.round(np.log2(max_value))


@pytest.mark.parametrize("text,words", [
    ("quantized_po2(4, 0)", ["'max_value' is 0", "positive number"]),
    ("quantized_po2(4, -1.0)", ["'max_value' is -1.0", "positive number"]),
    ("quantized_po2(4, 1, quadratic_approximation=True)", ["quadratic_approximation=True", "supported"]),
])
def test_po2_options_refused_by_name(text, words):
    assert_refused(lambda: qq.weight_quantizer(qq.parse_quantizer(text, "w"), "m.h5: layer 'fc' (QDense)",
                                               np.ones((3, 2)), "kernel_quantizer"),
                   "m.h5: layer 'fc' (QDense): kernel_quantizer quantized_po2", words)


def test_po2_wide_exponents_use_the_smallest_present():
    """quantized_po2(8): exponents -64..63 would need 128-bit integers on the 2**-64 grid;
    the weights present (2**-3..2**1) fit on their own finest grid."""
    q = qq.weight_quantizer(qq.parse_quantizer("quantized_po2(8)", "w"), "w", np.array([0.125, 2.0, -0.5]))
    qa = q.apply(np.array([0.125, 2.0, -0.5]))
    assert qa.frac == 3 and qa.value.tolist() == [0.125, 2.0, -0.5]


# ----------------------------------------------------------------------------- quantized_relu(negative_slope)
@pytest.mark.parametrize("own", [True, False])
def test_relu_negative_slope_one_equals_qkeras(own, tmp_path):
    """negative_slope=1: the sign takes one of the bits; the result is quantized_bits(bits, integer)."""
    from qkeras import quantized_bits, quantized_relu
    q = quantized_relu(5, 1, negative_slope=1.0)
    model = build("dense", quantized_bits(6, 0, alpha=1), act=q if own else None, after=None if own else q)
    _, theirs = check_equal(model, tmp_path)
    assert np.any(theirs < 0) and np.any(theirs > 0)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("bits,integer,slope", [(5, 1, 0.25), (4, 0, 0.5), (6, 2, 0.125), (3, 1, 0.25), (4, 1, 0.125)])
@pytest.mark.parametrize("own", [True, False])
def test_relu_negative_slope_equals_qkeras(kind, bits, integer, slope, own, tmp_path):
    """negative_slope = 2**-k: x >= 0 on the (bits - 1)-bit grid up to 2**integer - step,
    x < 0 as round(slope * x) on the same grid, saturating at -slope * 2**integer: the IR's
    saturating_leaky_relu, bit-exact, with both saturations and the rounding reached."""
    from qkeras import quantized_relu
    q = quantized_relu(bits, integer, negative_slope=slope)
    model = build(kind, "quantized_bits(6, 0, alpha=1)", act=q if own else None, after=None if own else q)
    graph, theirs = check_equal(model, tmp_path, n=2000)
    step = 2.0 ** (integer + 1 - bits)
    assert theirs.min() == -slope * 2 ** integer and theirs.max() == 2 ** integer - step
    assert len(np.unique(theirs[theirs < 0])) >= min(3, slope * 2 ** (bits - 1))   # the negative grid
    act = graph.nodes[-2 if kind == "conv" else -1]
    assert act.function == "saturating_leaky_relu" and act.alpha_q == slope
    from nnfpga.compiler.passes.error_bound import framework_bound
    assert np.array_equal(framework_bound(graph), np.zeros(theirs.shape[1]))   # exact against QKeras


@pytest.mark.parametrize("text,words", [
    ("quantized_relu(5, 1, negative_slope=2.0)", ["'negative_slope' is 2.0", "a power of two 2**-k"]),
    ("quantized_relu(5, 1, negative_slope=0.3)", ["'negative_slope' is 0.3", "a power of two 2**-k"]),
    ("quantized_relu(4, 1, negative_slope=0.0625)", ["'negative_slope' is 0.0625 with bits=4", "finer than"]),
    ("quantized_relu(1, 0, negative_slope=1.0)", ["'negative_slope' is 1.0 with bits=1", "at least 2 bits"]),
])
def test_relu_negative_slope_refused_by_name(text, words):
    """Slopes QKeras itself asserts against (not a power of two), above 1, and a negative
    saturation off the output grid."""
    assert_refused(lambda: qq.activation_of(qq.parse_quantizer(text, "w"), "m.h5: layer 'q' (QActivation)"),
                   "m.h5: layer 'q' (QActivation): quantized_relu argument 'negative_slope'", words)


# ----------------------------------------------------------------------------- quantized_tanh / quantized_sigmoid
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("text", ["quantized_tanh(4)", "quantized_tanh(7)", "quantized_sigmoid(3)",
                                  "quantized_sigmoid(6)"])
@pytest.mark.parametrize("own", [True, False])
def test_hard_tanh_and_sigmoid_quantisers_equal_qkeras(kind, text, own, tmp_path):
    """QKeras's default (hard) sigmoid: as the layer's own activation or a QActivation
    after it, with the values spread over both clips and the rounding in between."""
    from qkeras import quantized_bits
    model = build(kind, quantized_bits(6, 0, alpha=1), act=text if own else None, after=None if own else text)
    graph, theirs = check_equal(model, tmp_path, n=2000)
    tanh = text.startswith("quantized_tanh")
    bits = int(text.split("(")[1].rstrip(")"))
    step = 2.0 ** -(bits - 1 if tanh else bits)
    assert theirs.min() == (-1.0 if tanh else 0.0) and theirs.max() == 1.0 - step
    assert len(np.unique(theirs)) > (2 ** bits) // 2   # the grid between the clips is reached
    act = graph.nodes[-2 if kind == "conv" else -1]
    assert act.function == ("hard_tanh" if tanh else "hard_sigmoid")


@pytest.mark.parametrize("text,words", [
    ("quantized_tanh(4, 0, 0, 1)", ["'use_real_tanh' is 1", "supported: use_real_tanh=0", "Activation('tanh')"]),
    ("quantized_sigmoid(4, 0, 1)", ["'use_real_sigmoid' is 1", "supported: use_real_sigmoid=0"]),
    ("quantized_tanh(4, 0, 1)", ["'symmetric' is 1", "supported: symmetric=0"]),
    ("quantized_sigmoid(1)", ["with 1 bits is not supported", "2 to 62 bits"]),
])
def test_hard_tanh_and_sigmoid_options_refused_by_name(text, words):
    name = text.split("(")[0]
    assert_refused(lambda: qq.activation_of(qq.parse_quantizer(text, "w"), "m.h5: layer 'q' (QActivation)"),
                   f"m.h5: layer 'q' (QActivation): {name}", words)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("text", ["binary()", "binary(alpha=1)"])
@pytest.mark.parametrize("own", [True, False])
def test_binary_activation_equals_qkeras(kind, text, own, tmp_path):
    """binary() as an activation: sign(x) with 0 -> +1, the IR's sign; exact against
    QKeras (its input is an exact accumulator)."""
    from nnfpga.compiler.passes.error_bound import framework_bound
    model = build(kind, "quantized_bits(6, 0, alpha=1)", act=_qbits(text) if own else None,
                  after=None if own else _qbits(text))
    graph, theirs = check_equal(model, tmp_path, n=1000)
    assert set(np.unique(theirs)) == {-1.0, 1.0}
    act = graph.nodes[-2 if kind == "conv" else -1]
    assert act.function == "sign"
    assert np.array_equal(framework_bound(graph), np.zeros(theirs.shape[1]))


@pytest.mark.parametrize("text,words", [
    ("binary(use_01=True)", ["binary(use_01=True) is not supported"]),
    ("binary(alpha=0.5)", ["'alpha' is 0.5", "alpha None or 1"]),
    ("binary(alpha='auto_po2')", ["'alpha' is 'auto_po2'", "alpha None or 1"]),
])
def test_binary_activation_options_refused_by_name(text, words):
    assert_refused(lambda: qq.activation_of(qq.parse_quantizer(text, "w"), "m.h5: layer 'q' (QActivation)"),
                   "m.h5: layer 'q' (QActivation): activation binary", words)


@pytest.mark.parametrize("role,text,words", [
    ("weights", "quantized_po2(4, 1, log2_rounding='floor')", ["log2_rounding='floor'", "log2_rounding='rnd'"]),
    ("weights", "ternary(alpha='auto')", ["ternary argument 'alpha' is 'auto'", "one power of two"]),
    ("weights", "binary(alpha='auto_po2')", ["binary argument 'alpha' is 'auto_po2'", "one power of two"]),
    ("weights", "binary(use_01=True)", ["binary(use_01=True) is not supported"]),
    ("weights", "quantized_bits(1, 0)", ["1 bit(s) is not supported", "binary()"]),
    ("weights", "quantized_bits(6, 0, use_stochastic_rounding=True)", ["stochastic rounding"]),
    ("weights", "quantized_ulaw(4)", ["'quantized_ulaw' is not supported", "quantized_bits"]),
    ("activation", "quantized_relu(4, 2, use_sigmoid=1)", ["use_sigmoid and relu_upper_bound"]),
    ("activation", "quantized_relu(4, 0, relu_upper_bound=1.0)", ["use_sigmoid and relu_upper_bound"]),
    ("activation", "quantized_bits(4, 0, symmetric=1)", ["'symmetric' is 1", "symmetric=0"]),
    ("activation", "quantized_po2(4)", ["quantized_po2 is not supported as an activation", "binary"]),
    ("activation", "ternary()", ["ternary is not supported as an activation"]),
    ("activation", "quantized_relu_po2(4)", ["'quantized_relu_po2' is not supported"]),
    ("activation", "quantized_hswish(4)", ["'quantized_hswish' is not supported"]),
])
def test_remaining_quantiser_options_refused_by_name(role, text, words):
    """What QKeras offers and nnfpga still refuses: each by its name and argument."""
    where = "m.h5: layer 'q' (QDense)"

    def read():
        spec = qq.parse_quantizer(text, where)
        if role == "weights":
            qq.layer_weights(spec, where, np.ones((3, 2), dtype=np.float32), "kernel_quantizer")
        else:
            qq.activation_of(spec, where)
    assert_refused(read, where, words)


def test_activation_quantiser_as_weight_quantiser_is_refused():
    assert_refused(lambda: qq.weight_quantizer(qq.parse_quantizer("quantized_tanh(4)", "w"), "m.h5: layer 'd' (QDense)"),
                   "m.h5: layer 'd' (QDense): quantized_tanh cannot quantise weights", ["quantized_bits, ternary"])


# ----------------------------------------------------------------------------- the IR quantiser
def test_per_channel_quantiser_round_trips_json():
    from nnfpga.ir.fixed import FixedType, Overflow, Rounding
    t = FixedType(6, 1, True, Rounding.RND_CONV, Overflow.SAT)
    for q in (Quantizer(WeightKind.FIXED, t, channel_exp=(0, -2, 3)), Quantizer(WeightKind.FIXED, t, auto_po2=True),
              Quantizer(WeightKind.PO2, min_exp=-8, max_exp=7, max_value=0.5)):
        back = Quantizer.from_json(q.to_json())
        assert back == q and back.per_channel == (q.kind is WeightKind.FIXED)
        w = np.random.default_rng(0).normal(size=(4, 3))
        assert np.array_equal(back.apply(w).raw, q.apply(w).raw)
    old = Quantizer(WeightKind.FIXED, t).to_json()
    del old["channel_exp"], old["auto_po2"], old["max_value"]   # written before these fields existed
    assert not Quantizer.from_json(old).per_channel


def test_all_zero_channel_does_not_widen_the_weights():
    from nnfpga.ir.fixed import FixedType, Overflow, Rounding
    t = FixedType(6, 1, True, Rounding.RND_CONV, Overflow.SAT)
    w = np.array([[0.5, 0.0, 0.25], [-0.75, 0.0, 0.125]])
    qa = Quantizer(WeightKind.FIXED, t, channel_exp=(0, -20, 1)).apply(w)
    assert qa.frac == t.frac
    assert np.array_equal(qa.value, np.array([[0.5, 0.0, 0.5], [-0.75, 0.0, 0.25]]))


# ----------------------------------------------------------------------------- firmware
@pytest.mark.slow
def test_per_channel_scales_bit_exact_in_verilator_and_csim(tmp_path):
    """auto_po2 kernel, per-channel alpha bias: the compiled firmware (Verilator, C-sim)
    equals QKeras predict."""
    import json

    from qkeras import quantized_bits, quantized_relu

    from nnfpga.compiler.cli import main
    model = build("conv", quantized_bits(5, 0, alpha="auto_po2"),
                  bias_q=quantized_bits(6, 2, alpha=[1, 0.5, 2, 0.125, 1, 0.25]), after=quantized_relu(6, 2))
    model.save(tmp_path / "m.h5")
    x = on_grid((5, 5, 2), 200, seed=3)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "fw"
    assert main(["compile", str(tmp_path / "m.h5"), "--target", "xcvu9p", "--clock", "200MHz", "-o", str(out)]) == 0
    assert main(["emulate", str(out), "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), model.predict(x, batch_size=200, verbose=0).reshape(200, -1))
    assert main(["verify", str(out), "--data", str(tmp_path / "x.npz"), "--sim", "verilator,csim"]) == 0
    summary = json.loads((out / "verify.json").read_text())
    assert summary["bit_exact"]
    for sim in ("verilator", "csim"):
        assert summary["results"][sim]["mismatches"] == 0 and summary["results"][sim]["samples"] == len(x)


@pytest.mark.slow
def test_hard_tanh_and_sigmoid_bit_exact_in_every_simulator(tmp_path):
    """QDense -> quantized_tanh -> QDense(activation quantized_sigmoid): the firmware
    (Verilator, GHDL, C-sim) equals QKeras predict."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits

    from tests.firmware_check import assert_firmware_bit_exact
    keras.utils.set_random_seed(4)
    inp = keras.Input((10,))
    h = QActivation(quantized_bits(IN_BITS, IN_INT, alpha=1), name="q_in")(inp)
    h = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
               bias_initializer="random_normal", name="d1")(h)
    h = QActivation("quantized_tanh(5)", name="t1")(h)
    h = QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
               activation="quantized_sigmoid(6)", name="d2")(h)
    model = keras.Model(inp, h)
    model.save(tmp_path / "m.h5")
    x = on_grid((10,), 300, seed=5)
    assert_firmware_bit_exact(tmp_path / "m.h5", x, tmp_path, framework=model.predict(x, batch_size=300, verbose=0))


@pytest.mark.slow
def test_relu_negative_slope_bit_exact_in_every_simulator(tmp_path):
    """QDense -> quantized_relu(5, 1, negative_slope=0.25) -> QDense with
    activation quantized_relu(4, 0, negative_slope=0.5): the firmware (Verilator, GHDL,
    C-sim) equals QKeras predict."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    from tests.firmware_check import assert_firmware_bit_exact
    keras.utils.set_random_seed(6)
    inp = keras.Input((10,))
    h = QActivation(quantized_bits(IN_BITS, IN_INT, alpha=1), name="q_in")(inp)
    h = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
               bias_initializer="random_normal", name="d1")(h)
    h = QActivation(quantized_relu(5, 1, negative_slope=0.25), name="r1")(h)
    h = QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
               activation=quantized_relu(4, 0, negative_slope=0.5), name="d2")(h)
    model = keras.Model(inp, h)
    model.save(tmp_path / "m.h5")
    x = on_grid((10,), 300, seed=7)
    theirs = model.predict(x, batch_size=300, verbose=0)
    assert theirs.min() < 0 < theirs.max()
    assert_firmware_bit_exact(tmp_path / "m.h5", x, tmp_path, framework=theirs)


@pytest.mark.slow
def test_float_scaled_and_symmetric_weights_firmware_bit_exact(tmp_path):
    """QDense(alpha='auto') -> quantized_relu(4, 1) -> QDense(symmetric=1, power-of-two
    alphas): the firmware (Verilator, GHDL, C-sim) equals the golden model, which is
    within its stated bound of QKeras predict."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    from nnfpga.compiler.passes.error_bound import framework_bound
    from tests.firmware_check import assert_firmware_bit_exact
    keras.utils.set_random_seed(8)
    inp = keras.Input((10,))
    h = QActivation(quantized_bits(IN_BITS, IN_INT, alpha=1), name="q_in")(inp)
    h = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha="auto"), bias_quantizer=quantized_bits(6, 2, alpha=1),
               bias_initializer="random_normal", name="d1")(h)
    h = QActivation(quantized_relu(4, 1), name="r1")(h)
    h = QDense(4, kernel_quantizer=quantized_bits(5, 0, symmetric=1, alpha=[1, 0.5, 2, 0.25]),
               bias_quantizer=quantized_bits(6, 2, alpha=1), name="d2")(h)
    model = keras.Model(inp, h)
    model.save(tmp_path / "m.h5")
    x = on_grid((10,), 300, seed=9)
    report = assert_firmware_bit_exact(tmp_path / "m.h5", x, tmp_path)
    bound = framework_bound(build_graph(tmp_path / "m.h5"))
    assert report["accuracy"]["error_bound_vs_framework_max"] == pytest.approx(float(bound.max()))
    golden = emulate(build_graph(tmp_path / "m.h5"), x).reshape(len(x), -1)
    assert np.all(np.abs(golden - model.predict(x, batch_size=300, verbose=0)) <= bound + 1e-5)


@pytest.mark.parametrize("act", ["quantized_relu(4, 0, negative_slope=0.5)", "binary(alpha=1)"])
def test_huge_inputs_are_not_claimed_exact(act, tmp_path):
    """QKeras returns ``x_u + (xq - x_u)`` in float32: for an input of 2**24 or more (in
    units of 2**integer) that is not xq (QKeras gives 0 for -2**25 where the quantiser's
    value is -0.5).  Such an input range is not claimed exact against QKeras (no bound),
    while the same layers on a small input range are (bound 0)."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits

    from nnfpga.compiler.passes.error_bound import framework_bound

    def model(in_integer: int):
        inp = keras.Input((2,))
        h = QActivation(quantized_bits(in_integer + 4, in_integer, alpha=1), name="q_in")(inp)
        h = QDense(1, kernel_quantizer=quantized_bits(4, 3, alpha=1), use_bias=False, name="d")(h)
        m = keras.Model(inp, QActivation(_qbits(act), name="a")(h))
        m.get_layer("d").set_weights([np.array([[4.0], [4.0]], dtype=np.float32)])
        return m

    big = model(24)
    x = np.array([[-2.0 ** 22, -2.0 ** 22 - 1]], dtype=np.float32)   # the layer's value: -2**25 - 4
    big.save(tmp_path / "big.h5")
    graph = build_graph(tmp_path / "big.h5")
    assert emulate(graph, x).item() != big.predict(x, verbose=0).item()   # QKeras's float32 sum went wrong
    assert framework_bound(graph) is None
    model(8).save(tmp_path / "small.h5")
    assert np.array_equal(framework_bound(build_graph(tmp_path / "small.h5")), np.zeros(1))
