"""Random IR models built directly (no TensorFlow), shared by the backend tests."""

from __future__ import annotations

import numpy as np

from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Dense, Input, Reshape
from nnfpga.ir.quant import QuantArray, Quantizer, WeightKind


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


def hard_sigmoid_mlp(sizes: list[int], seed: int = 0, weight_kind: str = "fixed", reuse_factor: int = 1,
                     name: str = "hard_sigmoid_mlp") -> Graph:
    """`random_mlp` with hard sigmoids: a stand-alone one (exact output type, ufixed<7,1>)
    reads the input; the hidden ReLUs become hard sigmoids ``hs1``, ``hs2``, ... after
    their Dense layers, into ufixed<7,0,RND,SAT> (1 saturates to 127/128) and
    ufixed<5,0,TRN,WRAP> (1 wraps to 0) in turn; a final one has an exact output type."""
    g = random_mlp(sizes, seed=seed, weight_kind=weight_kind, reuse_factor=reuse_factor, name=name)
    hidden = (FixedType(7, 0, False, Rounding.RND, Overflow.SAT), FixedType(5, 0, False, Rounding.TRN, Overflow.WRAP))
    nodes, k, renamed = [], 0, {}
    for n in g.nodes:
        n.inputs = [renamed.get(i, i) for i in n.inputs]
        if isinstance(n, Activation) and n.function == "relu":
            renamed[n.name] = f"hs{k + 1}"
            n = Activation(f"hs{k + 1}", n.inputs, function="hard_sigmoid", out_type=hidden[k % 2],
                           source_layer=f"hs{k + 1}")
            k += 1
        nodes.append(n)
    nodes.insert(1, Activation("hs_in", ["input"], function="hard_sigmoid"))
    nodes[2].inputs = ["hs_in"]
    nodes.append(Activation("hs_out", [nodes[-1].name], function="hard_sigmoid"))
    return assign_types(Graph(name, nodes, ["hs_out"]))


def hard_sigmoid_corner_graph() -> Graph:
    """Two unsigned 6-bit inputs (exhaustively testable) -> Dense 2->5 (weights of kernel
    frac -1) into fixed<16,13,RND,SAT>, outputs never negative, never positive, of both
    signs, constant, and one in multiples of 32 (weights +-2**8: it arrives with a
    deferred shift, at frac -5) -> hard_sigmoid with an exact output type -> Dense 5->3
    -> hard_sigmoid into ufixed<4,0,RND_CONV,SAT> (rounds; 1 saturates) -> Reshape -> a
    stand-alone hard_sigmoid into fixed<4,1,TRN,WRAP>."""
    nodes = [Input("in", [], out_type=FixedType(6, 2, False, Rounding.TRN, Overflow.WRAP), shape=(2,))]

    def dense(name, kernel, bias, kernel_frac, out_type=None):
        d = Dense(name, [nodes[-1].name], kernel=np.asarray(kernel, float), bias=np.asarray(bias, float),
                  out_type=out_type)
        d.kernel_q = QuantArray(np.asarray(kernel, np.int64), kernel_frac)
        d.bias_q = QuantArray(np.asarray(bias, np.int64), 0)
        nodes.append(d)

    dense("fc1", [[1, -3, 5, 0, 256], [3, -1, -7, 0, -256]], [0, -1, 3, 2, 0], -1,
          out_type=FixedType(16, 13, True, Rounding.RND, Overflow.SAT))
    nodes.append(Activation("hs1", ["fc1"], function="hard_sigmoid"))
    dense("fc2", [[3, -6, 1], [-5, 7, 2], [6, 2, -7], [1, 1, 1], [4, -3, 5]], [0, 1, -1], 3)
    nodes.append(Activation("hs2", ["fc2"], function="hard_sigmoid",
                            out_type=FixedType(4, 0, False, Rounding.RND_CONV, Overflow.SAT)))
    nodes.append(Reshape("flat", ["hs2"], target_shape=(-1,)))   # hs3 follows no Dense
    nodes.append(Activation("hs3", ["flat"], function="hard_sigmoid",
                            out_type=FixedType(4, 1, True, Rounding.TRN, Overflow.WRAP)))
    return assign_types(Graph("hard_sigmoid_corner", nodes, ["hs3"]))
