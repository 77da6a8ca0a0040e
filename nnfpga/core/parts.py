"""The part database (``parts.yaml``): each FPGA part's family, DSP type, resource totals,
the packages and speed grades nnfpga accepts in a full part number, and the default full
part number the Vivado / Vitis HLS scripts get when only the device is named."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
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
    #: the complete part number for Vivado / Vitis HLS: the user's, or the device's default
    vivado_part: str = ""
    packages: tuple[str, ...] = ()
    speed_grades: tuple[str, ...] = ()


#: Part family (parts.yaml) -> Yosys ``synth_xilinx -family``: UltraScale+ (xcup),
#: UltraScale (xcu), 7-series (xc7).  Versal has no synth_xilinx family.
YOSYS_FAMILIES = {
    "virtexuplus": "xcup", "kintexuplus": "xcup", "zynquplus": "xcup", "alveo": "xcup",
    "virtexu": "xcu", "kintexu": "xcu",
    "zynq": "xc7", "virtex7": "xc7", "kintex7": "xc7", "artix7": "xc7", "spartan7": "xc7",
}

#: Families whose part numbers join device and package without a dash (xc7vx690tffg1761-2).
SEVEN_SERIES = {"zynq", "virtex7", "kintex7", "artix7", "spartan7"}


def synth_family(part: Part) -> str | None:
    """The ``synth_xilinx -family`` of a part, None when Yosys has none (Versal)."""
    return YOSYS_FAMILIES.get(part.family)


def yosys_family(part: Part) -> str:
    """The ``synth_xilinx -family`` of a part."""
    family = synth_family(part)
    if family is None:
        raise UserError(no_yosys_message(part.name, part.family))
    return family


def no_yosys_message(part: str, family: str) -> str:
    return (f"part {part}: Yosys synth_xilinx has no {family} family, so nnfpga cannot synthesise for it "
            "(report --synth); the analytic estimate in report.json stands, and the generated Vivado "
            "scripts (vivado/synth.tcl) synthesise it with Vivado")


@lru_cache(maxsize=1)
def _database() -> dict:
    return yaml.safe_load(resources.files("nnfpga.core").joinpath("parts.yaml").read_text())


def known_parts() -> list[str]:
    return sorted(_database())


def find_part(name: str) -> Part:
    """``xcvu9p`` or a full part number such as ``xcvu9p-flga2104-2L-e`` (7 series:
    ``xc7vx690tffg1761-2``, or with a dash after the device); a full part number is
    checked against the device's packages and speed grades."""
    db = _database()
    text = name.strip()
    base, package, grade = _split(text.lower(), db)
    if base is None:
        raise UserError(_unknown(name, db))
    entry = db[base]
    fields = {k: entry[k] for k in ("family", "dsp_type", "lut", "ff", "dsp", "bram36", "uram")}
    packages, grades = tuple(entry["packages"]), tuple(str(g) for g in entry["speed_grades"])
    if package is None:
        vivado = entry["default"]
    else:
        vivado = _full_number(text, base, entry, package, grade, packages, grades)
    return Part(name=text, base=base, vivado_part=vivado, packages=packages, speed_grades=grades, **fields)


def _split(text: str, db: dict) -> tuple[str | None, str | None, str]:
    """(device, package, speed grade) of a lower-case part number; (None, ...) for no device."""
    head, _, rest = text.partition("-")
    if head in db:
        if not rest:
            return head, None, ""
        package, _, grade = rest.partition("-")
        return head, package, grade
    # 7 series: the package follows the device without a dash (xc7z020clg400-1)
    for key in sorted(db, key=len, reverse=True):
        if head.startswith(key) and db[key]["family"] in SEVEN_SERIES and len(head) > len(key):
            return key, head[len(key):], rest
    return None, None, ""


def _full_number(text: str, base: str, entry: dict, package: str, grade: str,
                 packages: tuple[str, ...], grades: tuple[str, ...]) -> str:
    example = entry["default"]
    by_package = {p.lower(): p for p in packages}
    by_grade = {g.lower(): g for g in grades}
    if package not in by_package:
        raise UserError(f"part {text!r}: {base} has no package {package!r} known to nnfpga; its packages: "
                        f"{', '.join(packages)} (e.g. {example}, or --target {base} for that default)")
    if grade not in by_grade:
        shown = f"{base} has no speed grade {grade!r} known to nnfpga" if grade else "no speed grade given"
        raise UserError(f"part {text!r}: {shown}; the speed grades (with temperature) of {base}: "
                        f"{', '.join(grades)} (e.g. {example}, or --target {base} for that default)")
    sep = "" if entry["family"] in SEVEN_SERIES else "-"
    return f"{base}{sep}{by_package[package]}-{by_grade[grade]}"


def _unknown(name: str, db: dict) -> str:
    key = name.strip().lower().split("-")[0]
    close = difflib.get_close_matches(key, list(db), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return (f"unknown part {name!r}{hint}; known parts: {', '.join(known_parts())} "
            "(a full part number like xcvu9p-flga2104-2L-e also works)")
