"""Hostile ONNX and PyTorch model files: every one is refused with exit code 2 and a message
naming the file, the node (name and op type) and the attribute or initializer, before
onnx's shape inference, onnxruntime or torch trusts the file.  Cases that crashed the
process below Python (SIGFPE in onnx.shape_inference) run in a child process.

Every hostile ONNX file is one edit of `_base` (a tiny CNN that compiles: see
`test_the_base_model_is_accepted`), so each case tests exactly the one thing it breaks.
"""

from __future__ import annotations

import functools
import io
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.hostile.harness import MODELS, Case, run_case

F = "m.onnx"
COMPILE = ("compile", "{tmp}/" + F, "-o", "{tmp}/out")


# ----------------------------------------------------------------------------- the base model
def _base():
    """x (N, 1, 6, 6) -> Conv 3x3 -> Relu -> MaxPool 2x2 -> Flatten -> Gemm -> y (N, 3)."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (2, 1, 3, 3)).astype(np.float32), "conv1.w"),
             numpy_helper.from_array(np.zeros(2, np.float32), "conv1.b"),
             numpy_helper.from_array(rng.normal(0, 0.5, (8, 3)).astype(np.float32), "fc1.w"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fc1.b")]
    nodes = [helper.make_node("Conv", ["x", "conv1.w", "conv1.b"], ["c"], name="conv1", strides=[1, 1],
                              pads=[0, 0, 0, 0], kernel_shape=[3, 3], dilations=[1, 1], group=1),
             helper.make_node("Relu", ["c"], ["r"], name="relu1"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "fc1.w", "fc1.b"], ["y"], name="fc1")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _node(model, name: str):
    return next(n for n in model.graph.node if n.name == name)


def _init(model, name: str):
    return next(t for t in model.graph.initializer if t.name == name)


def _set(node_name: str, attr: str, value) -> Callable:
    """An edit: set (or replace) one attribute of one node."""
    def edit(model):
        from onnx import helper
        node = _node(model, node_name)
        kept = [a for a in node.attribute if a.name != attr]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute(attr, value)])
    return edit


def _replace_init(name: str, array: np.ndarray) -> Callable:
    def edit(model):
        from onnx import numpy_helper
        _init(model, name).CopyFrom(numpy_helper.from_array(array, name))
    return edit


def _edited(edit: Callable) -> bytes:
    model = _base()
    edit(model)
    return model.SerializeToString()


def _write(name: str, data: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).write_bytes(data())


def onnx_case(id: str, edit: Callable, messages: tuple[str, ...], isolated: bool = False,
              args: tuple[str, ...] = COMPILE) -> Case:
    """A case: ``edit`` applied to the base model, saved as m.onnx, compiled."""
    return Case("onnx-" + id, args, (F, *messages), _write(F, lambda: _edited(edit)), isolated=isolated)


def file_case(id: str, data: Callable[[], bytes], messages: tuple[str, ...], name: str = F) -> Case:
    args = ("compile", "{tmp}/" + name, "-o", "{tmp}/out")
    return Case(id, args, (name, *messages), _write(name, data))


# ----------------------------------------------------------------------------- edits
def _conv_weights_dims(dims):
    def edit(model):
        t = _init(model, "conv1.w")
        del t.dims[:]
        t.dims.extend(dims)
        t.raw_data = b""
        del t.float_data[:]
    return edit


def _computed_conv_weights(model):
    from onnx import helper
    model.graph.node.insert(0, helper.make_node("Identity", ["conv1.w"], ["w2"], name="wcopy"))
    _node(model, "conv1").input[1] = "w2"
    _set("conv1", "strides", [1, 0])(model)


def _average_pool(model):
    _node(model, "pool1").op_type = "AveragePool"
    _set("pool1", "strides", [0, 0])(model)


def _short_raw(model):
    t = _init(model, "fc1.w")
    t.raw_data = t.raw_data[:-4]


def _float_data_count(model):
    from onnx import TensorProto, helper
    _init(model, "fc1.b").CopyFrom(helper.make_tensor("fc1.b", TensorProto.FLOAT, [3], [0.0, 0.0]))


def _typed_bias(data_type: int, values) -> Callable:
    def edit(model):
        from onnx import helper
        _init(model, "fc1.b").CopyFrom(helper.make_tensor("fc1.b", data_type, [3], values))
    return edit


def _negative_dims(model):
    t = _init(model, "fc1.b")
    del t.dims[:]
    t.dims.extend([-3])


def _external(model):
    from onnx import TensorProto
    t = _init(model, "fc1.w")
    t.data_location = TensorProto.EXTERNAL
    t.raw_data = b""
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"


def _duplicate_init(model):
    model.graph.initializer.append(_init(model, "fc1.b"))


def _missing_init(model):
    t = _init(model, "fc1.w")
    model.graph.initializer.remove(t)


def _constant_bias(value, data_type: int = 1) -> Callable:
    def edit(model):
        from onnx import helper
        model.graph.initializer.remove(_init(model, "fc1.b"))
        tensor = helper.make_tensor("k", data_type, [3], value)
        model.graph.node.insert(0, helper.make_node("Constant", [], ["fc1.b"], name="bias_const", value=tensor))
    return edit


def _duplicate_output(model):
    _node(model, "relu1").output[0] = "c"
    _node(model, "pool1").input[0] = "c"


def _cycle(model):
    # relu1 reads pool1's output, pool1 reads relu1's: a loop through the two nodes
    _node(model, "relu1").input[0] = "p"


def _output_unproduced(model):
    model.graph.output[0].name = "nowhere"


def _empty_graph(model):
    del model.graph.node[:]


def _no_inputs(model):
    del model.graph.input[:]


def _no_outputs(model):
    del model.graph.output[:]


def _input_dims(*dims) -> Callable:
    def edit(model):
        shape = model.graph.input[0].type.tensor_type.shape
        for d, v in zip(shape.dim, dims):
            if isinstance(v, str):
                d.dim_param = v
            else:
                d.dim_value = v
    return edit


def _opset(version: int) -> Callable:
    def edit(model):
        model.opset_import[0].version = version
    return edit


def _ir_version(model):
    model.ir_version = 99


def _no_standard_opset(model):
    model.opset_import[0].domain = "com.example"


def _unknown_domain(model):
    from onnx import helper
    node = _node(model, "relu1")
    node.domain = "com.acme.secret"
    node.op_type = "FastRelu"
    model.opset_import.append(helper.make_opsetid("com.acme.secret", 1))


def _local_function(model):
    from onnx import helper
    body = [helper.make_node("Relu", ["a"], ["b"])]
    model.functions.append(helper.make_function("com.acme", "MyRelu", ["a"], ["b"], body,
                                                [helper.make_opsetid("", 17)]))
    model.opset_import.append(helper.make_opsetid("com.acme", 1))


def _subgraph(model):
    from onnx import TensorProto, helper
    branch = helper.make_graph([helper.make_node("Identity", ["r"], ["o"], name="inner")], "branch", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    node = _node(model, "relu1")
    node.attribute.extend([helper.make_attribute("then_branch", branch)])


def _negative_variance(model):
    from onnx import helper, numpy_helper
    model.graph.initializer.extend([numpy_helper.from_array(np.ones(2, np.float32), "bn.s"),
                                    numpy_helper.from_array(np.zeros(2, np.float32), "bn.b"),
                                    numpy_helper.from_array(np.zeros(2, np.float32), "bn.m"),
                                    numpy_helper.from_array(np.array([1.0, -4.0], np.float32), "bn.v")])
    _node(model, "relu1").input[0] = "bn_out"
    model.graph.node.insert(1, helper.make_node("BatchNormalization", ["c", "bn.s", "bn.b", "bn.m", "bn.v"],
                                                ["bn_out"], name="bn1"))


def _reversed_nodes(model):
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes[::-1])


def _no_op_type(model):
    _node(model, "relu1").op_type = ""


def _gemm_without_weights(model):
    del _node(model, "fc1").input[1:]


def _quant_relu(scale: float, bits: float) -> Callable:
    def edit(model):
        from onnx import helper, numpy_helper
        model.opset_import.append(helper.make_opsetid("qonnx.custom_op.general", 1))
        node = _node(model, "relu1")
        node.op_type, node.domain = "Quant", "qonnx.custom_op.general"
        node.input.extend(["q.s", "q.z", "q.b"])
        model.graph.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), n)
                                       for n, v in (("q.s", scale), ("q.z", 0.0), ("q.b", bits)))
    return edit


def _input_as_output(model):
    """A second output that is the model input itself (several computed outputs are fine)."""
    model.graph.output.append(model.graph.input[0])


def _batchnorm(variance, epsilon: float) -> Callable:
    def edit(model):
        _negative_variance(model)
        _replace_init("bn.v", np.asarray(variance, np.float32))(model)
        _set("bn1", "epsilon", epsilon)(model)
    return edit


def _float_attr(model):
    from onnx import AttributeProto
    node = _node(model, "conv1")
    a = next(a for a in node.attribute if a.name == "strides")
    a.type = AttributeProto.FLOATS
    del a.ints[:]
    a.floats.extend([1.0, 1.0])


def _string_alpha(model):
    from onnx import helper
    _node(model, "fc1").attribute.extend([helper.make_attribute("alpha", "two")])


def _leaky_nan(model):
    node = _node(model, "relu1")
    node.op_type = "LeakyRelu"
    _set("relu1", "alpha", float("nan"))(model)


# ----------------------------------------------------------------------------- files
def _random_bytes() -> bytes:
    return np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def _truncated() -> bytes:
    whole = _base().SerializeToString()
    return whole[: len(whole) // 2]


def _another_protobuf() -> bytes:
    from onnx import helper
    return helper.make_node("Relu", ["a"], ["b"]).SerializeToString()  # parses as an empty ModelProto


def _big(name: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        with open(tmp / name, "wb") as f:
            f.truncate(65 * 1024 * 1024)  # sparse: no 65 MiB are written
    return setup


# ----------------------------------------------------------------------------- PyTorch files
@functools.lru_cache(maxsize=None)
def _torch_file(kind: str) -> bytes:
    """The bytes of a small PyTorch file of one kind, made once per module."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.relu(self.fc(x))

    torch.manual_seed(0)
    net = Net().eval()
    if kind in ("nan", "inf"):
        with torch.no_grad():
            net.fc.weight[1, 2] = float(kind)
    buf = io.BytesIO()
    if kind == "state_dict":
        torch.save(net.state_dict(), buf)
    elif kind == "legacy_state_dict":
        torch.save(net.state_dict(), buf, _use_new_zipfile_serialization=False)
    elif kind == "whole_module":
        torch.save(_Pickled(net.state_dict()), buf)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's notices
            torch.jit.save(torch.jit.trace(net, torch.zeros(2, 4)), buf)
    return buf.getvalue()


class _Pickled:
    """What a whole pickled module looks like to an unpickler: an object of a class to import."""

    def __init__(self, state):
        self.state = state


class _Trap:
    """Unpickling this creates the file ``unpickled``: the harness sees it as a changed file."""

    def __reduce__(self):
        return (open, ("unpickled", "w"))


def _pickle_trap() -> bytes:
    return pickle.dumps(_Trap())


def _plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    return buf.getvalue()


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (65 * 1024 * 1024))
    return buf.getvalue()


def torch_case(id: str, data: Callable[[], bytes], messages: tuple[str, ...], name: str = "m.pt",
               extra: tuple[str, ...] = (), verb: str = "compile") -> Case:
    args = (verb, "{tmp}/" + name, *(("-o", "{tmp}/out") if verb == "compile" else ()), *extra)
    return Case("torch-" + id, args, (name, *messages), _write(name, data))


def _copy(src: Path, name: str) -> Callable[[Path], None]:
    return lambda tmp: shutil.copy(src, tmp / name)


def _mkdir(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).mkdir()


# ----------------------------------------------------------------------------- the cases
WINDOWS = [  # (id, edit, the words of the message): crashed onnx.shape_inference before
    ("conv-stride-zero", _set("conv1", "strides", [0, 1]), ("'conv1' (Conv)", "strides", "positive")),
    ("maxpool-stride-zero", _set("pool1", "strides", [2, 0]), ("'pool1' (MaxPool)", "strides", "positive")),
    ("conv-stride-negative", _set("conv1", "strides", [-1, 1]), ("'conv1' (Conv)", "strides", "positive")),
    ("conv-strides-length", _set("conv1", "strides", [1, 1, 1]), ("'conv1' (Conv)", "strides", "3 values")),
    ("conv-dilation-zero", _set("conv1", "dilations", [0, 1]), ("'conv1' (Conv)", "dilations", "positive")),
    ("conv-kernel-shape-zero", _set("conv1", "kernel_shape", [0, 3]), ("'conv1' (Conv)", "kernel_shape")),
    ("conv-kernel-shape-mismatch", _set("conv1", "kernel_shape", [5, 5]), ("'conv1' (Conv)", "kernel_shape", "[3, 3]")),
    ("maxpool-kernel-zero", _set("pool1", "kernel_shape", [0, 2]), ("'pool1' (MaxPool)", "kernel_shape", "positive")),
    ("maxpool-pads-length", _set("pool1", "pads", [0, 0]), ("'pool1' (MaxPool)", "pads", "needs 4")),
    ("conv-pads-negative", _set("conv1", "pads", [-1, 0, 0, 0]), ("'conv1' (Conv)", "pads", "non-negative")),
    ("conv-pads-over-kernel", _set("conv1", "pads", [3, 0, 0, 0]),
     ("'conv1' (Conv)", "pads", "smaller than the kernel")),
    ("maxpool-pads-over-kernel", _set("pool1", "pads", [0, 0, 0, 5]), ("'pool1' (MaxPool)", "pads", "kernel")),
    ("conv-group-zero", _set("conv1", "group", 0), ("'conv1' (Conv)", "group", "positive")),
    ("conv-group-negative", _set("conv1", "group", -2), ("'conv1' (Conv)", "group", "positive")),
    ("conv-group-not-dividing", _set("conv1", "group", 3), ("'conv1' (Conv)", "group", "2 filters")),
    ("conv-zero-filters", _conv_weights_dims([0, 1, 3, 3]), ("'conv1' (Conv)", "conv1.w", "zero filters")),
    ("conv-zero-kernel", _conv_weights_dims([2, 1, 0, 3]), ("'conv1' (Conv)", "conv1.w", "kernel size")),
    ("conv-computed-weights-stride-zero", _computed_conv_weights, ("'conv1' (Conv)", "strides", "positive")),
    ("averagepool-stride-zero", _average_pool, ("'pool1' (AveragePool)", "strides", "positive")),
    ("conv-strides-floats", _float_attr, ("'conv1' (Conv)", "strides", "FLOATS", "must be INTS")),
]

CASES = [onnx_case(id, edit, words, isolated=True) for id, edit, words in WINDOWS] + [
    # tensors
    onnx_case("init-raw-data-short", _short_raw, ("fc1.w", "'fc1' (Gemm)", "raw_data", "96 bytes")),
    onnx_case("init-float-data-count", _float_data_count, ("fc1.b", "'fc1' (Gemm)", "float_data", "holds 2")),
    onnx_case("init-string", _typed_bias(8, [b"a", b"b", b"c"]),
              ("fc1.b", "'fc1' (Gemm)", "STRING", "must be numbers", "FLOAT16")),
    onnx_case("init-bool", _typed_bias(9, [True, False, True]), ("fc1.b", "'fc1' (Gemm)", "BOOL")),
    onnx_case("init-complex", _typed_bias(14, [1 + 1j, 0j, 2j]), ("fc1.b", "'fc1' (Gemm)", "COMPLEX64")),
    onnx_case("init-nan", _replace_init("fc1.w", np.full((8, 3), np.nan, np.float32)),
              ("fc1.w", "'fc1' (Gemm)", "NaN or infinite")),
    onnx_case("init-inf", _replace_init("conv1.b", np.array([0.0, -np.inf], np.float32)),
              ("conv1.b", "'conv1' (Conv)", "-inf", "index [1]")),
    onnx_case("init-negative-dims", _negative_dims, ("fc1.b", "'fc1' (Gemm)", "negative dimensions")),
    onnx_case("init-external-data", _external, ("fc1.w", "'fc1' (Gemm)", "external file")),
    onnx_case("init-duplicate", _duplicate_init, ("fc1.b", "'fc1' (Gemm)", "defined twice")),
    onnx_case("init-missing", _missing_init, ("'fc1' (Gemm)", "'fc1.w'", "missing initializer")),
    onnx_case("constant-nan", _constant_bias([0.0, float("nan"), 0.0]),
              ("'bias_const' (Constant)", "'value'", "NaN")),
    onnx_case("constant-string", _constant_bias([b"x", b"y", b"z"], 8), ("'bias_const' (Constant)", "STRING")),
    onnx_case("gemm-empty-weights", _replace_init("fc1.w", np.zeros((8, 0), np.float32)),
              ("'fc1' (Gemm)", "fc1.w", "empty layer")),
    onnx_case("batchnorm-negative-variance", _negative_variance, ("'bn1' (BatchNormalization)", "bn.v", "negative")),
    # wiring
    onnx_case("duplicate-output", _duplicate_output, ("'relu1' (Relu)", "'c'", "'conv1' (Conv)", "one producer")),
    onnx_case("cycle", _cycle, ("cycle", "'relu1' (Relu)", "'pool1' (MaxPool)")),
    onnx_case("output-unproduced", _output_unproduced, ("graph output 'nowhere'", "no node")),
    onnx_case("empty-graph", _empty_graph, ("'tiny'", "no nodes")),
    onnx_case("no-inputs", _no_inputs, ("'tiny'", "no inputs")),
    onnx_case("no-outputs", _no_outputs, ("'tiny'", "no outputs")),
    onnx_case("input-dynamic", _input_dims("N", 1, "H", 6), ("input 'x'", "unknown dimensions", "fixed shapes")),
    onnx_case("input-zero", _input_dims("N", 1, 0, 6), ("input 'x'", "dimension 2 is 0", "positive")),
    onnx_case("input-negative", _input_dims("N", -1, 6, 6), ("input 'x'", "dimension 1 is -1", "positive")),
    onnx_case("input-batch-zero", _input_dims(0), ("input 'x'", "dimension 0 is 0")),
    # versions and domains
    onnx_case("opset-too-new", _opset(99), ("opset 99", "opset_version=26")),
    onnx_case("opset-zero", _opset(0), ("opset 0", "not supported")),
    onnx_case("ir-version-too-new", _ir_version, ("IR version 99", "installed onnx")),
    onnx_case("no-standard-opset", _no_standard_opset, ("no standard ONNX opset",)),
    onnx_case("unknown-domain", _unknown_domain, ("'relu1' (FastRelu)", "com.acme.secret", "supported domains",
                                                  "qonnx.custom_op.general")),
    onnx_case("local-function", _local_function, ("'MyRelu'", "functions", "inlined")),
    onnx_case("subgraph-attribute", _subgraph, ("'relu1' (Relu)", "then_branch", "sub-graph")),
    onnx_case("nodes-unsorted", _reversed_nodes, ("'fc1' (Gemm)", "comes before", "'flat' (Flatten)",
                                                  "topological order")),
    onnx_case("node-without-op-type", _no_op_type, ("op_type", "non-empty")),
    onnx_case("gemm-without-weights", _gemm_without_weights, ("fc1", "Gemm", "input size 1")),
    onnx_case("input-as-output", _input_as_output, ("repeat a tensor or an input", "distinct computed tensor")),
    # attributes
    onnx_case("conv-auto-pad-unknown", _set("conv1", "auto_pad", "SIDEWAYS"),
              ("'conv1' (Conv)", "auto_pad", "'SIDEWAYS'", "SAME_UPPER")),
    onnx_case("conv-auto-pad-int", _set("conv1", "auto_pad", 3), ("'conv1' (Conv)", "auto_pad", "must be STRING")),
    onnx_case("softmax-axis-string", lambda m: (setattr(_node(m, "relu1"), "op_type", "Softmax"),
                                                _set("relu1", "axis", "last")(m)),
              ("'relu1' (Softmax)", "'axis'", "must be INT")),
    onnx_case("batchnorm-epsilon-negative", _batchnorm([1.0, 1.0], -1.0),
              ("'bn1' (BatchNormalization)", "epsilon", "must be positive")),
    onnx_case("batchnorm-zero-variance-no-epsilon", _batchnorm([0.0, 1.0], 0.0),
              ("'bn1' (BatchNormalization)", "'epsilon' 0", "bn.v")),
    onnx_case("quant-scale-nan", _quant_relu(float("nan"), 8), ("'q.s'", "'relu1' (Quant)", "NaN")),
    onnx_case("quant-bits-huge", _quant_relu(0.25, 1e9), ("'relu1' (Quant)", "bit width")),
    onnx_case("gemm-transa", _set("fc1", "transA", 1), ("'fc1'", "Gemm", "transA=1")),
    onnx_case("gemm-alpha-string", _string_alpha, ("'fc1' (Gemm)", "'alpha'", "STRING", "must be FLOAT")),
    onnx_case("gemm-alpha-inf", _set("fc1", "alpha", float("inf")), ("'fc1' (Gemm)", "'alpha'", "finite")),
    onnx_case("leakyrelu-alpha-nan", _leaky_nan, ("'relu1' (LeakyRelu)", "'alpha'", "nan", "finite")),
    onnx_case("old-opset-stride-zero", lambda m: (_opset(9)(m), _set("pool1", "strides", [0, 2])(m)),
              ("'pool1' (MaxPool)", "strides", "positive"), isolated=True),
    onnx_case("config-verb-stride-zero", _set("conv1", "strides", [0, 0]), ("'conv1' (Conv)", "strides"),
              isolated=True, args=("config", "{tmp}/" + F, "-o", "{tmp}/out")),
    # files
    file_case("onnx-random-bytes", _random_bytes, ("not a readable ONNX file",)),
    file_case("onnx-text", lambda: b"ir_version: 8\ngraph { node { op_type: 'Relu' } }\n", ("text file",)),
    file_case("onnx-empty-file", lambda: b"", ("file is empty",)),
    file_case("onnx-truncated", _truncated, ("truncated",)),
    file_case("onnx-other-protobuf", _another_protobuf, ("holds no graph",)),
    file_case("onnx-pickle", _pickle_trap, ("pickle", "never reads")),
    Case("onnx-h5-renamed", COMPILE, (F, "HDF5", ".h5"), _copy(MODELS / "qmlp.h5", F)),
    Case("onnx-keras-zip-renamed", COMPILE, (F, "zip archive"), _copy(MODELS / "float_mlp.keras", F)),
    Case("onnx-too-big", COMPILE, (F, "more than the 67108864 bytes", "64 MiB"), _big(F)),
    Case("onnx-directory", COMPILE, (F, "not a file"), _mkdir(F)),
    # PyTorch files
    torch_case("text", lambda: b"def forward(x): return x\n", ("not a TorchScript archive", "text file")),
    torch_case("random-bytes", _random_bytes, ("neither a zip archive nor a pickle",), name="m.pth"),
    torch_case("empty", lambda: b"", ("the file is empty",)),
    torch_case("truncated-archive", lambda: _torch_file("traced")[:-300], ("truncated or corrupt",)),
    torch_case("plain-zip", _plain_zip, ("neither TorchScript nor a torch.save() file",)),
    torch_case("zip-bomb", _zip_bomb, ("unpacks to 68157440 bytes", "67108864")),
    Case("torch-too-big", ("compile", "{tmp}/m.pt", "-o", "{tmp}/out"), ("m.pt", "64 MiB"), _big("m.pt")),
    Case("torch-directory", ("compile", "{tmp}/m.pth", "-o", "{tmp}/out"), ("m.pth", "not a file"), _mkdir("m.pth")),
    torch_case("state-dict", lambda: _torch_file("state_dict"), ("state dict of 2 tensors", "fc.weight",
                                                                 "architecture")),
    torch_case("legacy-state-dict", lambda: _torch_file("legacy_state_dict"),
               ("plain pickle", "state dict (tensors only)")),
    torch_case("whole-module", lambda: _torch_file("whole_module"), ("pickles Python objects", "architecture")),
    torch_case("pickle-trap", _pickle_trap, ("plain pickle", "import and call io.open")),
    torch_case("torchscript-untrusted", lambda: _torch_file("traced"), ("holds code", "--trust-model-code")),
    torch_case("torchscript-untrusted-config", lambda: _torch_file("traced"), ("--trust-model-code",),
               verb="config", name="m.pth"),
    torch_case("nan-weights", lambda: _torch_file("nan"), ("fc.weight", "(Gemm)", "nan", "index [1, 2]"),
               extra=("--trust-model-code",)),
    torch_case("inf-weights", lambda: _torch_file("inf"), ("fc.weight", "(Gemm)", "inf"),
               extra=("--trust-model-code",), verb="config"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_onnx_torch_files(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)


def test_the_base_model_is_accepted(tmp_path, capsys):
    """The control: unedited, the base model and the traced TorchScript file (trusted) are read."""
    from nnfpga.compiler.cli import main
    (tmp_path / F).write_bytes(_base().SerializeToString())
    assert main(["config", str(tmp_path / F)]) == 0
    assert "conv1" in capsys.readouterr().out
    (tmp_path / "m.pt").write_bytes(_torch_file("traced"))
    assert main(["config", str(tmp_path / "m.pt"), "--trust-model-code"]) == 0
    assert "fc" in capsys.readouterr().out
