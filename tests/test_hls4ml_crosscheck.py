"""Verification ladder step 5: our golden model equals hls4ml's C-sim bit for bit when
hls4ml is configured with the same types (a fully quantised QKeras MLP)."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate, quantize_input
from tests.conftest import MODELS
from tests.hls4ml_reference import hls4ml_predict


@pytest.mark.slow
def test_golden_equals_hls4ml_csim(tmp_path):
    from qkeras.utils import load_qmodel
    model = load_qmodel(str(MODELS / "qmlp.h5"), compile=False)
    graph = build_graph(MODELS / "qmlp.h5")
    rng = np.random.default_rng(11)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    x = means[rng.integers(0, 5, 10000)] + rng.normal(0, 1.5, (10000, 16))
    # put the inputs on our input grid: hls4ml's input layer then converts them exactly
    x = graph.input.info.type.to_float(quantize_input(graph, x))
    ours = emulate(graph, x)
    theirs = hls4ml_predict(model, graph, x, tmp_path / "hls4ml_prj")
    assert ours.shape == theirs.shape
    bad = np.argwhere(ours != theirs)
    assert len(bad) == 0, f"{len(bad)} values differ; first {bad[:3].tolist()}"
