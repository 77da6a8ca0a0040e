"""The delay model behind the logic-depth and Fmax figures (analytic and post-synthesis).

A path runs from a register (or a block RAM / DSP output register) to a register.  Its
delay is the sum of the cells it crosses, each charged with its own delay *and* its
share of routing; the clock period must cover the path plus the flip-flop overhead:

    Fmax = 1000 / (T_FF + path delay)   [MHz]

The figures are those of `nnfpga.backends.rtl.timing` (the one delay model, which the
RTL schedule also places its pipeline registers with; it names the data sheets and says
which figures are estimates), UltraScale+ speed grade -2; rough, *not* a timing sign-off:

=============================  =======  ================================================
``T_FF``                       0.15 ns  clock-to-out plus set-up of a flip-flop
``T_LUT``                      0.50 ns  one LUT level (≈0.1 ns cell + ≈0.4 ns routing)
``T_CARRY_IO``                 0.25 ns  entering and leaving a carry chain (S/DI → O/CO)
``T_CARRY4``                   0.03 ns  each 4 bits of carry propagation (CARRY8 ≈ 0.06 ns)
``T_MUXF``                     0.10 ns  a MUXF7/F8/F9 wide-function multiplexer
``T_DSP``                      2.44 ns  DSP48E2 multiplier with its P register only (DS923:
                                        route in + A/B -> P without MREG); a product
                                        followed by two registers is charged the route in
                                        and one fully registered stage (M), 1.89 ns
``T_DSP_CLK``                  0.60 ns  clock-to-out of a DSP with output/pipeline registers
``T_BRAM_CLK``                 1.20 ns  block-RAM clock-to-out (no output register) + routing
=============================  =======  ================================================

UltraScale (``xcu``) parts are charged 1.15× these delays, 7-series (``xc7``) 1.5×.
"Logic levels" counts LUT (and inverter) cells on the critical path, the usual
"levels of logic" of a timing report; carry cells are reported apart as the chain length.
"""

from __future__ import annotations

from nnfpga.backends.rtl.timing import DEFAULT_FAMILY, DELAYS

_BASE = DELAYS[DEFAULT_FAMILY]
T_FF = _BASE.ff
T_LUT = _BASE.lut
T_CARRY_IO = _BASE.carry_io
T_CARRY4 = round(_BASE.carry_cell * 4 / _BASE.carry_bits, 4)
T_MUXF = _BASE.muxf
T_DSP = round(_BASE.multiplier_stages(1), 3)
T_DSP_MREG = round(_BASE.multiplier_stages(2), 3)
T_DSP_CLK = _BASE.dsp_clk
T_BRAM_CLK = _BASE.bram_clk

FAMILY_SCALE = {name: d.scale for name, d in DELAYS.items()}

MODEL_TEXT = (f"Fmax = 1000 / ({T_FF:g} ns + path); path = {T_LUT:g} ns per LUT level (incl. routing) "
              f"+ {T_CARRY_IO:g} ns per carry-chain entry + {T_CARRY4:g} ns per CARRY4 + {T_DSP:g} ns per DSP48E2 "
              f"product with its P register only ({T_DSP_MREG:g} ns with M and P) "
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
