"""The cocotb test bench of an nnfpga RTL top (run by `nnfpga.sim.cocotb_run`).

It reads a stimulus file (JSON, path in ``$NNFPGA_COCOTB_STIMULUS``): the latency ``L``,
the initiation interval ``II``, and per sample the packed ``in_data`` (an integer), the
number of extra idle cycles before it (``gap``) and the expected packed ``out_data``.
Sample ``k`` is presented in cycle ``c_k = c_{k-1} + II + gap_k`` (the first as soon as
reset is released): ``in_valid`` high for that one cycle, junk on ``in_data`` and
``in_valid`` low in every other cycle.

A sample may carry ``reset: [offset, length]``: ``rst`` is high in the ``length`` cycles
from ``c_{k-1} + offset`` on (``offset >= 1``), and the sample follows ``gap_k`` cycles
after the reset ends (it need not wait for the II: the reset clears the schedule).  A
sample is lost when a reset cycle falls in ``c_j .. c_j + L - 1``: its result is cleared
from the pipeline and never appears.

Cycle by cycle the bench checks that ``out_valid`` is high exactly in the cycles
``c_k + L`` of the samples not lost and then that ``out_data`` equals the expected
value, and writes what it saw to ``$NNFPGA_COCOTB_RESULT``.

Inputs are driven on the falling edge of the clock and outputs read on the falling
edge too (half a cycle after the rising edge that produced them), so there is no race
with the design's rising-edge registers in any simulator.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def stream(dut):
    with open(os.environ["NNFPGA_COCOTB_STIMULUS"]) as f:
        stim = json.load(f)
    latency, ii = int(stim["latency"]), int(stim["ii"])
    samples = stim["samples"]
    junk = int(stim["junk"])
    # start low: the first rising edge comes half a period in (GHDL needs it that way)
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_data.value = junk
    for _ in range(4):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)

    starts, resets, c = [], set(), 0
    for k, s in enumerate(samples):
        if s.get("reset") and k:
            offset, length = (int(v) for v in s["reset"])
            first = starts[-1] + offset
            resets.update(range(first, first + length))
            c = first + length + int(s["gap"])
        else:
            c += int(s["gap"]) + (ii if k else 0)
        starts.append(c)
    lost = {k for k, c in enumerate(starts) if any(r in resets for r in range(c, c + latency))}
    due = {c + latency: k for k, c in enumerate(starts) if k not in lost}
    at = {c: k for k, c in enumerate(starts)}
    end = (starts[-1] if starts else 0) + latency + 3
    seen, errors = [], []
    for cycle in range(end + 1):
        # falling edge before the rising edge that ends `cycle`: outputs of `cycle`, inputs for it
        valid = int(dut.out_valid.value)
        k = due.get(cycle)
        if valid != (k is not None):
            errors.append(f"cycle {cycle}: out_valid is {valid}, expected {int(k is not None)}")
        if valid and k is not None:
            got = dut.out_data.value.to_unsigned()
            seen.append(got)
            if got != int(samples[k]["want"]):
                errors.append(f"sample {k} (cycle {cycle}): out_data {got:#x}, expected {int(samples[k]['want']):#x}")
        k_in = at.get(cycle)
        dut.rst.value = int(cycle in resets)
        dut.in_valid.value = int(k_in is not None)
        dut.in_data.value = int(samples[k_in]["x"]) if k_in is not None else junk
        await FallingEdge(dut.clk)
    with open(os.environ["NNFPGA_COCOTB_RESULT"], "w") as f:
        json.dump({"outputs": [str(v) for v in seen], "errors": errors[:50], "n_errors": len(errors),
                   "cycles": end + 1, "lost": sorted(lost)}, f)
    assert not errors, f"{len(errors)} errors; first: {errors[:5]}"
