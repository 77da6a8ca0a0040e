"""From a model to a typed, quantised IR graph: frontend, then the passes in order."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from nnfpga.compiler.errors import UserError
from nnfpga.compiler.frontends.keras import Precision, keras_to_ir
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.compiler.passes.fold_batchnorm import fold_batchnorm
from nnfpga.compiler.passes.quantize_weights import quantize_weights
from nnfpga.ir.graph import Graph

#: (name, pass) in the order they run; each takes and returns the graph.
PIPELINE: list[tuple[str, Callable[[Graph, Precision], Graph]]] = [
    ("fold_batchnorm", lambda g, p: fold_batchnorm(g)),
    ("quantize_weights", lambda g, p: quantize_weights(g, p.weight_frac)),
    ("assign_types", lambda g, p: assign_types(g)),
]


def load_model(source, precision: Precision | None = None) -> Graph:
    """Any supported model (path or live object) as an unquantised IR graph."""
    from nnfpga.compiler.frontends import pytorch  # imports torch only when used
    suffix = Path(source).suffix.lower() if isinstance(source, (str, Path)) else ""
    if suffix == ".onnx" or type(source).__name__ == "ModelProto":
        from nnfpga.compiler.frontends.onnx import onnx_to_ir
        return onnx_to_ir(source, precision)
    if suffix in (".pt", ".pth") or pytorch.is_torch_model(source):
        return pytorch.torch_to_ir(source, precision)
    return keras_to_ir(source, precision)


def build_graph(source, precision: Precision | None = None, dump_dir: Path | None = None) -> Graph:
    precision = precision or Precision()
    graph = load_model(source, precision)
    for name, run in PIPELINE:
        try:
            graph = run(graph, precision)
        except ValueError as e:  # the IR reports model problems as ValueError
            raise UserError(f"{source if isinstance(source, (str, Path)) else 'model'}: {e}") from None
        if dump_dir is not None:
            dump_dir.mkdir(parents=True, exist_ok=True)
            graph.save(dump_dir / f"{len(list(dump_dir.iterdir())):02d}_{name}.json")
    return graph
