"""Optional outer layers around a compiled core: an AXI4-Stream wrapper with back-pressure
(`axis`) and a bunch-crossing frame wrapper for trigger boards (`bunch_crossing`).

Each is one structural description (`nnfpga.backends.rtl.structural`, built from its plan:
the dict of its numbers, also in ``wrappers.json``) printed as Verilog-2005 and VHDL-2008
(`nnfpga.backends.rtl.structural_print`), next to the core: ``verilog/<top>_axis.v``, ``vhdl/<top>_axis.vhd``,
``verilog/<top>_bx.v``, ``vhdl/<top>_bx.vhd``.  Each wrapper instantiates the core by its
name from ``rtl.json`` (``entity work.<top>`` in VHDL: compile the wrapper into the
core's library).  `write_wrappers` also writes ``wrappers.json``: per wrapper its top,
files, ports, sizing and latency.
"""

from __future__ import annotations

import json
from pathlib import Path

from nnfpga.backends.rtl.structural_print import print_module
from nnfpga.backends.rtl.wrappers.axis import axis_module, axis_plan
from nnfpga.backends.rtl.wrappers.bunch_crossing import BX_RATE_MHZ, bx_module, bx_plan, words_per_crossing
from nnfpga.backends.rtl.wrappers.common import WrapperError

#: The wrappers' summary next to ``rtl.json``.
WRAPPERS_FILE = "wrappers.json"

__all__ = ["BX_RATE_MHZ", "WRAPPERS_FILE", "WrapperError", "axis_plan", "bx_plan", "read_wrappers",
           "words_per_crossing", "write_wrappers"]


def write_wrappers(outdir: Path | str, info: dict | None = None, *, axi_stream: bool = False,
                   bx_clock_mhz: float | None = None, fifo_depth: int | None = None,
                   bx_align: bool = True) -> dict:
    """Write the requested wrappers of the core in ``outdir`` and ``outdir/wrappers.json``.

    ``info`` is the core's summary (what `write_rtl` returns; read from ``outdir/rtl.json``
    when None).  ``axi_stream``: the AXI4-Stream wrapper (``fifo_depth`` overrides the
    sizing rule of `axis`; a power of two >= 2).  ``bx_clock_mhz``: the bunch-crossing
    wrapper for that clock (N = clock / 40 MHz words per crossing; `WrapperError` when the
    core's II exceeds N), its decision aligned to a crossing boundary unless
    ``bx_align=False``.  Returns the ``wrappers.json`` content (entries written earlier for
    the other wrapper are kept).  Raises `WrapperError` before writing anything when a
    request cannot be met.
    """
    from nnfpga.backends.rtl.writer import read_summary
    outdir = Path(outdir)
    info = read_summary(outdir) if info is None else info
    plans = []
    if axi_stream:
        plans.append(("axi_stream", axis_plan(info, fifo_depth), axis_module))
    elif fifo_depth is not None:
        raise WrapperError("fifo_depth is a setting of the AXI4-Stream wrapper: ask for it with axi_stream=True")
    if bx_clock_mhz is not None:
        plans.append(("bunch_crossing", bx_plan(info, bx_clock_mhz, bx_align), bx_module))
    path = outdir / WRAPPERS_FILE
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary |= {"core": info["top"], "core_latency_cycles": info["latency_cycles"],
                "core_ii_cycles": info["ii_cycles"]}
    for key, plan, describe in plans:
        module = describe(plan)
        for lang in ("verilog", "vhdl"):
            text = print_module(module, lang)
            file = outdir / plan["files"][lang]
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
        summary[key] = plan
    path.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def read_wrappers(fw_dir: Path | str) -> dict:
    path = Path(fw_dir) / WRAPPERS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: no wrappers were written in {fw_dir} "
                                "(nnfpga.backends.rtl.wrappers.write_wrappers)")
    return json.loads(path.read_text())
