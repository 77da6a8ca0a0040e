"""cocotb benches of the core wrappers (`nnfpga.backends.rtl.wrappers`), run by
`nnfpga.sim.cocotb_wrappers_run`.  The stimulus is a JSON file (path in
``$NNFPGA_COCOTB_STIMULUS``), the result is written to ``$NNFPGA_COCOTB_RESULT``.

Both benches drive inputs and read outputs on the falling edge of the clock (half a cycle
after the rising edge that produced them), as `nnfpga.sim.cocotb_bench` does.

``axis_stream`` (the ``<top>_axis`` wrapper): a schedule of phases (``cycles``,
``p_valid``, ``p_ready``, repeated in turn until every result is out): in each cycle a new
sample is offered on ``s_axis`` with probability ``p_valid`` (an offered sample stays on
the bus, unchanged, until it is taken, as AXI4-Stream requires) and ``m_axis_tready`` is
high with probability ``p_ready``.  Every transfer on ``m_axis`` must carry the next
expected output (bit-exact, in order); the master's data must not change while it waits
for ``tready``; input transfers must be at least ``II`` cycles apart; the samples accepted
and not handed out may never exceed the FIFO depth.  The result lists the cycles of the
input and output transfers.

``bunch_crossing`` (the ``<top>_bx`` wrapper): frames of N words, each after ``gap`` empty
crossings (N cycles each) of junk words, optionally preceded by ``abort`` words of a
partial frame (its own ``bx_start``, dropped by the wrapper).  Cycle by cycle:
``out_valid`` is high exactly ``latency`` cycles after each complete frame's ``bx_start``
and never otherwise, and ``out_data`` equals the latest decision in every cycle (zero
before the first).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


def _stimulus() -> dict:
    with open(os.environ["NNFPGA_COCOTB_STIMULUS"]) as f:
        return json.load(f)


def _finish(result: dict, errors: list[str]) -> None:
    result |= {"errors": errors[:50], "n_errors": len(errors)}
    with open(os.environ["NNFPGA_COCOTB_RESULT"], "w") as f:
        json.dump(result, f)
    assert not errors, f"{len(errors)} errors; first: {errors[:5]}"


@cocotb.test()
async def axis_stream(dut):
    stim = _stimulus()
    xs = [int(v) for v in stim["x"]]
    want = [int(v) for v in stim["want"]]
    ii, depth, junk = int(stim["ii"]), int(stim["fifo_depth"]), int(stim["junk"])
    phases = [(int(c), float(pv), float(pr)) for c, pv, pr in stim["phases"]]
    max_cycles = int(stim["max_cycles"])
    rng = random.Random(int(stim["seed"]))
    n = len(xs)

    s_data, s_valid, s_ready = dut.s_axis_tdata, dut.s_axis_tvalid, dut.s_axis_tready
    m_data, m_valid, m_ready = dut.m_axis_tdata, dut.m_axis_tvalid, dut.m_axis_tready
    Clock(dut.aclk, 10, unit="ns").start(start_high=False)
    dut.aresetn.value = 0
    s_valid.value = 0
    s_data.value = junk
    m_ready.value = 0
    for _ in range(4):
        await FallingEdge(dut.aclk)
    dut.aresetn.value = 1
    await FallingEdge(dut.aclk)

    errors: list[str] = []
    accepted, delivered, outputs = [], [], []
    sent = got = 0
    offered = False          # a sample is on s_axis, waiting to be taken
    driven = 0               # the value on s_axis_tvalid
    m_waiting = None         # data the master offered and that was not taken
    last_ready = None
    max_outstanding = 0
    phase, phase_end = 0, phases[0][0]
    cycle = 0
    while got < n:
        if cycle >= max_cycles:
            errors.append(f"timeout after {cycle} cycles: {sent} samples accepted, {got} results out")
            break
        if cycle >= phase_end:
            phase = (phase + 1) % len(phases)
            phase_end = cycle + phases[phase][0]
        _, p_valid, p_ready = phases[phase]
        tready = int(s_ready.value)
        mvalid = int(m_valid.value)
        outstanding = sent - got  # what the credit counter holds in this cycle
        max_outstanding = max(max_outstanding, outstanding)
        if outstanding > depth or (tready and outstanding == depth):
            errors.append(f"cycle {cycle}: {outstanding} samples outstanding, s_axis_tready {tready} "
                          f"(FIFO depth {depth})")
        # --- slave side: offer a new sample or keep the waiting one
        if not offered and sent < n and rng.random() < p_valid:
            offered = True
            s_data.value = xs[sent]
            if not driven:
                s_valid.value = driven = 1
        elif not offered and driven:
            s_valid.value = driven = 0
            s_data.value = junk
        if offered and tready:
            if accepted and cycle - accepted[-1] < ii:
                errors.append(f"cycle {cycle}: input accepted {cycle - accepted[-1]} cycles after the previous one "
                              f"(II {ii})")
            accepted.append(cycle)
            sent += 1
            offered = False       # taken at the coming rising edge
        # --- master side
        ready = rng.random() < p_ready
        if ready != last_ready:
            m_ready.value = int(ready)
            last_ready = ready
        if mvalid:
            data = m_data.value.to_unsigned()
            if m_waiting is not None and data != m_waiting:
                errors.append(f"cycle {cycle}: m_axis_tdata changed from {m_waiting:#x} to {data:#x} while "
                              "m_axis_tvalid was waiting for m_axis_tready")
            if ready:
                if got >= len(want):
                    errors.append(f"cycle {cycle}: an output beyond the {len(want)} expected")
                elif data != want[got]:
                    errors.append(f"output {got} (cycle {cycle}): {data:#x}, expected {want[got]:#x}")
                delivered.append(cycle)
                outputs.append(str(data))
                got += 1
                m_waiting = None
            else:
                m_waiting = data
        elif m_waiting is not None:
            errors.append(f"cycle {cycle}: m_axis_tvalid fell before the transfer")
            m_waiting = None
        if len(errors) > 50:
            break
        await FallingEdge(dut.aclk)
        cycle += 1
    # a few more cycles: nothing else may come out
    s_valid.value = 0
    m_ready.value = 1
    for _ in range(8):
        await FallingEdge(dut.aclk)
        if int(m_valid.value):
            errors.append(f"cycle {cycle}: an output beyond the {n} expected")
            break
    _finish({"outputs": outputs, "accepted": accepted, "delivered": delivered, "cycles": cycle,
             "max_outstanding": max_outstanding}, errors)


@cocotb.test()
async def bunch_crossing(dut):
    stim = _stimulus()
    n_words, width, latency = int(stim["words_per_bx"]), int(stim["word_width"]), int(stim["latency"])
    frames = stim["frames"]
    rng = random.Random(int(stim["seed"]))
    mask = (1 << width) - 1

    # the schedule: per cycle (bx_start, word); the cycles where a decision is due
    drive: dict[int, tuple[int, int]] = {}
    due: dict[int, int] = {}
    starts = []
    c = 0
    for k, fr in enumerate(frames):
        c += n_words * int(fr.get("gap", 0))
        abort = int(fr.get("abort", 0))
        for j in range(abort):
            drive[c + j] = (int(j == 0), rng.getrandbits(width))
        c += abort
        x = int(fr["x"])
        for j in range(n_words):
            drive[c + j] = (int(j == 0), (x >> (j * width)) & mask)
        starts.append(c)
        due[c + latency] = k
        c += n_words
    end = c + latency + 2 * n_words

    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    dut.bx_start.value = 0
    dut.in_word.value = 0
    for _ in range(4):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)

    errors: list[str] = []
    seen: list[str] = []
    held = 0
    out_valid, out_data, bx_start, in_word = dut.out_valid, dut.out_data, dut.bx_start, dut.in_word
    for cycle in range(end + 1):
        valid = int(out_valid.value)
        k = due.get(cycle)
        if valid != (k is not None):
            errors.append(f"cycle {cycle}: out_valid is {valid}, expected {int(k is not None)}")
        if k is not None:
            held = int(frames[k]["want"])
        got = out_data.value.to_unsigned()
        if valid:
            seen.append(str(got))
        if got != held:
            errors.append(f"cycle {cycle}: out_data {got:#x}, expected {held:#x}"
                          + (f" (decision of frame {k})" if k is not None else " (the decision held)"))
        start, word = drive.get(cycle, (0, rng.getrandbits(width)))
        bx_start.value = start
        in_word.value = word
        if len(errors) > 50:
            break
        await FallingEdge(dut.clk)
    _finish({"outputs": seen, "starts": starts, "cycles": end + 1}, errors)
