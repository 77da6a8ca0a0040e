"""The delay model of the primitives the RTL is built from, per part family: the one
place its figures live.  The lowering's schedule (`lowering.schedule`) places pipeline
registers with it; the report's analytic timing (`nnfpga.backends.report.timing`) reads
the same figures.

Figures are for speed grade -2, in ns.  Where a vendor data sheet publishes a figure it
is named; everything else is an **estimate** (the data sheets of UltraScale+ and
7-series give no per-cell LUT or carry delays: Vivado's timing models hold them), rounded
from typical post-route timing reports, and none of this is a timing sign-off.

UltraScale+ (``xcup``; Virtex DS923, Kintex DS922, Zynq MPSoC DS925, table "DSP48
Slice Switching Characteristics", -2 at 0.85 V):

* DSP48E2 with all registers (A/B, M, P): FMAX 775 MHz -> one internal stage <= 1.29 ns;
* two-register multiply without MREG (A/B -> multiplier -> P): 544 MHz -> 1.84 ns;
* without pipeline registers (MREG, ADREG): 410 MHz -> 2.44 ns (not used: nnfpga uses
  no pre-adder; a product with its P register only is charged the route in plus the
  no-MREG figure, 0.60 + 1.84 = 2.44 ns).

7 series (``xc7``; Kintex-7 DS182, Virtex-7 DS183, "DSP48E1 Switching
Characteristics"): the DSP48E1 figures here are **estimates**, the UltraScale+ ones
scaled by the family's factor 1.5 (the same factor as its LUT and CARRY4 figures); the
DS182/DS183 FMAX table is what should replace them.  UltraScale (``xcu``, DS892/DS893)
is UltraScale+ scaled by 1.15 (estimate).  Versal (DSP58, no Yosys family) is charged
as UltraScale+: an estimate on the slow side (DS960 gives the DSP58 an integer-multiply
FMAX of 1070 MHz at -2).

Fabric figures (all families, UltraScale+ value; **estimates**): a LUT level 0.50 ns
including its share of routing; entering and leaving a carry chain 0.25 ns; each carry
primitive 0.06 ns (a CARRY8 covers 8 bits on UltraScale/UltraScale+, a CARRY4 4 bits on
7-series at 0.03 ns); a flip-flop's clock-to-out plus set-up 0.15 ns; clock uncertainty
(jitter, skew) 0.10 ns; the route from the fabric into a DSP column 0.60 ns and a DSP's
P clock-to-out plus the route back 0.60 ns; a block RAM read 1.20 ns; a MUXF 0.10 ns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Delays:
    """The delays of one part family (ns)."""

    family: str
    scale: float            # relative to UltraScale+ (the report's family factor)
    ff: float               # flip-flop clock-to-out + set-up
    uncertainty: float      # clock uncertainty: jitter and skew
    lut: float              # one LUT level, with its routing
    carry_io: float         # entering and leaving a carry chain
    carry_cell: float       # one carry primitive (CARRY8 or CARRY4)
    carry_bits: int         # bits one carry primitive covers
    muxf: float             # a MUXF7/F8 wide multiplexer
    dsp_net: float          # route from a fabric register into a DSP input
    dsp_allreg: float       # one stage of a fully registered DSP (A/B -> M, M -> P)
    dsp_nomreg: float       # DSP multiply without MREG: A/B -> P
    dsp_clk: float          # DSP P register clock-to-out and the route back to the fabric
    bram_clk: float         # block-RAM clock-to-out (no output register) and routing

    def adder(self, bits: int) -> float:
        """One two-input adder of ``bits`` bits: a LUT level, the carry chain's entry and
        exit, and one carry primitive per ``carry_bits`` bits."""
        return self.lut + self.carry_io + math.ceil(max(bits, 1) / self.carry_bits) * self.carry_cell

    def select(self, inputs: int) -> float:
        """A multiplexer (or LUT-ROM) choosing among ``inputs``: one LUT up to 4 inputs
        per level, MUXF above."""
        kbits = max((max(inputs, 1) - 1).bit_length(), 1)
        levels = 1 + max(0, math.ceil((kbits - 4) / 2))
        return levels * self.lut + (self.muxf if kbits > 2 else 0.0)

    def multiplier_stages(self, registers: int, before: float = 0.0) -> float:
        """The longest stage of a DSP product followed by ``registers`` (1 to 3) registers
        (the DSP's P; M and P; A/B, M and P), from the fabric register that feeds it
        through ``before`` ns of logic (an input multiplexer)."""
        into = before + self.dsp_net
        if registers <= 1:
            return into + self.dsp_nomreg
        if registers == 2:
            return into + self.dsp_allreg
        return max(into, self.dsp_allreg)

    @property
    def overhead(self) -> float:
        """What every register-to-register path pays besides its logic."""
        return self.ff + self.uncertainty


def _scaled(family: str, k: float, carry_bits: int, carry_cell: float) -> Delays:
    return Delays(family=family, scale=k, ff=0.15 * k, uncertainty=0.10, lut=0.50 * k, carry_io=0.25 * k,
                  carry_cell=carry_cell * k, carry_bits=carry_bits, muxf=0.10 * k, dsp_net=0.60 * k,
                  dsp_allreg=round(1000 / 775, 3) * k, dsp_nomreg=round(1000 / 544, 3) * k,
                  dsp_clk=0.60 * k, bram_clk=1.20 * k)


#: Part family (`nnfpga.core.parts.synth_family`) -> its delays.
DELAYS: dict[str, Delays] = {
    "xcup": _scaled("xcup", 1.0, 8, 0.06),    # CARRY8, DSP48E2 (DS923 / DS922)
    "xcu": _scaled("xcu", 1.15, 8, 0.06),     # CARRY8, DSP48E2 (estimate: x1.15)
    "xc7": _scaled("xc7", 1.5, 4, 0.03),      # CARRY4, DSP48E1 (DS182 / DS183; estimate: x1.5)
}
DEFAULT_FAMILY = "xcup"


def part_family(part) -> str:
    """The `DELAYS` key of an `nnfpga.core.parts.Part` (Versal: UltraScale+'s)."""
    from nnfpga.core.parts import synth_family
    family = synth_family(part)
    return family if family in DELAYS else DEFAULT_FAMILY


def fmax_mhz(path_ns: float) -> float:
    """The clock a register-to-register path of ``path_ns`` (overhead included) allows."""
    return round(1000.0 / path_ns, 1) if path_ns > 0 else math.inf
