"""The files of an output directory that simulators and Yosys read (rtl.json, the HLS
manifest and the sources they name), checked before any of them starts: each is present,
inside the directory, and agrees with ir.json.  A folder edited or damaged after compile
is a `UserError` that names the file and the field and says to recompile.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np

from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType
from nnfpga.ir.graph import Graph

_RECOMPILE = "recompile the model with nnfpga compile"


def _not_a_number(token: str):
    raise ValueError(f"{token} is not a JSON number")


def _json_file(path: Path, outdir: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{outdir}: {path.relative_to(outdir)} is missing; the output directory is incomplete: "
                        f"{_RECOMPILE}")
    try:
        d = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_not_a_number)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise UserError(f"{path}: not a valid JSON file ({str(e)[:200]}); {_RECOMPILE}") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: holds a JSON {type(d).__name__}, not an object; {_RECOMPILE}")
    return d


def _inside(outdir: Path, rel, what: str, user: str) -> Path:
    """``outdir / rel`` for a relative path ``rel`` that stays inside ``outdir`` and exists."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise UserError(f"{outdir}: {what} names {rel!r}, not a file inside the output directory; {_RECOMPILE}")
    path = outdir / rel
    if not path.is_file():
        raise UserError(f"{outdir}: {rel} is missing ({user} needs it); the output directory is incomplete: "
                        f"{_RECOMPILE}")
    return path


_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
_MAX_CYCLES = 1_000_000


def _field(path: Path, d: dict, key: str, ok: Callable[[object], bool], expected: str):
    """``d[key]`` when ``ok`` accepts it, else the error that names the file and the field."""
    value = d.get(key)
    if key not in d or not ok(value):
        got = "it is missing" if key not in d else f"got {value!r:.60}"
        raise UserError(f"{path}: field {key} must be {expected}, {got}; the output directory was edited or "
                        f"damaged: {_RECOMPILE}")
    return value


def _count(lo: int, hi: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _same_type(t: FixedType) -> Callable[[object], bool]:
    def ok(v) -> bool:
        try:
            return FixedType.from_json(v) == t
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
    return ok


def _check_rtl(outdir: Path, graph: Graph, lang: str, user: str) -> None:
    path = outdir / "rtl.json"
    rtl = _json_file(path, outdir)
    n_out = int(np.prod(graph.output.info.shape))
    _field(path, rtl, "top", lambda v: isinstance(v, str) and bool(_IDENTIFIER.fullmatch(v)), "an HDL identifier")
    _field(path, rtl, "latency_cycles", _count(0, _MAX_CYCLES), f"a cycle count from 0 to {_MAX_CYCLES:,}")
    if "ii_cycles" in rtl:
        _field(path, rtl, "ii_cycles", _count(1, _MAX_CYCLES), f"a cycle count from 1 to {_MAX_CYCLES:,}")
    _field(path, rtl, "n_outputs", lambda v: v == n_out, f"{n_out} (the outputs of the model in ir.json)")
    _field(path, rtl, "out_type", _same_type(graph.output.info.type),
           f"{graph.output.info.type.spec()} (the output type in ir.json)")
    for key in ("in_bus_width", "out_bus_width"):
        _field(path, rtl, key, _count(1, 1 << 24), "a bus width in bits")
    files = _field(path, rtl, "files", lambda v: isinstance(v, dict) and lang in v, f"an object naming the {lang} file")
    _inside(outdir, files[lang], f"rtl.json files.{lang}", user)


def _check_hls(outdir: Path, graph: Graph, user: str) -> None:
    path = outdir / "hls" / "nnfpga_hls.json"
    man = _json_file(path, outdir)
    n_in, n_out = (int(np.prod(graph.input.info.shape)), int(np.prod(graph.output.info.shape)))
    _field(path, man, "top", lambda v: isinstance(v, str) and bool(_IDENTIFIER.fullmatch(v)), "a C++ identifier")
    _field(path, man, "n_in", lambda v: v == n_in, f"{n_in} (the inputs of the model in ir.json)")
    _field(path, man, "n_out", lambda v: v == n_out, f"{n_out} (the outputs of the model in ir.json)")
    _field(path, man, "output_shape", lambda v: isinstance(v, list) and v == list(graph.output.info.shape),
           f"{list(graph.output.info.shape)} (the output shape in ir.json)")
    _field(path, man, "input_type", _same_type(graph.input.info.type),
           f"{graph.input.info.type.spec()} (the input type in ir.json)")
    _field(path, man, "output_type", _same_type(graph.output.info.type),
           f"{graph.output.info.type.spec()} (the output type in ir.json)")
    if "banks" in man:
        _field(path, man, "banks", lambda v: v == graph.banks, f"{graph.banks} (the banks in ir.json)")
    listed = [_field(path, man, "testbench", lambda v: isinstance(v, str), "a file name")]
    for key in ("sources", "headers"):
        listed += _field(path, man, key, lambda v: isinstance(v, list), "a list of file names")
    for rel in listed:
        _inside(outdir, f"hls/{rel}" if isinstance(rel, str) and rel else rel, "hls/nnfpga_hls.json", user)


def check_firmware_files(outdir: Path, graph: Graph, languages: tuple[str, ...], user: str) -> None:
    """Before a simulator or Yosys starts: the ``languages`` (verilog, vhdl, hls) files
    are where rtl.json or the HLS manifest say, inside ``outdir``, and what those say
    agrees with ``graph`` (ir.json).  ``user`` names who reads them, for the message."""
    for lang in languages:
        if lang == "hls":
            _check_hls(outdir, graph, user)
        else:
            _check_rtl(outdir, graph, lang, user)


def check_writable(outdir: Path, names: tuple[str, ...]) -> None:
    """Before any work: the files nnfpga will (re)write in ``outdir`` are plain files or
    absent, so an edited folder cannot redirect a write through a link or onto a folder."""
    for name in names:
        path = outdir / name
        if path.is_symlink():
            raise UserError(f"{outdir}: {name} is a symbolic link; nnfpga writes its own {name} there and does not "
                            f"follow links out of the output directory: remove it (or {_RECOMPILE})")
        if path.is_dir():
            raise UserError(f"{outdir}: {name} is a folder; nnfpga writes its own {name} there: remove it (or "
                            f"{_RECOMPILE})")
