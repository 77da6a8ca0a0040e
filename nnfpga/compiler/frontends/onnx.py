"""ONNX / QONNX frontend: ``.onnx`` files, ``onnx.ModelProto`` objects or their bytes, for
ONNX opsets 13-26 (older ones are converted with onnx's version converter).

Supported: the ops of `onnx_ops` (one handler per op; its module doc says what each
accepts, and every refusal lists them).  Everything else is refused; every node that
cannot be converted is listed, with the reason, in one `UserError`.

Windows must be ``valid`` or TensorFlow-style ``same`` (the IR's Conv2D/MaxPool2D
paddings); other (asymmetric) pads are refused.  Channels-first graphs are converted to
the IR's channels-last layout (see `onnx_convert`); users feed samples, and receive
results, in the model's own layout (the graph's `Layout`s).  Reading a model never imports
PyTorch or onnxruntime.

Every file and model is validated first (`onnx_checks`: versions, tensors, wiring,
attributes, window geometry), before onnx's checker or shape inference runs on it.  Files
larger than `onnx_checks.MAX_ONNX_BYTES` (64 MiB) are refused unread, and weights kept in
external data files are refused (a model file cannot make nnfpga read other files).
"""

from __future__ import annotations

from pathlib import Path

from nnfpga.compiler.frontends.keras import _safe_name
from nnfpga.compiler.frontends.onnx_checks import MAX_ONNX_BYTES, check_model, parse_model, read_model_bytes
from nnfpga.compiler.frontends.onnx_convert import Converter, _Skip
from nnfpga.compiler.frontends.onnx_ops import SUPPORTED
from nnfpga.compiler.frontends.onnx_quant import Unsupported
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph

MIN_OPSET, MAX_OPSET = 13, 26

_FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


#: Graph names exporters give every model (PyTorch: main_graph, torch_jit, torch-jit-export;
#: lower-cased): they name no model, so the file's stem names it instead.
GENERIC_GRAPH_NAMES = {"", "main_graph", "torch_jit", "torch-jit-export", "torch_jit_export", "graph"}


def model_name(graph_name: str, source) -> str:
    """The model's name: the ONNX graph's own, unless an exporter's generic one, then the
    file stem (``model`` for a model given in memory)."""
    stem = Path(source).stem if isinstance(source, (str, Path)) else ""
    if graph_name.strip().lower() in GENERIC_GRAPH_NAMES:
        return stem or graph_name.strip() or "model"
    return graph_name


def onnx_to_ir(source, precision: Precision | None = None, where: str | None = None,
               name: str | None = None) -> Graph:
    """Read an ONNX model (path, ``ModelProto`` or bytes) into an unquantised IR graph."""
    precision = precision or Precision()
    model, where = read_onnx(source, where)
    model = _normalise_opset(model, where)
    inputs = _model_inputs(model, where)
    outputs = _model_outputs(model, where, [i[0] for i in inputs])
    nodes, used = _needed_nodes(model, outputs)
    input_name, user_shape, static_batch = inputs[0]
    conv = Converter(model, precision, input_name, user_shape, static_batch, used)
    if len(inputs) > 1:
        conv.place_inputs([(n, s) for n, s, _ in inputs])
    conv.run(nodes)
    out_node, out_layout = None, None
    try:
        out_node, out_layout = conv.finish(outputs[0]) if len(outputs) == 1 else (conv.finish_several(outputs), None)
    except Unsupported as e:
        conv.problems.append(("graph output", ", ".join(map(repr, outputs)), str(e)))
    except _Skip:
        pass
    if conv.problems:
        raise UserError(_report(where, conv.problems))
    graph_name = _safe_name(name or model_name(model.graph.name, source))
    graph = Graph(graph_name, conv.nodes, [out_node], conv.input_layout, out_layout)
    graph.annotations.update(conv.io_annotations)
    return graph


def _report(where: str, problems: list[tuple[str, str, str]]) -> str:
    lines = [f"{where}: {len(problems)} node(s) cannot be converted:"]
    lines += [f"  - {label} ({op}): {why}" for label, op, why in problems]
    lines.append(f"supported ONNX ops: {', '.join(SUPPORTED)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- reading
def read_onnx(source, where: str | None = None):
    """(ModelProto, description for messages); file and model problems are `UserError`s,
    found (`onnx_checks`) before onnx's own checker or shape inference sees the model."""
    import onnx
    if isinstance(source, (str, Path)):
        path = Path(source)
        where = where or str(path)
        model = parse_model(read_model_bytes(path), where)
    elif isinstance(source, (bytes, bytearray)):
        where = where or "ONNX model"
        if len(source) > MAX_ONNX_BYTES:
            raise UserError(f"{where}: {len(source)} bytes, more than the {MAX_ONNX_BYTES} nnfpga reads")
        model = parse_model(bytes(source), where)
    elif isinstance(source, onnx.ModelProto):
        model = source
        where = where or f"ONNX model {source.graph.name!r}"
    else:
        raise UserError(f"cannot read an ONNX model from {type(source).__name__}")
    check_model(model, where, MIN_OPSET, MAX_OPSET)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 (ValidationError and protobuf errors)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{where}: not a valid ONNX model ({first}); the file may be truncated or "
                        "corrupt") from None
    return model, where


def _normalise_opset(model, where: str):
    versions = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    version = versions.get("ai.onnx")
    if version is None:
        raise UserError(f"{where}: imports no standard ONNX opset")
    if version > MAX_OPSET:
        raise UserError(f"{where}: ONNX opset {version} is newer than the supported {MIN_OPSET}-{MAX_OPSET}; "
                        f"export with opset_version={MAX_OPSET} or lower")
    if version < MIN_OPSET:
        from onnx import version_converter
        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:  # noqa: BLE001
            raise UserError(f"{where}: ONNX opset {version} is older than {MIN_OPSET} and could not be "
                            f"converted ({type(e).__name__}: {e}); re-export with opset {MIN_OPSET} or "
                            "newer") from None
    return model


def _model_inputs(model, where: str) -> list[tuple[str, tuple[int, ...], int | None]]:
    """(name, shape without the batch, static batch or None) of every graph input that is
    not an initialiser; several inputs must agree on the batch."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [_model_input(i, where) for i in model.graph.input if i.name not in inits]
    if not inputs:
        raise UserError(f"{where}: the model has no input (every graph input is an initialiser)")
    if len({batch for _, _, batch in inputs}) > 1:
        raise UserError(f"{where}: the inputs {', '.join(repr(n) for n, _, _ in inputs)} have different batch "
                        "sizes; give them the same batch axis")
    return inputs


def _model_input(inp, where: str) -> tuple[str, tuple[int, ...], int | None]:
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES:
        raise UserError(f"{where}: input {inp.name!r} is not a float tensor; float samples are needed")
    if not tt.HasField("shape") or len(tt.shape.dim) < 2:
        raise UserError(f"{where}: input {inp.name!r} has no (batch, features...) shape; a batch axis "
                        "followed by fixed dimensions is needed")
    dims = tt.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if any(s is None or s < 1 for s in shape[1:]):
        shown = [d.dim_param or "?" if s is None else s for d, s in zip(dims, shape)]
        raise UserError(f"{where}: input {inp.name!r} has shape {shown} with unknown dimensions; fixed "
                        "shapes (except the batch axis) are needed for firmware")
    batch = shape[0] if shape[0] else None
    return inp.name, tuple(int(s) for s in shape[1:]), batch


def _model_outputs(model, where: str, inputs: list[str]) -> list[str]:
    outs = [o.name for o in model.graph.output]
    if not outs:
        raise UserError(f"{where}: the model has no output")
    if len(set(outs)) != len(outs) or set(outs) & set(inputs):
        raise UserError(f"{where}: the outputs {', '.join(map(repr, outs))} repeat a tensor or an input; each "
                        "output must be a distinct computed tensor")
    return outs


def _needed_nodes(model, outputs: list[str]):
    """The nodes the outputs depend on (in file order) and every tensor they read."""
    producer = {}
    for i, node in enumerate(model.graph.node):
        for o in node.output:
            if o:
                producer[o] = i
    needed, stack, used = set(), list(outputs), set(outputs)
    while stack:
        i = producer.get(stack.pop())
        if i is None or i in needed:
            continue
        needed.add(i)
        for name in model.graph.node[i].input:
            if name and name not in used:
                used.add(name)
                stack.append(name)
    return [n for i, n in enumerate(model.graph.node) if i in needed], used
