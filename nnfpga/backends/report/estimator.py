"""Analytic resource and timing estimate of an RTL description (`Netlist`).

The estimate walks the netlist's primitive operations, the same ones the VHDL and
Verilog printers write, and charges each with what ``synth_xilinx`` (Yosys 0.23) makes
of it.  It was calibrated against Yosys on the shipped example models and random MLPs
(`tests/test_report_synth.py` prints the ratios): DSPs equal, LUT and FF within ±25%.

Model, per operation (W = the driven signal's width):

* **merging**: operations with the same operands and parameters are built once (synthesis
  merges them, as it does for the products ``x_i * w`` that several outputs share);
  everything below counts distinct operations.
* **constant multiplication**: `nnfpga.backends.rtl.dsp`, the one cost rule the
  lowering and the reuse search also call: a product that takes no DSP is LUT
  shift-add (one adder per further set bit of the constant).
* **adder** (`Sum` of two signals; a step of a `Requant` counts as requantisation
  logic, any other as an adder): one LUT per bit where both operands carry
  information (the propagate XOR; sign extension of the shorter operand counts, zero
  extension and low bits below the other operand's shift do not), and a carry chain
  from the lowest overlapping bit to the top (``CARRY4`` per 4 bits; UltraScale+'s
  ``CARRY8`` ≈ CARRY4/2).  More signals: one adder per extra signal.  A one-bit term is
  the chain's carry-in (free).  **constant** added to a signal: one inverter per set
  constant bit on the chain; **negation**: one inverter per bit.
* **clip / saturation** (ReLU, SAT, the requantisation's bounds): comparators against
  power-of-two bounds are LUT trees over the bits above the bound (the sign bit alone
  for ReLU: free); the multiplexer is one LUT per output bit, except that a one-sided
  clip written straight into a register becomes that register's synchronous set/reset
  (no LUT).  Other bounds compare with a carry chain.
* **ROM** (activation tables, weight sequences): a table read at most twice and holding
  more than `ROM_LUT_MAX_BITS` bits goes to block RAM (RAMB18 = half a BRAM36; its output
  register moves into the RAM), or to UltraRAM on parts that have it when it needs more
  than `URAM_MIN_BRAM36` BRAM36; otherwise each read is a LUT-ROM: per output bit one LUT6
  per distinct non-constant 64-entry slice, plus a LUT per 4:1 multiplexer above the
  MUXF7/F8 pair.
* **registers**: one FF per bit of each distinct register, plus the valid shift
  register; chains of three or more single-fanout registers become shift-register LUTs
  (``SRL16E``: one LUT per bit per 16 stages, no FFs), as ``xilinx_srl -minlen 3`` does.
* wiring (slices, shifts, resizing, wrap-around, valid taps) is free.
* time-multiplexed layers (reuse factor > 1): a multiplier unit (`Mul`, two signals)
  takes DSPs by the same rule; a `Mux` of constants (a weight sequence) is
  a LUT-ROM like a table, other multiplexers one LUT per bit per 4 inputs (MUXF7/F8
  above); an accumulator (`Acc`) an adder plus its register; a phase `Counter` its
  register, an incrementer and the terminal-count logic; `Max` a comparator and a
  multiplexer.  An operation kind without a model is charged one LUT per bit and named
  in the report's ``notes``.

Latency and II come from the RTL description itself (`LayerInfo.latency`,
``Netlist.latency``); the analytic timing charges each operation with the delays of
`timing` and follows the longest register-to-register path (a DSP product followed by
two registers is charged as one with its M and P registers).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from nnfpga.backends.report import timing as T
from nnfpga.backends.report.primitive_costs import (bram18_count, comparator_cost, lut_rom_cost,
                                                    sum_cost)
from nnfpga.backends.rtl.dsp import lut_product_shifts, op_dsp
from nnfpga.backends.rtl.acyclic import acyclic_pass
from nnfpga.backends.rtl.distinct import DistinctOps, distinct_live_ops
from nnfpga.backends.rtl.netlist import Requant

#: A table read at most twice and larger than this goes to block RAM.
ROM_LUT_MAX_BITS = 2048
#: A block-RAM table needing more BRAM36 than this goes to UltraRAM (parts with URAM).
URAM_MIN_BRAM36 = 16
URAM_BITS = 288 * 1024
SRL_MIN_LENGTH = 3
SRL_DEPTH = 16
#: The LUT categories of the breakdown.
LUT_KINDS = ("adders", "multipliers", "requant", "rom", "srl", "other")


@dataclass
class Cost:
    lut: dict = field(default_factory=lambda: dict.fromkeys(LUT_KINDS, 0))
    ff: int = 0
    dsp: int = 0
    carry4: int = 0
    bram18: int = 0
    uram: int = 0
    srl: int = 0
    dsp_products: int = 0
    lut_products: int = 0
    operations: int = 0
    merged: int = 0
    path_ns: float = 0.0
    levels: int = 0
    path_carry4: int = 0

    @property
    def lut_total(self) -> int:
        return int(round(sum(self.lut.values())))

    def add(self, other: "Cost") -> None:
        for k, v in other.lut.items():
            self.lut[k] = self.lut.get(k, 0) + v
        for k in ("ff", "dsp", "carry4", "bram18", "uram", "srl", "dsp_products", "lut_products",
                  "operations", "merged"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        if other.path_ns > self.path_ns:
            self.path_ns, self.levels, self.path_carry4 = other.path_ns, other.levels, other.path_carry4

    @property
    def bram36(self) -> float:
        return self.bram18 / 2

    def resources(self) -> dict:
        """The four headline figures (BRAM in BRAM36, a RAMB18 counting one half)."""
        b = self.bram36
        return {"dsp": int(self.dsp), "lut": self.lut_total, "ff": int(self.ff),
                "bram": int(b) if b == int(b) else b}

    def detail(self) -> dict:
        return {"uram": int(self.uram), "bram18": int(self.bram18), "carry4": int(self.carry4),
                "carry8": int(math.ceil(self.carry4 / 2)), "srl": int(self.srl),
                "lut_by_kind": {k: int(round(v)) for k, v in self.lut.items()},
                "dsp_products": int(self.dsp_products), "lut_products": int(self.lut_products),
                "operations": int(self.operations), "merged_operations": int(self.merged)}


# ----------------------------------------------------------------------------- estimator
@dataclass
class NetlistEstimate:
    layers: dict[str, Cost]
    total: Cost
    control: Cost
    notes: list[str]


def _kind(op) -> str:
    return type(op).__name__


ZERO = (0.0, 0, 0)
#: (ns, LUT levels, CARRY4s) of a path
Arrival = tuple[float, int, int]


def _place_tables(d: DistinctOps, has_uram: bool) -> tuple[dict[int, list], dict[int, tuple[str, int]], set[int]]:
    """Distinct reads per table decide block RAM (or UltraRAM) or LUT-ROM: (reads per
    table, table id -> ("bram"|"uram", count), keys of the reads a memory serves)."""
    reads: dict[int, list] = defaultdict(list)
    for op in d.unique:
        if _kind(op) == "Rom":
            reads[id(op.table)].append(op)
    in_memory: set[int] = set()
    placement: dict[int, tuple[str, int]] = {}
    for tid, rs in reads.items():
        table = rs[0].table
        bits = len(table.entries) * table.width
        if len(rs) <= 2 and bits > ROM_LUT_MAX_BITS and all(d.only_regs(r) for r in rs):
            n18 = bram18_count(len(table.entries), table.width)
            if has_uram and n18 / 2 > URAM_MIN_BRAM36:
                placement[tid] = ("uram", math.ceil(bits / URAM_BITS))
            else:
                placement[tid] = ("bram", n18)
            in_memory.update(d.key(r) for r in rs)
    return reads, placement, in_memory


def _srl_chains(d: DistinctOps) -> tuple[dict[int, tuple[int, int]], set[int]]:
    """Chains of three or more single-fanout plain registers become SRL16E: (chain head
    key -> (LUTs, stages), keys of every register in a chain)."""
    by_key = {d.key(op): op for op in d.unique}
    srl_of: dict[int, tuple[int, int]] = {}
    in_chain: set[int] = set()
    for r in d.unique:
        if _kind(r) != "Reg" or not getattr(r, "plain", True):
            continue
        src = None if r.a.is_const else d.canon[id(r.a)]
        src_op = by_key.get(src)
        if src_op is not None and _kind(src_op) == "Reg" and len(d.consumers[src]) == 1 \
                and src not in d.port_driven:
            continue  # not a chain head
        chain = [r]
        while True:
            ck = d.key(chain[-1])
            users = d.consumers.get(ck, [])
            if len(users) == 1 and _kind(users[0]) == "Reg" and getattr(users[0], "plain", True) \
                    and ck not in d.port_driven:
                chain.append(users[0])
            else:
                break
        if len(chain) >= SRL_MIN_LENGTH:
            width = max(x.out.width for x in chain)
            srl_of[d.key(r)] = (width * math.ceil(len(chain) / SRL_DEPTH), len(chain))
            in_chain.update(d.key(x) for x in chain)
    return srl_of, in_chain


@dataclass
class _Pricing:
    """What the per-operation rules read besides the operation."""

    design: DistinctOps
    dsp_type: str
    requant_steps: set[int]
    table_placement: dict[int, tuple[str, int]]
    in_memory: set[int]
    srl_of: dict[int, tuple[int, int]]
    in_chain: set[int]
    #: (terms, constant, width) -> `sum_cost`: adder trees repeat the same shapes
    sum_costs: dict = field(default_factory=dict)
    #: (entries, width) -> `lut_rom_cost`: every element's read of an activation table is alike
    rom_luts: dict = field(default_factory=dict)

    def lut_rom(self, entries: tuple[int, ...], width: int) -> float:
        luts = self.rom_luts.get((entries, width))
        if luts is None:
            luts = self.rom_luts[entries, width] = lut_rom_cost(entries, width)
        return luts


def _end_path(c: Cost, end: Arrival) -> None:
    if end[0] > c.path_ns:
        c.path_ns, c.levels, c.path_carry4 = end


def _after(start: Arrival, delay: float, levels: int, carry4: int) -> Arrival:
    return (start[0] + delay, start[1] + levels, start[2] + carry4)


# Each rule charges ``c`` (the layer's cost) for ``op`` (output width ``w``, operands
# arriving at ``start``) and returns when its output arrives (registers: 0, a new path).

def _input_slice(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    return ZERO


def _in_dsp(op, c: Cost, start: Arrival, p: _Pricing) -> Arrival | None:
    """Charge a product that the DSP rule puts in DSP slices; None when it is LUT logic."""
    n = op_dsp(op, p.dsp_type)
    if not n:
        return None
    c.dsp += n
    c.dsp_products += 1
    d = p.design
    # read by registers that are themselves read by registers only: the DSP's M and P
    users = d.consumers.get(d.canon[id(op.out)], []) if d.only_regs(op) else []
    pipelined = bool(users) and all(d.only_regs(u) for u in users)
    return _after(start, T.T_DSP_MREG if pipelined else T.T_DSP, 0, 0)


def _mul_const(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    arrival = _in_dsp(op, c, start, p)
    if arrival is not None:
        return arrival
    c.lut_products += 1
    shifts = lut_product_shifts(op.c, w)
    if len(shifts) > 1:
        terms = [(op.a.width, op.a.signed, s, False) for s in shifts]
        luts, carry, series = sum_cost(terms, 0, w)
        c.lut["multipliers"] += luts
        c.carry4 += carry
        depth = math.ceil(math.log2(len(shifts)))
        return _after(start, depth * (T.T_LUT + T.T_CARRY_IO) + carry / max(series, 1) * T.T_CARRY4 * depth,
                      depth, math.ceil(carry / max(series, 1)) * depth)
    if op.c < 0:  # -2^k: a negation
        c.lut["multipliers"] += w
        c.carry4 += math.ceil(w / 4)
        return _after(start, T.T_LUT + T.T_CARRY_IO + math.ceil(w / 4) * T.T_CARRY4, 1, math.ceil(w / 4))
    return start


def _sum(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    terms = tuple([(t.sig.width, t.sig.signed, t.shift, t.neg) for t in op.terms if not t.sig.is_const])
    const = sum([(-1 if t.neg else 1) * (t.sig.value << t.shift) for t in op.terms if t.sig.is_const])
    shape = (terms, const, w)
    cost = p.sum_costs.get(shape)
    if cost is None:
        cost = p.sum_costs[shape] = sum_cost(list(terms), const, w)
    luts, carry, series = cost
    c.lut["requant" if id(op) in p.requant_steps else "adders"] += luts
    c.carry4 += carry
    if not series:
        return start
    per = math.ceil(carry / series)
    return _after(start, series * (T.T_LUT + T.T_CARRY_IO) + carry * T.T_CARRY4, series, per * series)


def _clip(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    a = op.a
    bounds = [(b, up) for b, up in ((op.lo, False), (op.hi, True)) if b is not None]
    luts = carry = 0
    for b, up in bounds:
        lu, ca = comparator_cost(a.width, a.signed, b, up)
        luts, carry = luts + lu, carry + ca
    if len(bounds) == 1 and p.design.only_regs(op):
        pass  # the register's synchronous set/reset does the multiplexing
    elif len(bounds) == 2:
        luts = w + max(0, luts - 2)
    else:
        luts += w
    c.lut["requant"] += luts
    c.carry4 += carry
    delay = (T.T_LUT if luts else 0.0) + (T.T_CARRY_IO + carry * T.T_CARRY4 if carry else 0.0)
    return _after(start, delay, 1 if luts else 0, carry)


def _rom(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    if id(op.table) in p.table_placement:
        return (T.T_BRAM_CLK, 0, 0)  # a synchronous read starts a path
    luts = p.lut_rom(op.table.entries[op.a.lo:op.a.hi + 1], w)
    c.lut["rom"] += luts
    n = max(1, op.a.hi - op.a.lo + 1)
    kbits = max((n - 1).bit_length(), 1)
    lv = 1 if kbits <= 6 else (1 if kbits <= 8 else 1 + math.ceil((kbits - 8) / 2))
    return _after(start, lv * T.T_LUT + (T.T_MUXF if kbits > 6 else 0.0), lv, 0)


def _reg(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    k = p.design.key(op)
    if k in p.srl_of:
        luts, _ = p.srl_of[k]
        c.lut["srl"] += luts
        c.srl += luts
    elif k in p.in_chain:
        pass
    elif not op.a.is_const and p.design.canon[id(op.a)] in p.in_memory:
        pass  # the block RAM's own output register
    else:
        c.ff += w
    _end_path(c, start)
    return ZERO


def _wiring(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    return start  # slices, shifts, wrap-around; a valid tap reads the valid shift register


def _mul(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    """A multiplier unit of a time-multiplexed layer (or any product of two signals)."""
    arrival = _in_dsp(op, c, start, p)
    if arrival is not None:
        return arrival
    nb = min(op.a.width, op.b.width)  # a tiny product: LUTs, about one adder per bit of the narrower operand
    c.lut["multipliers"] += nb * w
    c.carry4 += nb * math.ceil(w / 4)
    c.lut_products += 1
    return _after(start, nb * (T.T_LUT + T.T_CARRY_IO), nb, nb)


def _mux(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    ins = op.inputs[op.sel.lo:op.sel.hi + 1]
    if all(s.is_const for s in ins):  # a constant sequence (weights): a LUT-ROM
        c.lut["rom"] += p.lut_rom(tuple(s.value for s in ins), w)
    else:
        n = len(ins)
        per_bit = 1 if n <= 4 else math.ceil(n / 4) + max(0, math.ceil(n / 16) - 1)
        c.lut["other"] += per_bit * w
    kbits = max((len(ins) - 1).bit_length(), 1)
    lv = 1 + max(0, math.ceil((kbits - 4) / 2))
    return _after(start, lv * T.T_LUT + (T.T_MUXF if kbits > 2 else 0.0), lv, 0)


def _max(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    """A comparator (carry chain) and a multiplexer."""
    wc = max(op.a.width, op.b.width) + 1
    c.lut["other"] += wc + w
    c.carry4 += math.ceil(wc / 4)
    return _after(start, 2 * T.T_LUT + T.T_CARRY_IO + math.ceil(wc / 4) * T.T_CARRY4, 2, math.ceil(wc / 4))


def _counter(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    """State register, incrementer, terminal-count logic."""
    c.ff += w
    c.lut["other"] += 2 * w
    c.carry4 += math.ceil(w / 4)
    return ZERO


def _acc(op, c: Cost, w: int, start: Arrival, p: _Pricing) -> Arrival:
    """An accumulator register: an adder whose load multiplexer merges into its LUTs."""
    c.ff += w
    c.lut["adders"] += w
    c.carry4 += math.ceil(w / 4)
    _end_path(c, _after(start, T.T_LUT + T.T_CARRY_IO + math.ceil(w / 4) * T.T_CARRY4, 1, math.ceil(w / 4)))
    return ZERO


OpRule = Callable[[object, Cost, int, Arrival, _Pricing], Arrival]
#: The cost rule of each primitive operation kind.
OP_RULES: dict[str, OpRule] = {
    "InputSlice": _input_slice, "MulConst": _mul_const, "Sum": _sum, "Clip": _clip, "Rom": _rom,
    "Reg": _reg, "Shr": _wiring, "Bit": _wiring, "Wrap": _wiring, "ValidTap": _wiring, "Mul": _mul,
    "Mux": _mux, "Max": _max, "Counter": _counter, "Acc": _acc}


@acyclic_pass
def estimate_netlist(nl, dsp_type: str = "DSP48E2", has_uram: bool = False) -> NetlistEstimate:
    """Estimate every layer of ``nl`` (an `nnfpga.backends.rtl.netlist.Netlist`)."""
    d = distinct_live_ops(nl)
    reads, placement, in_memory = _place_tables(d, has_uram)
    srl_of, in_chain = _srl_chains(d)
    pricing = _Pricing(d, dsp_type, {id(step) for op in nl.ops if isinstance(op, Requant) for step in op.steps},
                       placement, in_memory, srl_of, in_chain)
    notes = list(d.notes)
    layers: dict[str, Cost] = defaultdict(Cost)
    arrival: dict[int, Arrival] = {}
    for op in d.unique:
        c = layers[op.out.layer]
        c.operations += 1
        k = d.canon[id(op.out)]
        start = ZERO  # the latest operand arrival (arrivals are never below zero)
        for src in d.in_keys[k]:
            a = arrival.get(src, ZERO)
            if a > start:
                start = a
        rule = OP_RULES.get(type(op).__name__)
        if rule is None:
            c.lut["other"] += op.out.width
            notes.append(f"no cost model for {_kind(op)} ({op.out.name}); charged one LUT per bit")
            arrival[k] = _after(start, T.T_LUT, 1, 0)
        else:
            arrival[k] = rule(op, c, op.out.width, start, pricing)

    for name, n in d.merged_by_layer.items():
        layers[name].merged += n
    for s in nl.outputs:  # output ports are path ends too
        if not s.is_const:
            _end_path(layers[s.layer], arrival.get(d.canon[id(s)], ZERO))
    # tables in block RAM / UltraRAM: charged to the layer of their first read
    for tid, (what, n) in placement.items():
        c = layers[reads[tid][0].out.layer]
        if what == "bram":
            c.bram18 += n
        else:
            c.uram += n
    control = Cost()
    control.ff = nl.latency  # the valid shift register (it has a reset: no SRL)
    total = Cost()
    for c in layers.values():
        total.add(c)
    total.add(control)
    return NetlistEstimate(layers=dict(layers), total=total, control=control, notes=sorted(set(notes)))
