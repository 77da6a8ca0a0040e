"""QONNX channels-last models (``ConvertToChannelsLastAndClean``: Conv, MaxPool and
BatchNormalization of domain ``qonnx.custom_op.channels_last`` on (N, H, W, C) data, Conv
weights stored (O, H, W, I)): compiled as the standard ops, within the bound against
QONNX's own execution, and bit-exact in the simulators."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from tests.test_keras_frontend import _float_check


def _channels_last_model(folder, input_channels_last: bool, seed: int = 0):
    """A PyTorch CNN (Conv, BatchNorm, ReLU, MaxPool, Conv, Flatten, Linear) exported to
    ONNX and converted by QONNX to channels-last; returns (path, QONNX model wrapper)."""
    import torch
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Conv2d(3, 4, 2), torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    with torch.no_grad():   # a BatchNorm that does something
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    torch.onnx.export(model, torch.rand(1, 2, 9, 9), folder / "cf.onnx", input_names=["x"], output_names=["y"],
                      dynamo=False)
    wrapper = cleanup_model(ModelWrapper(str(folder / "cf.onnx")))
    wrapper = wrapper.transform(ConvertToChannelsLastAndClean(make_input_channels_last=input_channels_last))
    path = folder / "cl.onnx"
    wrapper.save(str(path))
    return path, wrapper


def _qonnx_run(wrapper, x: np.ndarray) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx
    name_in, name_out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    return np.concatenate([execute_onnx(wrapper, {name_in: x[i:i + 1].astype(np.float32)})[name_out]
                           for i in range(len(x))])


@pytest.mark.parametrize("input_channels_last", [False, True])
def test_channels_last_model_within_bound_of_qonnx(input_channels_last, tmp_path):
    path, wrapper = _channels_last_model(tmp_path, input_channels_last)
    domains = {n.domain for n in wrapper.graph.node}
    assert "qonnx.custom_op.channels_last" in domains
    graph = build_graph(path)
    assert [n.op_type for n in graph.nodes] == ["Input", "Conv2D", "Activation", "MaxPool2D", "Conv2D", "Reshape",
                                                "Dense"]
    shape = (9, 9, 2) if input_channels_last else (2, 9, 9)
    x = np.random.default_rng(1).uniform(-1, 1, (300, *shape)).astype(np.float32)
    reference = _qonnx_run(wrapper, x)
    worst, bound = _float_check(graph, lambda v: reference, x)
    assert 0 < worst < bound


def test_channels_last_op_outside_the_read_set_is_refused_by_name(tmp_path):
    path, wrapper = _channels_last_model(tmp_path, False)
    node = next(n for n in wrapper.graph.node if n.op_type == "MaxPool")
    node.op_type = "AveragePool"
    wrapper.save(str(path))
    with pytest.raises(UserError, match="custom op of domain 'qonnx.custom_op.channels_last'"):
        build_graph(path)


@pytest.mark.slow
def test_channels_last_firmware_is_bit_exact(tmp_path):
    from nnfpga.compiler.cli import main
    path, _ = _channels_last_model(tmp_path, True, seed=2)
    x = np.random.default_rng(3).uniform(-1, 1, (200, 9, 9, 2)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "fw"
    assert main(["compile", str(path), "--target", "xcvu9p", "--clock", "200MHz", "-o", str(out)]) == 0
    assert main(["verify", str(out), "--data", str(tmp_path / "x.npz"), "--sim", "verilator,ghdl,csim"]) == 0
    summary = json.loads((out / "verify.json").read_text())
    assert summary["bit_exact"]
    for sim in ("verilator", "ghdl", "csim"):
        assert summary["results"][sim]["mismatches"] == 0 and summary["results"][sim]["samples"] == len(x)
