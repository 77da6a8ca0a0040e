"""The delay model behind the logic-depth and Fmax figures (analytic and post-synthesis).

A path runs from a register (or a block RAM / DSP output register) to a register.  Its
delay is the sum of the cells it crosses, each charged with its own delay *and* its
share of routing; the clock period must cover the path plus the flip-flop overhead:

    Fmax = 1000 / (T_FF + path delay)   [MHz]

Figures for UltraScale+ speed grade -2 (rough, rounded from the vendor's data-sheet
orders of magnitude and typical post-route nets; they are *not* a timing sign-off):

=============================  =======  ================================================
``T_FF``                       0.15 ns  clock-to-out plus set-up of a flip-flop
``T_LUT``                      0.50 ns  one LUT level (≈0.1 ns cell + ≈0.4 ns routing)
``T_CARRY_IO``                 0.25 ns  entering and leaving a carry chain (S/DI → O/CO)
``T_CARRY4``                   0.03 ns  each 4 bits of carry propagation (CARRY8 ≈ 0.06 ns)
``T_MUXF``                     0.10 ns  a MUXF7/F8/F9 wide-function multiplexer
``T_DSP``                      2.40 ns  DSP48E2 multiplier without internal registers,
                                        A/B in to P out, plus routing
``T_DSP_CLK``                  0.60 ns  clock-to-out of a DSP with output/pipeline registers
``T_BRAM_CLK``                 1.20 ns  block-RAM clock-to-out (no output register) + routing
=============================  =======  ================================================

UltraScale (``xcu``) parts are charged 1.15× these delays, 7-series (``xc7``) 1.5×.
"Logic levels" counts LUT (and inverter) cells on the critical path, the usual
"levels of logic" of a timing report; carry cells are reported apart as the chain length.
"""

from __future__ import annotations

T_FF = 0.15
T_LUT = 0.50
T_CARRY_IO = 0.25
T_CARRY4 = 0.03
T_MUXF = 0.10
T_DSP = 2.40
T_DSP_CLK = 0.60
T_BRAM_CLK = 1.20

FAMILY_SCALE = {"xcup": 1.0, "xcu": 1.15, "xc7": 1.5}

MODEL_TEXT = ("Fmax = 1000 / (0.15 ns + path); path = 0.50 ns per LUT level (incl. routing) "
              "+ 0.25 ns per carry-chain entry + 0.03 ns per CARRY4 + 2.4 ns per unregistered DSP48E2 "
              "(UltraScale+ -2; x1.15 UltraScale, x1.5 7-series)")


def scale(family: str) -> float:
    return FAMILY_SCALE.get(family, 1.0)


def fmax_mhz(path_ns: float, family: str = "xcup") -> float:
    return round(1000.0 / ((T_FF + path_ns) * scale(family)), 1)


def timing_summary(path_ns: float, levels: int, carry4: int, family: str, clock_mhz: float) -> dict:
    """The ``timing`` record: critical path, levels, Fmax and whether the clock is met."""
    f = fmax_mhz(path_ns, family)
    return {"critical_path_ns": round((T_FF + path_ns) * scale(family), 3),
            "logic_levels": int(levels), "carry4_on_path": int(carry4),
            "fmax_mhz": f, "meets_clock": f >= clock_mhz, "model": MODEL_TEXT}
