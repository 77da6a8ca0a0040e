"""One da4ml design of a network, run inside ``.venv-peers`` (da4ml 0.6, HGQ2, Keras 3).

Reads the network from nnfpga's ``ir.json`` (the integer weights and every layer's
fixed-point type, already as the source model defines them) and writes it again with
da4ml's tracing API, so both tools build the same function.  The one difference da4ml
cannot avoid: it rounds half up (RND) or truncates, never half to even (QKeras's
RND_CONV), so an RND_CONV quantiser becomes RND here; the benchmark counts the events on
which that changes an output.

Then: da4ml's own golden model (``CombLogic.predict``, its C++ interpreter) against the
Verilator simulation of the Verilog it writes, on every test event, bit for bit.

    python -m benchmarks.peers.da4ml_design IR.json X.npy OUTDIR --latency-cutoff C

writes ``OUTDIR/design.json`` (times, stages, checks, the Verilog file list) and
``OUTDIR/y_golden.npy``, ``OUTDIR/y_rtl.npy``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from da4ml.codegen import VerilogModel
from da4ml.trace import FixedVariableArrayInput, comb_trace, to_pipeline
from da4ml.trace.ops import quantize, relu

# da4ml has no round-half-to-even: RND_CONV is the nearest it has (ties go up, not to even)
ROUNDING = {"TRN": "TRN", "RND": "RND", "RND_CONV": "RND"}


def kif(t: dict) -> tuple[int, int, int]:
    """nnfpga's fixed<W,I> as da4ml's (keep_negative, integer bits without sign, fraction)."""
    k = 1 if t["signed"] else 0
    return k, t["integer"] - k, t["width"] - t["integer"]


def requantise(x, t: dict | None):
    if t is None:
        return x
    k, i, f = kif(t)
    return quantize(x, k, i, f, overflow_mode=t["overflow"], round_mode=ROUNDING[t["rounding"]])


def dequant(q: dict) -> np.ndarray:
    return np.asarray(q["raw"], dtype=np.float64).reshape(q["shape"]) * 2.0 ** -q["frac"]


def conv2d(x, node: dict):
    """A valid-padding Conv2D (channels last) as one constant matrix product on the
    gathered input patches, which da4ml optimises like a Dense layer."""
    if node.get("padding", "valid") != "valid":
        raise SystemExit(f"{node['name']}: only padding='valid' is written to da4ml here")
    w = dequant(node["kernel_q"])
    kh, kw, cin, cout = w.shape
    sh, sw = node.get("strides", (1, 1))
    h, wd, _ = x.shape
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    # flat index of every patch element: (oh, ow, kh*kw*cin), in the kernel's order
    rows = np.arange(oh)[:, None, None, None, None] * sh + np.arange(kh)[None, None, :, None, None]
    cols = np.arange(ow)[None, :, None, None, None] * sw + np.arange(kw)[None, None, None, :, None]
    idx = (rows * wd + cols) * cin + np.arange(cin)[None, None, None, None, :]
    patches = x.ravel()[idx.reshape(-1)].reshape(oh, ow, kh * kw * cin)
    return patches @ w.reshape(kh * kw * cin, cout)


def build(ir: dict, inp):
    """The function of ``ir`` (Input, Dense, Conv2D, Reshape, Activation relu/linear) on
    da4ml's traced ``inp``."""
    values = {}
    for node in ir["nodes"]:
        op = node["op"]
        if op == "Input":
            k, i, f = kif(node["info"]["type"])
            # the test inputs are already on the input grid: this quantiser is exact
            values[node["name"]] = quantize(inp, k, i, f).reshape(tuple(node["info"]["shape"]))
            continue
        x = values[node["inputs"][0]]
        if op in ("Dense", "Conv2D"):
            if node["kernel_q"].get("kind") != "fixed" or (node.get("bias_q") and node["bias_q"].get("kind") != "fixed"):
                raise SystemExit(f"{node['name']}: only fixed-point weights are written to da4ml here")
            y = x @ dequant(node["kernel_q"]) if op == "Dense" else conv2d(x, node)
            if node.get("bias_q"):
                y = y + dequant(node["bias_q"])
            values[node["name"]] = requantise(y, node.get("out_type"))
        elif op in ("Reshape", "Flatten"):
            values[node["name"]] = x.reshape(tuple(node["info"]["shape"]))
        elif op == "Activation" and node["function"] in ("relu", "linear"):
            y = relu(x) if node["function"] == "relu" else x
            values[node["name"]] = requantise(y, node.get("out_type"))
        else:
            raise SystemExit(f"{node['name']}: op {op} {node.get('function', '')} is not written to da4ml here")
    return values[ir["outputs"][0]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ir", type=Path)
    ap.add_argument("x", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--latency-cutoff", type=float, required=True,
                    help="da4ml's pipelining cutoff (its delay units per stage)")
    ap.add_argument("--name", default="model")
    args = ap.parse_args(argv)

    ir = json.loads(args.ir.read_text())
    x = np.load(args.x).astype(np.float64)
    n_in = int(np.prod(x.shape[1:]))
    args.outdir.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    inp = FixedVariableArrayInput((n_in,))
    out = build(ir, inp)
    comb = comb_trace(inp, out.ravel())
    t_trace = time.monotonic() - t0
    pipe = to_pipeline(comb, args.latency_cutoff, verbose=False)
    t_convert = time.monotonic() - t0

    y_golden = np.asarray(comb.predict(x.reshape(len(x), -1)))
    model = VerilogModel(pipe, args.name, args.outdir / "prj", print_latency=False)
    t1 = time.monotonic()
    model.compile(nproc=1)
    t_compile = time.monotonic() - t1
    t2 = time.monotonic()
    y_rtl = np.asarray(model.predict(x.reshape(len(x), -1), n_threads=1))
    t_sim = time.monotonic() - t2

    np.save(args.outdir / "y_golden.npy", y_golden)
    np.save(args.outdir / "y_rtl.npy", y_rtl)
    src = args.outdir / "prj" / "src"
    verilog = sorted(str(p) for p in src.glob("*.v") if not p.name.endswith("_wrapper.v"))
    # lookup_table.v reads a memory file named at instantiation; without tables it would
    # only make Yosys look for its placeholder file
    tables = any((src / "memfiles").iterdir()) if (src / "memfiles").is_dir() else False
    verilog += sorted(str(p) for p in (src / "static").glob("*.v") if tables or p.name != "lookup_table.v")
    mismatched = int(np.any(y_golden.reshape(len(x), -1) != y_rtl.reshape(len(x), -1), axis=1).sum())
    record = {
        "tool": "da4ml", "version": __import__("da4ml").__version__,
        "top": args.name, "verilog": verilog,
        "latency_cutoff": args.latency_cutoff,
        "stages": len(pipe.solutions), "latency_cycles": len(pipe.solutions),
        "convert_seconds": round(t_convert, 3), "trace_seconds": round(t_trace, 3),
        "compile_seconds": round(t_compile, 3),
        "rtl_sim_events": len(x), "rtl_sim_seconds": round(t_sim, 4),
        "rtl_vs_golden_mismatched_events": mismatched,
        "cost": float(comb.cost),
    }
    (args.outdir / "design.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
