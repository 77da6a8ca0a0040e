"""The golden emulator: exact integer semantics of the IR, vectorised over a batch.

Every other executable form (HLS C-sim, RTL simulation) is compared with this, bit for
bit.  Raw integers flow as float64 (exact below 2**53, fast BLAS products) or int64,
as each op's range analysis decides.

Float samples and results are in the user's layout (the graph's `Layout`s, e.g. NCHW for
a model from PyTorch); raw integers (`run_raw`, `trace_raw`) are in the IR's (NHWC).
"""

from __future__ import annotations

import numpy as np

from nnfpga.ir.graph import Graph


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float samples (batch, *input shape in the user's layout) to raw integers of the
    input type, in the IR's layout."""
    inp = graph.input
    x = np.asarray(x, dtype=np.float64)
    layout = graph.input_layout
    expected = tuple(layout.shape) if layout is not None else tuple(inp.info.shape)
    if x.shape[1:] != expected:
        if x.shape == expected:
            x = x[None]
        else:
            raise ValueError(f"input has shape {x.shape[1:]} per sample; model {graph.name!r} expects {expected}")
    if layout is not None:
        x = layout.to_ir(x, tuple(inp.info.shape))
    raw = inp.info.type.quantize(x)
    # float32 is exact for raw integers below 2**24 and halves the memory traffic.
    return raw.astype(np.float32) if inp.info.type.width <= 24 else raw


#: Samples per internal chunk: keeps the intermediate tensors in cache.
CHUNK = 8192


def run_raw(graph: Graph, x_raw: np.ndarray, bank=None) -> np.ndarray:
    """Raw input integers in, raw output integers out (int64).  ``bank``: the samples'
    bank indices, for a graph with weight banks (`Graph.banks`)."""
    x_raw = np.asarray(x_raw)
    bank = graph.check_bank(bank, len(x_raw))
    if len(x_raw) > CHUNK:
        return np.concatenate([_run_chunk(graph, x_raw[i:i + CHUNK], None if bank is None else bank[i:i + CHUNK])
                               for i in range(0, len(x_raw), CHUNK)])
    return _run_chunk(graph, x_raw, bank)


def _run_chunk(graph: Graph, x_raw: np.ndarray, bank: np.ndarray | None) -> np.ndarray:
    return _values(graph, x_raw, bank)[graph.outputs[0]].astype(np.int64)


def _values(graph: Graph, x_raw: np.ndarray, bank: np.ndarray | None) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    for n in graph.nodes:
        if n.op_type == "Input":
            values[n.name] = np.asarray(x_raw)
        elif n.op_type == "BankedDense":
            values[n.name] = n.emulate([values[i] for i in n.inputs], graph.in_infos(n), bank)
        else:
            values[n.name] = n.emulate([values[i] for i in n.inputs], graph.in_infos(n))
    return values


def user_output(graph: Graph, raw: np.ndarray) -> np.ndarray:
    """Raw output integers (IR layout) as real values in the user's layout."""
    y = graph.output.info.type.to_float(raw)
    return graph.output_layout.to_user(y) if graph.output_layout is not None else y


def emulate(graph: Graph, x: np.ndarray, bank=None) -> np.ndarray:
    """Float inputs in, real-valued outputs out (exact fixed-point values as float64)."""
    return user_output(graph, run_raw(graph, quantize_input(graph, x), bank))


def trace_raw(graph: Graph, x_raw: np.ndarray, bank=None) -> dict[str, np.ndarray]:
    """Every node's raw output, for bisecting a mismatch layer by layer."""
    x_raw = np.asarray(x_raw)
    return _values(graph, x_raw, graph.check_bank(bank, len(x_raw)))
