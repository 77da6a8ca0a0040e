"""Integration into firmware builds: what a firmware engineer drops into a project.

`write_integration(graph, rtl, outdir, part, clock_mhz)` writes, next to the RTL of
`nnfpga.backends.rtl.write_rtl` (whose summary ``rtl`` names the core, its VHDL library and
its sources)::

    <name>.core              FuseSoC CAPI2 core: RTL filesets (the VHDL with its library as
                             logical_name, the Verilog), simulation targets sim (GHDL) and
                             sim_verilog (Icarus), a Vivado synthesis target (`fusesoc`)
    tb/tb_<name>.vhd         self-checking test benches (VHDL-2008, Verilog) ...
    tb/tb_<name>.v
    tb/inputs.txt            ... reading a few hundred raw input vectors ...
    tb/expected.txt          ... and the golden emulator's outputs for them (`testbench`)
    vivado/synth.tcl         Vivado non-project out-of-context synthesis and reports,
    vivado/<name>.xdc        the clock constraint,
    vivado/package_ip.tcl    packaging the core as an IP-XACT IP (`vivado`)
    vhdl/<name>_inst.vho     VHDL instantiation template (`instantiation`)

and records these files in ``rtl.json`` under ``integration``.  Everything is a pure
function of the graph, the RTL summary, the part and the clock: the same inputs give
the same bytes.  The static parts (the Verilog test bench, the Tcl flows) are files in
``nnfpga/firmware_templates/integration``; the model-specific pieces are formatted here,
and the VHDL test bench is built by the generator every VHDL bench shares
(`nnfpga.backends.rtl.vhdl_testbench`).
"""

from __future__ import annotations

import json
from pathlib import Path

from nnfpga.backends.integration.fusesoc import core_text, vlnv
from nnfpga.backends.integration.instantiation import vho_text
from nnfpga.backends.integration.testbench import write_testbench
from nnfpga.backends.integration.vivado import package_ip_tcl, synth_tcl, xdc_text
from nnfpga.backends.rtl.writer import SUMMARY_FILE

__all__ = ["sources", "write_integration"]


def sources(rtl: dict) -> dict[str, list[str]]:
    """The HDL sources of the core by language (paths relative to the output directory)."""
    return {"vhdl": [rtl["files"]["vhdl"]], "verilog": [rtl["files"]["verilog"]]}


def write_integration(graph, rtl: dict, outdir: Path | str, part: str, clock_mhz: float,
                      extra_sources: dict[str, list[str]] | None = None) -> dict:
    """Write the files listed in the module doc into ``outdir``; returns their paths
    (relative to ``outdir``) by kind, as also stored in ``outdir/rtl.json``.
    ``extra_sources`` (``{"vhdl": [...], "verilog": [...]}``, relative paths): more HDL
    files of the core (wrappers, whose design units are named ``<name>_<suffix>``,
    `names.unit_name`) for the core file and the Vivado scripts; the top stays ``<name>``."""
    outdir = Path(outdir)
    name = rtl["name"]
    srcs = sources(rtl)
    for lang, files in (extra_sources or {}).items():
        if lang not in srcs:
            raise ValueError(f"extra_sources: unknown language {lang!r} (vhdl, verilog)")
        srcs[lang] += [f for f in files if f not in srcs[lang]]
    tb = write_testbench(graph, rtl, outdir, vlnv(name))
    files = {
        "fusesoc_core": f"{name}.core",
        "testbench": tb,
        "vivado": {"synth": "vivado/synth.tcl", "xdc": f"vivado/{name}.xdc",
                   "package_ip": "vivado/package_ip.tcl"},
        "instantiation": f"vhdl/{name}_inst.vho",
    }
    texts = {
        files["fusesoc_core"]: core_text(rtl, srcs, tb, files["vivado"]["xdc"], part, clock_mhz),
        files["vivado"]["synth"]: synth_tcl(rtl, srcs, part, clock_mhz, Path(files["vivado"]["xdc"]).name),
        files["vivado"]["xdc"]: xdc_text(rtl, clock_mhz),
        files["vivado"]["package_ip"]: package_ip_tcl(rtl, srcs, part, clock_mhz,
                                                      Path(files["vivado"]["xdc"]).name),
        files["instantiation"]: vho_text(rtl),
    }
    for rel, text in texts.items():
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    summary_path = outdir / SUMMARY_FILE
    info = json.loads(summary_path.read_text())
    info["integration"] = files | {"sources": srcs}
    summary_path.write_text(json.dumps(info, indent=1) + "\n")
    return files | {"sources": srcs}
