"""`write_rtl`: lower a graph and print it as VHDL-2008 and Verilog-2005, plus a summary."""

from __future__ import annotations

import json
from pathlib import Path

from nnfpga.backends.rtl.lower import RtlConfig, lower
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
        "out_type": nl.out_type.to_json(),
        "multipliers": sum(i.multipliers for i in nl.layers),
        "dsp": sum(i.dsp for i in nl.layers),
        "adders": sum(i.adders for i in nl.layers),
        "register_bits": sum(i.register_bits for i in nl.layers) + nl.latency,
        "config": dict(nl.config),
    }


def write_rtl(graph: Graph, outdir: Path | str, config: RtlConfig | None = None) -> dict:
    """Write ``outdir/vhdl/<top>.vhd``, ``outdir/verilog/<top>.v`` and ``outdir/rtl.json``.

    ``<top>`` is the graph name made a legal identifier (`names.top_name`).  Returns the
    summary (also in ``rtl.json``): latency, II, per-layer latency/multipliers/adders,
    port widths and types, and the file paths (relative to ``outdir``).
    """
    outdir = Path(outdir)
    nl = lower(graph, config)
    files = {"vhdl": f"vhdl/{nl.name}.vhd", "verilog": f"verilog/{nl.name}.v"}
    for key, text in (("vhdl", print_vhdl(nl)), ("verilog", print_verilog(nl))):
        path = outdir / files[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    info = summary(nl) | {"files": files}
    (outdir / SUMMARY_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return info


def read_summary(fw_dir: Path | str) -> dict:
    path = Path(fw_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {fw_dir} is not an RTL firmware directory "
                                "(write it with nnfpga.backends.rtl.write_rtl)")
    return json.loads(path.read_text())
