"""`write_rtl`: lower a graph and print it as VHDL-2008 and Verilog-2005, plus a summary."""

from __future__ import annotations

import json
from pathlib import Path

from nnfpga.backends.rtl.lowering import RtlConfig, lower
from nnfpga.backends.rtl.names import PACKAGE_SUFFIX, check_identifier, default_library, top_name, unit_name
from nnfpga.backends.rtl.netlist import Netlist
from nnfpga.backends.rtl.verilog import print_verilog
from nnfpga.backends.rtl.vhdl import print_vhdl
from nnfpga.ir.graph import Graph

#: The summary file next to the HDL; the simulation runners read it.
SUMMARY_FILE = "rtl.json"


def summary(nl: Netlist) -> dict:
    return {
        "top": nl.name,
        "model": nl.model_name,
        "latency_cycles": nl.latency,
        "ii_cycles": nl.ii,
        "layers": [info.summary() for info in nl.layers],
        "n_inputs": nl.n_in,
        "n_outputs": nl.n_out,
        "in_width": nl.in_type.width,
        "out_width": nl.out_type.width,
        "in_bus_width": nl.in_bus_width,
        "out_bus_width": nl.out_bus_width,
        "in_type": nl.in_type.to_json(),
        **({"banks": nl.banks, "bank_bits": nl.bank_bits} if nl.bank is not None else {}),
        "out_type": nl.out_type.to_json(),
        "multipliers": sum(i.multipliers for i in nl.layers),
        "dsp": sum(i.dsp for i in nl.layers),
        "adders": sum(i.adders for i in nl.layers),
        "register_bits": sum(i.register_bits for i in nl.layers) + nl.latency,
        "config": dict(nl.config),
    }


def write_rtl(graph: Graph, outdir: Path | str, config: RtlConfig | None = None, *,
              name: str | None = None, library: str | None = None) -> dict:
    """Write ``outdir/vhdl/<name>.vhd``, ``outdir/verilog/<name>.v`` and ``outdir/rtl.json``.

    ``name``: the core's name -- the top entity/module, and the prefix of every other
    design unit (the VHDL package ``<name>_pkg``); default: the graph name made a legal
    identifier (`names.top_name`).  ``library``: the VHDL library the core belongs in
    (default ``nnfpga_<name>``).  Both must be legal identifiers as given (ValueError
    otherwise; nothing is renamed silently).  Returns the summary (also in ``rtl.json``):
    name, library, design units, latency, II, per-layer latency/multipliers/adders, port
    widths and types, and the file paths (relative to ``outdir``).
    """
    name = top_name(graph.name) if name is None else check_identifier(name, "core name")
    return write_netlist(lower(graph, config, name=name), outdir, library)


#: The printer of each HDL language every core is printed in, as (netlist, VHDL library)
#: -> text (looked up when called, so a patched module function is the one used).
PRINTERS = {"vhdl": lambda nl, library: print_vhdl(nl, library), "verilog": lambda nl, library: print_verilog(nl)}
LANGUAGES = tuple(PRINTERS)


def hdl_files(name: str) -> dict[str, str]:
    """The HDL file of each language, relative to the output directory."""
    return {"vhdl": f"vhdl/{name}.vhd", "verilog": f"verilog/{name}.v"}


def resolve_library(nl: Netlist, library: str | None) -> str:
    return default_library(nl.name) if library is None else check_identifier(library, "VHDL library")


def write_hdl(nl: Netlist, outdir: Path | str, languages: tuple[str, ...], library: str) -> None:
    """Print ``nl`` in each of ``languages`` (of `LANGUAGES`) to its file under ``outdir``."""
    for language in languages:
        text = PRINTERS[language](nl, library)
        path = Path(outdir) / hdl_files(nl.name)[language]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_netlist(nl: Netlist, outdir: Path | str, library: str | None = None,
                  languages: tuple[str, ...] = LANGUAGES) -> dict:
    """`write_rtl` for an RTL description already lowered (``lower(graph, name=...)``),
    so a caller that also needs the description (the report) lowers the graph once.
    Only the files of ``languages`` are printed: a caller that prints the others itself
    (`write_hdl`, for instance in another process) passes the rest; the summary names
    the files of every language."""
    outdir = Path(outdir)
    library = resolve_library(nl, library)
    write_hdl(nl, outdir, languages, library)
    units = {"vhdl": [unit_name(nl.name, PACKAGE_SUFFIX), nl.name], "verilog": [nl.name]}
    info = summary(nl) | {"name": nl.name, "library": library, "units": units, "files": hdl_files(nl.name)}
    (outdir / SUMMARY_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return info


def read_summary(fw_dir: Path | str) -> dict:
    path = Path(fw_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {fw_dir} is not an RTL firmware directory "
                                "(write it with nnfpga.backends.rtl.write_rtl)")
    return json.loads(path.read_text())
