"""From a model to a typed, quantised IR graph: frontend, then the passes in order."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from nnfpga.compiler.config import CompileOptions, make_options
from nnfpga.compiler.frontends.keras import keras_to_ir
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.compiler.passes.apply_config import apply_config
from nnfpga.compiler.passes.fold_batchnorm import fold_batchnorm
from nnfpga.compiler.passes.precision import infer_precision
from nnfpga.compiler.passes.prune import prune
from nnfpga.compiler.passes.ptq import ptq
from nnfpga.compiler.passes.quantize_weights import quantize_weights
from nnfpga.compiler.passes.remove_dead import remove_dead_units
from nnfpga.compiler.passes.reuse import select_reuse
from nnfpga.compiler.passes.trim import trim_precision
from nnfpga.compiler.size_guard import check_files, check_size
from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph

#: (name, pass) in the order they run; each takes the graph and the `CompileOptions` and
#: returns the graph.  Passes with nothing to do (no config, no calibration data, no
#: pruning or reuse target) leave the graph unchanged.
PIPELINE: list[tuple[str, Callable[[Graph, CompileOptions], Graph]]] = [
    ("fold_batchnorm", lambda g, o: fold_batchnorm(g)),
    ("apply_config", apply_config),
    ("prune", prune),
    ("ptq", ptq),
    ("quantize_weights", lambda g, o: quantize_weights(g, o.precision.weight_frac)),
    ("remove_dead_units", remove_dead_units),
    ("infer_precision", infer_precision),
    ("trim_precision", trim_precision),
    ("select_reuse", select_reuse),
]


def load_model(source, precision: Precision | None = None) -> Graph:
    """Any supported model (path or live object) as an unquantised IR graph; an IR
    `Graph` itself is taken as it is (a copy)."""
    if isinstance(source, Graph):
        return copy.deepcopy(source)
    from nnfpga.compiler.frontends import pytorch  # imports torch only when used
    suffix = Path(source).suffix.lower() if isinstance(source, (str, Path)) else ""
    if suffix == ".onnx" or type(source).__name__ == "ModelProto":
        from nnfpga.compiler.frontends.onnx import onnx_to_ir
        return onnx_to_ir(source, precision)
    if suffix in (".pt", ".pth") or pytorch.is_torch_model(source):
        return pytorch.torch_to_ir(source, precision)
    return keras_to_ir(source, precision)


def build_graph(source, precision: Precision | None = None, dump_dir: Path | None = None,
                options: CompileOptions | None = None) -> Graph:
    """``options`` (`config.make_options`: config file, calibration data, reuse targets)
    replaces ``precision`` when given.  ``source`` may be a list of two or more models
    with the same layers: they become one banked ensemble (`nnfpga.compiler.banked`),
    model ``b`` being bank ``b``."""
    options = options or make_options(precision=precision)
    if isinstance(source, (list, tuple)):
        return _build_banked(list(source), dump_dir, options)
    # before any pass (and, from the file's metadata, before the weights are read): a
    # design far too large would otherwise run for minutes and fail
    check_files([source], options.max_multiplications)
    graph = load_model(source, options.precision)
    check_size(graph, options.max_multiplications, _where(source))
    for name, run in PIPELINE:
        try:
            graph = run(graph, options)
        except ValueError as e:  # the IR reports model problems as ValueError
            raise UserError(f"{_where(source)}: {e}") from None
        if dump_dir is not None:
            dump_dir.mkdir(parents=True, exist_ok=True)
            graph.save(dump_dir / f"{len(list(dump_dir.iterdir())):02d}_{name}.json")
    return graph


def _where(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "model"


def _build_banked(sources: list, dump_dir: Path | None, options: CompileOptions) -> Graph:
    from nnfpga.compiler.banked import merge_banks
    if len(sources) < 2:
        raise UserError("a banked ensemble needs at least two models")
    check_files(sources, options.max_multiplications)   # all banks' weights, before any is read
    graphs = [build_graph(s, dump_dir=None, options=options) for s in sources]
    try:
        graph = merge_banks(graphs)
    except ValueError as e:
        raise UserError(f"banked ensemble of {len(sources)} models: {e}") from None
    check_size(graph, options.max_multiplications, f"banked ensemble of {len(sources)} models")
    if dump_dir is not None:
        dump_dir.mkdir(parents=True, exist_ok=True)
        graph.save(dump_dir / f"{len(list(dump_dir.iterdir())):02d}_merge_banks.json")
    return graph
