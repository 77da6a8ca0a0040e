"""The part database (``parts.yaml``) and clock parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import yaml

from nnfpga.compiler.errors import UserError


@dataclass(frozen=True)
class Part:
    name: str          # as the user gave it (full part numbers are kept for the build scripts)
    base: str          # database key, e.g. xcvu9p
    family: str
    dsp_type: str
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int


#: Part family (parts.yaml) -> Yosys ``synth_xilinx -family``: UltraScale+ (xcup),
#: UltraScale (xcu), 7-series (xc7).
YOSYS_FAMILIES = {
    "virtexuplus": "xcup", "kintexuplus": "xcup", "zynquplus": "xcup", "alveo": "xcup",
    "virtexu": "xcu", "kintexu": "xcu",
    "zynq": "xc7", "virtex7": "xc7", "kintex7": "xc7", "artix7": "xc7", "spartan7": "xc7",
}


def yosys_family(part: Part) -> str:
    """The ``synth_xilinx -family`` of a part."""
    try:
        return YOSYS_FAMILIES[part.family]
    except KeyError:
        raise UserError(f"part {part.name}: family {part.family!r} has no Yosys synth_xilinx family") from None


def _database() -> dict:
    return yaml.safe_load(resources.files("nnfpga.compiler").joinpath("parts.yaml").read_text())


def known_parts() -> list[str]:
    return sorted(_database())


def find_part(name: str) -> Part:
    """``xcvu9p`` or a full part number such as ``xcvu9p-flga2104-2L-e``."""
    db = _database()
    key = name.strip().lower().split("-")[0]
    if key not in db:
        raise UserError(f"unknown part {name!r}; known parts: {', '.join(known_parts())} "
                        "(a full part number like xcvu9p-flga2104-2L-e also works)")
    return Part(name=name.strip(), base=key, **db[key])


_CLOCK_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(mhz|ghz|ns)?\s*$", re.IGNORECASE)


def parse_clock_mhz(text: str | float) -> float:
    """``240MHz``, ``0.24GHz``, ``4.1667ns`` or a bare number of MHz."""
    if isinstance(text, (int, float)):
        mhz = float(text)
    else:
        m = _CLOCK_RE.match(str(text))
        if not m:
            raise UserError(f"cannot read clock {text!r}; write it like 240MHz, 0.32GHz or 4ns")
        value, unit = float(m.group(1)), (m.group(2) or "mhz").lower()
        mhz = {"mhz": value, "ghz": value * 1000.0, "ns": 1000.0 / value if value else 0.0}[unit]
    if not 1.0 <= mhz <= 1500.0:
        raise UserError(f"clock {text!r} ({mhz:g} MHz) is outside the plausible 1-1500 MHz range")
    return mhz
