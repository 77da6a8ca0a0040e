"""One handler per supported ONNX op (``_op_<OpType>``, QONNX: ``_q_<OpType>``), mixed into
`onnx_convert.Converter`, which supplies the data input as a `Val` (None when its producer
was refused: a handler checks what it can, then stops at ``self._ready(x)``) and the
plumbing (``_const``, ``_need_chw``, ``_dense``, ``_quantize``, ...).  A handler returns the
`Val` of its output or raises `Unsupported` with the reason.

The supported ops are the handlers (`SUPPORTED`, listed in every refusal, is made from
them and their `NOTES`):

* layers: Gemm, MatMul (data @ constant weights), an Add/Sub of a constant right after
  them or after a Conv (folded into the bias), Conv (1-D and 2-D, group 1, no dilation),
  MaxPool (1-D and 2-D; a 1-D one is the 2-D one of height 1), AveragePool (no padding)
  and GlobalAveragePool (a convolution with weights 1/cells), GlobalMaxPool, BatchNormalization (folded into the weights right after
  Gemm/MatMul/Conv, an exact per-channel scale and shift anywhere else);
* activations: Relu, Clip(0, inf) (relu), Clip(-1, 1) (hard tanh), LeakyRelu with
  0 <= alpha < 1 (alpha 0 is a relu; the slope is rounded to an exact constant, see
  `nnfpga.ir.ops.activation.quantize_alpha`), HardSigmoid with alpha = beta = 0.5
  (QKeras's hard sigmoid; other slopes are refused), Tanh, Sigmoid (lookup tables),
  Softmax over the features of a (N, features) tensor;
* layout: Flatten (axis 1), Reshape and Squeeze/Unsqueeze keeping the batch axis,
  Transpose keeping the batch axis (a `Gather` where a convolution or pooling needs the
  data re-arranged), Identity, Dropout (inference);
* quantisers (`onnx_quant`): QONNX Quant, BipolarQuant (weights; on activations a sign), Trunc (qonnx opset 2),
  QuantizeLinear/DequantizeLinear pairs -- power-of-two scales, zero point 0 (exact only);
* QONNX channels-last Conv, MaxPool, BatchNormalization (domain
  ``qonnx.custom_op.channels_last``): the standard handler between two layout views
  (`onnx_convert.Converter._channels_last`);
* constant sub-graphs (initialisers only, and ``Shape`` of the data) are folded.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnfpga.compiler.frontends.onnx_layout import BATCH, Val, channels_last_order, normalized, same_order, window_modes
from nnfpga.compiler.frontends.onnx_quant import (
    QuantMark, Unsupported, exact_quantizer, int_spec, po2_exponents, qdq_activation_type, quant_activation_type, scalar_po2,
    trunc_activation_types, weight_quantizer)
from nnfpga.ir.fixed import FixedType
from nnfpga.ir.ops import BatchNorm, Conv2D, Gather, MaxPool2D, ScaleShift
from nnfpga.ir.ops.conv2d import averaging_kernel

#: Op-specific reasons for ops the IR cannot express.
REFUSED = {
    "Pad": "the IR has no padding op; pad inside the Conv/MaxPool (pads attribute) with 'valid' or "
           "TensorFlow-style 'same' geometry",
}


#: What a handler accepts beyond its op's name, in the list of supported ops (`SUPPORTED`).
NOTES = {"Mul": "by a constant", "Div": "by a constant", "Add": "of a bias, or of two computed tensors", "Sub": "of a bias, or of two computed tensors",
         "Concat": "of computed tensors", "Conv": "1-D/2-D", "MaxPool": "1-D/2-D",
         "AveragePool": "1-D/2-D, whole windows", "GlobalAveragePool": "1-D/2-D", "GlobalMaxPool": "1-D/2-D", "LeakyRelu": "0 <= alpha < 1",
         "Clip": "relu, hard tanh", "HardSigmoid": "alpha = beta = 0.5", "BipolarQuant": "weights; activations: sign, power-of-two scale"}


def as_str(v) -> str:
    """A string attribute (onnx gives bytes)."""
    return v.decode() if isinstance(v, bytes) else str(v)


class OpHandlers:
    """The op handlers of `onnx_convert.Converter` (see the module docstring)."""

    # ------------------------------------------------------------------ ops: linear layers
    def _op_Gemm(self, node, x, a):
        if a.get("transA", 0):
            raise Unsupported("transA=1 is not supported (the data must be the untransposed operand A)")
        b = self._const(node, 1, "weights (B)")
        if b.ndim != 2:
            raise Unsupported(f"weights B of shape {b.shape} are not a matrix")
        kernel = np.asarray(b.T if a.get("transB", 0) else b, dtype=np.float64)
        kmark = self.marks.get(node.input[1])
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        kernel, kmark = self._scaled(kernel, kmark, alpha, "alpha")
        c = self._const(node, 2, "bias (C)", required=False)
        bias, bmark = None, None
        if c is not None:
            try:
                bias = np.broadcast_to(np.asarray(c, dtype=np.float64), (1, kernel.shape[1]))[0].copy()
            except ValueError:
                raise Unsupported(f"bias C of shape {c.shape} does not broadcast to one row of "
                                  f"{kernel.shape[1]} outputs") from None
            bias, bmark = self._scaled(bias, self.marks.get(node.input[2]), beta, "beta")
        x = self._ready(x)
        self._check_features(x, kernel.shape[0], "Gemm")
        return self._dense(node, x, kernel, bias, kmark, bmark)

    @staticmethod
    def _scaled(w: np.ndarray, mark: QuantMark | None, factor: float, what: str):
        """Gemm's alpha/beta: exact on quantised values only as a power of two."""
        if factor == 1.0:
            return w, mark
        if mark is not None:
            po2_exponents(abs(factor), f"Gemm {what} scaling quantised values:")
            mark = QuantMark()  # still exact; no longer ternary/binary with the old scale
        return w * factor, mark

    @staticmethod
    def _check_features(x: Val, n_in: int, op: str) -> None:
        if len(x.shape) != 1:
            raise Unsupported(f"{op} reads a (N, {', '.join(map(str, x.shape))}) tensor; a Dense layer needs "
                              "(N, features) (flatten it first)")
        if x.shape[0] != n_in:
            raise Unsupported(f"{op} weights expect {n_in} features, the data has {x.shape[0]}")

    def _op_MatMul(self, node, x, a):
        b = self._const(node, 1, "weights (B)")
        if b.ndim != 2:
            raise Unsupported(f"MatMul with a {b.ndim}-D constant operand; only (features, units) weights "
                              "form a Dense layer")
        x = self._ready(x)
        self._check_features(x, b.shape[0], "MatMul")
        return self._dense(node, x, np.asarray(b, dtype=np.float64), None, self.marks.get(node.input[1]), None)

    def _op_Add(self, node, x, a, sign: float = 1.0):
        ci = 1 if node.input[1] in self.consts else 0
        if ci == 0 and sign < 0:
            raise Unsupported("constant minus data has no IR form (data minus a constant is a bias)")
        c = self._const(node, ci, "addend")
        x = self._ready(x)
        layer = self._linear_of(x, f"{node.op_type} of a constant")
        full = (1, *x.shape)
        try:
            if np.broadcast_shapes(full, c.shape) != full:
                raise ValueError
            grid = np.broadcast_to(np.asarray(c, dtype=np.float64), full)[0]
        except ValueError:
            raise Unsupported(f"the constant of shape {c.shape} does not broadcast onto one sample "
                              f"{x.shape}") from None
        if isinstance(layer, Conv2D):
            add = grid.reshape(grid.shape[0], -1)
            if not np.all(add == add[:, :1]):
                raise Unsupported("the constant varies over H and W; only a per-channel bias can be folded")
            add = add[:, 0]
        else:
            add = grid
        add = sign * add
        mark = self.marks.get(node.input[ci])
        if layer.bias is not None:  # the sum of two quantised biases is exact; otherwise float
            mark = QuantMark() if (mark is not None and self.bias_marked.get(layer.name)) else None
            add = layer.bias + add
        layer.bias = np.asarray(add, dtype=np.float64)
        layer.bias_quantizer = self._bias_quantizer(layer.bias, mark, layer.kernel_quantizer is not None, "biases")
        self.bias_marked[layer.name] = mark is not None
        out = replace(x)
        self.linear_out[layer.name] = out
        return out

    def _op_Sub(self, node, x, a):
        return self._op_Add(node, x, a, sign=-1.0)

    def _op_Mul(self, node, x, a, divide: bool = False):
        """Data times a constant (or divided by one): a `ScaleShift` without shift -- one
        factor per channel of the IR tensor when the constant is one number or one per
        channel of a (C, H, W) tensor, else one per element of the flattened data.  A
        power-of-two factor is wiring in the firmware; others are constant products."""
        ci = 1 if node.input[1] in self.consts else 0
        if divide and ci == 0:
            raise Unsupported("a constant divided by data has no IR form (data divided by a constant has)")
        c = np.asarray(self._const(node, ci, "divisor" if divide else "factor"), dtype=np.float64)
        if divide:
            if np.any(c == 0):
                raise Unsupported("divides by a constant that holds 0")
            c = 1.0 / c
        if not np.all(np.isfinite(c)):
            raise Unsupported("the constant factor is not finite")
        x = self._ready(x)
        full = (1, *x.shape)
        try:
            if np.broadcast_shapes(full, c.shape) != full:
                raise ValueError
            grid = np.broadcast_to(c, full)[0]
        except ValueError:
            raise Unsupported(f"the constant of shape {c.shape} does not broadcast onto one sample "
                              f"{x.shape}") from None
        per_channel = grid.reshape(grid.shape[0], -1) if len(x.shape) == 3 else None
        if np.all(grid == grid.flat[0]):
            x = self._need_any(x)
            scale = np.full(x.ir_shape[-1], grid.flat[0])
        elif per_channel is not None and np.all(per_channel == per_channel[:, :1]):
            x = self._need_chw(x, node)
            scale = per_channel[:, 0]
        else:
            x = self._need_flat(x, node)
            scale = grid.reshape(-1)
            scale = scale[x.gather] if x.gather is not None else scale
        name = self._name(node)
        self._append(ScaleShift(name, [x.node], kernel=np.asarray(scale, dtype=np.float64), bias=None,
                                source_layer=node.name, auto_frac=self.p.activation_frac))
        return replace(x, node=name, via="")

    def _op_Div(self, node, x, a):
        return self._op_Mul(node, x, a, divide=True)

    def _op_Concat(self, node, x, a):
        """Computed tensors side by side (the converter routes every Concat that reads one to
        `_join`; a Concat of constants is folded)."""
        return self._join(node, [self.vals.get(i) for i in node.input if i], a)

    def _op_Conv(self, node, x, a, w=None):
        """``w``: the weights (O, I, spatial...) when they are not the node's input as
        stored (a channels-last Conv keeps them as (O, spatial..., I))."""
        w = self._const(node, 1, "weights") if w is None else w
        if w.ndim == 3:   # 1-D: the 2-D convolution of height 1
            x, a = self._as_image(node, x, a)
            out = self._conv(node, x, a, np.asarray(w)[:, :, None, :])
            return replace(out, shape=(out.shape[0], out.shape[2]))
        return self._conv(node, x, a, w)

    def _conv(self, node, x, a, w):
        if w.ndim != 4:
            raise Unsupported(f"{w.ndim - 2}-D convolution; only 1-D and 2-D convolutions ((N, C, L) and "
                              "(N, C, H, W)) are supported")
        if a.get("group", 1) != 1:
            raise Unsupported(f"grouped/depthwise convolution (group={a['group']}) is not supported by the "
                              "IR's Conv2D")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise Unsupported(f"dilations {list(a['dilations'])} are not supported")
        kh, kw = int(w.shape[2]), int(w.shape[3])
        if list(a.get("kernel_shape", [kh, kw])) != [kh, kw]:
            raise Unsupported(f"kernel_shape {list(a['kernel_shape'])} differs from the weights' {[kh, kw]}")
        b = self._const(node, 2, "bias", required=False)
        x = self._ready(x)
        x = self._need_chw(x, node)
        c, h, wd = x.shape
        if c != w.shape[1]:
            raise Unsupported(f"weights expect {w.shape[1]} input channels, the data has {c}")
        strides = tuple(int(s) for s in a.get("strides", [1, 1]))
        padding = self._padding(a, (h, wd), (kh, kw), strides)
        kernel = np.asarray(w, dtype=np.float64).transpose(2, 3, 1, 0)  # OIHW -> HWIO
        kmark = self.marks.get(node.input[1])
        kq = weight_quantizer(kernel, kmark, "weights") if kmark is not None else None
        bias = None if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
        bmark = self.marks.get(node.input[2]) if b is not None else None
        bq = self._bias_quantizer(bias, bmark, kq is not None, "biases")
        name = self._name(node)
        self.bias_marked[name] = bmark is not None
        conv = Conv2D(name, [x.node], kernel=kernel, bias=bias, kernel_quantizer=kq, bias_quantizer=bq,
                      source_layer=node.name, strides=strides, padding=padding,
                      auto_frac=None if kq else self.p.activation_frac)
        self._append(conv)
        out = self._window_out(name, w.shape[0], (h, wd), (kh, kw), strides, padding)
        self.linear_out[name] = out
        return out

    def _as_image(self, node, x: Val, a: dict) -> tuple[Val, dict]:
        """A 1-D window op (input (N, C, L)) as the 2-D one on (N, C, 1, L): its input
        with a height of 1 and its attributes with the height's (kernel 1, stride 1,
        no padding or dilation)."""
        x = self._ready(x)
        if len(x.shape) != 2:
            raise Unsupported(f"1-D {node.op_type} expects a (N, C, L) input, got (N, {', '.join(map(str, x.shape))})")
        lifted = dict(a)
        for key, height in (("kernel_shape", 1), ("strides", 1), ("dilations", 1)):
            if key in a:
                lifted[key] = [height, *a[key]]
        if "pads" in a:
            begin, end = a["pads"]
            lifted["pads"] = [0, begin, 0, end]
        return replace(x, shape=(x.shape[0], 1, x.shape[1]), via=node.name), lifted

    @staticmethod
    def _window_out(name, channels, hw, k, strides, padding) -> Val:
        from nnfpga.ir.ops.conv2d import window_geometry
        (oh, ow), _ = window_geometry(hw, k, strides, padding)
        shape = (int(channels), oh, ow)
        return Val(shape, name, (oh, ow, int(channels)), channels_last_order(shape))

    @staticmethod
    def _padding(a: dict, hw, k, strides, ceil_mode: bool = False) -> str:
        auto = as_str(a.get("auto_pad", "NOTSET"))
        if auto == "VALID":
            pads = [0, 0, 0, 0]
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for d in range(2):
                out = -(-hw[d] // strides[d])
                total = max((out - 1) * strides[d] + k[d] - hw[d], 0)
                small, big = total // 2, total - total // 2
                pads[d], pads[d + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
        else:
            pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        modes = window_modes(hw[0], k[0], strides[0], pads[0], pads[2], ceil_mode) & \
            window_modes(hw[1], k[1], strides[1], pads[1], pads[3], ceil_mode)
        if not modes:
            raise Unsupported(
                f"pads {pads} (top, left, bottom, right) with kernel {list(k)}, strides {list(strides)}"
                f"{', ceil_mode' if ceil_mode else ''} on a {hw[0]}x{hw[1]} input give windows that neither "
                "'valid' (no padding) nor TensorFlow-style 'same' padding (the IR's two modes) reproduce; "
                "use no padding, or 'same' padding with any odd pad at the end (e.g. k//2 on both sides for "
                "an odd kernel at stride 1, PyTorch padding='same')")
        return "valid" if "valid" in modes else "same"

    def _op_MaxPool(self, node, x, a):
        if "kernel_shape" in a and len(a["kernel_shape"]) == 1:   # 1-D: the 2-D pooling of height 1
            x, a = self._as_image(node, x, a)
            out = self._op_MaxPool(node, x, a)
            return replace(out, shape=(out.shape[0], out.shape[2]))
        if "kernel_shape" not in a or len(a["kernel_shape"]) != 2:
            raise Unsupported("only 1-D and 2-D max pooling (kernel_shape of one or two values) is supported")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise Unsupported(f"dilations {list(a['dilations'])} are not supported")
        k = tuple(int(v) for v in a["kernel_shape"])
        strides = tuple(int(s) for s in a.get("strides", [1, 1]))
        x = self._need_chw(self._ready(x), node)
        c, h, w = x.shape
        padding = self._padding(a, (h, w), k, strides, bool(a.get("ceil_mode", 0)))
        name = self._name(node)
        self._append(MaxPool2D(name, [x.node], pool_size=k, strides=strides, padding=padding,
                               source_layer=node.name))
        return self._window_out(name, c, (h, w), k, strides, padding)

    def _op_AveragePool(self, node, x, a):
        if "kernel_shape" in a and len(a["kernel_shape"]) == 1:
            x, a = self._as_image(node, x, a)
            out = self._op_AveragePool(node, x, a)
            return replace(out, shape=(out.shape[0], out.shape[2]))
        if "kernel_shape" not in a or len(a["kernel_shape"]) != 2:
            raise Unsupported("only 1-D and 2-D average pooling (kernel_shape of one or two values) is supported")
        k = tuple(int(v) for v in a["kernel_shape"])
        strides = tuple(int(s) for s in a.get("strides", [1, 1]))
        x = self._need_chw(self._ready(x), node)
        c, h, w = x.shape
        padding = self._padding(a, (h, w), k, strides, bool(a.get("ceil_mode", 0)))
        if padding != "valid":
            raise Unsupported("average pooling with padding is not supported (an edge window averages fewer "
                              "cells); use no padding")
        return self._average(node, x, k, strides)

    def _average(self, node, x: Val, k: tuple[int, int], strides: tuple[int, int]) -> Val:
        """Average pooling of whole windows as a convolution (`averaging_kernel`)."""
        c, h, w = x.shape
        name = self._name(node)
        self._append(Conv2D(name, [x.node], kernel=averaging_kernel(k, c), bias=None, source_layer=node.name,
                            strides=strides, padding="valid", auto_frac=self.p.activation_frac))
        return self._window_out(name, c, (h, w), k, strides, "valid")

    def _global(self, node, x):
        """The (C, H, W) input of a global pooling (a (C, L) one as (C, 1, L))."""
        x = self._ready(x)
        if len(x.shape) == 2:
            x = replace(x, shape=(x.shape[0], 1, x.shape[1]), via=node.name)
        return self._need_chw(x, node)

    @staticmethod
    def _keep_rank(out: Val, rank: int) -> Val:
        """ONNX global pooling keeps the spatial axes with size 1."""
        return replace(out, shape=(out.shape[0],) + (1,) * rank)

    def _op_GlobalAveragePool(self, node, x, a):
        rank = len(self._ready(x).shape) - 1
        x = self._global(node, x)
        c, h, w = x.shape
        return self._keep_rank(self._average(node, x, (h, w), (h, w)), rank)

    def _op_GlobalMaxPool(self, node, x, a):
        rank = len(self._ready(x).shape) - 1
        x = self._global(node, x)
        c, h, w = x.shape
        name = self._name(node)
        self._append(MaxPool2D(name, [x.node], pool_size=(h, w), strides=(h, w), padding="valid",
                               source_layer=node.name))
        return self._keep_rank(self._window_out(name, c, (h, w), (h, w), (h, w), "valid"), rank)

    def _op_BatchNormalization(self, node, x, a):
        """ONNX normalises axis 1, the channels; the IR's BatchNorm the last axis.  A (C, H, W)
        tensor goes to the IR as (H, W, C) and a (C, L) one held as the image (1, L, C) (after
        a 1-D Conv/MaxPool) stays so: one parameter per channel.  Any other shape (features
        (C,), BatchNorm1d's (C, L), the (C, 1) of an Unsqueeze) is a flat tensor with the
        parameters repeated per element, in the IR's order of the flat data.  `fold_batchnorm`
        folds it into a Dense/Conv2D right before it, else makes it a ScaleShift."""
        if a.get("training_mode", 0):
            raise Unsupported("training_mode=1; export the model in eval mode")
        params = [np.asarray(self._const(node, i, what), dtype=np.float64).reshape(-1)
                  for i, what in enumerate(("scale", "bias (B)", "mean", "variance"), start=1)]
        x = self._ready(x)
        if len({len(p) for p in params}) != 1:
            raise Unsupported(f"parameters of lengths {', '.join(str(len(p)) for p in params)} differ")
        c = len(params[0])
        if not x.shape or x.shape[0] != c:
            raise Unsupported(f"parameters of length {c} do not match the input's {x.shape[0] if x.shape else 0} "
                              f"channels (axis 1 of (N, {', '.join(map(str, x.shape))}))")
        if len(x.shape) == 3:
            x = self._need_chw(x, node)
        elif not (len(x.shape) == 2 and x.node is not None and x.ir_shape == (1, x.shape[1], c)
                  and same_order(x.gather, channels_last_order((c, 1, x.shape[1])))):
            x = self._need_flat(x, node)
            per = int(np.prod(x.shape[1:], dtype=np.int64))
            params = [np.repeat(p, per) for p in params]   # ONNX flat order: channel-major
            params = [p[x.gather] if x.gather is not None else p for p in params]
        gamma, beta, mean, var = params
        name = self._name(node)
        self._append(BatchNorm(name, [x.node], gamma=gamma, beta=beta, mean=mean, variance=var,
                               epsilon=float(a.get("epsilon", 1e-5)), source_layer=node.name,
                               auto_frac=self.p.activation_frac))
        return replace(x, node=name, via="")

    # ------------------------------------------------------------------ ops: activations
    def _op_Relu(self, node, x, a):
        return self._elementwise(node, self._ready(x), "relu")

    def _op_LeakyRelu(self, node, x, a):
        alpha = float(a.get("alpha", 0.01))
        if alpha == 0.0:
            return self._elementwise(node, self._ready(x), "relu")
        if not 0.0 < alpha < 1.0:
            raise Unsupported(f"alpha={alpha:g}: only slopes 0 <= alpha < 1 are supported (the IR's leaky ReLU "
                              "is max(x, alpha*x))")
        # the output gets the model's activation precision, unless a quantiser follows (`_quantize`)
        return self._elementwise(node, self._ready(x), "leaky_relu", alpha=alpha,
                                 auto_frac=self.p.activation_frac)

    def _op_Clip(self, node, x, a):
        lo = self._const(node, 1, "min", required=False)
        hi = self._const(node, 2, "max", required=False)
        lo = -np.inf if lo is None else float(np.asarray(lo).reshape(-1)[0])
        hi = np.inf if hi is None else float(np.asarray(hi).reshape(-1)[0])
        if (lo, hi) == (0.0, np.inf):
            return self._elementwise(node, self._ready(x), "relu")
        if (lo, hi) == (-1.0, 1.0):
            return self._elementwise(node, self._ready(x), "hard_tanh", auto_frac=self.p.activation_frac)
        raise Unsupported(f"Clip({lo:g}, {hi:g}) is not supported; only Clip(0, inf) (relu) and Clip(-1, 1) "
                          "(hard tanh)")

    def _op_HardSigmoid(self, node, x, a):
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if (alpha, beta) != (0.5, 0.5):
            raise Unsupported(f"HardSigmoid with alpha={alpha:g}, beta={beta:g} is not supported; only alpha=0.5, "
                              "beta=0.5 (QKeras's hard_sigmoid, clip(0.5*x + 0.5, 0, 1), exact in fixed point): "
                              "the ONNX default 0.2/0.5 (Keras 2) and PyTorch's 1/6, 0.5 are other functions")
        return self._elementwise(node, self._ready(x), "hard_sigmoid", auto_frac=self.p.activation_frac)

    def _op_Tanh(self, node, x, a):
        return self._elementwise(node, self._ready(x), "tanh", table=self.p.table("tanh"))

    def _op_Sigmoid(self, node, x, a):
        return self._elementwise(node, self._ready(x), "sigmoid", table=self.p.table("sigmoid"))

    def _op_Softmax(self, node, x, a):
        x = self._ready(x)
        rank = len(x.shape) + 1
        axis = int(a.get("axis", -1))
        if rank != 2 or axis % rank != 1:
            raise Unsupported(f"softmax over axis {axis} of a rank-{rank} tensor; only softmax over the "
                              "features of a (N, features) tensor is supported")
        x = self._need_flat(x, node)
        exp, inv, out = self.p.softmax_tables(x.shape[0])
        return self._elementwise(node, x, "softmax", out_type=out, table=exp, inv_table=inv)

    # ------------------------------------------------------------------ ops: layout only
    def _op_Identity(self, node, x, a):
        return self._ready(x)

    def _op_Dropout(self, node, x, a):
        mode = self._const(node, 2, "training_mode", required=False)
        if mode is not None and bool(np.asarray(mode).reshape(-1)[0]):
            raise Unsupported("training_mode=True; export the model in eval mode")
        return self._ready(x)

    def _op_Flatten(self, node, x, a):
        x = self._ready(x)
        rank = len(x.shape) + 1
        axis = int(a.get("axis", 1))
        axis = axis + rank if axis < 0 else axis
        # axis 0 (keras2onnx) gives (1, N * features): one sample's features when the model's
        # batch is fixed at 1, as such exports have it
        if axis != 1 and not (axis == 0 and self.static_batch == 1):
            raise Unsupported(f"Flatten with axis={a.get('axis', 1)} of a rank-{rank} tensor mixes the batch axis "
                              "with the features; only axis=1 is supported (and axis=0 in a model whose batch "
                              "size is fixed at 1)")
        return replace(x, shape=(int(np.prod(x.shape, dtype=np.int64)),), via=node.name)

    def _op_Reshape(self, node, x, a):
        target = [int(v) for v in np.asarray(self._const(node, 1, "shape")).reshape(-1)]
        x = self._ready(x)
        allowzero = bool(a.get("allowzero", 0))
        size = int(np.prod(x.shape, dtype=np.int64))
        dims = (None, *x.shape)
        if not target:
            raise Unsupported("reshape to a scalar drops the batch axis")
        first, rest = target[0], target[1:]
        out = []
        for i, t in enumerate(rest, start=1):
            if t == 0 and not allowzero:
                if i >= len(dims):
                    raise Unsupported(f"shape {target}: a 0 copies input axis {i}, which does not exist")
                t = dims[i]
            out.append(t)
        batch_kept = (first in (BATCH, -1) or (first == 0 and not allowzero)
                      or (self.static_batch is not None and first == self.static_batch))
        if first == -1 and -1 in out:
            batch_kept = False
        if out.count(-1) == 1:
            known = int(np.prod([t for t in out if t != -1], dtype=np.int64))
            out[out.index(-1)] = size // known if known and size % known == 0 else -2
        if not batch_kept or any(t < 0 for t in out) or int(np.prod(out, dtype=np.int64)) != size:
            raise Unsupported(f"reshape of (N, {', '.join(map(str, x.shape))}) to {target} does not keep the "
                              "batch axis first; the first dimension must stay the batch (0, -1 or N)")
        return replace(x, shape=tuple(out), via=node.name)

    def _op_Transpose(self, node, x, a):
        x = self._ready(x)
        rank = len(x.shape) + 1
        perm = [int(p) for p in a.get("perm", list(range(rank))[::-1])]
        if sorted(perm) != list(range(rank)) or perm[0] != 0:
            raise Unsupported(f"Transpose with perm {perm} moves the batch axis; only transposes that keep "
                              "axis 0 in place (a re-ordering within one sample) are supported")
        axes = [p - 1 for p in perm[1:]]
        size = int(np.prod(x.shape, dtype=np.int64))
        p = np.arange(size).reshape(x.shape).transpose(axes).reshape(-1)  # new_flat = old_flat[p]
        shape = tuple(x.shape[i] for i in axes)
        if x.node is None:
            src = x.src if x.src is not None else np.arange(size)
            return replace(x, shape=shape, src=src[p], via=node.name)
        inv = np.argsort(p)
        g = x.gather if x.gather is not None else np.arange(size)
        return replace(x, shape=shape, gather=normalized(inv[g]), via=node.name)

    def _op_Slice(self, node, x, a):
        """A slice with constant starts, ends, axes and steps that keeps the batch axis: the
        selected values, a `Gather` (wiring in the firmware), in ONNX order."""
        x = self._need_any(self._ready(x))
        rank = len(x.shape) + 1
        starts = np.asarray(self._const(node, 1, "starts"), dtype=np.int64).reshape(-1)
        ends = np.asarray(self._const(node, 2, "ends"), dtype=np.int64).reshape(-1)
        axes_c = self._const(node, 3, "axes", required=False)
        steps_c = self._const(node, 4, "steps", required=False)
        axes = np.arange(len(starts)) if axes_c is None else np.asarray(axes_c, dtype=np.int64).reshape(-1)
        steps = np.ones(len(starts), np.int64) if steps_c is None else np.asarray(steps_c, dtype=np.int64).reshape(-1)
        if not len(starts) == len(ends) == len(axes) == len(steps) or np.any(steps == 0):
            raise Unsupported("starts, ends, axes and steps must have one entry per sliced axis, steps non-zero")
        axes = self._no_batch_axis([int(v) for v in axes], rank, "a Slice")
        index = np.arange(int(np.prod(x.shape, dtype=np.int64))).reshape(x.shape)
        cut = [slice(None)] * len(x.shape)
        for axis, start, end, step in zip(axes, starts, ends, steps):
            # ONNX clamps out-of-range starts and ends (INT64 max/min mean "to the end")
            cut[axis - 1] = slice(*slice(int(start), int(end), int(step)).indices(x.shape[axis - 1]))
        picked = index[tuple(cut)]
        if picked.size == 0:
            raise Unsupported(f"the slice selects no value of the {list(x.shape)} tensor")
        held = np.argsort(x.gather) if x.gather is not None else np.arange(index.size)   # onnx flat -> ir flat
        name = self._name(node)
        self._append(Gather(name, [x.node], target_shape=tuple(picked.shape), index=held[picked.reshape(-1)],
                            source_layer=node.name))
        return Val(tuple(picked.shape), name, tuple(picked.shape))

    def _axes(self, node, a) -> list[int] | None:
        axes = a.get("axes")  # an attribute before opset 13, an input since
        if axes is None:
            c = self._const(node, 1, "axes", required=False)
            axes = None if c is None else np.asarray(c).reshape(-1).tolist()
        return None if axes is None else [int(v) for v in axes]

    @staticmethod
    def _no_batch_axis(axes: list[int], rank: int, what: str) -> list[int]:
        axes = [v % rank for v in axes]
        if 0 in axes:
            raise Unsupported(f"{what} of axis 0 changes the batch axis")
        return axes

    def _op_Squeeze(self, node, x, a):
        axes = self._axes(node, a)
        x = self._ready(x)
        rank = len(x.shape) + 1
        axes = self._no_batch_axis(axes, rank, "Squeeze") if axes is not None else \
            [i + 1 for i, d in enumerate(x.shape) if d == 1]
        if any(x.shape[i - 1] != 1 for i in axes):
            raise Unsupported(f"squeezes axes {axes} of (N, {x.shape}) which are not of size 1")
        shape = tuple(d for i, d in enumerate(x.shape, start=1) if i not in axes)
        return replace(x, shape=shape, via=node.name)

    def _op_Unsqueeze(self, node, x, a):
        axes = self._axes(node, a)
        if axes is None:
            raise Unsupported("has no axes")
        x = self._ready(x)
        axes = self._no_batch_axis(axes, len(x.shape) + 1 + len(axes), "Unsqueeze")
        shape = list(x.shape)
        for ax in sorted(axes):
            shape.insert(ax - 1, 1)
        return replace(x, shape=tuple(shape), via=node.name)

    # ------------------------------------------------------------------ ops: quantisers
    def _q_Quant(self, node, x, a):
        scale = self._const(node, 1, "scale")
        zp = self._const(node, 2, "zero point")
        bits = self._const(node, 3, "bit width")
        t = quant_activation_type(scale, zp, bits, bool(a.get("signed", 1)), bool(a.get("narrow", 0)),
                                  as_str(a.get("rounding_mode", "ROUND")))
        return self._quantize(node, self._ready(x), t)

    def _q_BipolarQuant(self, node, x, a):
        """qonnx: ``where(x >= 0, 1, -1) * scale``: the IR's sign (+-1, exactly in a 2-bit
        type), then for a scale ``2**k`` other than 1 a ScaleShift by that power of two (a
        shift: the result ``+-2**k`` is exact in a 2-bit type with ``-k`` fractional bits)."""
        k = scalar_po2(self._const(node, 1, "scale"), "BipolarQuant scale")
        y = self._elementwise(node, self._ready(x), "sign", out_type=FixedType(2, 2, True))
        if k == 0:
            return y
        if not y.ir_shape:
            raise Unsupported("BipolarQuant with a scale other than 1 needs a known tensor shape")
        c = int(y.ir_shape[-1])
        scale = np.full(c, 2.0 ** k)
        name = f"{y.node}_scale"
        self._append(ScaleShift(name, [y.node], kernel=scale, bias=None, source_layer=node.name,
                                kernel_quantizer=exact_quantizer(scale, f"BipolarQuant {node.name!r} scale"),
                                out_type=FixedType(2, 2 + k, True)))
        return replace(y, node=name, via="")

    def _q_Trunc(self, node, x, a):
        if self.opsets.get(node.domain, 1) < 2 or len(node.input) < 6:
            raise Unsupported("Trunc of qonnx opset 1 multiplies its integer result by the input scale, i.e. "
                              "it also divides the value by 2**(input bits - output bits), without clamping; "
                              "the IR has no such rescaling op. Export with qonnx opset 2 (Trunc with an "
                              "output_scale input)")
        scale, zp = self._const(node, 1, "scale"), self._const(node, 2, "zero point")
        out_scale, out_bits = self._const(node, 4, "output scale"), self._const(node, 5, "output bit width")
        first, second = trunc_activation_types(scale, zp, out_scale, out_bits, bool(a.get("signed", 1)),
                                               bool(a.get("narrow", 0)), as_str(a.get("rounding_mode", "FLOOR")))
        x = self._elementwise(node, self._ready(x), "linear", out_type=first)
        return self._elementwise(node, x, "linear", out_type=second)

    def _op_QuantizeLinear(self, node, x, a):
        if a.get("block_size", 0):
            raise Unsupported("blocked quantisation (block_size > 0) is not supported")
        scale = self._const(node, 1, "scale")
        zp = self._const(node, 2, "zero point", required=False)
        t = qdq_activation_type(scale, zp, self._qdq_dtype([None, None, zp], a))
        x = self._quantize(node, self._ready(x), t)
        return replace(x, qscale=2.0 ** -t.frac)

    def _op_DequantizeLinear(self, node, x, a):
        scale = self._const(node, 1, "scale")
        zp = self._const(node, 2, "zero point", required=False)
        e = scalar_po2(scale, "DequantizeLinear scale")
        if zp is not None:
            int_spec(zp.dtype)
            if np.any(np.asarray(zp) != 0):
                raise Unsupported("DequantizeLinear zero point is not 0; see QuantizeLinear")
        x = self._ready(x)
        if x.qscale is None:
            raise Unsupported("DequantizeLinear of data that does not come from a QuantizeLinear (integer "
                              "model inputs are not supported)")
        if 2.0 ** e != x.qscale:
            raise Unsupported(f"DequantizeLinear scale {2.0 ** e:g} differs from its QuantizeLinear's "
                              f"{x.qscale:g}: the pair would rescale the values")
        return replace(x, qscale=None)


def _supported() -> tuple[str, ...]:
    """The ops with a handler, in the order of the handlers, with their `NOTES`."""
    ops = []
    for attr in vars(OpHandlers):
        for prefix, family in (("_op_", ""), ("_q_", "QONNX ")):
            if attr.startswith(prefix):
                op = attr[len(prefix):]
                ops.append(f"{family}{op}" + (f" ({NOTES[op]})" if op in NOTES else ""))
    return (*ops, "constant sub-graphs")


#: The supported ops, for the refusal message (`onnx._report`).
SUPPORTED = _supported()
