"""The part database (``parts.yaml``): each FPGA part's family, DSP type and resource totals."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from nnfpga.core.errors import UserError


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
    return yaml.safe_load(resources.files("nnfpga.core").joinpath("parts.yaml").read_text())


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
