"""nnfpga beside hls4ml 1.3 and da4ml 0.6 on the same networks (``make bench-peers``).

    python -m benchmarks.peers [--only nnfpga,hls4ml,da4ml] [--networks qmlp,mlp3x20,...]
                               [--clocks 240,320] [--events N] [--table-only] [--out DIR]

Stages, each design cached as JSON under ``build/peers/<network>/`` (a rerun skips
finished designs; delete a file to redo it); the table ``results.md`` and the plot
``results.png`` are always written from the cache, into ``--out`` (default
``build/bench/peers``, untracked; ``--out benchmarks/peers`` updates the committed ones).

* nnfpga: ``nnfpga.compile`` at each clock; the Verilator simulation against its golden
  emulator (``nnfpga.verify``); Yosys ``synth_xilinx -family xcup`` (`nnfpga.synth`).
* nnfpga_rnd: the same with every half-to-even quantiser set to RND by a config file,
  i.e. exactly da4ml's function (checked against da4ml's interpreter in the da4ml stage):
  the like-with-like hardware comparison.
* hls4ml: convert + compile (its C-sim library), C-sim throughput, C-sim against the
  source model.  Its latency in cycles and its netlist need Vitis/Vivado HLS (not on
  this machine): the table says so.
* da4ml: run in ``.venv-peers`` (`benchmarks.peers.da4ml_design`): the network rebuilt
  from nnfpga's ``ir.json``, pipelined for each clock, its Verilator simulation against
  its own interpreter; the Verilog through the same Yosys script as nnfpga's.

Latency: clock edges from the input port to the output port.  Fmax: every netlist under
nnfpga's delay model (`nnfpga.synth.firmware.netlist_timing`), the same model for all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.peers.networks import NETWORKS, ROOT, hls4ml_module, on_grid, source_predict

CACHE = ROOT / "build" / "peers"
HERE = Path(__file__).resolve().parent
#: the default --out: untracked (build/ is ignored); the committed results.md/.png here
#: are rewritten only when --out names this folder
OUT_DIR = ROOT / "build" / "bench" / "peers"
PEERS_VENV = ROOT / ".venv-peers"
FAMILY = "xcup"
PART = "xcvu9p"
TOOLS = ("nnfpga", "hls4ml", "da4ml", "nnfpga_rnd")
# da4ml's pipelining cutoff (its own delay units) per clock.  Meant to bring the
# netlist's Fmax under the common delay model up to the clock, but on the 3-20-20-20-1
# MLP cutoffs 4, 3, 2, 1.5 gave 180, 211, 219, 206 MHz: below 2 only latency grows
DA4ML_CUTOFF = {240.0: 2.0, 320.0: 1.5}


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- cache
def record_path(net: str, tool: str, mhz: float | None) -> Path:
    return CACHE / net / (f"{tool}_{mhz:g}MHz.json" if mhz else f"{tool}.json")


def save_record(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(path)


# ----------------------------------------------------------------------------- shared inputs
def prepare(net: str, events: int) -> dict:
    """The model file, nnfpga's IR (for the input type), the test inputs on the input grid
    and the source model's predictions, cached in ``build/peers/<net>/``."""
    import nnfpga
    spec = NETWORKS[net]
    d = CACHE / net
    d.mkdir(parents=True, exist_ok=True)
    model = spec.path(CACHE)
    ir_dir = d / "ir"
    if not (ir_dir / "ir.json").is_file():
        nnfpga.compile(str(model), target=PART, clock="320MHz", outdir=str(ir_dir))
    ir = json.loads((ir_dir / "ir.json").read_text())
    data = d / f"data_{events}.npz"
    if not data.is_file():
        rng = np.random.default_rng(2026)
        x = on_grid(spec.inputs(rng, events), ir["nodes"][0]["info"]["type"])
        y_src = source_predict(model, spec.quantised, x)
        np.savez(data, x=x, y_src=y_src)
    z = np.load(data)
    return {"model": model, "ir": ir_dir / "ir.json", "x": z["x"], "y_src": z["y_src"], "dir": d}


def compare(y: np.ndarray, ref: np.ndarray) -> dict:
    y = np.asarray(y, dtype=np.float64).reshape(len(ref), -1)
    ref = ref.reshape(len(ref), -1)
    return {"mismatched_events": int(np.any(y != ref, axis=1).sum()), "events": int(len(ref)),
            "max_abs_diff": float(np.max(np.abs(y - ref)))}


def synth(verilog: Path, top: str, mhz: float, workdir: Path) -> dict:
    """The one Yosys flow of the benchmark: nnfpga.synth's script, resources and timing,
    with ``synth_xilinx -flatten``.  nnfpga's Verilog is one module (the flag changes
    nothing); da4ml's is a module per stage and per adder, which unflattened would leave
    the logic out of the top module's counts and paths."""
    from nnfpga.synth import firmware, yosys
    verilog = Path(verilog).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("netlist.json", "stat.txt"):
        (workdir / stale).unlink(missing_ok=True)
    script = yosys.synth_script(verilog, top, FAMILY).replace(f"-top {top}", f"-top {top} -flatten")
    seconds = yosys.run_yosys(script, workdir)
    netlist = yosys.load_netlist(workdir / "netlist.json")
    res = firmware.resources_from_cells(yosys.cell_counts(netlist, top))
    tim = firmware.netlist_timing(netlist, top, FAMILY, mhz)
    return res | {"yosys_seconds": round(seconds, 1), "fmax_mhz": tim.get("fmax_mhz"),
                  "logic_levels": tim.get("logic_levels"), "flatten": True}


# ----------------------------------------------------------------------------- nnfpga
def type_spec(t: dict) -> str:
    return f"{'fixed' if t['signed'] else 'ufixed'}<{t['width']},{t['integer']},{t['rounding']},{t['overflow']}>"


def rnd_config(ir: dict, path: Path) -> Path:
    """An nnfpga config that turns every RND_CONV layer output into RND (da4ml's rounding).
    The input type is left alone: the test inputs are on its grid, so it never rounds."""
    owners = {n["source_layer"] for n in ir["nodes"] if n["op"] in ("Dense", "Conv2D")}
    lines = ["version: 1", "layers:"]
    for n in ir["nodes"]:
        t = n.get("out_type")
        if n["op"] == "Input" or not t or t["rounding"] != "RND_CONV":
            continue
        key = "activation" if n["op"] == "Activation" and n["source_layer"] in owners else "output"
        lines.append(f"  {n['source_layer']}: {{{key}: '{type_spec(t | {'rounding': 'RND'})}'}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_nnfpga(net: str, mhz: float, p: dict, synth_clocks: list[float], rnd: bool = False) -> dict:
    import nnfpga
    tool = "nnfpga_rnd" if rnd else "nnfpga"
    out = p["dir"] / f"{tool}_{mhz:g}MHz"
    config = rnd_config(json.loads(p["ir"].read_text()), p["dir"] / "rnd.yml") if rnd else None
    t0 = time.monotonic()
    nnfpga.compile(str(p["model"]), target=PART, clock=f"{mhz:g}MHz", outdir=str(out),
                   **({"config": str(config)} if config else {}))
    compile_s = time.monotonic() - t0
    report = json.loads((out / "report.json").read_text())
    golden = nnfpga.emulate(str(out), p["x"])
    summary = nnfpga.verify(str(out), p["x"], sims=["verilator"])
    sim = summary["results"]["verilator"]
    top = report["top"]
    vs = compare(golden, p["y_src"])
    rec = {
        "tool": tool, "network": net, "clock_mhz": mhz,
        "latency_cycles": report["latency"]["cycles"], "ii": report["ii_cycles"],
        "compile_seconds": round(compile_s, 2),
        "own_check": f"Verilator RTL vs golden emulator: {sim['mismatches']}/{sim['samples']} events differ",
        "own_check_ok": sim["mismatches"] == 0,
        "vs_source": vs,
        "synth": synth(out / "verilog" / f"{top}.v", top, mhz, out / "synth") if mhz in synth_clocks else None,
    }
    if rnd:
        rec["function"] = ("RND_CONV quantisers set to RND (config file) = da4ml's function: "
                           f"{vs['mismatched_events']}/{vs['events']} events differ from the source model")
    return rec


# ----------------------------------------------------------------------------- hls4ml
def hls4ml_config(hls4ml, keras_model, ir: dict, quantised: bool) -> dict:
    """hls4ml's per-layer precisions.  A QKeras network gets exactly nnfpga's types
    (from the same quantisers), so its C-sim must equal QKeras bit for bit; a float
    network keeps hls4ml's default ap_fixed<16,6> (what a user of hls4ml gets)."""
    cfg = hls4ml.utils.config_from_keras_model(keras_model, granularity="name", backend="Vivado")
    if not quantised:
        return cfg
    layers = cfg["LayerName"]

    def spec(t: dict) -> str:
        kind = "ap_fixed" if t["signed"] else "ap_ufixed"
        rnd = {"TRN": "AP_TRN", "RND": "AP_RND", "RND_CONV": "AP_RND_CONV"}[t["rounding"]]
        ovf = {"WRAP": "AP_WRAP", "SAT": "AP_SAT"}[t["overflow"]]
        return f"{kind}<{t['width']},{t['integer']},{rnd},{ovf}>"

    for node in ir["nodes"]:
        name, t = node["source_layer"], node["info"]["type"]
        if name not in layers or not isinstance(layers[name].get("Precision"), dict):
            continue
        prec = layers[name]["Precision"]
        prec["result"] = spec(t)
        if node["op"] in ("Dense", "Conv2D"):
            prec["accum"] = spec(t)  # nnfpga's Dense/Conv output is its full accumulator
            if f"{name}_linear" in layers:
                layers[f"{name}_linear"]["Precision"]["result"] = spec(t)
    return cfg


def run_hls4ml(net: str, p: dict) -> dict:
    from benchmarks.peers.networks import load_keras
    hls4ml = hls4ml_module()
    spec = NETWORKS[net]
    keras_model = load_keras(p["model"], spec.quantised)
    ir = json.loads(p["ir"].read_text())
    out = p["dir"] / "hls4ml"
    t0 = time.monotonic()
    cfg = hls4ml_config(hls4ml, keras_model, ir, spec.quantised)
    hm = hls4ml.converters.convert_from_keras_model(
        keras_model, hls_config=cfg, backend="Vivado", output_dir=str(out), io_type="io_parallel",
        part="xcvu9p-flga2104-2L-e", clock_period=1000 / 320)
    convert_s = time.monotonic() - t0
    t1 = time.monotonic()
    hm.compile()
    compile_s = time.monotonic() - t1
    x = np.ascontiguousarray(p["x"], dtype=np.float64)
    hm.predict(x[:10])  # first call loads the library
    t2 = time.monotonic()
    y = np.asarray(hm.predict(x)).reshape(len(x), -1)
    sim_s = time.monotonic() - t2
    vs = compare(y, p["y_src"])
    how = ("precisions set from the QKeras quantisers (as nnfpga reads them): C-sim equals QKeras"
           if spec.quantised else "hls4ml default ap_fixed<16,6> (AP_TRN, AP_WRAP)")
    return {
        "tool": "hls4ml", "network": net, "clock_mhz": None,
        "latency_cycles": None, "compile_seconds": round(convert_s + compile_s, 2),
        "convert_seconds": round(convert_s, 2), "csim_compile_seconds": round(compile_s, 2),
        "csim_events_per_second": round(len(x) / sim_s),
        "own_check": (f"C-sim vs QKeras predict: {vs['mismatched_events']}/{vs['events']} events differ"
                      if spec.quantised else f"C-sim vs Keras predict: max abs diff {vs['max_abs_diff']:.3g}"),
        "own_check_ok": vs["mismatched_events"] == 0 if spec.quantised else True,
        "vs_source": vs, "function": how,
        "synth": None, "why_no_synth": "latency and netlist need Vitis/Vivado HLS (not installed here)",
    }


# ----------------------------------------------------------------------------- da4ml
def peers_env() -> dict:
    env = dict(os.environ)
    vbin = PEERS_VENV / "lib" / "python3.11" / "site-packages" / "verilator" / "bin"
    env["PATH"] = f"{vbin}:{PEERS_VENV / 'bin'}:{env.get('PATH', '')}"
    env["KERAS_BACKEND"] = "jax"
    env["PYTHONPATH"] = str(ROOT)
    env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def run_da4ml(net: str, mhz: float, p: dict, synth_clocks: list[float]) -> dict:
    import nnfpga
    if not (PEERS_VENV / ".installed").is_file():
        raise SystemExit(f"{PEERS_VENV} is missing: run scripts/setup-peers.sh (make bench-peers does)")
    out = p["dir"] / f"da4ml_{mhz:g}MHz"
    xfile = p["dir"] / "x.npy"
    np.save(xfile, p["x"])
    top = f"{net}_da4ml"
    cmd = [str(PEERS_VENV / "bin" / "python"), "-m", "benchmarks.peers.da4ml_design", str(p["ir"]),
           str(xfile), str(out), "--latency-cutoff", str(DA4ML_CUTOFF[mhz]), "--name", top]
    if not (out / "design.json").is_file():  # a design built before (only Yosys failed) is reused
        proc = subprocess.run(cmd, cwd=ROOT, env=peers_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"da4ml failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    d = json.loads((out / "design.json").read_text())
    # one file for Yosys (read_verilog of the stages and da4ml's static cells; its table
    # module only when the design has tables: it names a placeholder memory file)
    tables = any((out / "prj" / "src" / "memfiles").glob("*"))
    merged = out / f"{top}_all.v"
    merged.write_text("\n".join(Path(f).read_text() for f in d["verilog"]
                                if tables or Path(f).name != "lookup_table.v"))
    y_da = np.load(out / "y_golden.npy")
    golden_nnfpga = nnfpga.emulate(str(p["ir"].parent), p["x"])
    spec = NETWORKS[net]
    vs_nn = compare(y_da, golden_nnfpga)
    vs_src = compare(y_da, p["y_src"])
    how = ("same integer weights and types as nnfpga (from ir.json); RND_CONV quantisers become RND "
           f"(da4ml has no half-to-even): {vs_src['mismatched_events']}/{vs_src['events']} events differ from QKeras"
           if spec.quantised else
           f"same weights and types as nnfpga's float defaults (RND, SAT): "
           f"{vs_nn['mismatched_events']}/{vs_nn['events']} events differ from nnfpga")
    if spec.quantised:
        # nnfpga's golden model with da4ml's rounding (the nnfpga_rnd design's function)
        rnd_dir = p["dir"] / "ir_rnd"
        if not (rnd_dir / "ir.json").is_file():
            nnfpga.compile(str(p["model"]), target=PART, clock="320MHz", outdir=str(rnd_dir),
                           config=str(rnd_config(json.loads(p["ir"].read_text()), p["dir"] / "rnd.yml")))
        same = compare(y_da, nnfpga.emulate(str(rnd_dir), p["x"]))
        how += (f"; equals nnfpga_rnd's golden model on {same['events'] - same['mismatched_events']}/"
                f"{same['events']} events")
    return {
        "tool": "da4ml", "network": net, "clock_mhz": mhz,
        # registers: one at the input, one after each stage
        "latency_cycles": d["stages"] + 1, "ii": 1, "stages": d["stages"],
        "latency_cutoff": d["latency_cutoff"],
        "compile_seconds": d["convert_seconds"], "rtl_sim_build_seconds": d["compile_seconds"],
        "own_check": (f"Verilator RTL vs da4ml interpreter: {d['rtl_vs_golden_mismatched_events']}/"
                      f"{d['rtl_sim_events']} events differ"),
        "own_check_ok": d["rtl_vs_golden_mismatched_events"] == 0,
        "vs_source": vs_src, "vs_nnfpga": vs_nn, "function": how,
        "synth": synth(merged, top, mhz, out / "synth") if mhz in synth_clocks else None,
    }


# ----------------------------------------------------------------------------- table and plot
def load_records() -> list[dict]:
    recs = []
    for f in sorted(CACHE.glob("*/*.json")):
        r = json.loads(f.read_text())
        if "tool" in r:
            recs.append(r)
    order = {n: i for i, n in enumerate(NETWORKS)}
    return sorted(recs, key=lambda r: (order.get(r["network"], 99), TOOLS.index(r["tool"]),
                                       r["clock_mhz"] or 0))


def _num(v, fmt="{:,}") -> str:
    return "n/a" if v is None else fmt.format(v)


def function_note(r: dict) -> str:
    if "function" in r:
        return r["function"]
    vs = r["vs_source"]
    if NETWORKS[r["network"]].quantised:
        return f"QKeras as read (RND_CONV): {vs['mismatched_events']}/{vs['events']} events differ from QKeras"
    return f"float defaults fixed<16,6,RND,SAT> in, 10 fraction bits: max abs diff vs Keras {vs['max_abs_diff']:.3g}"


def write_table(recs: list[dict], path: Path, command: str) -> None:
    lines = [
        "# nnfpga beside hls4ml and da4ml", "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"from the cache in `build/peers/` (part {PART}, Yosys `synth_xilinx -family {FAMILY}`).",
        "Latency: clock edges from input port to output port.  Fmax: the Yosys netlist under "
        "nnfpga's delay model (the same model for every design).  Compile: seconds from model "
        "file to RTL (hls4ml: to its compiled C-sim).", "",
        "| network | tool | clock MHz | latency cycles | latency ns | LUT | FF | DSP | CARRY4 | Fmax est. MHz "
        "| compile s | own check | how the function was made equal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        s = r.get("synth") or {}
        mhz = r["clock_mhz"]
        cyc = r["latency_cycles"]
        ns = None if cyc is None or mhz is None else round(cyc * 1000 / mhz, 1)
        check = r["own_check"] + ("" if r["own_check_ok"] else " **(FAILED)**")
        if r["tool"] == "hls4ml":
            check += f"; C-sim {r['csim_events_per_second']:,} events/s"
            cyc_s = "n/a (needs Vitis HLS)"
        else:
            cyc_s = _num(cyc)
        check, note = check.replace("|", "\\|"), function_note(r).replace("|", "\\|")  # a | would split the cell
        lines.append(
            f"| {r['network']} | {r['tool']} | {_num(mhz, '{:g}')} | {cyc_s} | {_num(ns, '{:g}')} "
            f"| {_num(s.get('lut'))} | {_num(s.get('ff'))} | {_num(s.get('dsp'))} | {_num(s.get('carry4'))} "
            f"| {_num(s.get('fmax_mhz'), '{:g}')} | {r['compile_seconds']:g} | {check} | {note} |")
    lines += ["", "Networks:", ""] + [f"* `{n.name}`: {n.what}" for n in NETWORKS.values()
                                      if any(r["network"] == n.name for r in recs)]
    path.write_text("\n".join(lines) + "\n")


def write_plot(recs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in recs if r.get("synth")]
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    labels = [f"{r['network']}\n{r['tool']} {r['clock_mhz']:g}" for r in rows]
    colours = {"nnfpga": "tab:blue", "nnfpga_rnd": "lightskyblue", "da4ml": "tab:orange", "hls4ml": "tab:green"}
    c = [colours[r["tool"]] for r in rows]
    axes[0].bar(range(len(rows)), [r["synth"]["lut"] for r in rows], color=c)
    axes[0].set_ylabel("LUT (Yosys synth_xilinx xcup)")
    axes[1].bar(range(len(rows)), [r["synth"]["dsp"] for r in rows], color=c)
    axes[1].set_ylabel("DSP48E2")
    axes[2].bar(range(len(rows)), [r["latency_cycles"] * 1000 / r["clock_mhz"] for r in rows], color=c)
    axes[2].set_ylabel("latency (ns)")
    for ax in axes:
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=7, rotation=60, ha="right")
    fig.suptitle("nnfpga (blue; RND variant light blue) and da4ml (orange) on the same networks; "
                 "hls4ml needs Vitis HLS for these", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(TOOLS), help="tools to run: nnfpga,hls4ml,da4ml")
    ap.add_argument("--networks", default="qmlp,mlp3x20", help=f"of {','.join(NETWORKS)}")
    ap.add_argument("--clocks", default="240,320", help="MHz")
    ap.add_argument("--synth-clocks", default="240,320",
                    help="MHz at which the designs also go through Yosys (minutes each)")
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--table-only", action="store_true", help="only write the table and plot")
    ap.add_argument("--out", type=Path, default=OUT_DIR,
                    help="folder of results.md and results.png (default build/bench/peers, untracked; the "
                         "committed ones are rewritten only with --out benchmarks/peers)")
    args = ap.parse_args(argv)
    tools = [t for t in args.only.split(",") if t]
    nets = [n for n in args.networks.split(",") if n]
    for t in tools:
        if t not in TOOLS:
            ap.error(f"unknown tool {t!r}; choose from {', '.join(TOOLS)}")
    for n in nets:
        if n not in NETWORKS:
            ap.error(f"unknown network {n!r}; choose from {', '.join(NETWORKS)}")
    clocks = [float(c) for c in args.clocks.split(",") if c]
    synth_clocks = [float(c) for c in args.synth_clocks.split(",") if c]

    failed = []
    if not args.table_only:
        for net in nets:
            p = None
            for tool in tools:
                if tool == "nnfpga_rnd" and not NETWORKS[net].quantised:
                    continue  # a float network's types already round half up: nnfpga is that
                for mhz in ([None] if tool == "hls4ml" else clocks):
                    path = record_path(net, tool, mhz)
                    if path.is_file():
                        log(f"{net} {tool} {mhz or ''}: cached ({path.relative_to(ROOT)})")
                        continue
                    p = p or prepare(net, args.events)
                    log(f"{net} {tool} {mhz or ''}: running")
                    try:
                        rec = (run_hls4ml(net, p) if tool == "hls4ml" else
                               run_da4ml(net, mhz, p, synth_clocks) if tool == "da4ml" else
                               run_nnfpga(net, mhz, p, synth_clocks, rnd=tool == "nnfpga_rnd"))
                    except Exception as e:  # one failed design must not lose the others
                        log(f"{net} {tool} {mhz or ''}: FAILED: {type(e).__name__}: {e}")
                        failed.append(f"{net}/{tool}/{mhz}")
                        continue
                    save_record(path, rec)
                    log(f"{net} {tool} {mhz or ''}: {rec['own_check']}")
    recs = load_records()
    command = "make bench-peers" if os.environ.get("MAKELEVEL") else "python -m benchmarks.peers " + " ".join(
        sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(recs, args.out / "results.md", command)
    write_plot(recs, args.out / "results.png")
    log(f"wrote {args.out / 'results.md'} and results.png ({len(recs)} designs)")
    bad = [f"{r['network']}/{r['tool']}" for r in recs if not r["own_check_ok"]]
    if failed or bad:
        log(f"failed: {', '.join(failed + bad)}")
        return 1
    return 0
