"""The size guard: refuse a design too large to compile before any pass runs.

The firmware is fully parallel: every multiplication of the model is a multiplier (or
adder tree) in the RTL, every value of every layer a bundle of wires and registers.  The
compiler's time and memory grow with these counts, and a model far beyond what an FPGA
holds (a Dense 1000 -> 100000) would otherwise run for minutes and die of MemoryError.
So right after the frontend has built the IR, `check_size` counts, from the shapes alone:

* multiplications: the products of the Dense/Conv2D layers (per sample, at reuse 1),
* parameters: the weights (all banks of a banked layer),
* activations: the values of the largest tensor (the input or a layer's output),

and refuses when any of them exceeds the limit, with the figures and the layer.

The default limit comes from measurement: a float Dense n_in -> n_out (relu), ``nnfpga
compile`` with the defaults, on the shared 2-core, 23 GB development machine (other jobs
running: load average about 9), wall time and peak RSS:

    multiplications    layer          time     peak RSS
          2,048        32 -> 64        0.8 s     70 MB
          8,192        64 -> 128       3.3 s    100 MB
         32,768       128 -> 256      17 s      250 MB
         65,536       256 -> 256      41 s      450 MB   <- DEFAULT_MAX_MULTIPLICATIONS
        131,072       256 -> 512     124 s      830 MB
        262,144       512 -> 512     311 s     1.6 GB

Time grows a little faster than linearly; 1024 -> 4096 (4.2 M) ran 100 s and died of
MemoryError before the guard.  The default keeps a compile under a minute; a design at
the limit has more multipliers at reuse 1 than the largest parts have DSPs (an xcvu13p
has 12,288).  A user who means it raises the limit with ``--max-multiplications N``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops.conv2d import window_geometry

#: The default of ``--max-multiplications`` (see the module doc for the measurement).
DEFAULT_MAX_MULTIPLICATIONS = 65_536

FLAG = "--max-multiplications"


@dataclass(frozen=True)
class LayerSize:
    """One IR node's share of the design."""

    name: str
    op_type: str
    shape: tuple[int, ...]       # its output's shape
    multiplications: int = 0
    parameters: int = 0

    @property
    def activations(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n


def _kernel_shape(node) -> tuple[int, ...]:
    k = node.kernel_q.raw if getattr(node, "kernel_q", None) is not None else node.kernel
    return tuple(int(d) for d in k.shape)


def _layer_size(node, in_shape: tuple[int, ...] | None,
                in_shapes: list[tuple[int, ...]] | None = None) -> LayerSize:
    kind = node.op_type
    if kind == "Input":
        return LayerSize(node.name, kind, tuple(int(d) for d in node.shape))
    if kind in ("Dense", "BankedDense"):
        k = _kernel_shape(node)
        banks, (n_in, n_out) = (k[0], k[1:]) if kind == "BankedDense" else (1, k)
        return LayerSize(node.name, kind, (n_out,), n_in * n_out, banks * n_in * n_out)
    if kind == "Conv2D":
        kh, kw, cin, cout = _kernel_shape(node)
        (oh, ow), _ = window_geometry(in_shape[:2], (kh, kw), tuple(node.strides), node.padding)
        oh, ow = max(oh, 0), max(ow, 0)
        return LayerSize(node.name, kind, (oh, ow, cout), oh * ow * kh * kw * cin * cout, kh * kw * cin * cout)
    if kind == "MaxPool2D":
        (oh, ow), _ = window_geometry(in_shape[:2], tuple(node.pool_size), tuple(node.strides), node.padding)
        return LayerSize(node.name, kind, (max(oh, 0), max(ow, 0), in_shape[2]))
    if kind == "Reshape":
        return LayerSize(node.name, kind, _reshaped(in_shape, tuple(node.target_shape)))
    if kind == "Gather":
        return LayerSize(node.name, kind, tuple(node.target_shape))
    if kind == "Concatenate":
        axis = node.axis % len(in_shape)
        shape = list(in_shape)
        shape[axis] = sum(s[axis] for s in in_shapes)
        return LayerSize(node.name, kind, tuple(shape))
    return LayerSize(node.name, kind, in_shape or ())   # element-wise ops keep the shape


def _reshaped(in_shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    size = 1
    for d in in_shape:
        size *= d
    known = 1
    for t in target:
        if t != -1:
            known *= t
    return tuple(size // known if t == -1 and known else t for t in target)


def estimate(graph: Graph) -> list[LayerSize]:
    """Every node's size, in graph order, from the shapes only (no weight is read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    sizes = []
    for node in graph.nodes:
        in_shape = shapes.get(node.inputs[0]) if node.inputs else None
        try:
            size = _layer_size(node, in_shape, [shapes[i] for i in node.inputs])
        except (TypeError, IndexError, ValueError, AttributeError):
            # a shape the guard cannot follow; the passes report what is wrong with it
            size = LayerSize(node.name, node.op_type, in_shape or ())
        shapes[node.name] = size.shape
        sizes.append(size)
    return sizes


def _describe(s: LayerSize) -> str:
    return f"layer {s.name!r} ({s.op_type}, output shape {'x'.join(map(str, s.shape)) or 'scalar'})"


def check_size(graph: Graph, limit: int | None, where: str) -> list[LayerSize]:
    """UserError when the multiplications, the parameters or the largest tensor of
    ``graph`` exceed ``limit`` (None: `DEFAULT_MAX_MULTIPLICATIONS`); returns the sizes."""
    limit = DEFAULT_MAX_MULTIPLICATIONS if limit is None else limit
    sizes = estimate(graph)
    if not sizes:
        return sizes
    mults = sum(s.multiplications for s in sizes)
    params = sum(s.parameters for s in sizes)
    widest = max(sizes, key=lambda s: s.activations)
    heaviest = max(sizes, key=lambda s: (s.multiplications, s.parameters))
    totals = (f"the model has {mults:,} multiplications, {params:,} weights and at most "
              f"{widest.activations:,} values in one tensor")
    raise_it = f"; nnfpga compile {FLAG} N raises the limit (compile time and memory grow with the design's size)"
    if mults > limit:
        raise UserError(f"{where}: the design is too large to compile: {_describe(heaviest)} alone needs "
                        f"{heaviest.multiplications:,} multiplications and {totals}, above the limit of "
                        f"{limit:,} multiplications (a fully parallel design; use a smaller model){raise_it}")
    if params > limit:
        raise UserError(f"{where}: the design is too large to compile: {_describe(heaviest)} holds "
                        f"{heaviest.parameters:,} weights and {totals}, above the limit of {limit:,} "
                        f"weights{raise_it}")
    if widest.activations > limit:
        raise UserError(f"{where}: the design is too large to compile: {_describe(widest)} has "
                        f"{widest.activations:,} values (each a bus of wires and registers) and {totals}, "
                        f"above the limit of {limit:,}{raise_it}")
    return sizes


# ----------------------------------------------------------------------------- files
# A model file far too large (a Dense 1000 -> 100000 is 400 MB of float32) takes the
# frontend many seconds and gigabytes to read; its weight shapes are in the file's
# metadata, so it is refused before a weight is read.  Only weight tensors (two or more
# dimensions) count: biases and normalisation parameters are not weights of the IR, so
# the same model passes or fails here and in `check_size` alike.

def check_files(sources: list, limit: int | None) -> None:
    """UserError when the weights of the model files ``sources`` (.h5, .keras or .onnx;
    several: the members of a banked ensemble, whose weights all become ROM contents)
    exceed ``limit`` together; anything else (or a file that cannot be read: the
    frontend says why) is left to `check_size` after the frontend."""
    limit = DEFAULT_MAX_MULTIPLICATIONS if limit is None else limit
    sizes = [(path, layer, shape, _count(shape)) for path in sources for layer, shape in _file_weights(path)
             if len(shape) >= 2]
    total = sum(n for *_, n in sizes)
    if total <= limit:
        return
    path, layer, shape, n = max(sizes, key=lambda t: t[3])
    whole = (f"the whole model {total:,} weights" if len(sources) == 1 else
             f"the {len(sources)} models of the banked ensemble {total:,} weights together")
    raise UserError(f"{path}: the design is too large to compile: layer {layer!r} holds {n:,} weights "
                    f"(shape {'x'.join(map(str, shape))}), {whole} (each a multiplication or a weight ROM "
                    f"entry in the fully parallel design), above the limit of {limit:,}; nnfpga compile "
                    f"{FLAG} N raises the limit (compile time and memory grow with the design's size)")


def _file_weights(source) -> list[tuple[str, tuple[int, ...]]]:
    """(layer, shape) of the weights of a model file; nothing for anything else."""
    from pathlib import Path
    if not isinstance(source, (str, Path)):
        return []
    suffix = Path(source).suffix.lower()
    try:
        return (_h5_weight_shapes(source) if suffix in (".h5", ".hdf5") else
                _keras_zip_weight_shapes(source) if suffix == ".keras" else
                _onnx_weight_shapes(source) if suffix == ".onnx" else [])
    except Exception:  # noqa: BLE001 -- unreadable here: the frontend reports it properly
        return []


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _h5_weight_shapes(path) -> list[tuple[str, tuple[int, ...]]]:
    """(layer, shape) of every weight dataset of a Keras .h5 model or weights file."""
    import h5py
    with h5py.File(path, "r") as f:
        return _group_shapes(f["model_weights"] if "model_weights" in f else f)


def _keras_zip_weight_shapes(path) -> list[tuple[str, tuple[int, ...]]]:
    """The same for the weights file inside a Keras 3 .keras archive (read in place)."""
    import zipfile

    import h5py
    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as member, h5py.File(member, "r") as f:
        return _group_shapes(f)


def _group_shapes(root) -> list[tuple[str, tuple[int, ...]]]:
    """(layer, shape) of the datasets below ``root``: the layer is the top group (Keras 2)
    or the group below ``layers/`` (Keras 3); optimizer state is no part of the model."""
    import h5py
    out: list[tuple[str, tuple[int, ...]]] = []

    def visit(name: str, obj) -> None:
        parts = name.split("/")
        if isinstance(obj, h5py.Dataset) and parts[0] not in ("optimizer", "optimizer_weights"):
            layer = parts[1] if parts[0] == "layers" and len(parts) > 2 else parts[0]
            out.append((layer, tuple(int(d) for d in obj.shape)))
    root.visititems(visit)
    return out


def _onnx_weight_shapes(path) -> list[tuple[str, tuple[int, ...]]]:
    """(layer, shape) of every initializer and Constant of an ONNX file, the layer being
    the node that reads it (as the frontend names it).  The file's protobuf is walked for
    the shapes alone (`_OnnxShapes`), so a 2 GB model is refused without reading its
    weights; should that walk fail, onnx itself reads the file (external data never)."""
    try:
        with open(path, "rb") as f:
            nodes, tensors = _OnnxShapes(f).model()
    except (ValueError, EOFError, UnicodeDecodeError):
        nodes, tensors = _onnx_parsed(path)
    reader: dict[str, str] = {}
    for name, op_type, inputs in reversed(nodes):
        for i in inputs:
            reader[i] = name or op_type
    return [(reader.get(t, t), shape) for t, shape in tensors]


def _onnx_parsed(path):
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    nodes = [(n.name, n.op_type, list(n.input)) for n in model.graph.node]
    tensors = [(t.name, tuple(int(d) for d in t.dims)) for t in model.graph.initializer]
    tensors += [(n.output[0], tuple(int(d) for d in a.t.dims)) for n in model.graph.node
                if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return nodes, tensors


class _OnnxShapes:
    """Reads the node names and tensor shapes of an ONNX ModelProto from its protobuf
    wire format, seeking over every other field (the weights' bytes above all).
    Field numbers from onnx.proto: ModelProto.graph 7; GraphProto.node 1, .initializer 5;
    NodeProto.input 1, .output 2, .name 3, .op_type 4, .attribute 5; AttributeProto.name
    1, .t 5; TensorProto.dims 1, .name 8."""

    def __init__(self, f) -> None:
        self.f = f

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.f.read(1)
            if not b:
                raise EOFError("truncated varint")
            value |= (b[0] & 0x7F) << shift
            if b[0] < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def fields(self, end: int):
        """(field, wire type, value) up to ``end``: a varint's value, or a length-delimited
        field's (start, length), after which the walk goes on past it."""
        while self.f.tell() < end:
            key = self.varint()
            field, wire = key >> 3, key & 7
            if wire == 0:
                yield field, wire, self.varint()
            elif wire == 2:
                length = self.varint()
                start = self.f.tell()
                yield field, wire, (start, length)
                self.f.seek(start + length)
            elif wire in (1, 5):
                self.f.seek(8 if wire == 1 else 4, 1)
            else:
                raise ValueError(f"wire type {wire}")
        if self.f.tell() != end:
            raise ValueError("field overruns its message")

    def text(self, span: tuple[int, int]) -> str:
        self.f.seek(span[0])
        return self.f.read(span[1]).decode("utf-8")

    def model(self):
        end = self.f.seek(0, 2)
        self.f.seek(0)
        for field, wire, value in self.fields(end):
            if field == 7 and wire == 2:
                return self.graph(*value)
        raise ValueError("no graph")

    def graph(self, start: int, length: int):
        nodes, tensors = [], []
        self.f.seek(start)
        for field, wire, value in self.fields(start + length):
            if field == 1 and wire == 2:
                node = self.node(*value)
                nodes.append(node[:3])
                tensors += node[3]
            elif field == 5 and wire == 2:
                tensors.append(self.tensor(*value))
        return nodes, tensors

    def node(self, start: int, length: int):
        name = op_type = ""
        inputs, outputs, values = [], [], []
        self.f.seek(start)
        for field, wire, value in self.fields(start + length):
            if wire != 2:
                continue
            if field in (1, 2, 3, 4):
                here = self.f.tell()
                text = self.text(value)
                self.f.seek(here)
                if field == 1:
                    inputs.append(text)
                elif field == 2:
                    outputs.append(text)
                elif field == 3:
                    name = text
                else:
                    op_type = text
            elif field == 5:
                values += self.attribute(*value)
        constants = [(outputs[0] if outputs else name, shape) for _, shape in values] if op_type == "Constant" else []
        return name, op_type, inputs, constants

    def attribute(self, start: int, length: int):
        name, tensor = "", None
        self.f.seek(start)
        for field, wire, value in self.fields(start + length):
            if field == 1 and wire == 2:
                here = self.f.tell()
                name = self.text(value)
                self.f.seek(here)
            elif field == 5 and wire == 2:
                tensor = self.tensor(*value)
        return [tensor] if name == "value" and tensor is not None else []

    def tensor(self, start: int, length: int) -> tuple[str, tuple[int, ...]]:
        name, dims = "", []
        self.f.seek(start)
        for field, wire, value in self.fields(start + length):
            if field == 1 and wire == 0:
                dims.append(value)
            elif field == 1 and wire == 2:   # packed dims
                self.f.seek(value[0])
                while self.f.tell() < value[0] + value[1]:
                    dims.append(self.varint())
            elif field == 8 and wire == 2:
                name = self.text(value)
        return name, tuple(dims)


def check_limit(limit: int | None) -> None:
    """The flag's value is a positive count."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UserError(f"{FLAG} must be a positive number of multiplications, got {limit!r} "
                        f"(the default is {DEFAULT_MAX_MULTIPLICATIONS:,})")
