"""The schedule of a linear layer (Dense, BankedDense, Conv2D) and what it costs.

One description, read by the lowering (`linear`, `multiplier_units`), which builds it,
and by the reuse-factor search (`nnfpga.compiler.passes.reuse`), which prices it before
anything is built:

* the multiplications of a layer are its products by non-powers of two (a weight
  ``+-odd * 2**k`` with ``odd > 1``; zero weights are never scheduled, and ternary,
  binary and power-of-two weights are wiring), over the in-bound taps of every output
  position of a Conv2D;
* at reuse 1 each is a constant multiplier (identical products -- the same input
  element by the same constant -- are one circuit); at reuse R > 1 they are ordered by
  (output, input) and cut into the consecutive groups of `unit_groups`, one multiplier
  unit each;
* the adder tree of an output has one leaf per product (reuse 1) or per unit that
  works for it (reuse R), plus its multiplier-free terms; where its registers go --
  and the registers after the multipliers -- is `linear_pipeline`, from the clock and
  the part family's delays (`nnfpga.backends.rtl.timing`) unless the config fixes
  them; the layer's latency is its `Pipeline.latency`;
* DSPs of every product come from `nnfpga.backends.rtl.dsp`, the one cost rule, for the
  part's DSP type;
* with ``RtlConfig.shift_add`` (``--max-dsp 0``) there are no multiplications: every
  non-zero weight gives as many multiplier-free leaves as it has canonical signed digits
  (`dsp.csd`), at reuse 1 whatever the reuse factor -- one fewer when its two lowest
  digits form a pair shared with other weights of the same input (`shared_pairs`), whose
  pre-adder, computed once, is a leaf; the pre-adders are the first logic of the tree
  (`linear_pipeline`'s ``pre_adder``).

`layer_profile` prices a layer from the IR alone: operand ranges are the IR's
per-tensor ranges, which contain the lowering's exact per-element ranges, so every
count is an upper bound of what is built -- equal to it unless some element's range or
some unit's weights are narrower than the layer's (tests/test_passes_reuse.py compares).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from nnfpga.backends.rtl.dsp import const_product_dsp, csd, signal_product_dsp
from nnfpga.backends.rtl.lowering.builder import RtlConfig, strip_zeros, tree_registers
from nnfpga.backends.rtl.lowering.plans import conv_plan, dense_plan
from nnfpga.backends.rtl.timing import fmax_mhz
from nnfpga.ir.fixed import bits_for_range
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, ScaleShift
from nnfpga.ir.ops.base import TensorInfo
from nnfpga.ir.ops.conv2d import window_geometry


# ----------------------------------------------------------------------------- the schedule
def unit_groups(n: int, reuse: int) -> list[range]:
    """The multiplier units of ``n`` multiplications (ordered by output, then input) at
    reuse factor ``reuse``: consecutive groups of at most ``reuse``."""
    return [range(u, min(u + reuse, n)) for u in range(0, n, reuse)]


def units_per_output(per_output: np.ndarray, reuse: int) -> np.ndarray:
    """For each output, the number of `unit_groups` holding one of its products (its
    partial sums, the adder-tree leaves the units give it); ``per_output`` counts the
    products of each output in order."""
    n = np.asarray(per_output, dtype=np.int64)
    start = np.cumsum(n) - n
    return np.where(n > 0, (start + n - 1) // reuse - start // reuse + 1, 0)


def tree_depth(leaves: int) -> int:
    return math.ceil(math.log2(leaves)) if leaves > 1 else 0


# ----------------------------------------------------------------------------- the pipeline
def multiplier_registers(reuse: int, cfg: RtlConfig) -> int:
    """M, the registers after every multiplier: ``cfg.multiplier_registers`` when fixed,
    else the fewest (1 to 3) whose DSP stages (`timing.Delays.multiplier_stages`, after
    the phase's input selection at reuse > 1) fit the clock period; 3 when none does."""
    if cfg.multiplier_registers is not None:
        return cfg.multiplier_registers
    dl = cfg.delays
    for m in (1, 2, 3):
        if dl.overhead + _multiplier_ns(m, reuse, cfg) <= cfg.period_ns:
            return m
    return 3


def _multiplier_ns(m: int, reuse: int, cfg: RtlConfig) -> float:
    dl = cfg.delays
    select = dl.select(reuse + 1) if reuse > 1 else 0.0  # the unit's input multiplexer / weight table
    return dl.multiplier_stages(m, select)


@dataclass(frozen=True)
class Pipeline:
    """Where the registers of a linear layer go, and the path the schedule planned.

    ``start``: cycles before the adder tree (the products' M registers, or at reuse
    R > 1 the units' ``R + M + 1``); ``registered``: the tree levels followed by a
    register (the last level always is); ``path_ns``: the longest register-to-register
    path of the stages the schedule places (products, accumulators, tree; overhead
    included, so never below it); the output stage (conversions) is one cycle after the
    tree and is not part of it."""

    multiplier_registers: int
    start: int
    registered: tuple[int, ...]
    path_ns: float
    clock_mhz: float

    @property
    def latency(self) -> int:
        """Cycles of the layer before any folded activation: start, tree, output register."""
        return self.start + len(self.registered) + 1

    @property
    def fmax_mhz(self) -> float:
        return fmax_mhz(self.path_ns)


def linear_pipeline(multiplications: int, reuse: int, depth: int, leaf_bits: int, cfg: RtlConfig,
                    pre_adder: bool = False) -> Pipeline:
    """The registers of a linear layer with ``multiplications`` products by non-powers of
    two at reuse ``reuse`` whose adder tree has ``depth`` levels over leaves of at most
    ``leaf_bits`` bits (`product_bits`; the node at level l has at most
    ``leaf_bits + l``).  Products and units are priced as DSP multipliers (a LUT
    constant multiplier is faster: the choice is on the safe side).  ``pre_adder``: some
    leaves are shared shift-add pre-adders (`shared_pairs`), an adder before the tree's
    first level."""
    dl = cfg.delays
    mr = multiplier_registers(reuse, cfg)
    stages = []
    if reuse > 1:
        start = reuse + mr + 1
        acc_bits = leaf_bits + tree_depth(reuse)          # a partial sum of up to R products
        stages += [dl.overhead + _multiplier_ns(mr, reuse, cfg), dl.overhead + dl.dsp_clk + dl.adder(acc_bits)]
        leaf_bits, first = acc_bits, dl.overhead          # the leaves are the accumulators
    elif multiplications:
        start = mr
        stages.append(dl.overhead + _multiplier_ns(mr, 1, cfg))
        first = dl.overhead + dl.dsp_clk                  # the tree starts at the products' P registers
    else:
        start, first = 0, dl.overhead + (dl.adder(leaf_bits) if pre_adder else 0.0)
    registered, tree_ns = tree_registers([dl.adder(leaf_bits + level) for level in range(1, depth + 1)], first, cfg)
    return Pipeline(mr, start, registered, round(max(stages + [tree_ns, dl.overhead]), 3), cfg.clock_mhz)


def product_bits(node, x: TensorInfo) -> int:
    """Bits of the widest product of ``node``'s weights (every bank's) by its input
    ``x`` (the IR's per-tensor range): a bound of every adder-tree leaf's width."""
    raw = node.kernel_q.raw
    return _product_bits((int(x.lo), int(x.hi)), (min(int(raw.min()), 0), max(int(raw.max()), 0)))


# ----------------------------------------------------------------------------- counting weights
def output_positions(node) -> int:
    return int(np.prod(node.info.shape[:2])) if isinstance(node, Conv2D) else 1


def split_weights(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(odd part of |w|, products by a non-power of two, wiring terms) per weight."""
    mag = np.abs(raw.astype(np.int64))
    nz = mag != 0
    low = np.where(nz, mag & -mag, 1)
    odd = np.where(nz, mag // low, 0)
    return odd, nz & (odd != 1), nz & (odd == 1)


def csd_digits(raw: np.ndarray) -> np.ndarray:
    """The number of canonical signed digits (`dsp.csd`) of every weight: its leaves
    when built as shift-add logic."""
    values, inverse = np.unique(raw.astype(np.int64), return_inverse=True)
    return np.array([len(csd(int(v))) for v in values], dtype=np.int64)[inverse].reshape(raw.shape)


_COUNTS: dict[int, tuple[object, int, int]] = {}


def _weight_counts(kq) -> tuple[int, int]:
    """(non-zero weights, those whose |raw| is not a power of two), cached per array."""
    hit = _COUNTS.get(id(kq))
    if hit is None or hit[0] is not kq:
        if len(_COUNTS) > 1024:
            _COUNTS.clear()
        _, mult, wiring = split_weights(kq.raw)
        hit = _COUNTS[id(kq)] = (kq, int(mult.sum() + wiring.sum()), int(mult.sum()))
    return hit[1], hit[2]


def scheduled_multiplications(node) -> int:
    """Multiplications per inference: non-zero weights (times output positions)."""
    return _weight_counts(node.kernel_q)[0] * output_positions(node)


def dsp_multiplications(node) -> int:
    """Multiplications by non-powers of two, times output positions: the products a
    multiplier unit can share."""
    return _weight_counts(node.kernel_q)[1] * output_positions(node)


# ----------------------------------------------------------------------------- shift-add products
def _low_pair(i: int, w: int) -> tuple[int, int, int] | None:
    """The pattern of the two lowest canonical signed digits ``s1 2**k1 + s2 2**k2`` of
    ``x_i * w``: ``(i, k2 - k1, s1 * s2)``, i.e. ``x_i * (1 +- 2**(k2 - k1))`` (None
    below two digits)."""
    d = csd(w)
    return (i, d[1][0] - d[0][0], d[0][1] * d[1][1]) if len(d) > 1 else None


def shared_pairs(cols: list[list[tuple[int, int]]]) -> set[tuple[int, int, int]]:
    """The pre-adders ``x_i * (1 +- 2**d)`` worth building once: the low pairs
    (`_low_pair`) that occur in two or more (input, weight) entries of ``cols`` (per
    output, as `plans.LinearPlan.cols`).  Decided from the weights alone (an input that
    turns out constant still counts), so the search's profile and the lowering agree."""
    count: Counter = Counter(p for col in cols for i, w in col if (p := _low_pair(i, w)) is not None)
    return {p for p, c in count.items() if c > 1}


def shift_add_terms(i: int, w: int, shared: set) -> tuple[tuple[int, int, int] | None, int, int,
                                                           list[tuple[int, int]]]:
    """``x_i * w`` as shift-add terms: (the shared pre-adder pattern or None, its shift
    ``k1`` and sign ``s1``, the other digits ``(shift, sign)``)."""
    d = csd(w)
    p = _low_pair(i, w)
    if p is not None and p in shared:
        return p, d[0][0], d[0][1], d[2:]
    return None, 0, 1, d


def _shift_add_leaves(node, x: TensorInfo) -> tuple[np.ndarray, bool]:
    """Leaves per output (lowering order) of a shift-add layer, and whether it has
    shared pre-adders: from the same columns the lowering builds."""
    plan = (conv_plan(node, tuple(x.shape), x.type.frac) if isinstance(node, Conv2D)
            else dense_plan(node, int(np.prod(x.shape)), x.type.frac))
    shared = shared_pairs(plan.cols)
    leaves = []
    for col in plan.cols:
        n = 0
        for i, w in col:
            p, _, _, rest = shift_add_terms(i, w, shared)
            n += len(rest) + (p is not None)
        leaves.append(n)
    return np.array(leaves, dtype=np.int64), bool(shared)


# ----------------------------------------------------------------------------- the layer's price
@dataclass(frozen=True)
class LayerProfile:
    """What the lowering builds for one linear layer, as far as DSPs and latency go."""

    multipliers: int              # N: products by non-powers of two
    parallel_dsp: int             # DSPs at reuse 1
    unit_dsp: int                 # DSPs of one multiplier unit at reuse > 1
    per_output: np.ndarray        # products by non-powers of two, per output (lowering order)
    wiring: np.ndarray            # multiplier-free terms, per output
    leaf_bits: int = 1            # `product_bits`: the widest adder-tree leaf
    pre_adder: bool = False       # shift-add: shared pre-adders before the tree

    def leaves(self, reuse: int) -> int:
        """Most adder-tree leaves of an output at reuse ``reuse``."""
        if reuse <= 1 or self.multipliers == 0:
            return int((self.per_output + self.wiring).max(initial=0))
        return int((units_per_output(self.per_output, reuse) + self.wiring).max(initial=0))

    def dsp(self, reuse: int) -> int:
        if self.multipliers == 0:
            return 0
        return self.parallel_dsp if reuse <= 1 else len(unit_groups(self.multipliers, reuse)) * self.unit_dsp

    def pipeline(self, reuse: int, cfg: RtlConfig) -> Pipeline:
        r = reuse if self.multipliers else 1  # nothing to share: built as at reuse 1
        return linear_pipeline(self.multipliers, r, tree_depth(self.leaves(r)), self.leaf_bits, cfg,
                               self.pre_adder)

    def latency(self, reuse: int, cfg: RtlConfig) -> int:
        return self.pipeline(reuse, cfg).latency


def _product_bits(a: tuple[int, int], b: tuple[int, int]) -> int:
    c = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return bits_for_range(min(c), max(c))[0]


_PROFILES: dict[tuple, tuple[object, LayerProfile]] = {}


def _conv_products(node, x: TensorInfo, odd, mult, wiring) -> tuple[np.ndarray, np.ndarray, Counter]:
    h, w, _ = x.shape
    kh, kw = node.kernel_size
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), (kh, kw), node.strides, node.padding)
    vy = np.array([[0 <= y * node.strides[0] + d - pt < h for d in range(kh)] for y in range(oh)]).astype(np.int64)
    vx = np.array([[0 <= c * node.strides[1] + d - pl < w for d in range(kw)] for c in range(ow)]).astype(np.int64)
    per_output = np.einsum("yd,xe,def->yxf", vy, vx, mult.sum(axis=2)).reshape(-1)
    wires = np.einsum("yd,xe,def->yxf", vy, vx, wiring.sum(axis=2)).reshape(-1)
    # input rows / columns grouped by the kernel offsets that read them
    rows = Counter(tuple(d for d in range(kh) for y in range(oh) if y * node.strides[0] + d - pt == i)
                   for i in range(h))
    cols = Counter(tuple(d for d in range(kw) for c in range(ow) if c * node.strides[1] + d - pl == i)
                   for i in range(w))
    pairs: Counter = Counter()  # odd constant -> distinct (input element, constant) products
    for dys, ny in rows.items():
        for dxs, nx in cols.items():
            if not dys or not dxs:
                continue
            sub_odd, sub_mult = odd[np.ix_(dys, dxs)], mult[np.ix_(dys, dxs)]
            for ch in range(odd.shape[2]):
                for c in np.unique(sub_odd[:, :, ch][sub_mult[:, :, ch]]):
                    pairs[int(c)] += ny * nx
    return per_output, wires, pairs


def layer_profile(node, x: TensorInfo, dsp_type: str = "DSP48E2", shift_add: bool = False) -> LayerProfile:
    """`LayerProfile` of a Dense/Conv2D whose input is ``x`` (cached per weight array);
    ``shift_add``: built without multipliers (`RtlConfig.shift_add`)."""
    kq = node.kernel_q
    key = (id(kq), x.shape, x.lo, x.hi, dsp_type, getattr(node, "strides", None), getattr(node, "padding", None),
           shift_add)
    hit = _PROFILES.get(key)
    if hit is not None and hit[0] is kq:
        return hit[1]
    raw = kq.raw.astype(np.int64)
    odd, mult, wiring = split_weights(raw)
    pre_adder = False
    if shift_add:  # every weight is wiring: its canonical signed digits, shared pairs one leaf
        mult, wiring = np.zeros_like(mult), csd_digits(raw)
    xr = (int(x.lo), int(x.hi))
    a_width, a_signed = bits_for_range(*xr)
    if isinstance(node, Conv2D):
        per_output, wires, pairs = _conv_products(node, x, odd, mult, wiring)
    else:
        per_output, wires, pairs = mult.sum(axis=0), wiring.sum(axis=0), Counter()
        for i in range(raw.shape[0]):
            for c in np.unique(odd[i][mult[i]]):
                pairs[int(c)] += 1
    if shift_add:
        wires, pre_adder = _shift_add_leaves(node, x)
        per_output = np.zeros_like(wires)
    n = int(per_output.sum())
    parallel = sum(cnt * const_product_dsp(a_width, a_signed, c, _product_bits(xr, (c, c)), dsp_type)
                   for c, cnt in pairs.items())
    unit = 0
    if n:
        wr = (int(raw[mult].min()), int(raw[mult].max()))
        b_width, b_signed = bits_for_range(*wr)
        unit = signal_product_dsp(a_width, a_signed, b_width, b_signed, _product_bits(xr, wr), dsp_type)
    prof = LayerProfile(n, int(parallel), int(unit), per_output.astype(np.int64), wires.astype(np.int64),
                        product_bits(node, x), pre_adder)
    if len(_PROFILES) > 256:
        _PROFILES.clear()
    _PROFILES[key] = (kq, prof)
    return prof


@dataclass(frozen=True)
class CostModel:
    """DSPs and extra latency of a linear layer at reuse factor R, for a part's DSP
    type and the lowering's options; ``x`` is the layer's input (`TensorInfo`)."""

    dsp_type: str = "DSP48E2"
    rtl: RtlConfig = field(default_factory=RtlConfig)

    def profile(self, node, x: TensorInfo) -> LayerProfile:
        return layer_profile(node, x, self.dsp_type, self.rtl.shift_add)

    def dsp(self, node, reuse: int, x: TensorInfo) -> int:
        return self.profile(node, x).dsp(reuse)

    def latency(self, node, reuse: int, x: TensorInfo) -> int:
        """Extra cycles over the fully parallel layer."""
        p = self.profile(node, x)
        return p.latency(reuse, self.rtl) - p.latency(1, self.rtl)

    def max_reuse(self, node) -> int:
        return max(scheduled_multiplications(node), 1)

    def multipliers(self, node, x: TensorInfo) -> int:
        """N: the multiplications a unit can share."""
        return self.profile(node, x).multipliers

    def fixed_dsp(self, graph: Graph) -> dict[str, int]:
        """DSPs outside the multiplier units of the linear layers (no reuse factor changes
        them), per node: a softmax multiplies every exp by the reciprocal of their sum; a
        leaky ReLU multiplies every element that can be negative by its slope; a ScaleShift
        every element by its channel's scale when that is not +-2**k."""
        out = {}
        for n in graph.nodes:
            # (with shift-add products, a ScaleShift's scales and a slope are adders, `Builder.mul`)
            if isinstance(n, ScaleShift) and n.kernel_q is not None and not self.rtl.shift_add:
                x = graph.in_infos(n)[0]
                xr = (int(x.lo), int(x.hi))
                odd = [strip_zeros(int(v), 0)[0] for v in n.kernel_q.raw.reshape(-1)]
                per_channel = sum(const_product_dsp(*bits_for_range(*xr), o, _product_bits(xr, (o, o)), self.dsp_type)
                                  for o in odd if abs(o) > 1 and xr[0] != xr[1])
                if per_channel:
                    out[n.name] = per_channel * int(np.prod(x.shape[:-1]))
            if isinstance(n, Activation) and n.properties.slope and not self.rtl.shift_add:
                alpha = int(getattr(n, "alpha_raw", 0) or 0)
                x = graph.in_infos(n)[0]
                if alpha > 0 and x.lo < 0:
                    xr = (int(x.lo), int(x.hi))
                    each = const_product_dsp(*bits_for_range(*xr), alpha, _product_bits(xr, (alpha, alpha)),
                                             self.dsp_type)
                    if each:
                        out[n.name] = each * int(np.prod(x.shape))
            if isinstance(n, Activation) and n.function == "softmax" and n.table is not None \
                    and n.inv_table is not None:
                er = (int(n.table.entries.min()), int(n.table.entries.max()))
                rr = (int(n.inv_table.entries.min()), int(n.inv_table.entries.max()))
                if er[0] == er[1] and rr[0] == rr[1]:
                    continue
                each = signal_product_dsp(*bits_for_range(*er), *bits_for_range(*rr), _product_bits(er, rr),
                                          self.dsp_type)
                if each:
                    out[n.name] = each * int(np.prod(n.info.shape))
        return out
