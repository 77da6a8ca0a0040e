"""The IR graph: ops in topological order, named tensors, JSON round trip.

``input_layout`` / ``output_layout`` (optional, `nnfpga.ir.layout.Layout`) record how the
user's sample layout maps onto the IR's at the graph's boundary, for models converted
from a channels-first framework; None means the user's layout is the IR's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnfpga.ir.layout import Layout
from nnfpga.ir.ops import OP_CLASSES, Input, Op, TensorInfo  # noqa: F401  (registers ops)

IR_VERSION = 1


@dataclass
class Graph:
    name: str
    nodes: list[Op] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    input_layout: Layout | None = None
    output_layout: Layout | None = None
    #: What the compiler passes decided and changed (adjustments, per-pass summaries);
    #: JSON-serialisable, written into the IR only when non-empty.
    annotations: dict = field(default_factory=dict)
    #: Number of weight banks (0: none).  A banked graph takes, with every sample, a bank
    #: index in ``[0, banks)`` that selects the weights of its `BankedDense` layers.
    banks: int = 0

    @property
    def bank_bits(self) -> int:
        """Width of the unsigned bank index (0 for a graph without banks)."""
        return max(1, (self.banks - 1).bit_length()) if self.banks else 0

    def check_bank(self, bank, n: int):
        """``bank`` as an int64 array of ``n`` valid indices (None for an unbanked graph)."""
        if not self.banks:
            if bank is not None:
                raise ValueError(f"model {self.name!r} has no weight banks; do not pass bank indices")
            return None
        if bank is None:
            raise ValueError(f"model {self.name!r} has {self.banks} weight banks: every sample needs "
                             "a bank index")
        b = np.asarray(bank)
        if b.dtype.kind == "f" and np.all(b == np.round(b)):
            b = b.astype(np.int64)
        if b.dtype.kind not in "iu":
            raise ValueError(f"bank indices must be integers, got {b.dtype}")
        b = b.reshape(-1).astype(np.int64)
        if len(b) != n:
            raise ValueError(f"{len(b)} bank indices for {n} samples")
        if b.size and (b.min() < 0 or b.max() >= self.banks):
            raise ValueError(f"bank indices span [{b.min()}, {b.max()}]; model {self.name!r} has "
                             f"banks 0..{self.banks - 1}")
        return b

    def node(self, name: str) -> Op:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}")

    @property
    def inputs(self) -> list[Input]:
        return [n for n in self.nodes if isinstance(n, Input)]

    @property
    def input(self) -> Input:
        ins = self.inputs
        if len(ins) != 1:
            raise ValueError(f"model {self.name!r} has {len(ins)} inputs; exactly one is supported")
        return ins[0]

    @property
    def output(self) -> Op:
        if len(self.outputs) != 1:
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs; exactly one is supported")
        return self.node(self.outputs[0])

    def consumers(self, name: str) -> list[Op]:
        return [n for n in self.nodes if name in n.inputs]

    def infer(self) -> "Graph":
        """Range analysis: fill every node's shape, exact type and raw range, in order."""
        infos: dict[str, TensorInfo] = {}
        for n in self.nodes:
            try:
                n.info = n.infer([infos[i] for i in n.inputs])
            except KeyError as e:
                raise ValueError(f"node {n.name!r} reads {e.args[0]!r}, which is not computed before it") from None
            infos[n.name] = n.info
        return self

    def in_infos(self, n: Op) -> list[TensorInfo]:
        return [self.node(i).info for i in n.inputs]

    def is_chain(self) -> bool:
        """Does every node read exactly the one before it?"""
        return all(cur.inputs == [prev.name] for prev, cur in zip(self.nodes, self.nodes[1:]))

    def chain(self) -> list[Op]:
        """The nodes as a single chain (each node reads the previous one), or an error."""
        for prev, cur in zip(self.nodes, self.nodes[1:]):
            if cur.inputs != [prev.name]:
                raise ValueError(f"model {self.name!r} is not a simple chain at node {cur.name!r}")
        return list(self.nodes)

    # ---------------------------------------------------------------- JSON
    def to_json(self) -> dict:
        d = {"ir_version": IR_VERSION, "name": self.name, "outputs": list(self.outputs),
             "nodes": [n.to_json() for n in self.nodes]}
        for key in ("input_layout", "output_layout"):  # written only when set
            if getattr(self, key) is not None:
                d[key] = getattr(self, key).to_json()
        if self.annotations:
            d["annotations"] = self.annotations
        if self.banks:
            d["banks"] = self.banks
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Graph":
        if d.get("ir_version") != IR_VERSION:
            raise ValueError(f"IR version {d.get('ir_version')!r} is not supported (expected {IR_VERSION})")
        return cls(d["name"], [Op.from_json(n) for n in d["nodes"]], list(d["outputs"]),
                   Layout.from_json(d.get("input_layout")), Layout.from_json(d.get("output_layout")),
                   dict(d.get("annotations", {})), int(d.get("banks", 0)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))
