"""The reference interpreters of the RTL description (`nnfpga.backends.rtl.netlist`).

`evaluate` computes the outputs of a description as dataflow, simulating each layer's
time-multiplexed schedule cycle by cycle in isolation; `simulate` streams samples through
the whole description cycle by cycle, as the clocked hardware does.  Both check every value
against its signal's range (the range analysis' proof), and both are the oracle the HDL
simulations of the printed VHDL and Verilog are compared with.
"""

from __future__ import annotations

import numpy as np

from nnfpga.backends.rtl.netlist import (Acc, Bit, Clip, Counter, InputSlice, Max, Mul, MulConst, Mux, Netlist,
                                        Op, Reg, Rom, Shr, Signal, Sum, ValidTap, Wrap)

def _apply(op: Op, val, x, n: int):
    """The value of combinational ``op`` (numpy, int64) from its operands' values."""
    if isinstance(op, InputSlice):
        return x[:, op.index]
    if isinstance(op, MulConst):
        return val(op.a) * op.c
    if isinstance(op, Sum):
        v = np.zeros(n, dtype=np.int64)
        for t in op.terms:
            tv = np.left_shift(val(t.sig), t.shift)
            v = v - tv if t.neg else v + tv
        return v
    if isinstance(op, Shr):
        return np.right_shift(val(op.a), op.s)
    if isinstance(op, Bit):
        return np.bitwise_and(np.right_shift(val(op.a), op.k), 1)
    if isinstance(op, Clip):
        v = val(op.a)
        if op.lo is not None:
            v = np.maximum(v, op.lo)
        if op.hi is not None:
            v = np.minimum(v, op.hi)
        return v
    if isinstance(op, Wrap):
        v = np.bitwise_and(val(op.a), (1 << op.out.width) - 1)
        if op.out.signed:
            v = np.where(v >= 1 << (op.out.width - 1), v - (1 << op.out.width), v)
        return v
    if isinstance(op, Rom):
        return np.asarray(op.table.entries, dtype=np.int64)[val(op.a)]
    if isinstance(op, Mux):
        sel = val(op.sel)
        return np.choose(sel, [val(s) for s in op.inputs])
    if isinstance(op, Mul):
        return val(op.a) * val(op.b)
    if isinstance(op, Max):
        return np.maximum(val(op.a), val(op.b))
    raise TypeError(f"no interpreter for {op.kind}")


def _check_range(op: Op, v) -> None:
    if v.size and (v.min() < op.out.lo or v.max() > op.out.hi):
        raise AssertionError(f"{op.out.name!r} takes [{v.min()}, {v.max()}] outside its range "
                             f"[{op.out.lo}, {op.out.hi}]")


def evaluate(netlist: Netlist, x_raw, check_ranges: bool = True):
    """Reference interpreter of the description: raw inputs ``(n, n_in)`` to raw outputs
    ``(n, n_out)`` int64.  With ``check_ranges`` every value is checked against its
    signal's range, which tests the range analysis.  A pipelined netlist is evaluated
    as dataflow (registers are transparent); a `sequential` one is simulated cycle by
    cycle for one sample at a time: each layer's time-multiplexed schedule in isolation
    (`simulate` streams samples through the whole netlist cycle by cycle)."""

    x = np.asarray(x_raw)
    if x.ndim != 2 or x.shape[1] != netlist.in_columns:
        raise ValueError(f"expected inputs of shape (n, {netlist.in_columns}), got {x.shape}")
    x = x.astype(np.int64)
    n = x.shape[0]
    vals: dict[int, np.ndarray] = {}

    def val(s: Signal) -> np.ndarray:
        return np.full(n, s.value, dtype=np.int64) if s.is_const else vals[id(s)]

    ops = netlist.primitive_ops()
    islands: dict[str, list[Op]] = {}
    for op in ops:
        if _scheduled(op):
            islands.setdefault(op.out.layer, []).append(op)
    done: set[str] = set()
    for op in ops:
        if op.out.width > 62:
            raise ValueError(f"{op.out.name!r} is {op.out.width} bits wide; the interpreter handles 62")
        if _scheduled(op):
            if op.out.layer not in done:
                done.add(op.out.layer)
                vals.update(_run_island(islands[op.out.layer], val, n, check_ranges))
            continue
        v = val(op.a) if isinstance(op, Reg) else _apply(op, val, x, n)
        if check_ranges:
            _check_range(op, v)
        vals[id(op.out)] = v
    return np.stack([val(s) for s in netlist.outputs], axis=1) if netlist.outputs else np.zeros((n, 0), np.int64)


def _scheduled(op: Op) -> bool:
    """Part of a layer's time-multiplexed schedule (simulated cycle by cycle)."""
    return op.out.seq or isinstance(op, (Acc, Counter, ValidTap)) or (isinstance(op, Reg) and not op.plain)


def _run_island(ops: list[Op], outer, n: int, check_ranges: bool) -> dict:
    """One layer's schedule, cycle by cycle, for ``n`` samples side by side (one each:
    the streaming behaviour is `simulate`'s and the HDL simulators' business).  Inputs
    from outside the schedule hold the sample's value at their stage and random junk of
    their range at every other cycle.  Returns the `Acc` values at their stages."""

    rng = np.random.default_rng(0)
    base = min(op.delay for op in ops if isinstance(op, ValidTap))
    end = max(op.aligned_stage for op in ops if isinstance(op, Acc))
    inside = {id(op.out) for op in ops}
    state = _power_up(ops, n)
    result: dict[int, np.ndarray] = {}
    for cyc in range(end - base + 1):
        vals: dict[int, np.ndarray] = {}

        def val(s: Signal) -> np.ndarray:
            if s.is_const:
                return np.full(n, s.value, dtype=np.int64)
            if id(s) not in inside:
                return outer(s) if s.stage - base == cyc else rng.integers(s.lo, s.hi + 1, n)
            v = vals.get(id(s))
            return state[id(s)] if v is None else v

        _cycle(ops, val, vals, state, lambda tap: int(tap.delay - base == cyc), None, n, check_ranges)
        result |= {id(op.out): vals[id(op.out)] for op in ops
                   if isinstance(op, Acc) and op.aligned_stage - base == cyc}
        _clock(ops, val, state)
    return result


#: The operations that hold state from one cycle to the next.
_STATE = (Reg, Counter, Acc)


def _power_up(ops: list[Op], n: int) -> dict[int, np.ndarray]:
    """The state before the first edge: a register's reset value (its power-up value), an
    idle counter, an accumulator's lowest value."""
    return {id(op.out): np.full(n, op.reset if isinstance(op, Reg) and op.reset is not None else
                                (op.n if isinstance(op, Counter) else op.out.lo), dtype=np.int64)
            for op in ops if isinstance(op, _STATE)}


def _cycle(ops: list[Op], val, vals: dict, state: dict, valid, x, n: int, check_ranges: bool) -> None:
    """The values of one cycle into ``vals``: each register, counter and accumulator shows
    its state, each valid tap ``valid(tap)`` (0 or 1), the logic its operands' function
    (``x``: the input rows)."""
    for op in ops:
        if isinstance(op, _STATE):
            v = state[id(op.out)]
        elif isinstance(op, ValidTap):
            v = np.full(n, valid(op), dtype=np.int64)
        else:
            v = _apply(op, val, x, n)
        if check_ranges:
            _check_range(op, v)
        vals[id(op.out)] = v


def _clock(ops: list[Op], val, state: dict) -> None:
    """The rising edge: every register, counter and accumulator takes its next value."""
    new = {}
    for op in ops:
        if isinstance(op, Reg):
            nv = val(op.a)
            if op.en is not None:
                nv = np.where(val(op.en) == 1, nv, state[id(op.out)])
            new[id(op.out)] = nv
        elif isinstance(op, Counter):
            cur = state[id(op.out)]
            new[id(op.out)] = np.where(val(op.start) == 1, 0, np.minimum(cur + 1, op.n))
        elif isinstance(op, Acc):
            sel, a, cur = val(op.sel), val(op.a), state[id(op.out)]
            new[id(op.out)] = np.where(sel == op.first, a, np.where((sel > op.first) & (sel <= op.last), cur + a, cur))
    state.update(new)


def simulate(netlist: Netlist, x_raw, gaps=None, lanes: int = 1024, check_ranges: bool = True, seed: int = 0):
    """Cycle-accurate interpreter: every register updates at the end of a cycle.  The
    samples are split into ``lanes`` independent streams simulated side by side (numpy
    vectors); each stream presents a sample every ``ii + gap`` cycles (``gaps``: extra
    idle cycles before each sample of a stream, default none) with random in-range junk
    on the input in between, and the output of a sample is read exactly ``latency``
    cycles after it entered.  Returns the raw outputs ``(n, n_out)``.

    Before the first sample, ``latency`` cycles of junk (not valid) fill the pipeline
    without range checks: the registers' power-up values are no sample's, and a range
    that relies on its operands being one sample's (`Sum.bound`) need not hold for them."""

    x = np.asarray(x_raw, dtype=np.int64)
    n = x.shape[0]
    if n == 0:
        return np.zeros((0, netlist.n_out), np.int64)
    lanes = max(1, min(lanes, n))
    m = -(-n // lanes)
    xp = np.concatenate([x, np.repeat(x[-1:], m * lanes - n, axis=0)]).reshape(m, lanes, -1)
    gaps = [0] * m if gaps is None else [int(g) for g in gaps]
    if len(gaps) < m or min(gaps) < 0:
        raise ValueError(f"gaps: {m} non-negative numbers of idle cycles needed (one per sample of a lane)")
    starts, t = [], 0
    for q in range(m):
        t += gaps[q]
        starts.append(t)
        t += netlist.ii
    L = netlist.latency
    n_cycles = starts[-1] + L + 1
    start_of = {c: q for q, c in enumerate(starts)}
    rng = np.random.default_rng(seed)
    ops = netlist.primitive_ops()
    state = _power_up(ops, lanes)
    valid_hist: list[int] = []
    out = np.zeros((m, lanes, netlist.n_out), dtype=np.int64)
    for cyc in range(-L, n_cycles):
        q = start_of.get(cyc)
        if cyc >= 0:
            valid_hist.append(int(q is not None))
        xin = xp[q] if q is not None else _junk(rng, netlist, lanes)
        vals: dict[int, np.ndarray] = {}

        def val(s: Signal) -> np.ndarray:
            if s.is_const:
                return np.full(lanes, s.value, dtype=np.int64)
            v = vals.get(id(s))
            return state[id(s)] if v is None else v

        _cycle(ops, val, vals, state, lambda tap: valid_hist[cyc - tap.delay] if cyc >= tap.delay else 0,
               xin, lanes, check_ranges and cyc >= 0)
        qo = start_of.get(cyc - L)
        if qo is not None:
            out[qo] = np.stack([val(s) for s in netlist.outputs], axis=1)
        _clock(ops, val, state)
    return out.reshape(m * lanes, -1)[:n]


def _junk(rng, netlist: Netlist, lanes: int):
    """Random in-range input rows (data elements, then any bank index field)."""
    it = netlist.in_type
    x = rng.integers(it.min_raw, it.max_raw + 1, (lanes, netlist.n_in))
    if netlist.bank is None:
        return x
    return np.concatenate([x, rng.integers(0, 1 << netlist.bank_bits, (lanes, 1))], axis=1)
