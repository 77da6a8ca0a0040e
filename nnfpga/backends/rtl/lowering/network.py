"""`lower`: an IR graph to a `Netlist`, one layer rule per op type (`LAYER_RULES`).

Supported: Input; Dense, BankedDense and Conv2D (any reuse factor) with the
piecewise-linear Activations that follow them folded into their output stage (when
nothing else reads the layer); MaxPool2D; ScaleShift (an unfolded BatchNorm); Quantize
(a type per element, HGQ2); tanh / sigmoid Activations as ROM layers; softmax; a
piecewise-linear Activation that follows no linear layer as a conversion layer;
Reshape/Flatten (wiring: the bus is the IR layout, NHWC flattened row-major) and Gather
(wiring in another order); the joins Add and Concatenate (`merge`: the branches are
delayed to one stage first, so the output has one latency).  Anything else raises
`RtlUnsupportedError` naming the layer.

Numerics follow the golden emulator exactly; only the representation changes (see
`builder`).  Every signal's range is exact for its position, per element, and `lower`
checks it stays inside the IR's per-tensor range.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from nnfpga.backends.rtl.distinct import distinct_live_ops
from nnfpga.backends.rtl.dsp import layer_dsp
from nnfpga.backends.rtl.lowering.builder import Builder, RtlConfig, Value, unsupported
from nnfpga.backends.rtl.lowering.conversions import ELEMENT_RULES, lower_conversion_layer
from nnfpga.backends.rtl.lowering.linear import lower_linear
from nnfpga.backends.rtl.lowering.merge import lower_add, lower_concatenate
from nnfpga.backends.rtl.lowering.plans import banked_plan, conv_plan, dense_plan
from nnfpga.backends.rtl.lowering.pool import lower_maxpool
from nnfpga.backends.rtl.lowering.quantize import lower_quantize
from nnfpga.backends.rtl.lowering.scale_shift import lower_scale_shift
from nnfpga.backends.rtl.lowering.tables import lower_softmax, lower_table
from nnfpga.backends.rtl.names import PACKAGE_SUFFIX, RESERVED, Namer, top_name, unit_name
from nnfpga.backends.rtl.acyclic import acyclic_pass
from nnfpga.backends.rtl.netlist import LayerInfo, Netlist, Reg
from nnfpga.ir.fixed import FixedType
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops.activation_functions import names_where
from nnfpga.ir.ops.base import TensorInfo
from nnfpga.ir.ops import (Activation, Add, BankedDense, Concatenate, Conv2D, Dense, Gather, Input, MaxPool2D,
                           Op as IrOp, Quantize, Reshape, ScaleShift)


@dataclass
class _Tensor:
    """A tensor built by `lower`: its values, the frac of its IR type, its IR shape, and the
    pipeline stage at which the layer that made it delivers it."""

    values: list[Value]
    type_frac: int
    shape: tuple[int, ...]
    stage: int


def _only_reader(graph: Graph, node: IrOp, reader: IrOp) -> bool:
    """``reader`` reads ``node`` alone, and nothing else reads it (it can fold into it)."""
    return (reader.inputs == [node.name] and node.name not in graph.outputs
            and all(c is reader for c in graph.consumers(node.name)))


@dataclass
class LayerInput:
    """What a layer rule gets besides the builder and its node."""

    values: list[Value]
    shape: tuple[int, ...]        # the IR shape of the tensor the values hold
    type_frac: int                # frac of its IR type
    folded: list[Activation]      # the activations folded into a linear layer's output stage
    cfg: RtlConfig
    info: TensorInfo              # the IR tensor (range) the values hold


LayerRule = Callable[[Builder, IrOp, LayerInput], tuple[list[Value], LayerInfo]]


def _dense(b: Builder, n: Dense, x: LayerInput):
    return lower_linear(b, dense_plan(n, len(x.values), x.type_frac), x.values, x.folded, x.cfg, n, x.info)


def _banked(b: Builder, n: BankedDense, x: LayerInput):
    return lower_linear(b, banked_plan(n, len(x.values), x.type_frac), x.values, x.folded, x.cfg, n, x.info)


def _conv(b: Builder, n: Conv2D, x: LayerInput):
    return lower_linear(b, conv_plan(n, x.shape, x.type_frac), x.values, x.folded, x.cfg, n, x.info)


def _maxpool(b: Builder, n: MaxPool2D, x: LayerInput):
    return lower_maxpool(b, n, x.values, x.shape, x.type_frac, x.cfg)


def _scale_shift(b: Builder, n: ScaleShift, x: LayerInput):
    return lower_scale_shift(b, n, x.values, x.cfg)


def _quantize(b: Builder, n: Quantize, x: LayerInput):
    return lower_quantize(b, n, x.values, x.shape, x.cfg)


def function_form(fn) -> str | None:
    """How the RTL builds the activation function ``fn`` (an `ActivationFunction`):
    "table", "softmax", "conversion", or None (it cannot)."""
    if fn.name == "softmax":  # its own construction: max tree, exp table, sum, reciprocal
        return "softmax"
    if fn.table_lookup:
        return "table"
    if fn.piecewise_linear and fn.name in ELEMENT_RULES:
        return "conversion"
    return None


def _activation_form(n: Activation) -> str | None:
    """How the RTL builds ``n`` (`function_form`), or None when it cannot (also for a
    table function whose tables are missing)."""
    form = function_form(n.properties)
    if form == "softmax" and (n.table is None or n.inv_table is None):
        return None
    if form == "table" and n.table is None:
        return None
    return form


def _foldable(n: IrOp) -> bool:
    return isinstance(n, Activation) and n.properties.foldable and n.function in ELEMENT_RULES


def _activation(b: Builder, n: Activation, x: LayerInput):
    form = _activation_form(n)
    if form == "table":
        return lower_table(b, n, x.values)
    if form == "softmax":
        return lower_softmax(b, n, x.values, x.type_frac, x.cfg)
    return lower_conversion_layer(b, n, x.values, x.type_frac, x.cfg)


#: The layer rule of every op type the RTL backend builds.
LAYER_RULES: dict[type, LayerRule] = {Dense: _dense, BankedDense: _banked, Conv2D: _conv,
                                      MaxPool2D: _maxpool, Activation: _activation, ScaleShift: _scale_shift,
                                      Quantize: _quantize}
#: Op types the RTL builds as wiring: the same signals, in (another) order.
WIRING = (Reshape, Gather)
#: Ops that read several tensors (`merge`: branches aligned to one stage first).
JOINS = (Add, Concatenate)
#: Ops whose output stage can take the folded activations that follow them.
FOLDS_ACTIVATIONS = (Dense, BankedDense, Conv2D)


def _why_unsupported(n: IrOp) -> str | None:
    if isinstance(n, WIRING + JOINS):
        return None
    if isinstance(n, Activation):
        if _activation_form(n) is not None:
            return None
        return (f"supported activations are {', '.join(ELEMENT_RULES)}, "
                f"{', '.join(names_where(lambda f: f.table_lookup))} and softmax (with their tables)")
    if type(n) in LAYER_RULES:
        return None
    names = ", ".join(t.__name__ for t in (*LAYER_RULES, *WIRING, *JOINS))
    return f"{n.op_type} is not supported by the RTL backend (supported: {names})"


def _check_graph(graph: Graph, nodes: list[IrOp]) -> None:
    for n in nodes:
        if n.info is None:
            raise ValueError(f"node {n.name!r} has no type: run assign_types (range analysis) first")
    if len(graph.outputs) != 1 or graph.outputs[0] != nodes[-1].name:
        raise ValueError(f"model {graph.name!r}: the output must be the last node")
    if not isinstance(nodes[0], Input):
        raise ValueError(f"model {graph.name!r} does not start with an Input")
    if bool(graph.banks) != any(isinstance(n, BankedDense) for n in nodes):
        raise ValueError(f"model {graph.name!r}: banked layers and the graph's bank count disagree")
    for n in nodes[1:]:
        why = _why_unsupported(n)
        if why is not None:
            raise unsupported(n, why)
    if not any(isinstance(n, FOLDS_ACTIVATIONS) for n in nodes):
        raise ValueError(f"model {graph.name!r} has no Dense or Conv2D layer: nothing to build")


@acyclic_pass  # tens of thousands of objects and no reference cycle
def lower(graph: Graph, config: RtlConfig | None = None, name: str | None = None,
          check: bool = True, dsp_type: str = "DSP48E2") -> Netlist:
    """Build the RTL description of ``graph`` (a typed chain; see the module doc).
    ``name``: the top entity/module (default `names.top_name` of the graph name); no
    signal is given it or the name of another design unit of the core.  ``check``:
    re-derive every range and stage of the result (`Netlist.check`; the tests always
    do, the compiler skips the re-derivation of what the builder just derived -- the
    firmware's bit-exactness is what `nnfpga verify` proves).  ``dsp_type``: the part's
    DSP primitive, for the per-layer DSP counts (`dsp.ops_dsp`)."""
    cfg = config or RtlConfig()
    nodes = list(graph.nodes)
    _check_graph(graph, nodes)
    inp = nodes[0]

    b = Builder()
    b.shift_add = cfg.shift_add
    top = name or top_name(graph.name)
    b.namer = Namer(set(RESERVED) | {top, unit_name(top, PACKAGE_SUFFIX)})
    in_type = inp.info.type
    n_in = int(np.prod(inp.info.shape))
    b.layer = inp.name
    inputs = [b.input_slice(f"{inp.name}_x{k}", k, in_type) for k in range(n_in)]
    values: list[Value] = [(s, in_type.frac) for s in inputs]
    bank = None
    if graph.banks:
        bits = graph.bank_bits
        bank = b.bank_tap = b.input_slice(f"{inp.name}_bank", n_in, FixedType(bits, bits, False), n_in * in_type.width)
    layers: list[LayerInfo] = []
    if cfg.register_input:
        first = len(b.ops)
        values = [(b.reg(f"{inp.name}_xr{k}", s, f), f) for k, (s, f) in enumerate(values)]
        layers.append(LayerInfo(inp.name, "input", [inp.name], 1, -1,
                                register_bits=sum(op.out.width for op in b.ops[first:] if isinstance(op, Reg)),
                                description="input register"))
    # each tensor built so far: its values (IR layout, row-major), the frac of its IR type,
    # its shape, and the stage after the layer that made it
    tensors: dict[str, _Tensor] = {inp.name: _Tensor(values, in_type.frac, tuple(inp.info.shape),
                                                     1 if cfg.register_input else 0)}
    if cfg.register_input:
        layers[-1].first_stage = 0
    k = 1
    while k < len(nodes):
        n = nodes[k]
        src = tensors[n.inputs[0]]
        if isinstance(n, WIRING):   # row-major flattening: the bus order does not change
            vals = [src.values[i] for i in n.index] if isinstance(n, Gather) else src.values
            tensors[n.name] = _Tensor(vals, src.type_frac, tuple(n.info.shape), src.stage)
            k += 1
            continue
        start = max(tensors[i].stage for i in n.inputs)
        if isinstance(n, JOINS):
            operands = [tensors[i].values for i in n.inputs]
            if isinstance(n, Add):
                vals, info = lower_add(b, n, operands)
            else:
                vals, info = lower_concatenate(b, n, operands, [tensors[i].shape for i in n.inputs])
        else:
            folded = []
            if isinstance(n, FOLDS_ACTIVATIONS):
                while (k + 1 < len(nodes) and _foldable(nodes[k + 1]) and _only_reader(graph, nodes[k], nodes[k + 1])):
                    folded.append(nodes[k + 1])
                    k += 1
            vals, info = LAYER_RULES[type(n)](b, n, LayerInput(src.values, src.shape, src.type_frac, folded, cfg,
                                                               graph.node(n.inputs[0]).info))
        info.first_stage = start
        layers.append(info)
        tensors[nodes[k].name] = _Tensor(vals, nodes[k].info.type.frac, tuple(nodes[k].info.shape),
                                         start + info.latency)
        k += 1

    out_node = nodes[-1]
    out_type = out_node.info.type
    values = tensors[out_node.name].values
    b.layer = "(output wiring)"
    outputs = [b.materialize(f"{out_node.name}_o{j}", v, f, out_type.frac) for j, (v, f) in enumerate(values)]
    stage = tensors[out_node.name].stage
    nl = Netlist(name=top, model_name=graph.name, in_type=in_type, out_type=out_type,
                 inputs=inputs, outputs=outputs, ops=b.ops, layers=layers, latency=stage,
                 config=asdict(cfg), ii=max(info.ii for info in layers), bank=bank, banks=graph.banks)
    dsp = layer_dsp(distinct_live_ops(nl), dsp_type)
    for info in layers:
        info.dsp = dsp.get(info.name, 0)
    if check:
        nl.check()
    return nl
