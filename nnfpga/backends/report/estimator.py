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
`timing` and follows the longest register-to-register path.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from nnfpga.backends.report import timing as T
from nnfpga.backends.rtl.dsp import lut_product_shifts, op_dsp
from nnfpga.backends.rtl.netlist import Requant, acyclic_pass

#: A table read at most twice and larger than this goes to block RAM.
ROM_LUT_MAX_BITS = 2048
#: A block-RAM table needing more BRAM36 than this goes to UltraRAM (parts with URAM).
URAM_MIN_BRAM36 = 16
URAM_BITS = 288 * 1024
#: (depth, width) configurations of a RAMB18.
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
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


# ----------------------------------------------------------------------------- helpers
@dataclass
class _Operand:
    lsb: int      # lowest bit that can be non-zero
    top: int      # one above the highest information bit
    signed: bool  # extended by copies of its top bit (else by zeros)


def _operand(width: int, signed: bool, shift: int, neg: bool) -> _Operand:
    # a negated operand is inverted: its zero extension turns into ones, like a sign
    return _Operand(shift, shift + width, signed or neg)


def _adder(p: _Operand, q: _Operand, w: int) -> tuple[int, int, _Operand]:
    """(LUTs, CARRY4s, result) of a two-signal carry-chain adder of output width ``w``."""
    lo = max(p.lsb, q.lsb)
    shorter, longer = (p, q) if p.top <= q.top else (q, p)
    hi = longer.top if shorter.signed else shorter.top
    hi = min(hi, w)
    luts = max(0, hi - lo)
    chain = max(0, w - lo)
    return luts, math.ceil(chain / 4), _Operand(min(p.lsb, q.lsb), w, True)


def _const_adder(c: int, w: int) -> tuple[int, int]:
    """(inverters, CARRY4s) of adding constant ``c`` to a signal, output width ``w``: the
    chain starts at the constant's lowest set bit."""
    pattern = c & ((1 << w) - 1)
    if pattern == 0:
        return 0, 0
    lo = (pattern & -pattern).bit_length() - 1
    return bin(pattern).count("1"), math.ceil((w - lo) / 4)


def _sum_cost(terms: list[tuple[int, bool, int, bool]], const: int, w: int) -> tuple[int, int, int]:
    """(LUTs, CARRY4s, chain adders in series) of ``sum(+-(x << s)) + const``; ``terms``
    are (width, signed, shift, neg) of the signal terms."""
    if not terms:
        return 0, 0, 0
    carry_in = [t for t in terms if t[0] == 1 and not t[1] and not t[3]]
    rest = [t for t in terms if not (t[0] == 1 and not t[1] and not t[3])]
    if carry_in and (len(rest) >= 1 or const):
        carry_in = carry_in[1:]  # one single-bit term rides on the carry-in
    terms = rest + carry_in
    if not terms:  # only single bits plus maybe a constant
        return 0, 1, 1
    luts = carry = series = 0
    ops = [_operand(*t) for t in terms]
    acc = ops[0]
    if len(ops) == 1:
        width, signed, shift, neg = terms[0]
        if neg:
            n = max(0, w - shift)
            luts, carry, series = n, math.ceil(n / 4), 1
        if const:
            i, c = _const_adder(const, w)
            luts, carry, series = luts + i, carry + c, series + 1
        return luts, carry, series
    for q in ops[1:]:
        lu, ca, acc = _adder(acc, q, w)
        luts, carry, series = luts + lu, carry + ca, series + 1
    if const:
        i, c = _const_adder(const, w)
        luts, carry, series = luts + i, carry + c, series + 1
    return luts, carry, series


def _pow2_exponent(v: int) -> int | None:
    return v.bit_length() - 1 if v > 0 and v & (v - 1) == 0 else None


def _comparator(a_width: int, a_signed: bool, bound: int, upper: bool) -> tuple[int, int]:
    """(LUTs, CARRY4s) of ``a > bound`` (upper) or ``a < bound``."""
    if not upper:
        if bound == 0 and a_signed:
            return 0, 0  # the sign bit
        k = _pow2_exponent(-bound) if bound < 0 else None
        if k is not None and a_signed:
            return math.ceil(max(1, a_width - 1 - k) / 6), 0
    else:
        k = _pow2_exponent(bound + 1)
        if k is not None:
            return math.ceil(max(1, a_width - k) / 6), 0
    return math.ceil(a_width / 2), math.ceil(a_width / 4)


def _bram18(entries: int, width: int) -> int:
    return min(math.ceil(entries / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)


def _lut_rom(entries: tuple[int, ...], width: int) -> float:
    """LUTs of one asynchronous read of a table: per output bit one LUT6 per distinct
    non-constant 64-entry slice, plus the 4:1 multiplexers above MUXF7/F8."""
    n = len(entries)
    k = max((n - 1).bit_length(), 1)
    if k <= 6:
        return float(width)
    chunks = math.ceil(n / 64)
    total = 0
    for b in range(width):
        bits = [(e >> b) & 1 for e in entries]
        every = {tuple(bits[i:i + 64]) for i in range(0, n, 64)}
        total += sum(1 for s in every if any(s) and not all(s))
        if len(every) == 1:
            continue  # the same function in every slice: no multiplexer
        # multiplexers: MUXF7/F8 merge 4 slices for free; above, one LUT6 per 4:1 mux
        level = math.ceil(chunks / 4)
        while level > 1:
            level = math.ceil(level / 4)
            total += level
    return float(total)


# ----------------------------------------------------------------------------- estimator
@dataclass
class NetlistEstimate:
    layers: dict[str, Cost]
    total: Cost
    control: Cost
    notes: list[str]


def _kind(op) -> str:
    return type(op).__name__


@acyclic_pass
def estimate_netlist(nl, dsp_type: str = "DSP48E2", has_uram: bool = False) -> NetlistEstimate:
    """Estimate every layer of ``nl`` (an `nnfpga.backends.rtl.netlist.Netlist`)."""
    ops = nl.primitive_ops()
    #: the operations that requantise a value (rounding, shifts, saturation)
    requant_steps = {id(step) for op in nl.ops if isinstance(op, Requant) for step in op.steps}
    canon: dict[int, object] = {}
    keys: dict[object, int] = {}
    unique: list = []
    merged_by_layer: dict[str, int] = defaultdict(int)
    notes: list[str] = []

    def key_of(s):
        return ("c", s.lo) if s.is_const else canon[id(s)]

    for op in ops:
        kind = type(op).__name__  # _kind(op), inlined
        try:
            if kind == "Reg":  # the commonest first (the kinds exclude each other)
                en = getattr(op, "en", None)
                key = (kind, key_of(op.a), op.out.width, None if en is None else key_of(en),
                       getattr(op, "reset", None), getattr(op, "aligned_stage", None))
            elif kind == "Sum":
                key = ("sum", op.out.width, tuple([(key_of(t.sig), t.shift, t.neg) for t in op.terms]))
            elif kind == "InputSlice":
                key = ("in", op.index)
            elif kind == "MulConst":
                key = ("mul", key_of(op.a), op.c, op.out.width)
            elif kind == "Wrap":
                key = (kind, key_of(op.a), op.out.width)
            elif kind == "Shr":
                key = ("shr", key_of(op.a), op.s)
            elif kind == "Bit":
                key = ("bit", key_of(op.a), op.k)
            elif kind == "Clip":
                key = ("clip", key_of(op.a), op.lo, op.hi)
            elif kind == "Rom":
                key = ("rom", key_of(op.a), id(op.table))
            elif kind in ("Mux", "Mul", "Max"):
                key = (kind, tuple(key_of(s) for s in op.operands()), op.out.width)
            else:
                key = ("op", id(op))
        except KeyError:
            key = ("op", id(op))
        if key in keys:
            canon[id(op.out)] = keys[key]
            merged_by_layer[op.out.layer] += 1
            continue
        keys[key] = len(keys)
        canon[id(op.out)] = keys[key]
        unique.append(op)

    # dead logic (values no output depends on, e.g. a hidden unit whose outgoing weights
    # are all zero) is removed by synthesis: keep what the outputs reach
    by_key = {canon[id(op.out)]: op for op in unique}
    live: set = set()
    #: the keys of a live operation's non-constant operands (read by every pass below)
    in_keys: dict[int, list[int]] = {}
    todo = [canon[id(s)] for s in nl.outputs if not s.is_const]
    while todo:
        k = todo.pop()
        if k in live or k not in by_key:
            continue
        live.add(k)
        ks = in_keys[k] = [canon[id(s)] for s in by_key[k].operands() if not s.is_const]
        todo.extend(ks)
    dead = [op for op in unique if canon[id(op.out)] not in live]
    if dead:
        notes.append(f"{len(dead)} operations drive nothing the outputs depend on; synthesis removes them")
        unique = [op for op in unique if canon[id(op.out)] in live]

    # consumers of each distinct signal
    consumers: dict[int, list] = defaultdict(list)
    for op in unique:
        for src in in_keys[canon[id(op.out)]]:
            consumers[src].append(op)
    port_driven = {canon[id(s)] for s in nl.outputs if not s.is_const}

    def only_regs(op) -> bool:
        k = canon[id(op.out)]
        users = consumers.get(k, [])
        return bool(users) and k not in port_driven and all(_kind(u) == "Reg" for u in users)

    # tables: distinct reads per table decide block RAM or LUT-ROM
    reads: dict[int, list] = defaultdict(list)
    for op in unique:
        if _kind(op) == "Rom":
            reads[id(op.table)].append(op)
    rom_in_bram: set[int] = set()
    table_cost: dict[int, tuple[str, int]] = {}
    for tid, rs in reads.items():
        table = rs[0].table
        bits = len(table.entries) * table.width
        if len(rs) <= 2 and bits > ROM_LUT_MAX_BITS and all(only_regs(r) for r in rs):
            n18 = _bram18(len(table.entries), table.width)
            if has_uram and n18 / 2 > URAM_MIN_BRAM36:
                table_cost[tid] = ("uram", math.ceil(bits / URAM_BITS))
            else:
                table_cost[tid] = ("bram", n18)
            rom_in_bram.update(canon[id(r.out)] for r in rs)

    # shift-register chains
    srl_of: dict[int, tuple[int, int]] = {}  # reg key -> (luts, stages) for the chain head
    in_chain: set[int] = set()
    regs = [op for op in unique if _kind(op) == "Reg" and getattr(op, "plain", True)]
    for r in regs:
        k = canon[id(r.out)]
        src = None if r.a.is_const else canon[id(r.a)]
        src_op = by_key.get(src)
        if src_op is not None and _kind(src_op) == "Reg" and len(consumers[src]) == 1 and src not in port_driven:
            continue  # not a chain head
        chain = [r]
        while True:
            ck = canon[id(chain[-1].out)]
            users = consumers.get(ck, [])
            if len(users) == 1 and _kind(users[0]) == "Reg" and getattr(users[0], "plain", True) \
                    and ck not in port_driven:
                chain.append(users[0])
            else:
                break
        if len(chain) >= SRL_MIN_LENGTH:
            width = max(x.out.width for x in chain)
            srl_of[k] = (width * math.ceil(len(chain) / SRL_DEPTH), len(chain))
            in_chain.update(canon[id(x.out)] for x in chain)

    layers: dict[str, Cost] = defaultdict(Cost)
    arrival: dict[int, tuple[float, int, int]] = {}  # key -> (ns, LUT levels, CARRY4s)

    #: (terms, constant, width) -> `_sum_cost`: adder trees repeat the same shapes
    sum_costs: dict[tuple, tuple[int, int, int]] = {}
    #: (entries, width) -> `_lut_rom`: every element's read of an activation table is alike
    rom_luts: dict[tuple, float] = {}

    def lut_rom(entries: tuple[int, ...], width: int) -> float:
        luts = rom_luts.get((entries, width))
        if luts is None:
            luts = rom_luts[entries, width] = _lut_rom(entries, width)
        return luts

    zero = (0.0, 0, 0)
    for op in unique:
        kind = type(op).__name__  # _kind(op), inlined
        c = layers[op.out.layer]
        c.operations += 1
        k = canon[id(op.out)]
        w = op.out.width
        start = zero  # the latest operand arrival (arrivals are never below zero)
        for src in in_keys[k]:
            a = arrival.get(src, zero)
            if a > start:
                start = a
        delay, lv, cy = 0.0, 0, 0
        if kind == "InputSlice":
            start = (0.0, 0, 0)
        elif kind == "MulConst":
            n = op_dsp(op, dsp_type)
            if n:
                c.dsp += n
                c.dsp_products += 1
                delay = T.T_DSP
            else:
                shifts = lut_product_shifts(op.c, w)
                if len(shifts) > 1:
                    terms = [(op.a.width, op.a.signed, s, False) for s in shifts]
                    luts, carry, series = _sum_cost(terms, 0, w)
                    c.lut["multipliers"] += luts
                    c.carry4 += carry
                    depth = math.ceil(math.log2(len(shifts)))
                    delay = depth * (T.T_LUT + T.T_CARRY_IO) + carry / max(series, 1) * T.T_CARRY4 * depth
                    lv, cy = depth, math.ceil(carry / max(series, 1)) * depth
                elif op.c < 0:  # -2^k: a negation
                    c.lut["multipliers"] += w
                    c.carry4 += math.ceil(w / 4)
                    delay, lv, cy = T.T_LUT + T.T_CARRY_IO + math.ceil(w / 4) * T.T_CARRY4, 1, math.ceil(w / 4)
                c.lut_products += 1
        elif kind == "Sum":
            terms = tuple([(t.sig.width, t.sig.signed, t.shift, t.neg) for t in op.terms if not t.sig.is_const])
            const = sum([(-1 if t.neg else 1) * (t.sig.value << t.shift) for t in op.terms if t.sig.is_const])
            shape = (terms, const, w)
            cost = sum_costs.get(shape)
            if cost is None:
                cost = sum_costs[shape] = _sum_cost(list(terms), const, w)
            luts, carry, series = cost
            cat = "requant" if id(op) in requant_steps else "adders"
            c.lut[cat] += luts
            c.carry4 += carry
            if series:
                per = math.ceil(carry / series)
                delay = series * (T.T_LUT + T.T_CARRY_IO) + carry * T.T_CARRY4
                lv, cy = series, per * series
        elif kind == "Clip":
            a = op.a
            bounds = [(b, up) for b, up in ((op.lo, False), (op.hi, True)) if b is not None]
            luts = carry = 0
            for b, up in bounds:
                lu, ca = _comparator(a.width, a.signed, b, up)
                luts, carry = luts + lu, carry + ca
            if len(bounds) == 1 and only_regs(op):
                pass  # the register's synchronous set/reset does the multiplexing
            elif len(bounds) == 2:
                luts = w + max(0, luts - 2)
            else:
                luts += w
            c.lut["requant"] += luts
            c.carry4 += carry
            delay, lv = (T.T_LUT if luts else 0.0) + (T.T_CARRY_IO + carry * T.T_CARRY4 if carry else 0.0), \
                (1 if luts else 0)
            cy = carry
        elif kind == "Rom":
            choice = table_cost.get(id(op.table))
            if choice is None:
                luts = lut_rom(op.table.entries[op.a.lo:op.a.hi + 1], w)
                c.lut["rom"] += luts
                n = max(1, op.a.hi - op.a.lo + 1)
                kbits = max((n - 1).bit_length(), 1)
                lv = 1 if kbits <= 6 else (1 if kbits <= 8 else 1 + math.ceil((kbits - 8) / 2))
                delay = lv * T.T_LUT + (T.T_MUXF if kbits > 6 else 0.0)
            else:
                delay = T.T_BRAM_CLK
        elif kind == "Reg":
            if k in srl_of:
                luts, stages = srl_of[k]
                c.lut["srl"] += luts
                c.srl += luts
            elif k in in_chain:
                pass
            elif not op.a.is_const and canon[id(op.a)] in rom_in_bram:
                pass  # the block RAM's own output register
            else:
                c.ff += w
            # the path ends here
            end = (start[0], start[1], start[2])
            if end[0] > c.path_ns:
                c.path_ns, c.levels, c.path_carry4 = end
            arrival[k] = (0.0, 0, 0)
            continue
        elif kind in ("Shr", "Bit", "Wrap", "ValidTap"):
            pass  # wiring (a valid tap reads the valid shift register)
        elif kind == "Mul":  # a multiplier unit of a time-multiplexed layer
            n = op_dsp(op, dsp_type)
            if n:
                c.dsp += n
                c.dsp_products += 1
                delay = T.T_DSP
            else:  # a tiny product: LUTs, about one adder per bit of the narrower operand
                nb = min(op.a.width, op.b.width)
                c.lut["multipliers"] += nb * w
                c.carry4 += nb * math.ceil(w / 4)
                delay, lv, cy = nb * (T.T_LUT + T.T_CARRY_IO), nb, nb
                c.lut_products += 1
        elif kind == "Mux":
            ins = op.inputs[op.sel.lo:op.sel.hi + 1]
            if all(s.is_const for s in ins):  # a constant sequence (weights): a LUT-ROM
                luts = lut_rom(tuple(s.value for s in ins), w)
                c.lut["rom"] += luts
            else:
                n = len(ins)
                per_bit = 1 if n <= 4 else math.ceil(n / 4) + max(0, math.ceil(n / 16) - 1)
                luts = per_bit * w
                c.lut["other"] += luts
            kbits = max((len(ins) - 1).bit_length(), 1)
            lv = 1 + max(0, math.ceil((kbits - 4) / 2))
            delay = lv * T.T_LUT + (T.T_MUXF if kbits > 2 else 0.0)
        elif kind == "Max":  # comparator (carry chain) and a multiplexer
            wc = max(op.a.width, op.b.width) + 1
            c.lut["other"] += wc + w
            c.carry4 += math.ceil(wc / 4)
            delay, lv, cy = 2 * T.T_LUT + T.T_CARRY_IO + math.ceil(wc / 4) * T.T_CARRY4, 2, math.ceil(wc / 4)
        elif kind == "Counter":  # state register, incrementer, terminal-count logic
            c.ff += w
            c.lut["other"] += 2 * w
            c.carry4 += math.ceil(w / 4)
            arrival[k] = (0.0, 0, 0)
            continue
        elif kind == "Acc":  # accumulator register: an adder whose load multiplexer merges into its LUTs
            c.ff += w
            c.lut["adders"] += w
            c.carry4 += math.ceil(w / 4)
            end = (start[0] + T.T_LUT + T.T_CARRY_IO + math.ceil(w / 4) * T.T_CARRY4, start[1] + 1,
                   start[2] + math.ceil(w / 4))
            if end[0] > c.path_ns:
                c.path_ns, c.levels, c.path_carry4 = end
            arrival[k] = (0.0, 0, 0)
            continue
        else:
            c.lut["other"] += w
            notes.append(f"no cost model for {kind} ({op.out.name}); charged one LUT per bit")
            delay, lv = T.T_LUT, 1
        if kind == "Rom" and id(op.table) in table_cost:
            arrival[k] = (T.T_BRAM_CLK, 0, 0)  # a synchronous read starts a path
        else:
            arrival[k] = (start[0] + delay, start[1] + lv, start[2] + cy)

    for name, n in merged_by_layer.items():
        layers[name].merged += n
    # output ports are path ends too
    for s in nl.outputs:
        if not s.is_const:
            a = arrival.get(canon[id(s)], (0.0, 0, 0))
            c = layers[s.layer]
            if a[0] > c.path_ns:
                c.path_ns, c.levels, c.path_carry4 = a
    # tables in block RAM / UltraRAM: charged to the layer of their first read
    for tid, (what, n) in table_cost.items():
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
