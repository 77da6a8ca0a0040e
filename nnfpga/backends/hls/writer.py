"""`write_hls`: an IR graph to a Vitis HLS firmware tree.

``<outdir>/hls/``::

    <top>.h  <top>.cpp        top function ``void <top>(const input_t x[N_IN], result_t y[N_OUT])``
                              and one ``layer_<id>`` function per layer
    defines.h                 sizes and every typedef (from the IR's types)
    parameters.h              includes every weights/*.h
    weights/*.h               weights, biases, tables: constant arrays of the IR's integers
    nnfpga_hls.h              nnfpga's helper header (verbatim from firmware_templates/hls)
    tb_<top>.cpp              the test bench (raw integers in/out, optional comparison)
    tb_data/inputs.txt        a fixed set of raw input samples ...
    tb_data/expected.txt      ... and the golden emulator's outputs for them
    build_prj.tcl             the Vitis HLS flow (vitis_hls -f build_prj.tcl)
    build_prj_vivado_hls.tcl  the same flow for Vivado HLS (vivado_hls -f build_prj_vivado_hls.tcl)
    nnfpga_hls.json           manifest read by `nnfpga.sim.csim`

The backend never changes numerics: every type is the IR's ``info.type`` (or the exact
accumulator type from the IR's range analysis), every constant the IR's integer.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import numpy as np

from nnfpga.backends.hls import tcl
from nnfpga.backends.hls.layers import EMITTERS, SUPPORTED, LayerCode, LayerContext
from nnfpga.backends.hls.layers.banked_dense import BANK_TYPE
from nnfpga.backends.escape import cpp_comment
from nnfpga.backends.hls.names import Names
from nnfpga.backends.hls.testbench import testbench_cpp
from nnfpga.ir.fixed import FLOAT64_EXACT_BITS, FixedType
from nnfpga.ir.graph import Graph

MANIFEST = "nnfpga_hls.json"
HELPER_HEADER = "nnfpga_hls.h"
TB_INPUTS = "tb_data/inputs.txt"
TB_EXPECTED = "tb_data/expected.txt"
#: Samples in the tree's own test vectors (edge cases first, then random raw values).
TB_SAMPLES = 64


def helper_header_text() -> str:
    return (importlib.resources.files("nnfpga") / "firmware_templates" / "hls" / HELPER_HEADER).read_text()


def _check_graph(graph: Graph) -> list:
    nodes = list(graph.nodes)
    if not nodes or nodes[0].op_type != "Input":
        raise ValueError(f"model {graph.name!r}: the first node must be the Input")
    graph.input  # exactly one input  # noqa: B018
    if graph.output is not nodes[-1]:
        raise ValueError(f"model {graph.name!r}: the output must be the last node")
    for n in nodes:
        if n.info is None:
            raise ValueError(f"node {n.name!r} has no type information; run the type assignment "
                             "(range analysis) before the HLS backend")
    return nodes


def _typedef(name: str, t: FixedType, comment: str) -> str:
    return f"typedef {t.cpp()} {name};  // {cpp_comment(comment)}\n"


def write_hls(graph: Graph, outdir: Path, part: str, clock_mhz: float, top: str | None = None) -> dict:
    """Write the HLS C++ firmware of ``graph`` to ``outdir/hls``; returns a summary:
    ``top``, ``dir``, ``sources``, ``headers``, ``testbench``, ``tb_data``, ``tcl`` (the
    Vitis HLS script), ``tcl_scripts`` (tool -> script),
    ``manifest`` (paths relative to ``dir``), ``ii``, ``part``, ``clock_mhz``,
    ``clock_period_ns``, ``layers`` and ``notes`` (any renaming of C++ identifiers).
    ``top``: the top function's name, which also names its files (``nnfpga compile
    --name``; default: the model's name), made a free C++ identifier."""
    tcl.check_part(part)
    period = tcl.clock_period_ns(clock_mhz)
    nodes = _check_graph(graph)
    names = Names(graph.name if top is None else top)
    top = names.top

    inp, out = nodes[0], nodes[-1]
    n_in, n_out = int(np.prod(inp.info.shape)), int(np.prod(out.info.shape))
    type_name: dict[str, str] = {}
    typedefs: list[str] = []
    for n in nodes:
        if n is inp:  # the input needs no identifiers of its own
            type_name[n.name] = "input_t"
        elif n is out:
            names.node_id(n.name)
            type_name[n.name] = "result_t"
        else:
            type_name[n.name] = f"{names.node_id(n.name)}_t"
    typedefs.append(_typedef("input_t", inp.info.type, f"{inp.name}: model input"))
    if graph.banks:
        typedefs.append(f"static const unsigned N_BANKS = {graph.banks};  // weight banks of the ensemble\n"
                        f"typedef ap_uint<{graph.bank_bits}> {BANK_TYPE};  // the sample's bank index, "
                        f"0..{graph.banks - 1}\n")
    if out is inp:
        typedefs.append("typedef input_t result_t;  // the model is its input\n")

    layers: list[tuple[LayerContext, LayerCode]] = []
    infos = {n.name: n.info for n in nodes}
    for n in nodes[1:]:
        emitter = EMITTERS.get(n.op_type)
        if emitter is None:
            raise ValueError(f"layer {n.name!r}: op {n.op_type!r} is not supported by the HLS backend; "
                             f"supported: {'; '.join(SUPPORTED)}")
        first, *more = n.inputs
        ctx = LayerContext(n, names.node_id(n.name), infos[first], type_name[first], type_name[n.name],
                           [(infos[i], type_name[i]) for i in more])
        code = emitter(ctx)
        layers.append((ctx, code))
        typedefs.append(_typedef(ctx.y_t, n.info.type, f"{n.name}: {n.op_type} output"))
        typedefs += [_typedef(name, t, c) for name, t, c in code.typedefs]
    ii = max([c.reuse_factor for _, c in layers], default=1)

    hls = Path(outdir) / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    _remove_previous(hls)
    files: dict[str, str] = {}

    files["defines.h"] = _guarded("DEFINES", (
        "// Sizes and types of the model; every type is the IR's.\n"
        "#include <ap_fixed.h>\n#include <ap_int.h>\n\n"
        f"static const unsigned N_IN = {n_in};   // input shape {list(inp.info.shape)}, row-major\n"
        f"static const unsigned N_OUT = {n_out};  // output shape {list(out.info.shape)}, row-major\n\n"
        + "".join(typedefs)))
    weight_files: dict[str, str] = {}
    for _, code in layers:
        weight_files.update(code.files)
    files["parameters.h"] = _guarded("PARAMETERS", (
        "// Weights, biases and tables: constant arrays of the IR's integers.\n"
        '#include "defines.h"\n\n' + "".join(f'#include "{p}"\n' for p in weight_files)))
    files.update(weight_files)
    files[HELPER_HEADER] = helper_header_text()
    files[f"{top}.h"] = _guarded(top.upper(), (
        '#include "defines.h"\n\n'
        f"// {cpp_comment(graph.name)}: {n_in} inputs -> {n_out} outputs, pipelined with II={ii}\n"
        f"void {top}({_top_args(graph)});\n"))
    files[f"{top}.cpp"] = _top_cpp(graph, top, layers, ii, inp, out)
    files[f"tb_{top}.cpp"] = testbench_cpp(top, graph.banks)
    sources = [f"{top}.cpp"]
    headers = [f"{top}.h", "defines.h", "parameters.h", HELPER_HEADER, *weight_files]

    tb_in, tb_exp = _tb_vectors(graph, inp.info.type)
    files[TB_INPUTS] = tb_in
    files[TB_EXPECTED] = tb_exp
    scripts = {}
    for tool, (script, _, _) in tcl.SCRIPTS.items():
        files[script] = tcl.build_tcl(top, part, clock_mhz, sources, headers, f"tb_{top}.cpp",
                                      "tb_data", TB_INPUTS, TB_EXPECTED, tool=tool)
        scripts[tool] = script

    summary = {
        "top": top, "dir": str(hls), "sources": sources, "headers": headers,
        "testbench": f"tb_{top}.cpp", "tb_data": [TB_INPUTS, TB_EXPECTED], "tcl": scripts["vitis_hls"],
        "tcl_scripts": scripts,
        "manifest": MANIFEST, "ii": ii, "part": part, "clock_mhz": float(clock_mhz),
        "clock_period_ns": period,
        "n_in": n_in, "n_out": n_out,
        "input_shape": list(inp.info.shape), "output_shape": list(out.info.shape),
        "input_type": inp.info.type.to_json(), "output_type": out.info.type.to_json(),
        **({"banks": graph.banks, "bank_bits": graph.bank_bits} if graph.banks else {}),
        "layers": [{"name": c.node.name, "op": c.node.op_type, "function": c.function_name,
                    "reuse_factor": code.reuse_factor, "summary": code.summary} for c, code in layers],
        "notes": list(names.notes),
    }
    # the manifest names no absolute path: the tree is the same wherever it is written
    manifest = {k: v for k, v in summary.items() if k != "dir"}
    files[MANIFEST] = json.dumps({**manifest, "files": sorted([*files, MANIFEST])}, indent=1) + "\n"
    for rel, text in files.items():
        path = hls / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return summary


def _guarded(name: str, body: str) -> str:
    guard = f"NNFPGA_{name}_H_"
    return f"// Generated by nnfpga.\n#ifndef {guard}\n#define {guard}\n\n{body}\n#endif  // {guard}\n"


def _remove_previous(hls: Path) -> None:
    """Delete the files an earlier `write_hls` put here (and only those)."""
    manifest = hls / MANIFEST
    if not manifest.is_file():
        return
    try:
        old = json.loads(manifest.read_text()).get("files", [])
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"{manifest} is not an nnfpga manifest; refusing to overwrite {hls}") from None
    for rel in old:
        p = (hls / rel).resolve()
        if hls.resolve() in p.parents and p.is_file():
            p.unlink()


def _top_cpp(graph: Graph, top: str, layers: list, ii: int, inp, out) -> str:
    helpers = "".join(code.helpers + "\n" for _, code in layers if code.helpers)
    functions = "\n".join(code.function for _, code in layers)
    body, array = [], {inp.name: "x"}
    for k, (ctx, _) in enumerate(layers):
        last = k == len(layers) - 1
        dst = array[ctx.node.name] = "y" if last else f"{ctx.id}_out"
        if not last:
            body.append(f"    {ctx.y_t} {dst}[{ctx.n_out}];\n"
                        f"#pragma HLS ARRAY_PARTITION variable={dst} complete dim=0\n")
        bank = "bank, " if ctx.node.op_type == "BankedDense" else ""
        srcs = ", ".join(array[i] for i in ctx.node.inputs)
        body.append(f"    {ctx.function_name}({srcs}, {bank}{dst});\n")
    if not layers:
        body.append("Copy:\n    for (unsigned i = 0; i < N_IN; i++) {\n#pragma HLS UNROLL\n"
                    "        y[i] = x[i];\n    }\n")
    return f"""// {top}.cpp -- generated by nnfpga from the model '{cpp_comment(graph.name)}'.
// Fully parallel, pipelined with II={ii}; one function per layer.
#include "{top}.h"
#include "parameters.h"
#include "nnfpga_hls.h"

{helpers}{functions}
// ---------------------------------------------------------------------------- top
void {top}({_top_args(graph)}) {{
#pragma HLS INTERFACE ap_vld port=x{chr(10) + "#pragma HLS INTERFACE ap_vld port=bank" if graph.banks else ""}
#pragma HLS INTERFACE ap_vld port=y
#pragma HLS ARRAY_RESHAPE variable=x complete dim=0
#pragma HLS ARRAY_RESHAPE variable=y complete dim=0
#pragma HLS PIPELINE II={ii}
{"".join(body)}}}
"""


def _top_args(graph: Graph) -> str:
    bank = f"const {BANK_TYPE} bank, " if graph.banks else ""
    return f"const input_t x[N_IN], {bank}result_t y[N_OUT]"


def _tb_vectors(graph: Graph, t: FixedType) -> tuple[str, str]:
    """Raw test vectors (zero, minimum, maximum, then uniform random) and the golden
    emulator's outputs for them; a banked graph's rows end with a random bank index."""
    from nnfpga.ir.emulator import run_raw

    shape = tuple(graph.input.info.shape)
    n = int(np.prod(shape))
    rng = np.random.default_rng(0)
    rand = rng.integers(t.min_raw, t.max_raw, size=(TB_SAMPLES - 3, n), endpoint=True, dtype=np.int64)
    raw = np.concatenate([np.zeros((1, n), np.int64), np.full((1, n), t.min_raw, np.int64),
                          np.full((1, n), t.max_raw, np.int64), rand])
    x = raw.astype(np.float64) if t.width <= FLOAT64_EXACT_BITS else raw
    bank = rng.integers(0, graph.banks, size=len(raw)) if graph.banks else None
    y = run_raw(graph, x.reshape((len(raw), *shape)), bank).reshape(len(raw), -1)
    rows = raw if bank is None else np.concatenate([raw, bank[:, None]], axis=1)
    return _rows(rows), _rows(y)


def _rows(a: np.ndarray) -> str:
    return "".join(" ".join(str(int(v)) for v in row) + "\n" for row in a)
