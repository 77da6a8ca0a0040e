"""Run hls4ml (an independent compiler) on a QKeras model with exactly our types.

Only for cross-checks in tests: hls4ml's own C-sim of the same quantised model must
produce the same bits as our golden emulator.  hls4ml 1.3 needs two shims to read
QKeras models with legacy Keras (``keras`` -> ``tf_keras``, ``np.product``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nnfpga.ir.fixed import FixedType
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Dense


def _hls4ml():
    import tf_keras
    sys.modules["keras"] = tf_keras
    if not hasattr(np, "product"):
        np.product = np.prod
    import hls4ml
    return hls4ml


def _spec(t: FixedType) -> str:
    return t.spec()


def hls4ml_predict(keras_model, graph: Graph, x: np.ndarray, workdir: Path) -> np.ndarray:
    """hls4ml's C-sim output for ``x`` with every precision set from our IR."""
    hls4ml = _hls4ml()
    cfg = hls4ml.utils.config_from_keras_model(keras_model, granularity="name", backend="Vivado")
    layers = cfg["LayerName"]
    in_name = keras_model.layers[0].name
    layers.setdefault(in_name, {}).setdefault("Precision", {})["result"] = _spec(graph.input.info.type)
    for node in graph.nodes:
        if isinstance(node, Dense):
            src = graph.node(node.inputs[0]).info
            lo, hi, _ = node.acc_range(src)
            from nnfpga.ir.ops.linear import acc_type_for
            acc = acc_type_for(lo, hi, node.acc_frac(src.type.frac))
            p = layers[node.source_layer]["Precision"]
            p["accum"] = _spec(acc)
            p["result"] = _spec(node.info.type)
            lin = f"{node.source_layer}_linear"
            if lin in layers:
                layers[lin]["Precision"]["result"] = _spec(node.info.type)
        elif node.op_type == "Activation" and node.source_layer in layers:
            layers[node.source_layer]["Precision"]["result"] = _spec(node.info.type)
    # the quantiser on the input is our input type: hls4ml keeps it as a layer of its own
    for name, layer in layers.items():
        if name != in_name and "Precision" in layer and name not in {n.source_layer for n in graph.nodes}:
            if isinstance(layer["Precision"], dict) and "result" in layer["Precision"] and name.startswith("q_in"):
                layer["Precision"]["result"] = _spec(graph.input.info.type)
    hm = hls4ml.converters.convert_from_keras_model(keras_model, hls_config=cfg, backend="Vivado",
                                                    output_dir=str(workdir), io_type="io_parallel",
                                                    part="xcvu9p-flga2104-2L-e")
    hm.compile()
    return np.asarray(hm.predict(np.ascontiguousarray(x, dtype=np.float64))).reshape(len(x), -1)
