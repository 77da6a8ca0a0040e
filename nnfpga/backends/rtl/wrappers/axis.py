"""The AXI4-Stream wrapper ``<top>_axis``: back-pressure around the fixed-latency core.

Ports: ``aclk``; ``aresetn`` (synchronous, active low: clears the samples in flight and
the FIFO); slave ``s_axis_tdata`` / ``s_axis_tvalid`` / ``s_axis_tready`` (one sample, the
core's ``in_data`` in the low ``in_bus_width`` bits, upper padding bits ignored); master
``m_axis_tdata`` / ``m_axis_tvalid`` / ``m_axis_tready`` (the core's ``out_data`` in the
low bits, padding zero).  Both tdata widths are rounded up to whole bytes (AXI4-Stream).
``s_axis_tready`` and ``m_axis_tvalid`` are decoded from registers (and are low while
``aresetn`` is low); they never depend on the other side's tvalid/tready in the same cycle.

Data path: a sample is accepted in a cycle with ``s_axis_tvalid and s_axis_tready``; it is
registered and given to the core the next cycle (``in_valid``); the core's result enters
an output FIFO of ``DEPTH`` entries L cycles later and is offered on ``m_axis`` the cycle
after that.  With an empty FIFO the result is on ``m_axis_tvalid`` exactly ``L + 2`` cycles
after the input handshake (``latency_cycles`` in ``wrappers.json``).

No sample is ever lost, whatever ``m_axis_tready`` does: a credit counter counts the
samples accepted and not yet handed out (in the input register, in flight in the core, or
stored in the FIFO); ``s_axis_tready`` is high only while it is below ``DEPTH``, so the
FIFO always has room for every result the core will produce (the core itself cannot be
stopped).  ``s_axis_tready`` also stays low for ``II - 1`` cycles after each accepted
sample: the core gets at most one sample every ``II`` cycles.  Outputs leave in input order.

**Sizing rule.**  A sample holds its credit from its input handshake (cycle c) to its
output handshake, at the earliest cycle ``c + L + 2``: ``L + 2`` cycles.  At full rate
(a sample every II cycles, the sink always ready) the samples accepted in the last
``L + 2`` cycles are outstanding, at most ``ceil((L + 2) / II)``, and the next one is
accepted only while the count is below ``DEPTH``.  So

    DEPTH = the smallest power of two >= ceil((L + 2) / II) + 1

keeps ``s_axis_tready`` high at the full rate 1/II while the sink takes every result (the
``+ 1`` is the margin for the sample accepted in the cycle the oldest one leaves).  A
smaller ``fifo_depth`` (a power of two >= 2) is still lossless; it only caps the
throughput at ``DEPTH / (L + 2)`` samples per cycle.  The FIFO is ``DEPTH x out_bus_width``
bits with an asynchronous read (distributed RAM); the credit counter has
``log2(DEPTH) + 1`` bits.
"""

from __future__ import annotations

from nnfpga.backends.rtl.structural import (Add, Cat, If, Lit, Module, Not, Read, Slice, Write, assign, chain,
                                           conj, eq, ne)
from nnfpga.backends.rtl.wrappers.common import WrapperError, bits_for, core_facts, wrapper_kind


def fifo_depth_rule(latency: int, ii: int) -> int:
    """The FIFO depth of the sizing rule: the smallest power of two >= ceil((L + 2) / II) + 1."""
    need = -(-(latency + 2) // ii) + 1
    return 1 << (need - 1).bit_length()


def axis_plan(info: dict, fifo_depth: int | None = None) -> dict:
    """The AXI4-Stream wrapper of the core described by ``info`` (its ``rtl.json``)."""
    plan = core_facts(info)
    latency, ii = plan["core_latency_cycles"], plan["core_ii_cycles"]
    rule = fifo_depth_rule(latency, ii)
    if fifo_depth is None:
        depth = rule
    else:
        depth = int(fifo_depth)
        if depth != fifo_depth or depth < 2 or depth & (depth - 1):
            raise WrapperError(f"fifo_depth must be a power of two >= 2, got {fifo_depth!r} "
                               f"(the sizing rule gives {rule} for latency {latency}, II {ii})")
    top = f"{plan['core']}_axis"
    return plan | {
        "kind": "AXI4-Stream wrapper",
        "top": top,
        "files": {"verilog": f"verilog/{top}.v", "vhdl": f"vhdl/{top}.vhd"},
        "fifo_depth": depth,
        "fifo_depth_rule": rule,
        "sizing_rule": "fifo_depth = smallest power of two >= ceil((latency_cycles + 2) / ii_cycles) + 1",
        "full_rate": depth >= rule,
        "s_axis_tdata_width": 8 * -(-plan["in_bus_width"] // 8),
        "m_axis_tdata_width": 8 * -(-plan["out_bus_width"] // 8),
        "latency_cycles": latency + 2,
        "ii_cycles": ii,
        "clock": "aclk",
        "reset": "aresetn (synchronous, active low)",
    }


def _summary(plan: dict) -> list[str]:
    d, ii = plan["fifo_depth"], plan["ii_cycles"]
    return [
        "AXI4-Stream slave s_axis (one sample per transfer) -> core -> output FIFO -> master m_axis.",
        f"s_axis_tdata: {plan['s_axis_tdata_width']} bits, the core's in_data in bits "
        f"[{plan['in_bus_width'] - 1}:0]; m_axis_tdata: {plan['m_axis_tdata_width']} bits, out_data in "
        f"[{plan['out_bus_width'] - 1}:0], padding zero.",
        f"Output FIFO {d} entries ("
        + ("the sizing rule" if d == plan["fifo_depth_rule"]
           else f"requested; the rule gives {plan['fifo_depth_rule']}")
        + ": smallest power of two >= ceil((L + 2) / II) + 1).",
        f"A credit counter (samples accepted and not yet handed out) keeps s_axis_tready low at {d}: no "
        "result is ever lost, whatever m_axis_tready does.",
        f"At most one sample every {ii} cycle{'s' if ii > 1 else ''} (the core's II); result on m_axis "
        f"{plan['latency_cycles']} cycles after the input handshake when the FIFO is empty.",
        "aresetn: synchronous, active low; clears the core's samples in flight and the FIFO.",
    ]


def axis_module(plan: dict) -> Module:
    """The wrapper's one description, printed in both languages by `structural_print.print_module`."""
    iw, ow = plan["in_bus_width"], plan["out_bus_width"]
    iw8, ow8 = plan["s_axis_tdata_width"], plan["m_axis_tdata_width"]
    d, ii = plan["fifo_depth"], plan["ii_cycles"]
    aw = d.bit_length() - 1  # FIFO address bits; the pointers have one more (full vs empty)
    m = Module(plan["top"], _summary(plan), wrapper_kind(plan))
    aclk = m.port("aclk", "in")
    aresetn = m.port("aresetn", "in", note="synchronous, active low")
    s_tdata = m.port("s_axis_tdata", "in", iw8)
    s_tvalid = m.port("s_axis_tvalid", "in")
    s_tready = m.port("s_axis_tready", "out")
    m_tdata = m.port("m_axis_tdata", "out", ow8)
    m_tvalid = m.port("m_axis_tvalid", "out")
    m_tready = m.port("m_axis_tready", "in")

    rst = m.signal("rst")
    credits = m.signal("credits", aw + 1, 0, f"samples accepted and not yet handed out on m_axis: 0 .. {d}")
    ii_wait = m.signal("ii_wait", bits_for(ii - 1), 0,
                       f"cycles until the core may take the next sample (its II is {ii})") if ii > 1 else None
    core_in_valid = m.signal("core_in_valid", None, 0)
    core_in_data = m.signal("core_in_data", iw, 0)
    core_out_valid = m.signal("core_out_valid")
    core_out_data = m.signal("core_out_data", ow)
    fifo = m.memory("fifo_mem", d, ow, f"output FIFO: {d} x {ow} bits, read asynchronously (distributed RAM)")
    wr_ptr = m.signal("wr_ptr", aw + 1, 0)
    rd_ptr = m.signal("rd_ptr", aw + 1, 0)
    fifo_rdata = m.signal("fifo_rdata", ow)
    ready, valid, accept, pop = (m.signal(name) for name in ("ready", "valid", "accept", "pop"))

    m.assign(rst, Not(aresetn))
    m.assign(fifo_rdata, Read(fifo, Slice(rd_ptr, aw - 1, 0)))
    m.assign(ready, conj(aresetn, ne(credits, d), *([eq(ii_wait, 0)] if ii_wait else [])))
    m.assign(valid, conj(aresetn, ne(wr_ptr, rd_ptr)))
    m.assign(s_tready, ready)
    m.assign(m_tvalid, valid)
    m.assign(m_tdata, Cat((Lit(0, ow8 - ow), fifo_rdata)) if ow8 > ow else fifo_rdata)
    m.assign(accept, conj(s_tvalid, ready))
    m.assign(pop, conj(valid, m_tready))

    pace = [chain((accept, [assign(ii_wait, ii - 1)]),
                  (ne(ii_wait, 0), [assign(ii_wait, Add(ii_wait, -1))]))] if ii_wait else []
    m.process(aclk, [chain(
        (rst, [assign(credits, 0), *([assign(ii_wait, 0)] if ii_wait else []), assign(core_in_valid, 0),
               assign(wr_ptr, 0), assign(rd_ptr, 0)]),
        orelse=[chain((conj(accept, Not(pop)), [assign(credits, Add(credits, 1))]),
                      (conj(pop, Not(accept)), [assign(credits, Add(credits, -1))])),
                *pace,
                assign(core_in_valid, accept),
                If(core_out_valid, [assign(wr_ptr, Add(wr_ptr, 1))]),
                If(pop, [assign(rd_ptr, Add(rd_ptr, 1))])])])
    m.process(aclk, [If(accept, [assign(core_in_data, Slice(s_tdata, iw - 1, 0))]),
                     If(core_out_valid, [Write(fifo, Slice(wr_ptr, aw - 1, 0), core_out_data)])],
              note="the data path: no reset")
    m.instance(plan["core"], "u_core", [("clk", aclk), ("rst", rst), ("in_valid", core_in_valid),
                                        ("in_data", core_in_data)],
               [("out_valid", core_out_valid), ("out_data", core_out_data)])
    return m
