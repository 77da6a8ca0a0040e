"""report.json: latency, II and resource estimates per layer and in total.

The estimate is analytic and comes from the RTL description: DSPs are the scheduled
multiplier units; LUTs count one LUT per adder bit (UltraScale+ carry chains) plus the
requantisation logic; FFs are the pipeline register bits.  BRAM is zero while weights
and tables live in logic.  Issue 6 refines this against Yosys synthesis.
"""

from __future__ import annotations

from nnfpga import __version__
from nnfpga.compiler.targets import Part
from nnfpga.ir.graph import Graph

BUNCH_CROSSING_MHZ = 40.0


def build_report(graph: Graph, rtl: dict, hls: dict, part: Part, clock_mhz: float,
                 compile_seconds: float) -> dict:
    period_ns = 1000.0 / clock_mhz
    by_name = {layer["name"]: layer for layer in rtl.get("layers", [])}
    layers = []
    for node in graph.nodes:
        r = by_name.get(node.name, {})
        layers.append({
            "name": node.name, "op": node.op_type, "source_layer": node.source_layer,
            "shape": list(node.info.shape), "type": node.info.type.spec(),
            "latency_cycles": int(r.get("latency_cycles", 0)),
            "reuse_factor": int(getattr(node, "reuse_factor", 1)),
            "multiplications": int(r.get("multiplications", 0)),
            "resources": {"dsp": int(r.get("multipliers", 0)), "lut": int(r.get("lut", 0)),
                          "ff": int(r.get("ff", 0)), "bram": 0},
        })
    total = {k: sum(layer["resources"][k] for layer in layers) for k in ("dsp", "lut", "ff", "bram")}
    available = {"dsp": part.dsp, "lut": part.lut, "ff": part.ff, "bram": part.bram36}
    ii = int(rtl["ii_cycles"])
    cycles = int(rtl["latency_cycles"])
    rate = clock_mhz * 1e6 / ii
    return {
        "nnfpga_version": __version__,
        "model": graph.name,
        "part": part.name, "part_family": part.family,
        "clock_mhz": clock_mhz,
        "latency": {"cycles": cycles, "ns": round(cycles * period_ns, 3)},
        "ii_cycles": ii,
        "events_per_second": rate,
        "keeps_up_with_40mhz": rate >= BUNCH_CROSSING_MHZ * 1e6,
        "resources": {
            "estimate": total,
            "available": available,
            "utilisation_percent": {k: round(100.0 * total[k] / available[k], 3) if available[k] else None
                                    for k in total},
            "fits": all(total[k] <= available[k] for k in total),
        },
        "io": {"input_shape": list(graph.input.info.shape), "input_type": graph.input.info.type.spec(),
               "output_shape": list(graph.output.info.shape), "output_type": graph.output.info.type.spec()},
        "layers": layers,
        "hls": hls,
        "compile_seconds": round(compile_seconds, 3),
    }
