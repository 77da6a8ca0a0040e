"""Validation of an ONNX file and model before any library that trusts it sees it.

onnx's C++ code (shape inference, the version converter, the reference evaluator) assumes a
well-formed model: a Conv or MaxPool with a zero stride kills the process with SIGFPE
inside ``onnx.shape_inference``, and an initializer whose data does not match its dims makes
``numpy_helper.to_array`` fail deep in the converter.  So the raw protobuf is checked here
first, in plain Python, and every problem is one `UserError` naming the file, the node
(name and op type) and the attribute or initializer.

What is checked, in order: the file (size limit `MAX_ONNX_BYTES`, what it really is, that
it parses), the model's versions and functions, the graph's inputs and outputs, every
initializer and Constant tensor (type, size, data length, finite values, no external
data), the node wiring (duplicate outputs, tensors nothing produces, cycles), and every
node's domain and attributes (types, finite floats, window geometry, BatchNormalization
variances, empty weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnfpga.compiler.frontends.model_file import check_model_file
from nnfpga.compiler.frontends.onnx_quant import CHANNELS_LAST_DOMAIN, QONNX_DOMAINS
from nnfpga.core.errors import UserError

#: Largest ONNX file read (bytes): trigger networks are kilobytes to a few megabytes; a
#: bigger file is refused before it is read, so a huge file cannot exhaust the memory.
MAX_ONNX_BYTES = 64 * 1024 * 1024

#: Node domains the frontend knows ("" is the standard ai.onnx domain).
KNOWN_DOMAINS = ("", "ai.onnx", *QONNX_DOMAINS, CHANNELS_LAST_DOMAIN)

#: Initializer element types with a numeric meaning (TensorProto codes): float16/32/64,
#: bfloat16 and the integer types.
_NUMERIC_TYPES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
                  10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 16: "BFLOAT16"}
_FLOATS = (1, 10, 11, 16)

#: Ops with a sliding window, and the input that holds their weights (None: no weights).
_WINDOW_OPS = {"Conv": 1, "ConvTranspose": 1, "ConvInteger": 1, "QLinearConv": 3, "MaxPool": None,
               "AveragePool": None, "LpPool": None, "MaxUnpool": None}

_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")

_A_FLOAT, _A_INT, _A_STRING, _A_FLOATS, _A_INTS = 1, 2, 3, 6, 7
_A_NAMES = {0: "undefined", 1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS",
            7: "INTS", 8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS",
            13: "TYPE_PROTO", 14: "TYPE_PROTOS"}

_WINDOW_ATTRS = {"strides": _A_INTS, "pads": _A_INTS, "dilations": _A_INTS, "kernel_shape": _A_INTS,
                 "output_padding": _A_INTS, "output_shape": _A_INTS, "group": _A_INT, "auto_pad": _A_STRING,
                 "ceil_mode": _A_INT, "storage_order": _A_INT, "p": _A_INT}
_QUANT_ATTRS = {"signed": _A_INT, "narrow": _A_INT, "rounding_mode": _A_STRING}
_QDQ_ATTRS = {"axis": _A_INT, "block_size": _A_INT, "output_dtype": _A_INT, "saturate": _A_INT}

#: The attribute types the frontend reads, per op: any other type would be misread.
ATTRIBUTE_TYPES: dict[str, dict[str, int]] = {
    **{op: _WINDOW_ATTRS for op in _WINDOW_OPS},
    "Gemm": {"transA": _A_INT, "transB": _A_INT, "alpha": _A_FLOAT, "beta": _A_FLOAT},
    "BatchNormalization": {"epsilon": _A_FLOAT, "momentum": _A_FLOAT, "training_mode": _A_INT},
    "LeakyRelu": {"alpha": _A_FLOAT}, "HardSigmoid": {"alpha": _A_FLOAT, "beta": _A_FLOAT},
    "Softmax": {"axis": _A_INT}, "Flatten": {"axis": _A_INT}, "Reshape": {"allowzero": _A_INT},
    "Transpose": {"perm": _A_INTS}, "Squeeze": {"axes": _A_INTS}, "Unsqueeze": {"axes": _A_INTS},
    "Shape": {"start": _A_INT, "end": _A_INT}, "Clip": {"min": _A_FLOAT, "max": _A_FLOAT},
    "Quant": _QUANT_ATTRS, "Trunc": _QUANT_ATTRS, "QuantizeLinear": _QDQ_ATTRS, "DequantizeLinear": _QDQ_ATTRS,
}


# ----------------------------------------------------------------------------- the file
def read_model_bytes(path: Path) -> bytes:
    """The bytes of an ONNX file, refused when missing, not a file or too big."""
    check_model_file(path, "an ONNX model file (.onnx)", MAX_ONNX_BYTES)
    return path.read_bytes()


def _what_else(data: bytes) -> str | None:
    """A description of a file that is clearly not ONNX, from its first bytes."""
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        return "it is an HDF5 file (a Keras .h5 model?); compile it under its .h5 name"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "it is a zip archive (a Keras 3 .keras or a TorchScript .pt file?); compile it under its own name"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it is a Python pickle (a PyTorch torch.save file?), which nnfpga never reads"
    head = data[:512]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it is a text file"
    return None


def parse_model(data: bytes, where: str):
    """The ``ModelProto`` in ``data`` (no external data is ever loaded)."""
    import onnx
    from google.protobuf.message import DecodeError
    if not data:
        raise UserError(f"{where}: holds no graph: the file is empty")
    other = _what_else(data)
    if other is not None:
        raise UserError(f"{where}: not a readable ONNX file: {other}. An ONNX model is a protobuf file written "
                        "by onnx.save or torch.onnx.export")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise UserError(f"{where}: not a readable ONNX file: the protobuf does not parse ({e}); the file "
                        "is truncated, corrupt or not ONNX") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise UserError(f"{where}: holds no graph: the data has no IR version and graph (random bytes, a "
                        "truncated file or another protobuf, not an ONNX model)")
    return model


# ----------------------------------------------------------------------------- the model
def check_model(model, where: str, min_opset: int, max_opset: int) -> None:
    """Every structural check of this module, in order; the first problem is raised."""
    check_versions(model, where, min_opset, max_opset)
    graph = model.graph
    if len(model.functions):
        names = ", ".join(repr(f.name) for f in model.functions)
        raise UserError(f"{where}: defines model-local functions ({names}); they are not supported: export "
                        "the model with the functions inlined")
    if not graph.node:
        raise UserError(f"{where}: holds no graph: the graph {graph.name!r} has no nodes (an empty or truncated "
                        "model)")
    if len(graph.sparse_initializer):
        raise UserError(f"{where}: sparse initializer {graph.sparse_initializer[0].values.name!r} is not "
                        "supported; store the weights as dense initializers")
    check_inputs_outputs(graph, where)
    readers = _readers(graph)
    seen: set[str] = set()
    for t in graph.initializer:
        if t.name in seen:
            raise UserError(f"{where}: initializer {t.name!r}{_read_by(readers, t.name)} is defined twice")
        seen.add(t.name)
        check_tensor(t, f"initializer {t.name!r}{_read_by(readers, t.name)}", where, initializer=True)
    for node in graph.node:
        check_node(node, where)
    check_wiring(graph, where)
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        check_window(node, inits, where)
        check_weights(node, inits, where)


def check_versions(model, where: str, min_opset: int, max_opset: int) -> None:
    import onnx
    if model.ir_version > onnx.IR_VERSION:
        raise UserError(f"{where}: ONNX IR version {model.ir_version} is newer than the installed onnx "
                        f"{onnx.__version__} reads (IR version {onnx.IR_VERSION} or older); export with an "
                        "older onnx / exporter")
    version = None
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            version = o.version
    if version is None:
        raise UserError(f"{where}: imports no standard ONNX opset (opset_import has no ai.onnx entry)")
    installed = onnx.defs.onnx_opset_version()
    if version > min(max_opset, installed) or version < 1:
        raise UserError(f"{where}: ONNX opset {version} is not supported; opsets {min_opset}-"
                        f"{min(max_opset, installed)} are (older ones from 1 are converted): export with "
                        f"opset_version={min(max_opset, installed)} or lower")


def check_inputs_outputs(graph, where: str) -> None:
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if not inputs:
        raise UserError(f"{where}: the graph {graph.name!r} declares no inputs; one float input "
                        "(batch, features...) is needed")
    if not graph.output:
        raise UserError(f"{where}: the graph {graph.name!r} declares no outputs; one output is needed")
    for i in inputs:
        if not i.name:
            raise UserError(f"{where}: a graph input has no name")
        tt = i.type.tensor_type
        if not i.type.HasField("tensor_type") or not tt.HasField("shape"):
            continue  # reported with the supported shapes by the frontend
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value <= 0:
                shown = [x.dim_value if x.HasField("dim_value") else (x.dim_param or "?") for x in tt.shape.dim]
                raise UserError(f"{where}: input {i.name!r} has shape {shown}: dimension {axis} is "
                                f"{d.dim_value}; every dimension must be positive (the batch axis may be "
                                "symbolic)")


def _readers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _read_by(readers: dict[str, list], name: str) -> str:
    nodes = readers.get(name, [])
    return f" (read by {', '.join(describe(n) for n in nodes[:3])})" if nodes else ""


def describe(node) -> str:
    """How a message names a node: its name and op type."""
    name = repr(node.name) if node.name else f"(unnamed, output {node.output[0] if node.output else '?'!r})"
    return f"node {name} ({node.op_type})"


# ----------------------------------------------------------------------------- tensors
def check_tensor(t, what: str, where: str, initializer: bool = False) -> None:
    """A tensor's type, dims, data length and values (float ones must be finite)."""
    from onnx import helper, numpy_helper
    if t.data_location == 1 or len(t.external_data):
        raise UserError(f"{where}: {what} keeps its data in an external file; nnfpga reads only models "
                        "with the weights inside (onnx.save(model, path, save_as_external_data=False))")
    if t.data_type not in _NUMERIC_TYPES:
        import onnx
        kind = onnx.TensorProto.DataType.Name(t.data_type) if t.data_type in onnx.TensorProto.DataType.values() \
            else f"unknown type code {t.data_type}"
        if initializer or t.data_type in (8, 14, 15) or t.data_type not in onnx.TensorProto.DataType.values():
            raise UserError(f"{where}: {what} has element type {kind}; weights and constants must be numbers "
                            f"of a type nnfpga reads: {', '.join(sorted(set(_NUMERIC_TYPES.values())))}")
        return
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise UserError(f"{where}: {what} has negative dimensions {dims}; the file is corrupt")
    n = 1
    for d in dims:
        n *= int(d)
    np_type = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
    field = helper.tensor_dtype_to_field(t.data_type)
    if t.HasField("raw_data"):
        have, want, unit = len(t.raw_data), n * np_type.itemsize, "bytes of raw_data"
    else:
        have, want, unit = len(getattr(t, field)), n, f"values in {field}"
    if have != want:
        raise UserError(f"{where}: {what} declares dims {dims} ({n} values of type "
                        f"{_NUMERIC_TYPES[t.data_type]}), which need {want} {unit}, but it holds {have}; the "
                        "file is corrupt or was edited by hand")
    if t.data_type in _FLOATS and n:
        values = numpy_helper.to_array(t)
        bad = ~np.isfinite(np.asarray(values, dtype=np.float64))
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            at = f", at index {list(index)}" if index else ""
            raise UserError(f"{where}: {what} holds {int(bad.sum())} NaN or infinite value(s) (the first, "
                            f"{float(np.asarray(values)[index])}{at}); firmware needs finite weights and "
                            "constants: check the training")


# ----------------------------------------------------------------------------- nodes
def check_node(node, where: str) -> None:
    """The node's domain, and its attributes' types and values."""
    if node.domain not in KNOWN_DOMAINS:
        raise UserError(f"{where}: {describe(node)} is of domain {node.domain!r}, which nnfpga does not know; "
                        "supported domains: ai.onnx (the standard ops) and the QONNX domains "
                        f"{', '.join(QONNX_DOMAINS)} (Quant, BipolarQuant, Trunc) and {CHANNELS_LAST_DOMAIN} "
                        "(Conv, MaxPool, BatchNormalization on channels-last data)")
    expected = ATTRIBUTE_TYPES.get(node.op_type, {})
    for a in node.attribute:
        what = f"{describe(node)}: attribute {a.name!r}"
        if a.ref_attr_name:
            raise UserError(f"{where}: {what} refers to a function attribute ({a.ref_attr_name!r}) outside a "
                            "function")
        if a.type in (5, 10) or len(a.graphs) or a.HasField("g"):
            raise UserError(f"{where}: {what} holds a sub-graph; control flow (If, Loop, Scan) is not "
                            "supported: the IR is a fixed graph of layers")
        want = expected.get(a.name)
        if want is not None and a.type != want:
            raise UserError(f"{where}: {what} is of type {_A_NAMES.get(a.type, a.type)}; "
                            f"{node.op_type}'s {a.name} must be {_A_NAMES[want]}")
        if a.type == _A_FLOAT and not np.isfinite(a.f):
            raise UserError(f"{where}: {what} is {a.f}; it must be a finite number")
        if a.type == _A_FLOATS and not np.all(np.isfinite(np.asarray(a.floats, dtype=np.float64))):
            raise UserError(f"{where}: {what} holds a NaN or infinite value; it must be finite")
        if a.type == 4 or a.HasField("t"):
            check_tensor(a.t, f"{describe(node)}: tensor attribute {a.name!r}", where)
        if a.type == 11 or a.HasField("sparse_tensor"):
            raise UserError(f"{where}: {what} is a sparse tensor, which is not supported")


def check_wiring(graph, where: str) -> None:
    """Every tensor produced once, every input produced by something, and no cycle."""
    known = {t.name for t in graph.initializer} | {i.name for i in graph.input}
    producer: dict[str, int] = {}  # tensor -> index of the node writing it
    for k, node in enumerate(graph.node):
        for o in node.output:
            if not o:
                continue
            if o in producer or o in known:
                first = describe(graph.node[producer[o]]) if o in producer else "a graph input or initializer"
                raise UserError(f"{where}: {describe(node)} writes tensor {o!r}, which {first} already "
                                "defines; every tensor must have exactly one producer")
            producer[o] = k
    for node in graph.node:
        for i in node.input:
            if i and i not in producer and i not in known:
                raise UserError(f"{where}: {describe(node)} reads tensor {i!r}, which no node, graph input or "
                                "initializer provides (a missing initializer?)")
    for o in graph.output:
        if o.name not in producer and o.name not in known:
            raise UserError(f"{where}: graph output {o.name!r} is produced by no node")
    deps = [sorted({producer[i] for i in n.input if i in producer}) for n in graph.node]
    _check_acyclic(graph, deps, where)
    for k, node in enumerate(graph.node):
        later = [j for j in deps[k] if j > k]
        if later:
            raise UserError(f"{where}: {describe(node)} comes before {describe(graph.node[later[0]])}, whose "
                            "output it reads; ONNX nodes must be stored in topological order (re-save the model "
                            "with onnx's tools, e.g. onnx.compose or onnxsim)")


def _check_acyclic(graph, deps: list[list[int]], where: str) -> None:
    """A depth-first walk over the producers of each node's inputs (iterative: a hostile
    graph may be deeper than Python's recursion limit)."""
    state = [0] * len(deps)  # 0: unvisited, 1: on the current path, 2: done
    for start in range(len(deps)):
        if state[start]:
            continue
        path, stack = [start], [(start, iter(deps[start]))]
        state[start] = 1
        while stack:
            k, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[k] = 2
                stack.pop()
                path.pop()
            elif state[nxt] == 1:
                names = " -> ".join(describe(graph.node[j]) for j in path[path.index(nxt):])
                raise UserError(f"{where}: the graph has a cycle: {names} -> back to the first; an ONNX "
                                "graph must be acyclic")
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(deps[nxt])))


# ----------------------------------------------------------------------------- windows
def _ints(node, name: str) -> list[int] | None:
    for a in node.attribute:
        if a.name == name:
            return [int(v) for v in a.ints]
    return None


def _string(node, name: str) -> str | None:
    for a in node.attribute:
        if a.name == name:
            return a.s.decode("utf-8", "replace")
    return None


def _int(node, name: str) -> int | None:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return None


def check_window(node, inits: dict, where: str) -> None:
    """strides, dilations, kernel_shape, pads and group of a windowed op, which shape
    inference divides by and indexes with unchecked."""
    if node.op_type not in _WINDOW_OPS or node.domain not in ("", "ai.onnx"):
        return
    me = f"{where}: {describe(node)}"
    w_index = _WINDOW_OPS[node.op_type]
    weights = inits.get(node.input[w_index]) if w_index is not None and len(node.input) > w_index \
        else None
    kernel = _ints(node, "kernel_shape")
    if weights is not None:
        if len(weights.dims) < 3:
            raise UserError(f"{me}: its weights {weights.name!r} have dims {list(weights.dims)}; a "
                            f"{node.op_type} needs (filters, channels, kernel...) weights")
        if any(d == 0 for d in weights.dims):
            raise UserError(f"{me}: its weights {weights.name!r} have dims {list(weights.dims)}: zero "
                            "filters, channels or kernel size")
    elif w_index is None and kernel is None:
        raise UserError(f"{me}: has no kernel_shape attribute, which {node.op_type} requires")
    rank = len(weights.dims) - 2 if weights is not None else (len(kernel) if kernel is not None else None)
    if kernel is not None:
        _check_list(me, "kernel_shape", kernel, rank, 1)
        if weights is not None and node.op_type != "ConvTranspose" and kernel != list(weights.dims[2:]):
            raise UserError(f"{me}: attribute 'kernel_shape' {kernel} differs from its weights' kernel "
                            f"{list(weights.dims[2:])}")
    k = kernel if kernel is not None else (list(weights.dims[2:]) if weights is not None else None)
    for name in ("strides", "dilations"):
        values = _ints(node, name)
        if values is not None:
            _check_list(me, name, values, rank, 1)
    pads = _ints(node, "pads")
    if pads is not None:
        _check_list(me, "pads", pads, None if rank is None else 2 * rank, 0)
        if len(pads) % 2:
            raise UserError(f"{me}: attribute 'pads' {pads} has an odd length; it needs a begin and an end "
                            "per spatial axis")
        if k is not None:
            dil = _ints(node, "dilations") or [1] * len(k)
            span = [(kk - 1) * d + 1 for kk, d in zip(k, dil)]
            r = len(span)
            for axis, p in enumerate(pads):
                if p >= span[axis % r]:
                    raise UserError(f"{me}: attribute 'pads' {pads}: pad {p} on spatial axis {axis % r} is not "
                                    f"smaller than the kernel ({span[axis % r]}); such a window sees only "
                                    "padding")
    auto = _string(node, "auto_pad")
    if auto is not None and auto not in _AUTO_PADS:
        raise UserError(f"{me}: attribute 'auto_pad' is {auto!r}; ONNX defines {', '.join(_AUTO_PADS)}")
    group = _int(node, "group")
    if group is not None:
        if group < 1:
            raise UserError(f"{me}: attribute 'group' is {group}; it must be a positive number (1 for a plain "
                            "convolution)")
        if weights is not None and node.op_type != "ConvTranspose" and weights.dims[0] % group:
            raise UserError(f"{me}: attribute 'group' {group} does not divide its {weights.dims[0]} filters")


def _check_list(me: str, name: str, values: list[int], length: int | None, least: int) -> None:
    if length is not None and len(values) != length:
        rank = length // 2 if name == "pads" else length
        raise UserError(f"{me}: attribute {name!r} {values} has {len(values)} values; this {rank}-D window "
                        f"needs {length}")
    if any(v < least for v in values):
        kind = "positive" if least == 1 else "non-negative"
        raise UserError(f"{me}: attribute {name!r} {values} must be {kind}")


def check_weights(node, inits: dict, where: str) -> None:
    """Weights a layer cannot be built from: empty matrices, negative variances."""
    me = f"{where}: {describe(node)}"
    if node.op_type in ("Gemm", "MatMul") and len(node.input) > 1:
        w = inits.get(node.input[1])
        if w is not None and any(d == 0 for d in w.dims):
            raise UserError(f"{me}: its weights {w.name!r} have dims {list(w.dims)}: an empty layer")
    if node.op_type == "BatchNormalization" and len(node.input) > 4:
        from onnx import numpy_helper
        var = inits.get(node.input[4])
        if var is not None and var.data_type in _FLOATS:
            values = np.asarray(numpy_helper.to_array(var), dtype=np.float64).reshape(-1)
            if np.any(values < 0):
                bad = int(np.argmax(values < 0))
                raise UserError(f"{me}: its variance {var.name!r} is negative ({values[bad]:g} at channel "
                                f"{bad}); a variance is never negative: the file is corrupt")
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            if eps < 0 or np.any(values + eps <= 0):
                raise UserError(f"{me}: attribute 'epsilon' {eps:g} with variance {var.name!r} (smallest "
                                f"{values.min():g}) divides by the square root of a number that is not "
                                "positive; epsilon must be positive (the ONNX default is 1e-5)")
