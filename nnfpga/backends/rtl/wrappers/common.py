"""What both wrappers share: the error, the core's facts from ``rtl.json``, the header line."""

from __future__ import annotations


class WrapperError(ValueError):
    """A wrapper cannot be built as asked (e.g. the core is too slow for the crossing rate)."""


def bits_for(n: int) -> int:
    """Bits of an unsigned counter that holds 0 .. n (at least 1)."""
    return max(1, int(n).bit_length())


def core_facts(info: dict) -> dict:
    """The numbers of the core a wrapper needs, from its ``rtl.json`` summary."""
    missing = [k for k in ("top", "latency_cycles", "ii_cycles", "in_bus_width", "out_bus_width")
               if k not in info]
    if missing:
        raise WrapperError(f"the core summary lacks {missing}: pass the dict write_rtl returns or rtl.json")
    latency, ii = int(info["latency_cycles"]), int(info["ii_cycles"])
    if latency < 1 or ii < 1:
        raise WrapperError(f"core {info['top']}: latency {latency} and II {ii} must be >= 1")
    return {"core": str(info["top"]), "core_latency_cycles": latency, "core_ii_cycles": ii,
            "in_bus_width": int(info["in_bus_width"]), "out_bus_width": int(info["out_bus_width"])}


def core_sources(info: dict, language: str) -> list[str]:
    """The core's HDL files of ``language`` ("verilog" or "vhdl"), relative to the firmware
    directory, in compile order (``files[language]`` may be one path or a list)."""
    files = info.get("files", {}).get(language)
    if files is None:
        raise WrapperError(f"the core summary lists no {language} files")
    return [files] if isinstance(files, str) else list(files)


def wrapper_kind(plan: dict) -> str:
    """What a wrapper is, for the generated-file line of its HDL files."""
    return (f"{plan['kind']} of core {plan['core']} (latency {plan['core_latency_cycles']} cycles, "
            f"II {plan['core_ii_cycles']})")
