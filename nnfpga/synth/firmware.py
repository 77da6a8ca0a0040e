"""``nnfpga report OUTDIR --synth``: Yosys synthesis of a firmware tree, its resources and
logic depth, for the report to set beside the analytic estimate.

`run_synthesis(outdir, top, family, clock_mhz)` synthesises ``OUTDIR/verilog/<top>.v`` with
``synth_xilinx -family <family>`` (`nnfpga.synth.yosys`) and, as a cross-check, the VHDL
read by GHDL (``ghdl --synth --out=verilog``, `nnfpga.sim.ghdl.ghdl_synth_verilog`)
through the same script; the two run concurrently.  Results go to ``OUTDIR/synth/``
(logs, scripts, netlists); `nnfpga.backends.report.add_synthesis` puts the records into
the report: ``resources.synthesis`` and ``timing``.

Counting, from the synthesised netlist's cells:

* ``lut``: LUT1..LUT6 and INV (an inverter is a LUT1 to the vendor tools) plus LUTs used
  as memory (``SRL16E``/``SRLC32E`` shift registers, ``RAM*`` distributed RAM);
* ``ff``: FDRE/FDSE/FDCE/FDPE (and their inverted-clock forms);
* ``dsp``: DSP48E2 (DSP48E1 on 7-series); ``carry4``: CARRY4 cells, and ``carry8`` =
  ⌈CARRY4 / 2⌉ as the UltraScale+ equivalent (Yosys 0.23 maps carries to CARRY4 on
  every family);
* ``bram``: BRAM36 equivalents (a RAMB18 is one half); ``uram``: URAM288.

Logic depth (`netlist_timing`): the longest register-to-register path of the synthesised
netlist under the delay model of `nnfpga.backends.report.timing` (flip-flops, shift registers, block RAMs and
registered DSPs start and end paths; LUT, carry, MUXF and unregistered DSP cells add
their delays), reported as LUT levels, carry cells on the path, path delay and Fmax.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from nnfpga.backends.report import timing as T
from nnfpga.core.errors import UserError
from nnfpga.synth import yosys

LUT_CELLS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")
SRL_CELLS = ("SRL16E", "SRLC16E", "SRLC32E")
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1")
DSP_CELLS = ("DSP48E2", "DSP48E1")
BRAM36_CELLS = ("RAMB36E2", "RAMB36E1")
BRAM18_CELLS = ("RAMB18E2", "RAMB18E1")
URAM_CELLS = ("URAM288", "URAM288_BASE")
MUXF_CELLS = ("MUXF7", "MUXF8", "MUXF9")
CLOCK_PINS = frozenset({"C", "CLK", "CLKARDCLK", "CLKBWRCLK", "WCLK", "CLKA", "CLKB"})


def resources_from_cells(cells: dict[str, int]) -> dict:
    lut_logic = sum(cells.get(c, 0) for c in LUT_CELLS)
    srl = sum(cells.get(c, 0) for c in SRL_CELLS)
    lutram = sum(n for c, n in cells.items() if c.startswith("RAM") and not c.startswith("RAMB"))
    carry4 = cells.get("CARRY4", 0) + 2 * cells.get("CARRY8", 0)
    bram = sum(cells.get(c, 0) for c in BRAM36_CELLS) + sum(cells.get(c, 0) for c in BRAM18_CELLS) / 2
    return {
        "lut": lut_logic + srl + lutram, "ff": sum(cells.get(c, 0) for c in FF_CELLS),
        "dsp": sum(cells.get(c, 0) for c in DSP_CELLS),
        "bram": int(bram) if bram == int(bram) else bram,
        "uram": sum(cells.get(c, 0) for c in URAM_CELLS),
        "carry4": carry4, "carry8": math.ceil(carry4 / 2),
        "lut_logic": lut_logic, "lut_srl": srl, "lut_ram": lutram,
        "muxf": sum(cells.get(c, 0) for c in MUXF_CELLS),
        "cells": dict(sorted(cells.items())),
    }


# ----------------------------------------------------------------------------- logic depth
def _param(cell: dict, name: str) -> int:
    v = cell.get("parameters", {}).get(name, "0")
    try:
        return int(v, 2) if isinstance(v, str) else int(v)
    except ValueError:
        return 0


def netlist_timing(netlist: dict, top: str, family: str, clock_mhz: float) -> dict:
    """Longest register-to-register path of a synthesised netlist (see the module doc)."""
    mod = yosys.top_module(netlist, top)
    cells = mod.get("cells", {})
    driver: dict[int, str] = {}
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            if dirs.get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = name

    def kind(cell: dict) -> str:
        t = cell["type"]
        if t in FF_CELLS or t in SRL_CELLS or t in BRAM36_CELLS or t in BRAM18_CELLS or t in URAM_CELLS:
            return "seq"
        if t in DSP_CELLS:
            return "dspreg" if _param(cell, "PREG") or _param(cell, "MREG") else "dsp"
        if t in ("IBUF", "BUFG", "BUFGCE"):
            return "source"
        return "comb"

    def start_delay(cell: dict) -> float:
        t = cell["type"]
        if t in SRL_CELLS:
            return T.T_LUT + 0.4
        if t in BRAM36_CELLS or t in BRAM18_CELLS or t in URAM_CELLS:
            return T.T_BRAM_CLK
        if t in DSP_CELLS:
            return T.T_DSP_CLK if _param(cell, "PREG") else T.T_DSP / 2
        return 0.0

    memo: dict[str, tuple[float, int, int]] = {}
    kinds = {n: kind(c) for n, c in cells.items()}

    def inputs(cell: dict) -> dict[str, list[int]]:
        dirs = cell.get("port_directions", {})
        return {p: [b for b in bits if isinstance(b, int)] for p, bits in cell.get("connections", {}).items()
                if dirs.get(p) == "input" and p not in CLOCK_PINS}

    def arrival_of_bit(b: int) -> tuple[float, int, int]:
        d = driver.get(b)
        if d is None:
            return (0.0, 0, 0)
        k = kinds[d]
        if k in ("seq", "dspreg", "source"):
            return (start_delay(cells[d]), 0, 0)
        return memo.get(d, (0.0, 0, 0))

    # iterative post-order over combinational cells
    for root in cells:
        if kinds[root] not in ("comb", "dsp") or root in memo:
            continue
        stack = [(root, False)]
        while stack:
            name, ready = stack.pop()
            if name in memo:
                continue
            cell = cells[name]
            ins = inputs(cell)
            if not ready:
                stack.append((name, True))
                for bits in ins.values():
                    for b in bits:
                        d = driver.get(b)
                        if d is not None and kinds[d] in ("comb", "dsp") and d not in memo:
                            stack.append((d, False))
                continue
            t = cell["type"]
            best = (0.0, 0, 0)
            if t == "CARRY4" or t == "CARRY8":
                chain = max((arrival_of_bit(b) for b in ins.get("CI", [])), default=(0.0, 0, 0))
                best = (chain[0] + T.T_CARRY4, chain[1], chain[2] + 1)
                for p, bits in ins.items():
                    if p in ("CI", "CI_TOP"):
                        continue
                    for b in bits:
                        a = arrival_of_bit(b)
                        cand = (a[0] + T.T_CARRY_IO + T.T_CARRY4, a[1], a[2] + 1)
                        if cand[0] > best[0]:
                            best = cand
            else:
                a = max((arrival_of_bit(b) for bits in ins.values() for b in bits), default=(0.0, 0, 0))
                if t in LUT_CELLS or t.startswith("LUT"):
                    best = (a[0] + T.T_LUT, a[1] + 1, a[2])
                elif t in MUXF_CELLS:
                    best = (a[0] + T.T_MUXF, a[1], a[2])
                elif t in DSP_CELLS:
                    best = (a[0] + T.T_DSP, a[1], a[2])
                elif t in ("OBUF", "OBUFT"):
                    best = a
                else:
                    best = (a[0] + T.T_LUT, a[1] + 1, a[2])
            memo[name] = best

    worst = (0.0, 0, 0)
    for name, cell in cells.items():
        k = kinds[name]
        if k in ("seq", "dspreg") or cell["type"] in ("OBUF", "OBUFT"):
            extra = T.T_DSP / 2 if k == "dspreg" and not _param(cell, "MREG") else 0.0
            for bits in inputs(cell).values():
                for b in bits:
                    a = arrival_of_bit(b)
                    if a[0] + extra > worst[0]:
                        worst = (a[0] + extra, a[1], a[2])
    for a in memo.values():
        if a[0] > worst[0]:
            worst = a
    return T.timing_summary(worst[0], worst[1], worst[2], family, clock_mhz)


# ----------------------------------------------------------------------------- running
def synthesise(outdir: Path, top: str, family: str, clock_mhz: float, source: str = "verilog",
               timeout: float = yosys.DEFAULT_TIMEOUT_S, memory_gb: float = yosys.DEFAULT_MEMORY_GB,
               progress: Callable[[str], None] = lambda s: None) -> dict:
    """One synthesis run: ``source`` "verilog" (the generated Verilog) or "vhdl" (the
    generated VHDL through GHDL).  Returns the ``resources.synthesis[source]`` record."""
    if family is None:  # a part Yosys has no synth_xilinx family for (Versal)
        raise UserError(f"{outdir}: the firmware's part has no Yosys synth_xilinx family (Versal), so "
                        "nnfpga cannot synthesise it; the generated vivado/synth.tcl synthesises it with Vivado")
    outdir = Path(outdir).resolve()
    start = time.monotonic()
    if source == "verilog":
        verilog = outdir / "verilog" / f"{top}.v"
        if not verilog.is_file():
            found = sorted((outdir / "verilog").glob("*.v"))
            if len(found) != 1:
                raise yosys.SynthesisError(f"{outdir / 'verilog'}: expected {top}.v")
            verilog = found[0]
        ghdl_seconds = 0.0
    elif source == "vhdl":
        from nnfpga.sim.ghdl import ghdl_synth_verilog
        from nnfpga.sim.verilator import SimulationError
        progress("ghdl --synth")
        try:
            verilog = ghdl_synth_verilog(outdir)
        except (SimulationError, OSError) as e:
            raise yosys.SynthesisError(f"GHDL synthesis of the VHDL failed: {e}") from None
        ghdl_seconds = time.monotonic() - start
    else:
        raise ValueError(f"unknown source {source!r}")
    run = yosys.synth_xilinx(verilog, top, family, outdir / "synth" / source, timeout, memory_gb, progress)
    progress("logic depth")
    netlist = yosys.load_netlist(run["netlist"])
    res = resources_from_cells(yosys.cell_counts(netlist, top))
    tim = netlist_timing(netlist, top, family, clock_mhz)
    del netlist
    return res | {
        "tool": yosys.yosys_version() or "yosys",
        "command": f"synth_xilinx -family {family} -top {top}",
        "source": source, "input": str(Path(verilog).relative_to(outdir)) if Path(verilog).is_relative_to(outdir)
        else str(verilog),
        "seconds": round(time.monotonic() - start, 2), "yosys_seconds": round(run["seconds"], 2),
        "ghdl_seconds": round(ghdl_seconds, 2), "timing": tim,
        "log": str(Path(run["log"]).relative_to(outdir)),
    }


def run_synthesis(outdir: Path, top: str, family: str, clock_mhz: float, sources=("verilog", "vhdl"),
                  timeout: float = yosys.DEFAULT_TIMEOUT_S, memory_gb: float = yosys.DEFAULT_MEMORY_GB,
                  progress: Callable[[str, str], None] = lambda src, s: None, jobs: int = 2) -> dict:
    """Synthesise every source (concurrently, ``jobs`` at a time); ``{source: record}``."""
    sources = list(sources)
    if not sources:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(sources)))) as pool:
        futures = {src: pool.submit(synthesise, outdir, top, family, clock_mhz, src, timeout, memory_gb,
                                    lambda msg, src=src: progress(src, msg)) for src in sources}
        return {src: f.result() for src, f in futures.items()}
