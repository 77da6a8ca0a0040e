"""How IR nodes group into the source model's layers (``node.source_layer``).

A Keras ``Dense(…, activation="tanh")`` named ``hidden1`` becomes two IR nodes, the
Dense ``hidden1`` (the *primary* node) and the Activation ``hidden1_tanh`` (its *fused
activation*); both carry ``source_layer == "hidden1"``.  The configuration file and the
reports address layers by that source name.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnfpga.ir.fixed import FixedType
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, Op, ScaleShift
from nnfpga.ir.tables import LookupTable


@dataclass
class Layer:
    name: str
    nodes: list[Op]

    @property
    def primary(self) -> Op:
        return self.nodes[0]

    @property
    def weights(self) -> Dense | Conv2D | None:
        return self.primary if isinstance(self.primary, (Dense, Conv2D)) else None

    @property
    def weighted(self) -> Dense | Conv2D | ScaleShift | None:
        """The node whose constants the ``weight``/``bias`` keys set: a Dense/Conv2D, or the
        ScaleShift of a BatchNormalization that was not folded (its scale and shift)."""
        return self.primary if isinstance(self.primary, (Dense, Conv2D, ScaleShift)) else None

    @property
    def activation(self) -> Activation | None:
        """The fused activation (an Activation node after the primary one)."""
        return next((n for n in self.nodes[1:] if isinstance(n, Activation)), None)

    @property
    def tables(self) -> list[Activation]:
        """The activations that read lookup tables (`ActivationFunction.tables`)."""
        return [n for n in self.nodes if isinstance(n, Activation) and n.properties.tables]

    @property
    def is_input(self) -> bool:
        return isinstance(self.primary, Input)

    def describe(self) -> str:
        p = self.primary
        if isinstance(p, Dense):
            what = f"Dense {p.n_in} -> {p.n_out}"
        elif isinstance(p, Conv2D):
            what = f"Conv2D {p.kernel_size[0]}x{p.kernel_size[1]}, {p.n_filters} filters"
        elif isinstance(p, Activation):
            what = f"Activation {p.function}"
        elif isinstance(p, ScaleShift):
            what = f"BatchNormalization (scale and shift), {p.n_channels} channels"
        else:
            what = p.op_type
        act = self.activation
        if act is not None:
            what += f", then {act.function}"
        return what


def layer_groups(graph: Graph) -> dict[str, Layer]:
    """Source layer name -> its nodes, in graph order (nodes without a source name are
    grouped under their own name)."""
    out: dict[str, Layer] = {}
    for n in graph.nodes:
        key = n.source_layer or n.name
        out.setdefault(key, Layer(key, [])).nodes.append(n)
    return out


def weight_nodes(graph: Graph) -> list[Dense | Conv2D]:
    return [n for n in graph.nodes if isinstance(n, (Dense, Conv2D))]


def layer_of(node: Op) -> str:
    return node.source_layer or node.name


def rebuild_table(node: Activation, out_type: FixedType | None = None, index_bits: int | None = None) -> None:
    """Rebuild the table of a table lookup (tanh, sigmoid), or the tables behind an
    output conversion (softmax's exp and reciprocal tables), with a new entry type (of a
    lookup; the output type of the other) and/or a new number of index bits (same index
    range: integer bits kept)."""
    def index(t: FixedType) -> FixedType:
        if index_bits is None:
            return t
        return FixedType(index_bits, t.integer, t.signed, t.rounding, t.overflow)
    fn = node.properties
    if fn.table_lookup:
        t = node.table
        node.table = LookupTable.build(t.function, index(t.index_type), out_type or t.out_type)
    elif fn.tables:
        if index_bits is not None:
            node.table = LookupTable.build(node.table.function, index(node.table.index_type),
                                           node.table.out_type)
            node.inv_table = LookupTable.build(node.inv_table.function, index(node.inv_table.index_type),
                                               node.inv_table.out_type)
        if out_type is not None:
            node.out_type = out_type
    else:
        raise ValueError(f"{node.name!r} ({node.function}) has no lookup table")
