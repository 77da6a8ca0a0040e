"""PyTorch frontend: modules and TorchScript files through the ONNX exporter, bounded against
torch's forward pass in PyTorch's own NCHW layout; pickles are refused unopened."""

from __future__ import annotations

import pickle
import warnings

import json

import numpy as np
import pytest
import torch  # a project dependency (requirements.txt): never skipped

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's deprecation notices

import nnfpga  # noqa: E402
from nnfpga.core.errors import UserError  # noqa: E402
from nnfpga.compiler.frontends.pytorch import TorchModel, trusting_model_code  # noqa: E402
from nnfpga.compiler.passes.error_bound import error_bound  # noqa: E402
from nnfpga.compiler.pipeline import build_graph  # noqa: E402
from nnfpga.ir.emulator import emulate  # noqa: E402
from nnfpga.ir.graph import Graph  # noqa: E402


class CNN(torch.nn.Module):
    """Conv2d (padding 1) + BatchNorm2d + ReLU + MaxPool2d, a valid strided conv, then
    x.view(x.size(0), -1) into Linear layers: the flatten of NCHW features."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(4, 3, 3, stride=(1, 2))
        self.fc1 = torch.nn.Linear(3 * 4 * 2, 8)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv1(x))))
        x = torch.relu(self.conv2(x))
        return self.fc2(torch.relu(self.fc1(x.view(x.size(0), -1))))


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    m = CNN()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.uniform_(0.5, 1.5)
    return m.eval()


def _mlp() -> torch.nn.Module:
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(16, 12), torch.nn.BatchNorm1d(12), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                            torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.2, 0.2)
        m[1].running_var.uniform_(0.5, 2.0)
    return m.eval()


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 2, 12, 10)).astype(np.float32)


def _events(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (n, 16)).astype(np.float32)


def _forward(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _check(graph: Graph, module, x: np.ndarray, ours: np.ndarray | None = None) -> None:
    """Within the precision bound of the torch forward pass (float32 slack on top)."""
    bound = error_bound(graph, (float(x.min()), float(x.max())))
    ours = emulate(graph, x) if ours is None else ours
    ref = _forward(module, x)
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref).reshape(len(x), -1)
    assert float((diff - bound).max()) <= 1e-5, f"error {diff.max():.3g} exceeds the bound {bound.max():.3g}"
    assert 0 < diff.max() < bound.max()


def test_cnn_module_within_bound_in_nchw():
    module = _cnn().train()  # exported in eval mode (BatchNorm running statistics), then restored
    x = _images(3000)
    graph = build_graph(TorchModel(module, torch.from_numpy(x[:2])))
    assert module.training is True
    assert [n.op_type for n in graph.nodes] == ["Input", "Conv2D", "Activation", "MaxPool2D", "Conv2D",
                                                 "Activation", "Reshape", "Dense", "Activation", "Dense"]
    assert graph.input_layout.shape == (2, 12, 10) and graph.input.info.shape == (12, 10, 2)
    _check(graph, module.eval(), x)


def test_cnn_module_equals_its_onnx_file(tmp_path):
    """The user's own torch.onnx.export gives the very same IR numerics as the module API."""
    module = _cnn()
    x = _images(1000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x[:1]),), tmp_path / "cnn.onnx", dynamo=False,
                          input_names=["x"], output_names=["y"], opset_version=13)
    from_file = build_graph(tmp_path / "cnn.onnx")
    from_module = build_graph(TorchModel(module, x[:3]))
    assert np.array_equal(emulate(from_file, x), emulate(from_module, x))
    _check(from_file, module, x)


def test_mlp_module_api_compiles_and_matches_its_onnx_file(tmp_path):
    module = _mlp()
    x = _events(3000)
    result = nnfpga.compile(module, x[:4], outdir=tmp_path / "fw")
    ours = nnfpga.emulate(tmp_path / "fw", x)
    _check(result.graph, module, x, ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x[:1]),), tmp_path / "mlp.onnx", dynamo=False,
                          input_names=["x"], output_names=["y"], opset_version=20,
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    assert np.array_equal(emulate(build_graph(tmp_path / "mlp.onnx"), x), ours)


@pytest.mark.slow
def test_onnx_mlp_exported_from_pytorch_verifies_bit_exactly_everywhere(tmp_path, capsys):
    """A user's flow: torch.onnx.export, then `nnfpga compile` and `nnfpga verify` with
    Verilator, GHDL and the HLS C-sim, all bit-exact against the golden model."""
    from nnfpga.compiler.cli import main
    module = _mlp()
    x = _events(5000, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x[:1]),), tmp_path / "mlp.onnx", dynamo=False,
                          input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    fw = tmp_path / "fw"
    assert main(["compile", str(tmp_path / "mlp.onnx"), "--target", "xcvu9p", "--clock", "240MHz",
                 "-o", str(fw)]) == 0
    np.save(tmp_path / "x.npy", x)
    assert main(["verify", str(fw), "--input", str(tmp_path / "x.npy"), "--sim", "verilator,ghdl,csim"]) == 0
    summary = json.loads((fw / "verify.json").read_text())
    assert summary["samples"] == len(x)
    assert {k: v["mismatches"] for k, v in summary["results"].items()} == {"verilator": 0, "ghdl": 0, "csim": 0}
    _check(build_graph(tmp_path / "mlp.onnx"), module, x, nnfpga.emulate(fw, x))


def test_traced_torchscript_file_knows_its_input_shape(tmp_path):
    module = _cnn()
    x = _images(1000, seed=2)
    torch.jit.save(torch.jit.trace(module, torch.from_numpy(x[:2])), tmp_path / "cnn.pt")
    graph = build_graph(TorchModel(tmp_path / "cnn.pt", trust_code=True))
    _check(graph, module, x)


def test_scripted_torchscript_file_needs_an_example_input(tmp_path):
    module = _mlp()
    torch.jit.save(torch.jit.script(module), tmp_path / "mlp.pth")
    with pytest.raises(UserError, match="records no input shape.*example_input"), trusting_model_code():
        build_graph(tmp_path / "mlp.pth")
    x = _events(1000, seed=3)
    _check(build_graph(TorchModel(tmp_path / "mlp.pth", x[:2], trust_code=True)), module, x)


class _Trap:
    """Unpickling this would create a file: proof that a refused file was never unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("how", ["state_dict", "legacy_state_dict", "whole_module", "trap"])
def test_pickles_are_refused_unopened(how, tmp_path):
    path = tmp_path / "model.pt"
    marker = tmp_path / "unpickled"
    module = _mlp()
    if how == "state_dict":
        torch.save(module.state_dict(), path)
    elif how == "legacy_state_dict":
        torch.save(module.state_dict(), path, _use_new_zipfile_serialization=False)
    elif how == "whole_module":
        torch.save(module, path)
    else:
        path.write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(UserError, match="state dict.*architecture"):
        build_graph(path)
    with pytest.raises(UserError, match="state dict"):
        nnfpga.compile(str(path), _events(2), outdir=tmp_path / "fw")
    assert not marker.exists()
    assert not (tmp_path / "fw").exists()


def test_module_without_example_input_and_misplaced_example_input(tmp_path):
    with pytest.raises(UserError, match="needs an example input"):
        build_graph(_mlp())
    with pytest.raises(UserError, match="example_input is only used for PyTorch models"):
        nnfpga.compile(tmp_path / "model.h5", _events(2), outdir=tmp_path / "fw")


def test_unexportable_or_unsupported_module_is_a_user_error():
    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.leaky_relu(x, 1.5) + torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)

    # the two refused branches; their sum (a join of two computed tensors) is supported
    with pytest.raises(UserError, match=r"PyTorch model 'Odd': 2 node\(s\) cannot be converted"):
        build_graph(TorchModel(Odd(), _images(2)))
