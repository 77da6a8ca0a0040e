"""Random IR models built directly (no TensorFlow), shared by the backend tests."""

from __future__ import annotations

import numpy as np

from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Dense, Input
from nnfpga.ir.quant import Quantizer, WeightKind


def random_mlp(sizes: list[int], seed: int = 0, weight_kind: str = "fixed", weight_bits: int = 6,
               act_bits: int = 8, act_int: int = 3, input_type: FixedType | None = None,
               final_activation: str = "linear", reuse_factor: int = 1, sparsity: float = 0.2,
               name: str = "mlp") -> Graph:
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` with quantised weights, ReLU hidden layers
    (unsigned ``act_bits``/``act_int`` RND_CONV/SAT like QKeras quantized_relu) and a
    final activation ("linear": exact accumulator out, "relu", "tanh"/"sigmoid" tables)."""
    rng = np.random.default_rng(seed)
    in_type = input_type or FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT)
    nodes = [Input("input", [], out_type=in_type, shape=(sizes[0],))]
    wq = {"fixed": Quantizer(WeightKind.FIXED, FixedType(weight_bits, 1, True, Rounding.RND_CONV, Overflow.SAT)),
          "ternary": Quantizer(WeightKind.TERNARY), "binary": Quantizer(WeightKind.BINARY),
          "po2": Quantizer(WeightKind.PO2, min_exp=-4, max_exp=1)}[weight_kind]
    bq = Quantizer(WeightKind.FIXED, FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT))
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        k = rng.normal(0, 1 / np.sqrt(a), (a, b))
        k[rng.random((a, b)) < sparsity] = 0.0
        dense = Dense(f"fc{i + 1}", [nodes[-1].name], kernel=k, bias=rng.normal(0, 0.5, b),
                      kernel_quantizer=wq, bias_quantizer=bq, reuse_factor=reuse_factor, source_layer=f"fc{i + 1}")
        dense.kernel_q = wq.apply(k)
        dense.bias_q = bq.apply(dense.bias)
        nodes.append(dense)
        last = i == len(sizes) - 2
        if not last:
            nodes.append(Activation(f"relu{i + 1}", [dense.name], function="relu",
                                    out_type=FixedType(act_bits, act_int, False, Rounding.RND_CONV, Overflow.SAT)))
        elif final_activation == "relu":
            nodes.append(Activation("out_relu", [dense.name], function="relu",
                                    out_type=FixedType(act_bits, act_int, False, Rounding.RND_CONV, Overflow.SAT)))
        elif final_activation in ("tanh", "sigmoid"):
            from nnfpga.compiler.frontends.precision import Precision
            nodes.append(Activation(f"out_{final_activation}", [dense.name], function=final_activation,
                                    table=Precision().table(final_activation)))
    graph = Graph(name, nodes, [nodes[-1].name])
    return assign_types(graph)


def random_inputs(graph: Graph, n: int, seed: int = 1) -> np.ndarray:
    """Float inputs spanning the input type's range (with some saturation)."""
    t = graph.input.info.type
    rng = np.random.default_rng(seed)
    return rng.uniform(t.min_value * 1.1, t.max_value * 1.1, (n, *graph.input.info.shape))


def leaky_mlp(sizes: list[int], seed: int = 0, reuse_factor: int = 1, name: str = "leaky_mlp") -> Graph:
    """`random_mlp` with leaky ReLUs: the hidden ReLUs become leaky ReLUs (slopes 0.1 and
    0.01, multipliers by 3277 * 2**-15 and 655 * 2**-16) into signed RND_CONV/SAT types, a
    stand-alone leaky ReLU (slope 0.01, exact output type) reads the input, and a final
    one (slope 0.25: wiring) has an exact output type."""
    g = random_mlp(sizes, seed=seed, reuse_factor=reuse_factor, name=name)
    nodes, k = [], 0
    for n in g.nodes:
        if isinstance(n, Activation) and n.function == "relu":
            n = Activation(n.name, n.inputs, function="leaky_relu", alpha=(0.1, 0.01)[k % 2],
                           out_type=FixedType(9, 4, True, Rounding.RND_CONV, Overflow.SAT), source_layer=n.name)
            k += 1
        nodes.append(n)
    nodes.insert(1, Activation("leaky_in", ["input"], function="leaky_relu", alpha=0.01))
    nodes[2].inputs = ["leaky_in"]
    nodes.append(Activation("leaky_out", [nodes[-1].name], function="leaky_relu", alpha=0.25))
    return assign_types(Graph(name, nodes, ["leaky_out"]))
