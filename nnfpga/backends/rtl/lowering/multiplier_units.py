"""Multiplier units of a layer at reuse factor R > 1.

The N multiplications by non-powers of two, ordered by (output, input), are cut into
the groups of `schedule.unit_groups` (consecutive, at most R each); each group is one
multiplier unit (`Mul`) that performs one of its multiplications per cycle.  For a
sample whose ``in_valid`` reaches the layer in cycle ``t``:

* cycle ``t``: the inputs the units read are captured in registers enabled by the
  layer's valid bit (they hold until the next sample, at least R cycles later), and the
  phase counter is started;
* cycles ``t+1 .. t+R`` (phase ``p = 0 .. R-1``): each unit multiplies the input its
  phase selects (a multiplexer over the captured inputs) by the weight of that phase (a
  small constant table addressed by the phase); the product passes through M registers
  (the DSP's M and P registers), the phase through M registers beside it;
* cycles ``t+1+M .. t+R+M``: the unit adds the registered product into the partial sum
  of its output (an `Acc` per unit and output; the first phase of an output loads, the
  others add);
* cycle ``t+R+M+1``: every partial sum is complete: these, and the multiplier-free terms
  (the inputs delayed R + M + 1 cycles, not time-multiplexed), are the adder tree's
  leaves.

So the layer accepts a sample every R cycles (II = R).  The phase counter idles at R
(reset and power-up value), when no partial sum changes.  A banked layer's unit tables
hold a sequence per bank, addressed by ``bank * P + phase`` (P the power of two above R).
"""

from __future__ import annotations

from nnfpga.backends.rtl.lowering.builder import Builder, Node, Value
from nnfpga.backends.rtl.lowering.schedule import unit_groups
from nnfpga.backends.rtl.netlist import RomTable, Signal, Term


def reuse_leaves(b: Builder, name: str, plan_items, xs: list[Value], kf: int, R: int,
                 s0: int, mr: int, banked: list[list[tuple[int, tuple[int, ...]]]] | None = None,
                 bank: Signal | None = None) -> list[list[Node]]:
    """Reuse factor R > 1 (see the module doc): ``ceil(N / R)`` multiplier units, each
    with a sequence of R (weight, input) pairs and ``mr`` product registers; returns the
    tree leaves per output (at stage ``s0 + R + mr + 1``).
    A banked layer (`banked_leaves`) adds ``banked`` (per output the (input, per-bank
    weights) pairs) and the ``bank`` index: each unit's weight table then holds a
    sequence per bank, addressed by ``bank * P + phase`` (P the power of two above R)."""
    mults = sorted(((j, i, (-1 if neg else 1) * (odd << k))
                    for j, items in enumerate(plan_items) for (i, odd, k, neg) in items if odd != 1))
    if bank is not None:
        n_banks = len(banked[0][0][1]) if any(banked) else 1
        mults = sorted([(j, i, (w,) * n_banks) for j, i, w in mults]
                       + [(j, i, wv) for j, var in enumerate(banked) for i, wv in var])
    used = sorted({i for _, i, _ in mults})
    F = max(xs[i][1] for i in used)
    meet = s0 + R + mr + 1
    vin = b.valid(f"{name}_vin", s0)
    xc = {}
    for i in used:
        x, fx = xs[i]
        xm = b.materialize(f"{name}_xm{i}", x, fx, F)
        xc[i] = b.reg(f"{name}_xc{i}", xm, F, en=vin)
        if len(xc) == 1:
            b.ops[-1].note = f"{name}: the inputs, captured when valid (held for the {R} phases)"
    ph = b.counter(f"{name}_ph", vin, R)
    b.ops[-1].note = f"{name}: phase 0..{R - 1} of the schedule, {R} = idle"
    if bank is not None:
        phase_bits = R.bit_length()
        bank_c = b.reg(f"{name}_bankc", bank, 0, en=vin)
        b.ops[-1].note = f"{name}: the bank index, captured when valid"
        addr = b.sum(f"{name}_wa", [Term(bank_c, phase_bits), Term(ph)], 0,
                     note=f"{name}: weight address: bank * {1 << phase_bits} + phase")
    phd = ph  # the phase as the accumulators see it: delayed like the products
    for k in range(mr):
        phd = b.reg(f"{name}_phd{k + 1}" if mr > 1 else f"{name}_phd", phd, 0, reset=R)
    leaves: list[list[Node]] = [[] for _ in plan_items]
    for un, group in enumerate(unit_groups(len(mults), R)):
        seq = mults[group.start:group.stop]
        pad = R + 1 - len(seq)
        xsel = b.mux(f"{name}_u{un}_x", ph, [xc[i] for _, i, _ in seq] + [xc[seq[-1][1]]] * pad, F)
        if bank is None:
            table = RomTable(b.namer.take(f"{name}_u{un}_w"), tuple(w for _, _, w in seq) + (seq[-1][2],) * pad,
                             note=f"{name}: weights of multiplier unit {un} by phase")
            wsel = b.rom(f"{name}_u{un}_wr", ph, table, kf)
        else:
            per_bank = [seq[min(p, len(seq) - 1)][2] for p in range(1 << phase_bits)]
            entries = tuple(w[k if k < n_banks else 0] for k in range(1 << bank.width) for w in per_bank)
            table = RomTable(b.namer.take(f"{name}_u{un}_w"), entries,
                             note=f"{name}: weights of multiplier unit {un} by bank and phase")
            wsel = b.rom(f"{name}_u{un}_wr", addr, table, kf)
        m = b.mult(f"{name}_u{un}_m", xsel, wsel, F + kf,
                   note=f"{name}: multiplier unit {un}: " + ", ".join(
                       f"x{i}*w[{i},{j}]" for j, i, _ in seq))
        pr = b.delay(f"{name}_u{un}_p", m, mr)
        p = 0
        while p < len(seq):
            j = seq[p][0]
            q = p
            while q + 1 < len(seq) and seq[q + 1][0] == j:
                q += 1
            terms = []
            for j_, i, w in seq[p:q + 1]:
                x = xc[i]
                ws = w if isinstance(w, tuple) else (w,)
                terms.append((min(min(x.lo * v, x.hi * v) for v in ws), max(max(x.lo * v, x.hi * v) for v in ws)))
            a = b.acc(f"{name}_u{un}_a{j}", pr, phd, p, q, terms, meet, F + kf,
                      note=f"{name}: unit {un}, partial sum of output {j} (phases {p}..{q})")
            leaves[j].append(Node(a, F + kf, False))
            p = q + 1
    xd: dict[int, Signal] = {}
    for j, items in enumerate(plan_items):
        for i, odd, k, neg in items:
            if odd == 1:
                x, fx = xs[i]
                if i not in xd:
                    xd[i] = b.delay(f"{name}_xd{i}", x, R + mr + 1)
                leaves[j].append(Node(xd[i], fx + kf - k, neg))
    return leaves
