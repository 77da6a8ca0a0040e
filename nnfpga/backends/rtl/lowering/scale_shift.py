"""ScaleShift (an unfolded BatchNorm): per element ``x * s + t`` of its channel, then the
output conversion, registered.

A scale ``s = odd * 2**-k`` is a product by ``odd`` with the shift deferred (`Builder`):
``+-2**-k`` (``|odd| == 1``) is wiring, or a negation inside the adder of ``t``: no
multiplier; any other scale is a constant product (`MulConst`), whose DSP cost is the
one rule of `nnfpga.backends.rtl.dsp`.  With products the layer is pipelined like a
linear layer's output stage: each product passes through the multiplier registers
(`schedule.multiplier_registers`: fixed, or from the clock) and the multiplier-free
elements through as many; then the sum with ``t``, the conversion and the output
register (one cycle).
"""

from __future__ import annotations

from nnfpga.backends.rtl.lowering.builder import Builder, RtlConfig, Value, check_in_ir_range, counted_layer, strip_zeros
from nnfpga.backends.rtl.lowering.schedule import multiplier_registers
from nnfpga.backends.rtl.netlist import LayerInfo, Signal, Term, const
from nnfpga.ir.ops import ScaleShift


def lower_scale_shift(b: Builder, node: ScaleShift, xs: list[Value], cfg: RtlConfig
                      ) -> tuple[list[Value], LayerInfo]:
    b.layer = node.name
    first_op = len(b.ops)
    n_ch = node.n_channels
    scales = [strip_zeros(int(v), node.kernel_q.frac) for v in node.kernel_q.raw.reshape(-1)]
    tq = node.bias_q
    shifts = ([strip_zeros(int(v), tq.frac) for v in tq.raw.reshape(-1)] if tq is not None
              else [(0, 0)] * n_ch)

    # the products x * odd at f + k, and whether the adder negates them
    products: list[tuple[Signal, int, bool]] = []
    multiplies = False
    for j, (v, f) in enumerate(xs):
        odd, k = scales[j % n_ch]
        if v.is_const or odd == 0:
            products.append((const(v.value * odd if v.is_const else 0, f + k), f + k, False))
        elif abs(odd) == 1:   # +-2**-k: wiring, the sign goes to the adder
            products.append((v, f + k, odd < 0))
        else:
            p = b.mul(f"{node.name}_m{j}", v, odd, f + k, note=f"{node.name}[{j}]: x * {odd} (scale {odd}*2^-{k})")
            products.append((p, f + k, False))
            multiplies = True
    delay = multiplier_registers(1, cfg) if multiplies else 0
    outs = []
    for j, (p, fp, neg) in enumerate(products):
        p = b.delay(f"{node.name}_md{j}", p, delay)
        t_raw, t_frac = shifts[j % n_ch]
        frac = max(fp, t_frac)
        terms = [Term(p, frac - fp, neg)]
        if t_raw:
            terms.append(Term(const(t_raw, t_frac), frac - t_frac))
        v = b.sum(f"{node.name}_s{j}", terms, frac,
                  note=f"{node.name}[{j}]: x * scale + shift, exact")
        v, f = b.requant(f"{node.name}_q{j}", v, frac, node.info.type,
                         note=f"{node.name}[{j}]: requantize to {node.info.type}")
        outs.append((b.reg(f"{node.name}_y{j}", v, f), f))
    check_in_ir_range(node, outs)
    return outs, counted_layer(
        b.ops[first_op:], name=node.name, kind="scale_shift", nodes=[node.name], latency=delay + 1, first_stage=-1,
        multiplier_registers=delay,
        description=f"ScaleShift (BatchNormalization), {n_ch} channels -> {node.info.type}")
