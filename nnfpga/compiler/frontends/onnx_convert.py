"""ONNX graph → IR: the walk over the nodes, constant folding, and the channels-first →
channels-last plumbing; `onnx_ops` has one handler per op, `onnx.py` reads and checks the
file and reports the problems.

Layout-only ops (Flatten, Reshape, Transpose that keeps the batch axis, Squeeze,
Unsqueeze, Identity) only relabel a `Val` (`onnx_layout`); an IR `Reshape` is inserted
lazily when a consumer needs another IR shape.  Conv / MaxPool need their (C, H, W) input
in the IR as (H, W, C); Gemm / MatMul take any order and permute the rows of their weights
instead (so a Flatten of NCHW features is exact).  The model input stays *pending* until
its first computing consumer says which order it needs; the IR's input and output layouts
then record how the user's samples map onto the IR's (`nnfpga.ir.layout.Layout`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from nnfpga.compiler.frontends.onnx_layout import BATCH, Val, channels_last_order, is_identity, normalized, same_order
from nnfpga.compiler.frontends.onnx_ops import REFUSED, OpHandlers, as_str
from nnfpga.compiler.frontends.onnx_quant import (
    CHANNELS_LAST_DOMAIN, QONNX_DOMAINS, QuantMark, Unsupported, bipolar_constant, dequantize_linear_constant, exact_quantizer,
    quant_constant, quantize_linear_constant, trunc_constant, weight_quantizer)
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.ir.fixed import FixedType
from nnfpga.ir.layout import Layout
from nnfpga.ir.ops import Activation, Add, Concatenate, Conv2D, Dense, Gather, Input, Op, Reshape

#: The ops of QONNX's channels-last domain read (as the standard op on transposed views).
_CHANNELS_LAST_OPS = ("Conv", "MaxPool", "BatchNormalization")

#: Ops that only move or relabel values: a quantised constant stays quantised through them.
_LAYOUT_OPS = ("Identity", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze")

#: Ops whose output has their data input's shape (a refused one passes its shape on, so the
#: nodes after it are still checked).
_SAME_SHAPE = ("Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "HardSigmoid", "HardSwish",
               "Softplus", "Softsign", "Mish", "ThresholdedRelu", "Clip", "Tanh", "Sigmoid", "Softmax",
               "LogSoftmax", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf", "Sign", "Round", "Floor", "Ceil",
               "Cast", "Quant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear", "Identity",
               "Dropout", "BatchNormalization", "InstanceNormalization", "LayerNormalization")

#: Ops that join computed tensors (`Converter._join`).
_JOINS = ("Add", "Sub", "Concat")
#: The stand-in consumer that names the wiring a second reader of the model input needs.
_INPUT_READER = SimpleNamespace(name="input", op_type="Input")

#: Bits of a float bias next to quantised weights (exact float32 biases rarely need more).
FLOAT_BIAS_FRAC = 24


def _ident(name: str) -> str:
    s = re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_")
    return f"n_{s}" if s[:1].isdigit() else s


class _Skip(Exception):
    """A node that reads a tensor whose producer was already reported."""


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class Converter(OpHandlers):
    """Walks the (pruned, topologically ordered) ONNX nodes once, folding constants and
    building IR nodes; `problems` collects every node that cannot be converted."""

    def __init__(self, model, precision: Precision, input_name: str, user_shape: tuple[int, ...],
                 static_batch: int | None, used: set[str]):
        from onnx import numpy_helper
        self.model, self.p = model, precision
        self.opsets = {(o.domain or ""): o.version for o in model.opset_import}
        self.opset = self.opsets.get("", self.opsets.get("ai.onnx", 13))
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.marks: dict[str, QuantMark] = {}
        self.vals: dict[str, Val] = {input_name: Val(tuple(user_shape))}
        self.input_name, self.user_shape = input_name, tuple(user_shape)
        self.static_batch = static_batch
        self.used = used
        self.nodes: list[Op] = []
        self.input_type: FixedType | None = None
        self.input_layout: Layout | None = None
        self.linear_out: dict[str, Val] = {}      # IR Dense/Conv2D name -> the Val it produced
        self.bias_marked: dict[str, bool] = {}    # IR Dense/Conv2D name -> its bias is quantised
        self.problems: list[tuple[str, str, str]] = []
        self._names: set[str] = {"input"}
        self._shapes: dict[str, tuple[int, ...]] | None = None  # ONNX shape inference, for reports only
        self._input_val: Val | None = None   # the model input, once placed in the IR
        #: a model with several inputs / outputs: where each lies in the one flat input /
        #: output (the Keras frontend's ``inputs`` / ``outputs`` annotations)
        self.io_annotations: dict[str, list] = {}

    # ------------------------------------------------------------------ driving
    def run(self, nodes) -> None:
        for i, node in enumerate(nodes):
            label = repr(node.name) if node.name else f"#{i} (output {node.output[0]!r})"
            try:
                self._visit(node)
            except Unsupported as e:
                self.problems.append((label, node.op_type, str(e)))
                self._ghost(node)
            except _Skip:
                pass

    def _ghost(self, node) -> None:
        """After a refused node, a stand-in for its output (its shape, in the natural layout)
        so that the nodes after it are still checked; the graph is never compiled."""
        data = [i for i in node.input if i in self.vals]
        out = node.output[0] if node.output else ""
        if not out or out in self.consts:
            return
        if not data and node.op_type in _SAME_SHAPE and node.input and node.input[0] in self.consts:
            self.consts[out] = self.consts[node.input[0]]  # e.g. weights behind a refused quantiser
            return
        if node.op_type in _SAME_SHAPE and len(data) == 1:
            self.vals[out] = replace(self.vals[data[0]], ghost=True, qscale=None)
            return
        shape = self._inferred_shapes().get(out)
        if shape is None:
            return
        rank3 = len(shape) == 3
        ir_shape = (shape[1], shape[2], shape[0]) if rank3 else shape
        self.vals[out] = Val(shape, "?", ir_shape, channels_last_order(shape) if rank3 else None, ghost=True)

    def _inferred_shapes(self) -> dict[str, tuple[int, ...]]:
        if self._shapes is None:
            self._shapes = {}
            try:
                from onnx import shape_inference
                inferred = shape_inference.infer_shapes(self.model)
            except Exception:  # noqa: BLE001 (only improves the error report)
                return self._shapes
            for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
                dims = vi.type.tensor_type.shape.dim
                if len(dims) >= 2 and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims[1:]):
                    self._shapes[vi.name] = tuple(int(d.dim_value) for d in dims[1:])
        return self._shapes

    def _visit(self, node) -> None:
        ins = [i for i in node.input if i]
        unknown = [i for i in ins if i not in self.consts and i not in self.vals]
        dynamic = [i for i in ins if i in self.vals]
        domain = node.domain or ""
        if not dynamic and not unknown:
            self._fold(node, domain)
            return
        if node.op_type == "Shape" and domain in ("", "ai.onnx"):
            self._shape(node, dynamic, unknown)
            return
        handler = None
        if domain in ("", "ai.onnx"):
            handler = getattr(self, f"_op_{node.op_type}", None)
        elif domain in QONNX_DOMAINS:
            handler = getattr(self, f"_q_{node.op_type}", None)
        elif domain == CHANNELS_LAST_DOMAIN and node.op_type in _CHANNELS_LAST_OPS:
            handler = self._channels_last(node.op_type)
        if handler is None:
            why = REFUSED.get(node.op_type, "not in the supported op set")
            raise Unsupported(why if domain in ("", "ai.onnx") else f"custom op of domain {domain!r}: {why}")
        data = [i for i in ins if i not in self.consts]
        if node.op_type in _JOINS and domain in ("", "ai.onnx") and (len(dynamic) > 1 or node.op_type == "Concat"):
            if unknown:
                raise _Skip()  # an input's producer was already reported
            self.vals[node.output[0]] = self._join(node, [self.vals[i] if i in self.vals else None for i in ins],
                                                   _attrs(node))
            return
        if len(dynamic) > 1:
            raise Unsupported(f"reads {len(dynamic)} computed tensors; only Add, Sub and Concat join "
                              "computed tensors")
        if len(data) > 1:
            raise _Skip()  # a second input's producer was already reported
        if data and data[0] != node.input[0] and node.op_type not in ("Add", "Mul", "Div"):
            raise Unsupported("the computed tensor must be the first input (a constant on the left of the "
                              "data has no IR form)")
        x = self.vals.get(data[0]) if data else None
        if x is not None and x.qscale is not None and node.op_type not in ("DequantizeLinear", *_LAYOUT_OPS):
            raise Unsupported("reads the integers of a QuantizeLinear; only a DequantizeLinear with the same "
                              "scale may (a QDQ pair)")
        for extra in node.output[1:]:
            if extra and extra in self.used:
                raise Unsupported(f"its extra output {extra!r} is used; only the first output is supported")
        out = handler(node, x, _attrs(node))
        if out is not None:
            self.vals[node.output[0]] = replace(out, ghost=True) if x is not None and x.ghost else out

    def _channels_last(self, op_type: str):
        """The handler of a QONNX channels-last op: its (N, spatial..., C) input seen as
        (N, C, spatial...), the standard op, and its output seen channels-last again --
        two layout views (`_op_Transpose`), no data moved.  A Conv's weights are stored
        (O, spatial..., I), as QONNX executes them: moved to (O, I, spatial...)."""
        def handler(node, x, a):
            x = self._ready(x)
            rank = len(x.shape) + 1
            first = self._op_Transpose(node, x, {"perm": [0, rank - 1, *range(1, rank - 1)]})
            if op_type == "Conv":
                w = np.asarray(self._const(node, 1, "weights"))
                out = self._op_Conv(node, first, a, w.transpose(0, w.ndim - 1, *range(1, w.ndim - 1)))
            else:
                out = getattr(self, f"_op_{op_type}")(node, first, a)
            return self._op_Transpose(node, out, {"perm": [0, *range(2, rank), 1]})
        return handler

    @staticmethod
    def _ready(x: Val | None) -> Val:
        if x is None:
            raise _Skip()
        return x

    # ------------------------------------------------------------------ constants
    def _const(self, node, index: int, what: str, required: bool = True) -> np.ndarray | None:
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            if required:
                raise Unsupported(f"has no {what} input")
            return None
        if name in self.consts:
            return self.consts[name]
        if name in self.vals:
            raise Unsupported(f"its {what} ({name!r}) is computed from the data; it must be a constant "
                              "(an initializer or a constant sub-graph)")
        raise _Skip()  # produced by a node already reported

    def _fold(self, node, domain: str) -> None:
        ins = [self.consts.get(i) if i else None for i in node.input]
        a = _attrs(node)
        mark = None
        if domain in QONNX_DOMAINS:
            try:
                outs, mark = self._fold_qonnx(node, ins, a)
            except (TypeError, IndexError, ValueError) as e:
                raise Unsupported(f"malformed {node.op_type} node ({type(e).__name__}: {e})") from None
        elif domain not in ("", "ai.onnx"):
            raise Unsupported(f"custom op of domain {domain!r} on constants cannot be evaluated")
        elif node.op_type == "QuantizeLinear":
            dtype = self._qdq_dtype(ins, a)
            if a.get("block_size", 0):
                raise Unsupported("blocked quantisation (block_size > 0) is not supported")
            outs = [quantize_linear_constant(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                                             a.get("axis", 1), dtype)]
        elif node.op_type == "DequantizeLinear":
            if a.get("block_size", 0):
                raise Unsupported("blocked quantisation (block_size > 0) is not supported")
            values, mark = dequantize_linear_constant(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                                                      a.get("axis", 1))
            outs = [values]
        else:
            outs = self._evaluate(node, ins)
            if node.op_type in _LAYOUT_OPS and node.input and node.input[0] in self.marks:
                mark = self.marks[node.input[0]]
        for name, value in zip(node.output, outs):
            if name:
                self.consts[name] = np.asarray(value)
        if mark is not None:
            self.marks[node.output[0]] = mark

    def _fold_qonnx(self, node, ins, a) -> tuple[list[np.ndarray], QuantMark]:
        op = node.op_type
        if op == "Quant":
            values, mark = quant_constant(ins[0], ins[1], ins[2], ins[3], bool(a.get("signed", 1)),
                                          bool(a.get("narrow", 0)), as_str(a.get("rounding_mode", "ROUND")))
        elif op == "BipolarQuant":
            values, mark = bipolar_constant(ins[0], ins[1])
        elif op == "Trunc":
            version = self.opsets.get(node.domain, 1)
            if version >= 2:
                values, mark = trunc_constant(ins[0], ins[1], ins[2], ins[3], ins[4], ins[5],
                                              bool(a.get("signed", 1)), bool(a.get("narrow", 0)),
                                              as_str(a.get("rounding_mode", "FLOOR")), version)
            else:
                values, mark = trunc_constant(ins[0], ins[1], ins[2], ins[3], None, ins[4], True, False,
                                              as_str(a.get("rounding_mode", "FLOOR")), version)
        else:
            raise Unsupported(f"qonnx op {op} is not supported; supported: Quant, BipolarQuant, Trunc")
        return [values], mark

    def _evaluate(self, node, ins) -> list[np.ndarray]:
        from onnx.reference import ReferenceEvaluator
        names = [i for i in node.input if i]
        try:
            ev = ReferenceEvaluator(node, opsets={"": self.opset})
            return list(ev.run(None, {n: self.consts[n] for n in names}))
        except Exception as e:  # noqa: BLE001 (any evaluation failure is the model's)
            raise Unsupported(f"this constant sub-graph node could not be evaluated ({type(e).__name__}: {e})") \
                from None

    def _shape(self, node, dynamic, unknown) -> None:
        if unknown:
            raise _Skip()
        x = self.vals[dynamic[0]]
        a = _attrs(node)
        full = np.array([self.static_batch if self.static_batch else BATCH, *x.shape], dtype=np.int64)
        self.consts[node.output[0]] = full[a.get("start", 0):a.get("end", len(full))]

    def _qdq_dtype(self, ins, a) -> np.dtype:
        if len(ins) > 2 and ins[2] is not None:
            return ins[2].dtype
        if a.get("output_dtype", 0):
            from onnx import helper
            return np.dtype(helper.tensor_dtype_to_np_dtype(a["output_dtype"]))
        return np.dtype(np.uint8)

    # ------------------------------------------------------------------ IR building
    def _name(self, node, suffix: str = "") -> str:
        """A unique IR node name from the ONNX node's ("/fc1/Gemm" -> "fc1_Gemm")."""
        base = _ident(node.name) or node.op_type.lower()
        return self._unique(f"{base}_{suffix}" if suffix else base)

    def _append(self, op: Op) -> None:
        self.nodes.append(op)

    def _materialize(self, x: Val, gather: np.ndarray | None, ir_shape: tuple[int, ...]) -> Val:
        """Place the pending input in the IR in the order its first consumer needs; a later
        consumer reads it from there (re-arranged by wiring if it needs another order)."""
        if self._input_val is not None:
            placed = self._input_val
            if not same_order(placed.gather, normalized(gather)):
                return self._regathered(placed, normalized(gather), tuple(ir_shape), _INPUT_READER)
            return placed if placed.ir_shape == tuple(ir_shape) else self._reshaped(placed, tuple(ir_shape),
                                                                                      _INPUT_READER)
        n = int(np.prod(ir_shape, dtype=np.int64))
        src = x.src if x.src is not None else np.arange(n)
        order = src[gather] if gather is not None else src
        if not (is_identity(order) and self.user_shape == tuple(ir_shape)):
            self.input_layout = Layout(self.user_shape, tuple(order))
        t = self.input_type or self.p.input_type
        self._append(Input("input", [], out_type=t, shape=tuple(ir_shape), source_layer=self.input_name))
        self._input_val = Val(x.shape, "input", tuple(ir_shape), normalized(gather), via=x.via)
        return self._input_val

    def _reshaped(self, x: Val, ir_shape: tuple[int, ...], consumer) -> Val:
        name = self._name(consumer, "reshape") if not x.via else self._unique(_ident(x.via) or "reshape")
        self._append(Reshape(name, [x.node], target_shape=tuple(ir_shape), source_layer=x.via or consumer.name))
        return replace(x, node=name, ir_shape=tuple(ir_shape))

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def _need_chw(self, x: Val, node) -> Val:
        if len(x.shape) != 3:
            raise Unsupported(f"expects a (N, C, H, W) input, got (N, {', '.join(map(str, x.shape))})")
        c, h, w = x.shape
        order, ir_shape = channels_last_order(x.shape), (h, w, c)
        if x.node is None:
            return self._materialize(x, order, ir_shape)
        if not same_order(x.gather, order):
            return self._regathered(x, order, ir_shape, node)
        return x if x.ir_shape == ir_shape else self._reshaped(x, ir_shape, node)

    def _regathered(self, x: Val, order: np.ndarray | None, ir_shape: tuple[int, ...], consumer) -> Val:
        """The data transpose a Reshape/Transpose after a computing layer asks for: a
        `Gather` (wiring in the firmware) from the IR order ``x`` is held in to ``order``."""
        n = int(np.prod(ir_shape, dtype=np.int64))
        held = x.gather if x.gather is not None else np.arange(n)      # ir_flat = onnx_flat[held]
        wanted = order if order is not None else np.arange(n)
        index = np.argsort(held)[wanted]                                  # new_ir = ir[index]
        name = self._name(consumer, "transpose") if not x.via else self._unique(_ident(x.via) or "transpose")
        self._append(Gather(name, [x.node], target_shape=tuple(ir_shape), index=index,
                            source_layer=x.via or consumer.name))
        return replace(x, node=name, ir_shape=tuple(ir_shape), gather=normalized(order))

    def _need_flat(self, x: Val, node) -> Val:
        n = int(np.prod(x.shape, dtype=np.int64))
        if x.node is None:
            return self._materialize(x, None, (n,))
        return x if x.ir_shape == (n,) else self._reshaped(x, (n,), node)

    def _need_any(self, x: Val) -> Val:
        if x.node is not None:
            return x
        if len(x.shape) == 3:
            c, h, w = x.shape
            return self._materialize(x, channels_last_order(x.shape), (h, w, c))
        return self._materialize(x, None, tuple(x.shape))

    def _elementwise(self, node, x: Val, function: str, **kw) -> Val:
        x = self._need_any(x)
        name = self._name(node)
        self._append(Activation(name, [x.node], function=function, source_layer=node.name, **kw))
        return replace(x, node=name, via="")

    def _linear_of(self, x: Val, what: str) -> Op:
        """The Dense/Conv2D whose output ``x`` is, untouched (for bias adds)."""
        if x.ghost:
            raise _Skip()  # what precedes it was refused: cannot tell
        last = self.nodes[-1] if self.nodes else None
        if last is None or not isinstance(last, (Dense, Conv2D)) or self.linear_out.get(last.name) is not x:
            raise Unsupported(f"{what} is supported only right after Gemm/MatMul/Conv (it is folded into "
                              "their weights and bias)")
        return last

    def _bias_quantizer(self, bias, mark: QuantMark | None, kernel_quantized: bool, what: str):
        if bias is None:
            return None
        if mark is not None:
            return weight_quantizer(bias, mark, what)
        return exact_quantizer(bias, what, max_frac=FLOAT_BIAS_FRAC) if kernel_quantized else None

    def _dense(self, node, x: Val, kernel: np.ndarray, bias, kmark, bmark) -> Val:
        x = self._need_flat(x, node)
        if x.gather is not None:  # the data arrives permuted: permute the rows instead
            kernel = kernel[x.gather]
        kq = weight_quantizer(kernel, kmark, "weights") if kmark is not None else None
        bq = self._bias_quantizer(bias, bmark, kq is not None, "biases")
        name = self._name(node)
        self.bias_marked[name] = bmark is not None
        self._append(Dense(name, [x.node], kernel=np.asarray(kernel, dtype=np.float64),
                           bias=None if bias is None else np.asarray(bias, dtype=np.float64),
                           kernel_quantizer=kq, bias_quantizer=bq, source_layer=node.name,
                           auto_frac=None if kq else self.p.activation_frac))
        n_out = kernel.shape[1]
        out = Val((n_out,), name, (n_out,))
        self.linear_out[name] = out
        return out

    def _quantize(self, node, x: Val, t: FixedType) -> Val:
        """An activation quantiser: the input's type, merged into a preceding relu or leaky
        relu (one rounding, of the exact value), or a linear conversion."""
        if x.node is None and self.input_type is None:
            self.input_type = t  # rounds the float samples once, exactly as the framework does
            return x
        last = self.nodes[-1] if self.nodes else None
        if (isinstance(last, Activation) and last.out_type is None and x.node == last.name
                and ((last.function == "relu" and last.auto_frac is None) or last.function == "leaky_relu")):
            last.out_type, last.auto_frac = t, None
            return x
        return self._elementwise(node, x, "linear", out_type=t)

    def _join(self, node, xs: list[Val | None], a: dict) -> Val:
        """Add / Sub of two computed tensors of one shape (a skip connection): the second in
        the first's IR order; Concat: every operand in the ONNX order, joined along the axis
        (a later Conv re-arranges by wiring)."""
        if any(x is None for x in xs):
            raise Unsupported("joins a computed tensor with a constant; only computed tensors are joined")
        if any(x.ghost for x in xs):
            return replace(xs[0], ghost=True)
        if any(x.qscale is not None for x in xs):
            raise Unsupported("reads the integers of a QuantizeLinear; end with the matching DequantizeLinear")
        name = self._name(node)
        if node.op_type in ("Add", "Sub"):
            if len({x.shape for x in xs}) != 1:
                raise Unsupported(f"adds tensors of shapes {[list(x.shape) for x in xs]}; they must be equal "
                                  "(broadcasting computed tensors is not supported)")
            first = self._need_any(xs[0])
            second = self._need_any(xs[1])
            if not same_order(second.gather, first.gather):
                second = self._regathered(second, first.gather, first.ir_shape, node)
            elif second.ir_shape != first.ir_shape:
                second = self._reshaped(second, first.ir_shape, node)
            self._append(Add(name, [first.node, second.node], signs=(1, -1) if node.op_type == "Sub" else (),
                             source_layer=node.name))
            return Val(first.shape, name, first.ir_shape, first.gather)
        rank = len(xs[0].shape)
        axis = int(a.get("axis", 1))
        axis = axis + rank + 1 if axis < 0 else axis
        if not 1 <= axis <= rank or any(len(x.shape) != rank for x in xs):
            raise Unsupported(f"Concat along axis {a.get('axis')} of tensors of shapes {[list(x.shape) for x in xs]}; "
                              "only axes after the batch are supported")
        placed = []
        for x in xs:
            x = self._need_any(x)
            if not same_order(x.gather, None):
                x = self._regathered(x, None, tuple(x.shape), node)
            elif x.ir_shape != tuple(x.shape):
                x = self._reshaped(x, tuple(x.shape), node)
            placed.append(x)
        shape = list(xs[0].shape)
        shape[axis - 1] = sum(x.shape[axis - 1] for x in xs)
        self._append(Concatenate(name, [x.node for x in placed], axis=axis - 1, source_layer=node.name))
        return Val(tuple(shape), name, tuple(shape))

    def place_inputs(self, inputs: list[tuple[str, tuple[int, ...]]]) -> None:
        """Several model inputs: one flat IR input holding them side by side (each flattened
        in ONNX order, in the model's input order), and a `Gather` per input that cuts its
        values out in ONNX order (consumers re-arrange them by wiring as they need)."""
        sizes = [int(np.prod(shape, dtype=np.int64)) for _, shape in inputs]
        self._append(Input("input", [], out_type=self.p.input_type, shape=(sum(sizes),), source_layer=inputs[0][0]))
        self._input_val = Val((sum(sizes),), "input", (sum(sizes),))
        offset, listed = 0, []
        for (name, shape), size in zip(inputs, sizes):
            node = self._unique(_ident(name) or "input")
            self._append(Gather(node, ["input"], target_shape=tuple(shape),
                                index=np.arange(offset, offset + size, dtype=np.int64), source_layer=name))
            self.vals[name] = Val(tuple(shape), node, tuple(shape))
            listed.append({"layer": name, "shape": list(shape), "offset": offset, "size": size})
            offset += size
        self.io_annotations["inputs"] = listed

    # ------------------------------------------------------------------ the end
    def finish_several(self, outputs: list[str]) -> str:
        """Several model outputs: each flattened in ONNX order, side by side in the model's
        output order, in one `Concatenate` (the type that holds each exactly)."""
        flat, listed, offset = [], [], 0
        for name in outputs:
            x = self._output_val(name)
            n = int(np.prod(x.shape, dtype=np.int64))
            reader = SimpleNamespace(name=f"{name}_flat", op_type="Output")
            if not same_order(x.gather, None):
                x = self._regathered(x, None, (n,), reader)
            elif x.ir_shape != (n,):
                x = self._reshaped(x, (n,), reader)
            flat.append(x.node)
            listed.append({"layer": name, "shape": list(x.shape), "offset": offset, "size": n})
            offset += n
        node = self._unique("outputs")
        self._append(Concatenate(node, flat, axis=0, source_layer=outputs[-1]))
        self.io_annotations["outputs"] = listed
        return node

    def _output_val(self, output_name: str) -> Val:
        if output_name in self.consts:
            raise Unsupported("the model output is a constant (it does not depend on the input)")
        x = self.vals.get(output_name)
        if x is None or x.ghost:
            raise _Skip()
        if x.qscale is not None:
            raise Unsupported("the model output is the integer output of a QuantizeLinear; end with the "
                              "matching DequantizeLinear")
        return self._need_any(x)

    def finish(self, output_name: str) -> tuple[str, Layout | None]:
        """Place the graph output; returns its IR node and the output layout."""
        x = self._output_val(output_name)
        n = int(np.prod(x.shape, dtype=np.int64))
        if is_identity(x.gather) and tuple(x.ir_shape) == tuple(x.shape):
            return x.node, None
        order = x.gather if x.gather is not None else np.arange(n)
        return x.node, Layout(x.shape, tuple(order))
