"""Hypothesis strategies: fixed-point types and small random networks built in the IR.

A network is drawn as structural choices (layer stack, widths, quantisers, sparsity,
reuse factors) plus one integer seed for the weight values, so Hypothesis shrinks the
structure while the weights stay reproducible from the seed.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from nnfpga.compiler.frontends.precision import Precision
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, MaxPool2D, Reshape, ScaleShift
from nnfpga.ir.quant import Quantizer, WeightKind

ROUNDINGS = st.sampled_from(list(Rounding))
OVERFLOWS = st.sampled_from(list(Overflow))


@st.composite
def fixed_types(draw, max_width: int = 62, signed: bool | None = None) -> FixedType:
    """Any ap_fixed / ap_ufixed the IR supports: integer bits well outside [0, width]."""
    width = draw(st.integers(1, max_width))
    integer = draw(st.integers(-width - 4, width + 8))
    sign = draw(st.booleans()) if signed is None else signed
    return FixedType(width, integer, sign, draw(ROUNDINGS), draw(OVERFLOWS))


@st.composite
def small_types(draw, signed: bool | None = None, min_width: int = 1) -> FixedType:
    """Layer and input types of the random networks: widths 1-8."""
    width = draw(st.integers(min_width, 8))
    integer = draw(st.integers(-1, width + 1))
    sign = draw(st.booleans()) if signed is None else signed
    return FixedType(width, integer, sign, draw(ROUNDINGS), draw(OVERFLOWS))


@st.composite
def weight_quantizers(draw) -> Quantizer:
    kind = draw(st.sampled_from(["fixed", "fixed", "ternary", "binary", "po2"]))
    if kind == "fixed":
        bits = draw(st.integers(1, 8))
        return Quantizer(WeightKind.FIXED, FixedType(bits, draw(st.integers(0, 2)), True,
                                                     Rounding.RND_CONV, Overflow.SAT))
    if kind == "po2":
        lo = draw(st.integers(-4, 0))
        return Quantizer(WeightKind.PO2, min_exp=lo, max_exp=draw(st.integers(lo, 2)))
    return Quantizer(WeightKind.TERNARY if kind == "ternary" else WeightKind.BINARY)


BIAS_Q = Quantizer(WeightKind.FIXED, FixedType(6, 3, True, Rounding.RND_CONV, Overflow.SAT))

#: Activation choices after a Dense / Conv2D layer (None: the accumulator goes on).
ACTIVATIONS = ["none", "relu", "relu_exact", "linear", "leaky_relu", "hard_sigmoid", "tanh", "sigmoid"]


@st.composite
def activation_spec(draw, allow_tables: bool = True) -> dict | None:
    choices = ACTIVATIONS if allow_tables else ACTIVATIONS[:-2]
    kind = draw(st.sampled_from(choices))
    if kind == "none":
        return None
    if kind in ("tanh", "sigmoid"):
        return {"function": kind}
    if kind == "relu_exact":
        return {"function": "relu", "out_type": None}
    if kind == "relu":
        return {"function": "relu", "out_type": draw(small_types(signed=False))}
    if kind == "hard_sigmoid":
        return {"function": "hard_sigmoid", "out_type": draw(st.one_of(st.none(), small_types(signed=False)))}
    if kind == "leaky_relu":
        return {"function": "leaky_relu", "alpha": draw(st.sampled_from([0.1, 0.25, 0.3, 0.01])),
                "out_type": draw(st.one_of(st.none(), small_types(signed=True, min_width=2)))}
    return {"function": "linear", "out_type": draw(small_types())}


def batchnorm_spec():
    """An unfolded BatchNorm (a ScaleShift) or None: scales of any weight kind (binary: +-1,
    ternary: 0 too, po2: shifts, fixed: products), the output exact or a small type."""
    return st.one_of(st.none(), st.none(), st.fixed_dictionaries(
        {"quantizer": weight_quantizers(), "out_type": st.one_of(st.none(), small_types())}))


@st.composite
def network_specs(draw) -> dict:
    """A plain description of a random network; `build_network` turns it into a graph."""
    image = draw(st.booleans())
    spec: dict = {"seed": draw(st.integers(0, 2 ** 32 - 1)), "input_type": draw(small_types()),
                  "image": image, "convs": [], "dense": []}
    if image:
        spec["shape"] = (draw(st.integers(2, 5)), draw(st.integers(2, 5)), draw(st.integers(1, 2)))
        h, w = spec["shape"][:2]
        for _ in range(draw(st.integers(0, 2))):
            kernel = draw(st.sampled_from([(1, 1), (2, 2), (3, 3), (2, 1)]))
            strides = draw(st.sampled_from([(1, 1), (2, 1)]))
            # a kernel larger than the image is refused unless the padding is "same"
            padding = draw(st.sampled_from(["valid", "same"])) if kernel[0] <= h and kernel[1] <= w else "same"
            pool = draw(st.sampled_from([None, (2, 2), (2, 1)]))
            h, w = _after(h, kernel[0], strides[0], padding), _after(w, kernel[1], strides[1], padding)
            if pool is not None:
                h, w = -(-h // pool[0]), -(-w // pool[1])
            spec["convs"].append({
                "filters": draw(st.integers(1, 3)), "kernel": kernel, "padding": padding, "strides": strides,
                "quantizer": draw(weight_quantizers()), "sparsity": draw(st.sampled_from([0.0, 0.3, 0.7])),
                "reuse": draw(st.integers(1, 4)), "activation": draw(activation_spec(allow_tables=False)),
                "pool": pool, "batchnorm": draw(batchnorm_spec())})
    else:
        spec["shape"] = (draw(st.integers(1, 8)),)
        # the IR refuses a hard sigmoid of an input without fractional bits
        choices = [None, "leaky_relu"] + (["hard_sigmoid"] if spec["input_type"].frac > 0 else [])
        spec["input_activation"] = draw(st.sampled_from(choices))
        spec["input_batchnorm"] = draw(batchnorm_spec())
    for _ in range(draw(st.integers(1, 3))):
        spec["dense"].append({
            "units": draw(st.integers(1, 8)), "quantizer": draw(weight_quantizers()),
            "sparsity": draw(st.sampled_from([0.0, 0.0, 0.5, 0.9, 0.95])), "reuse": draw(st.integers(1, 4)),
            "out_type": draw(st.one_of(st.none(), st.none(), small_types())),
            "activation": draw(activation_spec()), "batchnorm": draw(batchnorm_spec())})
    return spec


def _after(size: int, kernel: int, stride: int, padding: str) -> int:
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def _weights(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, q: Quantizer, sparsity: float):
    w = rng.normal(0, 1.2 / np.sqrt(max(fan_in, 1)), shape)
    qa = q.apply(w)
    if sparsity and q.kind in (WeightKind.FIXED, WeightKind.TERNARY):
        # pruning zeroes the stored integers: binary and po2 weights have no zero
        qa.raw[rng.random(shape) < sparsity] = 0
    return w, qa


def _activation(name: str, src: str, act: dict | None, precision: Precision) -> Activation | None:
    if act is None:
        return None
    fn = act["function"]
    if fn in ("tanh", "sigmoid"):
        return Activation(name, [src], function=fn, table=precision.table(fn))
    return Activation(name, [src], function=fn, out_type=act.get("out_type"), alpha=act.get("alpha"))


def _scale_shift(name: str, src: str, bn: dict | None, rng: np.random.Generator, channels: int
                 ) -> ScaleShift | None:
    if bn is None:
        return None
    s, t = rng.normal(0, 1.0, channels), rng.normal(0, 0.5, channels)
    node = ScaleShift(name, [src], out_type=bn["out_type"], kernel=s, bias=t, kernel_quantizer=bn["quantizer"],
                      bias_quantizer=BIAS_Q)
    node.kernel_q, node.bias_q = bn["quantizer"].apply(s), BIAS_Q.apply(t)
    return node


def build_network(spec: dict, name: str) -> Graph:
    """The typed IR graph of ``spec`` (weights from ``spec['seed']``)."""
    rng = np.random.default_rng(spec["seed"])
    precision = Precision()
    nodes = [Input("input", [], out_type=spec["input_type"], shape=tuple(spec["shape"]))]

    def add(node):
        if node is not None:
            nodes.append(node)

    if spec.get("input_activation"):
        fn = spec["input_activation"]
        add(Activation("act_in", ["input"], function=fn, alpha=0.25 if fn == "leaky_relu" else None))
    cin = spec["shape"][-1]
    add(_scale_shift("bn_in", nodes[-1].name, spec.get("input_batchnorm"), rng, cin))
    for k, c in enumerate(spec["convs"]):
        kshape = (*c["kernel"], cin, c["filters"])
        w, wq = _weights(rng, kshape, int(np.prod(kshape[:3])), c["quantizer"], c["sparsity"])
        b = rng.normal(0, 0.5, c["filters"])
        conv = Conv2D(f"conv{k}", [nodes[-1].name], kernel=w, bias=b, kernel_quantizer=c["quantizer"],
                      bias_quantizer=BIAS_Q, strides=c["strides"], padding=c["padding"], reuse_factor=c["reuse"])
        conv.kernel_q, conv.bias_q = wq, BIAS_Q.apply(b)
        add(conv)
        add(_activation(f"conv{k}_act", conv.name, c["activation"], precision))
        if c["pool"] is not None:
            add(MaxPool2D(f"pool{k}", [nodes[-1].name], pool_size=c["pool"], strides=c["pool"], padding="same"))
        add(_scale_shift(f"conv{k}_bn", nodes[-1].name, c.get("batchnorm"), rng, c["filters"]))
        cin = c["filters"]
    if len(spec["shape"]) > 1:
        add(Reshape("flatten", [nodes[-1].name], target_shape=(-1,)))
    n_in = int(np.prod(assign_types(Graph(name, list(nodes), [nodes[-1].name])).nodes[-1].info.shape))
    for k, d in enumerate(spec["dense"]):
        w, wq = _weights(rng, (n_in, d["units"]), n_in, d["quantizer"], d["sparsity"])
        b = rng.normal(0, 0.5, d["units"])
        dense = Dense(f"fc{k}", [nodes[-1].name], kernel=w, bias=b, kernel_quantizer=d["quantizer"],
                      bias_quantizer=BIAS_Q, reuse_factor=d["reuse"], out_type=d["out_type"])
        dense.kernel_q, dense.bias_q = wq, BIAS_Q.apply(b)
        add(dense)
        add(_activation(f"fc{k}_act", dense.name, d["activation"], precision))
        add(_scale_shift(f"fc{k}_bn", nodes[-1].name, d.get("batchnorm"), rng, d["units"]))
        n_in = d["units"]
    return assign_types(Graph(name, nodes, [nodes[-1].name]))


def grid_inputs(graph: Graph, n: int, seed: int) -> np.ndarray:
    """Raw inputs on the input grid: all-minimum, all-maximum, all-zero (the minimum of
    an unsigned type), then one extreme per element in turn and uniform random raws."""
    t = graph.input.info.type
    shape = graph.input.info.shape
    rng = np.random.default_rng(seed)
    zero = 0 if t.signed else t.min_raw
    rows = [np.full(shape, t.min_raw), np.full(shape, t.max_raw), np.full(shape, zero)]
    rows += [rng.choice([t.min_raw, t.max_raw, zero], size=shape) for _ in range(3)]
    rows += [rng.integers(t.min_raw, t.max_raw, size=shape, endpoint=True) for _ in range(max(0, n - len(rows)))]
    return np.stack(rows).astype(np.int64)
