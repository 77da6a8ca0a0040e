"""MaxPool2D: per output a balanced tree of two-input maxima over the in-bound window
elements, registered like an adder tree (outputs of shallower, border windows are
delayed to the same latency)."""

from __future__ import annotations

from nnfpga.backends.rtl.lowering.builder import Builder, RtlConfig, Value, balanced_tree, check_in_ir_range, \
    register_bits
from nnfpga.backends.rtl.netlist import LayerInfo, flat_ops
from nnfpga.ir.ops import MaxPool2D
from nnfpga.ir.ops.conv2d import window_geometry


def lower_maxpool(b: Builder, pool: MaxPool2D, xs: list[Value], in_shape, type_frac: int,
                   cfg: RtlConfig) -> tuple[list[Value], LayerInfo]:
    """Every output is a balanced tree of two-input maxima over the in-bound elements of
    its window (same padding pads with the type's minimum: it never wins)."""
    b.layer = pool.name
    first_op = len(b.ops)
    h, w, c = in_shape
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), pool.pool_size, pool.strides, pool.padding)
    xs = [(b.materialize(f"{pool.name}_in{k}", v, f, type_frac), type_frac) for k, (v, f) in enumerate(xs)]

    def mx(name, p, q):
        return b.max(name, p[0], q[0], type_frac), type_frac

    outs, lat = [], 0
    for y in range(oh):
        for x in range(ow):
            for ch in range(c):
                row = [xs[(iy * w + ix) * c + ch]
                       for iy in range(y * pool.strides[0] - pt, y * pool.strides[0] - pt + pool.pool_size[0])
                       for ix in range(x * pool.strides[1] - pl, x * pool.strides[1] - pl + pool.pool_size[1])
                       if 0 <= iy < h and 0 <= ix < w]
                (v, f), regs = balanced_tree(b, f"{pool.name}_{len(outs)}", row, mx, cfg)
                if regs == 0:
                    v, regs = b.reg(f"{pool.name}_y{len(outs)}", v, f), 1
                outs.append((v, f, regs))
                lat = max(lat, regs)
    # windows cut by same padding have shallower trees: align every output
    outs = [(b.delay(f"{pool.name}_al{k}", v, lat - regs), f) for k, (v, f, regs) in enumerate(outs)]
    check_in_ir_range(pool, outs)
    layer_ops = flat_ops(b.ops[first_op:])
    return outs, LayerInfo(name=pool.name, kind="maxpool2d", nodes=[pool.name], latency=lat, first_stage=-1,
                           register_bits=register_bits(layer_ops),
                           description=f"MaxPool2D {h}x{w}x{c} -> {oh}x{ow}x{c}, pool {pool.pool_size}, "
                                       f"stride {pool.strides}, {pool.padding}")
