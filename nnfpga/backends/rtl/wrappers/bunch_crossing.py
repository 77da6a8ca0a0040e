"""The bunch-crossing wrapper ``<top>_bx``: one sample per 25 ns crossing, received as a
frame of N words, for trigger boards.

At a clock of ``f`` MHz a bunch crossing lasts ``N = f / 40`` cycles (6 at 240 MHz, 8 at
320 MHz; LHC clocks such as 240.474 MHz = 6 x 40.079 MHz are accepted, to 0.5%).  The
core's ``in_data`` (``in_bus_width`` bits) is cut into N words of ``W = ceil(in_bus_width /
N)`` bits, zero-padded at the top to ``N * W`` bits: word ``j`` carries bits
``[j*W + W-1 : j*W]`` (word 0 the least significant).

Ports: ``clk``, ``rst`` (synchronous, active high; clears a frame being received, the
samples in flight and the output), ``bx_start`` (high in the cycle of word 0 of a frame),
``in_word`` (W bits; the frame's words in N consecutive cycles from ``bx_start`` on, junk
outside frames), ``out_valid`` (a one-cycle pulse per decision) and ``out_data`` (the core's
``out_data``, held from the pulse to the next decision; zero after reset).

A frame is complete when its N-th word has arrived; ``bx_start`` during a frame restarts
it (the partial frame is dropped), cycles without ``bx_start`` between frames are empty
crossings.  The assembled frame enters the core (``in_valid``) the cycle after its last
word, so the core gets a sample at most every N cycles: the wrapper requires ``II <= N``
and refuses a slower core (`WrapperError`).

**Latency.**  With ``bx_start`` in cycle ``c``: the frame enters the core in cycle
``c + N``, the core answers at ``c + N + L``, and ``out_valid`` rises in cycle

    c + latency_cycles,   latency_cycles = N + L + 1 + D,

(``+ 1``: the output register), where ``D = (-(N + L + 1)) mod N`` aligns the decision to a
crossing boundary (``align=True``, the default): it then leaves at the first cycle of a
crossing, ``latency_bx = latency_cycles / N = ceil((N + L + 1) / N)`` crossings after the
one whose data it judges.  Without alignment ``D = 0`` and ``latency_bx`` is the fraction
``(N + L + 1) / N``.  Both, and ``latency_ns``, are in ``wrappers.json``.
"""

from __future__ import annotations

from nnfpga.backends.rtl.structural import Add, Cat, If, Index, Module, Slice, assign, chain, eq, ne
from nnfpga.backends.rtl.wrappers.common import WrapperError, bits_for, core_facts, wrapper_kind

#: The LHC bunch-crossing rate the word count is taken from (nominal; 40.079 MHz is within tolerance).
BX_RATE_MHZ = 40.0
_TOLERANCE = 0.005


def words_per_crossing(clock_mhz: float) -> int:
    """N = clock / 40 MHz, an integer (to 0.5%), or `WrapperError`."""
    f = float(clock_mhz)
    n = round(f / BX_RATE_MHZ)
    if not f > 0 or n < 1 or abs(f / (n * BX_RATE_MHZ) - 1) > _TOLERANCE:
        raise WrapperError(f"bunch-crossing wrapper: a {clock_mhz} MHz clock is not a whole multiple of the "
                           f"{BX_RATE_MHZ:g} MHz crossing rate (e.g. 240 MHz = 6 words per crossing, 320 MHz = 8)")
    return n


def bx_plan(info: dict, clock_mhz: float, align: bool = True) -> dict:
    """The bunch-crossing wrapper of the core described by ``info`` (its ``rtl.json``) at ``clock_mhz``."""
    plan = core_facts(info)
    n = words_per_crossing(clock_mhz)
    latency, ii = plan["core_latency_cycles"], plan["core_ii_cycles"]
    if ii > n:
        raise WrapperError(
            f"bunch-crossing wrapper: core {plan['core']} accepts a sample every {ii} cycles (II), but a "
            f"crossing at {clock_mhz:g} MHz lasts {n} cycles: the core cannot take one sample per crossing. "
            f"Compile it with II <= {n} (a lower reuse factor, e.g. --reuse {n}) or use a faster clock.")
    width = -(-plan["in_bus_width"] // n)
    base = n + latency + 1
    delay = -base % n if align else 0
    cycles = base + delay
    top = f"{plan['core']}_bx"
    return plan | {
        "kind": "bunch-crossing wrapper",
        "top": top,
        "files": {"verilog": f"verilog/{top}.v", "vhdl": f"vhdl/{top}.vhd"},
        "clock_mhz": float(clock_mhz),
        "words_per_bx": n,
        "word_width": width,
        "frame_width": n * width,
        "aligned": bool(align),
        "align_delay_cycles": delay,
        "latency_cycles": cycles,
        "latency_bx": cycles // n if cycles % n == 0 else cycles / n,
        "latency_ns": cycles * 1000.0 / float(clock_mhz),
        "output_phase": cycles % n,
        "latency_formula": "latency_cycles = N + L + 1 + D, D = (-(N + L + 1)) mod N when aligned (else 0); "
                           "latency_bx = latency_cycles / N",
    }


def _summary(plan: dict) -> list[str]:
    n, w, lat = plan["words_per_bx"], plan["word_width"], plan["latency_cycles"]
    return [
        f"Clock {plan['clock_mhz']:g} MHz: {n} words of {w} bits per 25 ns bunch crossing; word j = in_data bits "
        f"[j*{w} + {w - 1} : j*{w}] (in_data zero-padded to {plan['frame_width']} bits), word 0 with bx_start.",
        "bx_start during a frame restarts it (the partial frame is dropped).",
        f"out_valid: a one-cycle pulse {lat} cycles after bx_start ({plan['latency_bx']} bunch crossings, "
        f"{plan['latency_ns']:.3f} ns): {n} (frame) + {plan['core_latency_cycles']} (core) + 1 (output register)"
        + (f" + {plan['align_delay_cycles']} (alignment to a crossing boundary)" if plan["align_delay_cycles"] else "")
        + ".",
        "out_data: the decision, held until the next one; zero after reset.",
        "rst: synchronous, active high; clears the frame being received, the samples in flight and the output.",
    ]


def bx_module(plan: dict) -> Module:
    """The wrapper's one description, printed in both languages by `structural_print.print_module`."""
    n, w, f = plan["words_per_bx"], plan["word_width"], plan["frame_width"]
    iw, ow, d = plan["in_bus_width"], plan["out_bus_width"], plan["align_delay_cycles"]
    m = Module(plan["top"], _summary(plan), wrapper_kind(plan))
    clk = m.port("clk", "in")
    rst = m.port("rst", "in", note="synchronous, active high")
    bx_start = m.port("bx_start", "in", note="high with word 0 of a frame")
    in_word = m.port("in_word", "in", w)
    out_valid = m.port("out_valid", "out")
    out_data = m.port("out_data", "out", ow)

    frame = m.signal("frame", f, 0, f"the frame: words enter at the top, word 0 is at the bottom after {n} shifts")
    word_cnt = m.signal("word_cnt", bits_for(n - 1), 0,
                        "words of the current frame received so far (0: no frame)") if n > 1 else None
    core_in_valid = m.signal("core_in_valid", None, 0)
    core_out_valid = m.signal("core_out_valid")
    core_out_data = m.signal("core_out_data", ow)
    if d:
        # a one-bit delay line is a scalar: VHDL does not mix std_logic and a 1-bit vector
        align_sr = m.signal("align_sr", d if d > 1 else None, 0,
                            f"alignment of the decision to a crossing boundary: {d} cycle{'s' if d > 1 else ''}")
        hold_data = m.signal("hold_data", ow)
    out_valid_r = m.signal("out_valid_r", None, 0)
    out_data_r = m.signal("out_data_r", ow, 0)

    m.assign(out_valid, out_valid_r)
    m.assign(out_data, out_data_r)
    m.process(clk, [assign(frame, in_word if n == 1 else Cat((in_word, Slice(frame, f - 1, w))))])
    if word_cnt is None:  # one word per crossing: every bx_start is a complete frame
        m.process(clk, [chain((rst, [assign(core_in_valid, 0)]), orelse=[assign(core_in_valid, bx_start)])])
    else:
        m.process(clk, [chain(
            (rst, [assign(word_cnt, 0), assign(core_in_valid, 0)]),
            (bx_start, [assign(word_cnt, 1), assign(core_in_valid, 0)]),
            (eq(word_cnt, n - 1), [assign(word_cnt, 0), assign(core_in_valid, 1)]),
            orelse=[If(ne(word_cnt, 0), [assign(word_cnt, Add(word_cnt, 1))]), assign(core_in_valid, 0)])])
    if not d:
        m.process(clk, [chain((rst, [assign(out_valid_r, 0), assign(out_data_r, 0)]),
                              orelse=[assign(out_valid_r, core_out_valid),
                                      If(core_out_valid, [assign(out_data_r, core_out_data)])])])
    else:
        last = align_sr if d == 1 else Index(align_sr, d - 1)
        shifted = core_out_valid if d == 1 else Cat((Slice(align_sr, d - 2, 0), core_out_valid))
        m.process(clk, [chain((rst, [assign(align_sr, 0), assign(out_valid_r, 0), assign(out_data_r, 0)]),
                              orelse=[assign(align_sr, shifted), assign(out_valid_r, last),
                                      If(last, [assign(out_data_r, hold_data)])]),
                        If(core_out_valid, [assign(hold_data, core_out_data)])])
    m.instance(plan["core"], "u_core", [("clk", clk), ("rst", rst), ("in_valid", core_in_valid),
                                        ("in_data", Slice(frame, iw - 1, 0))],
               [("out_valid", core_out_valid), ("out_data", core_out_data)])
    return m
