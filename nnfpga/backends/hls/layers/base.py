"""What every layer emitter receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnfpga.ir.fixed import FixedType
from nnfpga.ir.ops.base import Op, TensorInfo


@dataclass
class LayerContext:
    """One node to emit: its C++ id, its input's info and the typedef names of the
    input and output element types (declared by the writer)."""

    node: Op
    id: str
    x: TensorInfo
    x_t: str
    y_t: str
    #: the further inputs of a node that reads several (`Add`, `Concatenate`): (info,
    #: typedef name) each; their arrays are ``x1``, ``x2``, ...
    more: list[tuple[TensorInfo, str]] = field(default_factory=list)

    @property
    def inputs(self) -> list[tuple[str, TensorInfo, str]]:
        """(array name, info, typedef name) of every input, in order."""
        return [("x", self.x, self.x_t)] + [(f"x{k}", info, t) for k, (info, t) in enumerate(self.more, 1)]

    @property
    def n_in(self) -> int:
        return int(np.prod(self.x.shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.node.info.shape))

    @property
    def function_name(self) -> str:
        return f"layer_{self.id}"

    def signature(self) -> str:
        ins = "".join(f"const {t} {a}[{int(np.prod(info.shape))}], " for a, info, t in self.inputs)
        return f"static void {self.function_name}({ins}{self.y_t} y[{self.n_out}])"

    def header_pragmas(self, ii: int = 1) -> str:
        """Pragmas opening every layer function: fully parallel I/O, pipelined at ``ii``."""
        return (f"#pragma HLS PIPELINE II={ii}\n"
                + "".join(f"#pragma HLS ARRAY_PARTITION variable={a} complete dim=0\n" for a, _, _ in self.inputs)
                + "#pragma HLS ARRAY_PARTITION variable=y complete dim=0\n")


@dataclass
class LayerCode:
    """The C++ of one layer.

    ``typedefs``: extra (name, type, comment) this layer needs besides its output type;
    ``helpers``: C++ placed before the layer function (e.g. a multiplier-free MAC);
    ``files``: headers under ``weights/`` (relative path -> text);
    ``reuse_factor``: the layer's initiation interval.
    """

    function: str
    typedefs: list[tuple[str, FixedType, str]] = field(default_factory=list)
    helpers: str = ""
    files: dict[str, str] = field(default_factory=dict)
    reuse_factor: int = 1
    summary: str = ""
