"""The muon-trigger benchmark from generated events to verified firmware.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.muon_trigger [--models cnn_pt10 ...] [--out DIR]

For each of the six shipped QKeras networks (`train.SPECS`: ternary dense and low-bit
conv classifiers at 10 and 20 GeV, the conv and the 3-input MLP pT regressions):

1. the test samples of `figures.test_samples` (fixed seeds, never used in training):
   muons flat in pT 3-30 GeV and noise-only windows, at the nominal strip noise and x10;
2. the float reference: the QKeras model's own forward pass (``model.predict``);
3. the firmware: nnfpga compiles the model at 240 and 320 MHz on xcvu9p; its golden
   emulator and the Verilator simulation of the generated Verilog run on every event
   of every sample; RTL must equal golden bit for bit (else exit 1);
4. figures (`figures.measure`) from the float and from the RTL outputs: turn-on curves
   (pT50, width, plateau efficiency), fake rates on noise-only windows, pT resolution;
   the acceptance criterion is |firmware - float| < 0.5% absolute for the plateau
   efficiency and the fake rate, at both noise levels.

Writes ``results.json``, ``results.md``, ``turn_on_pt10.png``, ``turn_on_pt20.png`` and
``pt_resolution.png`` (float lines, firmware markers) into ``--out`` (default
``build/bench/muon/results``, untracked; pass ``--out benchmarks/muon_trigger/results/firmware``
to update the committed results).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.firmware import PART, Log, RtlRunner, compile_at_clocks  # noqa: E402
from benchmarks.muon_trigger import figures as F  # noqa: E402
from benchmarks.muon_trigger.train import SPECS  # noqa: E402

#: the default --out: untracked (build/ is ignored); the committed results/firmware/ is
#: rewritten only when --out names it
OUT_DIR = ROOT / "build" / "bench" / "muon" / "results"
BUILD_DIR = ROOT / "build" / "bench" / "muon"
MAX_DIFFERENCE = 0.005
#: (figure, its key in a threshold's results) compared between float and firmware
COMPARED = (("plateau efficiency", "turn_on", "plateau_efficiency"),
            ("plateau efficiency, noise x10", "turn_on_noise_x10", "plateau_efficiency"),
            ("fake rate", "fake_rate", "rate"),
            ("fake rate, noise x10", "fake_rate_noise_x10", "rate"))


def differences(float_res: dict, fw_res: dict) -> dict:
    """Per threshold, firmware minus float for every compared figure."""
    out = {}
    for key in ("pt10", "pt20"):
        if key in float_res:
            out[key] = {label: fw_res[key][part][field] - float_res[key][part][field]
                        for label, part, field in COMPARED}
    return out


def run_model(spec, samples: dict, build_dir: Path, reuse: int | None, log: Log) -> dict:
    dirs, hardware = compile_at_clocks(spec.path, build_dir, spec.name, reuse, log)
    runner = RtlRunner(dirs[min(dirs)])
    fl = F.measure(spec, F.keras_predict(spec), samples)
    log(f"{spec.name}: QKeras (float reference) figures")
    fw = F.measure(spec, runner.predict, samples)
    sim = runner.summary()
    log(f"{spec.name}: RTL figures; {sim['events']} events through Verilator, {sim['mismatches']} differ from "
        f"golden ({sim['events_per_second']:,} events/s)")
    diff = differences(fl, fw)
    worst = max((abs(v) for d in diff.values() for v in d.values()), default=0.0)
    return {"model": spec.name, "float": fl, "firmware": fw, "differences": diff, "max_abs_difference": worst,
            "criterion_met": bool(worst < MAX_DIFFERENCE), "rtl": sim, "hardware": hardware}


def markdown(res: dict) -> str:
    n = res["events"]
    lines = [f"Muon trigger: QKeras (float reference) vs nnfpga firmware (Verilator RTL simulation); "
             f"{n['muons']:,} test muons flat in pT 3-30 GeV and {n['noise']:,} noise-only windows, each at the "
             "nominal strip noise and x10.", "",
             "| model | threshold | pT50 float / fw (GeV) | plateau eff. float | plateau eff. fw | "
             "plateau (noise x10) float / fw | fake rate float / fw | fake rate (noise x10) float / fw | "
             "max abs diff |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in res["models"]:
        for key in ("pt10", "pt20"):
            if key not in m["float"]:
                continue
            f, w = m["float"][key], m["firmware"][key]
            worst = max(abs(v) for v in m["differences"][key].values())
            lines.append(
                f"| {m['model']} | {key[2:]} GeV | {f['turn_on']['pt50_gev']:.2f} / {w['turn_on']['pt50_gev']:.2f} | "
                f"{f['turn_on']['plateau_efficiency']:.4f} | {w['turn_on']['plateau_efficiency']:.4f} | "
                f"{f['turn_on_noise_x10']['plateau_efficiency']:.4f} / "
                f"{w['turn_on_noise_x10']['plateau_efficiency']:.4f} | "
                f"{F._fmt_rate(f['fake_rate'])} / {F._fmt_rate(w['fake_rate'])} | "
                f"{F._fmt_rate(f['fake_rate_noise_x10'])} / {F._fmt_rate(w['fake_rate_noise_x10'])} | {worst:.4f} |")
    regs = [m for m in res["models"] if "resolution" in m["float"]]
    if regs:
        lines += ["", "| regression | pT resolution float / fw | median float / fw | charge mis-ID float / fw |",
                  "| --- | --- | --- | --- |"]
        for m in regs:
            f, w = m["float"]["resolution"], m["firmware"]["resolution"]
            lines.append(f"| {m['model']} | {f['sigma68']:.4f} / {w['sigma68']:.4f} | {f['median']:+.4f} / "
                         f"{w['median']:+.4f} | {f['charge_misid']:.4f} / {w['charge_misid']:.4f} |")
    lines += ["", "| model | clock | latency (cycles) | latency (ns) | II | DSP | LUT | FF | BRAM | "
              "est. Fmax (MHz) | RTL events | RTL mismatches |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in res["models"]:
        for clk, h in m["hardware"].items():
            r = h["resources"]
            lines.append(f"| {m['model']} | {clk} | {h['latency_cycles']} | {h['latency_ns']} | {h['ii_cycles']} | "
                         f"{r['dsp']} | {r['lut']} | {r['ff']} | {r['bram']} | {h['timing']['fmax_mhz']} | "
                         f"{m['rtl']['events']:,} | {m['rtl']['mismatches']} |")
    lines += ["", f"Resources and Fmax: nnfpga's analytic estimates for {PART} (no synthesis run).",
              f"Criterion |firmware - float| < {MAX_DIFFERENCE} for plateau efficiencies and fake rates: "
              f"{'met' if res['criterion_met'] else 'NOT met'} for "
              f"{sum(m['criterion_met'] for m in res['models'])} of {len(res['models'])} models; "
              f"RTL bit-exact vs golden: {'yes' if res['rtl_bit_exact'] else 'NO'} "
              f"({res['rtl_events']:,} events)."]
    return "\n".join(lines) + "\n"


def plots(res: dict, outdir: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for key, thr in (("pt10", 10), ("pt20", 20)):
        fig, ax = plt.subplots(figsize=(6.8, 4.6))
        k = 0
        for m in res["models"]:
            if key not in m["float"]:
                continue
            c = colours[k % len(colours)]
            k += 1
            for flavour, style in (("float", dict(ls="-", lw=1.2)), ("firmware", dict(ls="", marker="o", ms=3))):
                t = m[flavour][key]["turn_on"]
                x = 0.5 * (np.array(t["bins_gev"][1:]) + np.array(t["bins_gev"][:-1]))
                label = f"{m['model']} float" if flavour == "float" else f"{m['model']} firmware (RTL)"
                ax.plot(x, t["efficiency"], color=c, label=label, **style)
        ax.axvline(thr, color="grey", ls=":")
        ax.set_xlabel("true muon pT (GeV)")
        ax.set_ylabel("trigger efficiency")
        ax.set_title(f"Turn-on, pT > {thr} GeV: QKeras (lines) vs firmware RTL (markers)")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(outdir / f"turn_on_{key}.png", dpi=110)
        plt.close(fig)
    regs = [m for m in res["models"] if "resolution" in m["float"]]
    if regs:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for k, m in enumerate(regs):
            for flavour, style in (("float", dict(ls="-")), ("firmware", dict(ls="", marker="o"))):
                b = m[flavour]["resolution"]["bins"]
                ax.plot([0.5 * (x["pt_lo"] + x["pt_hi"]) for x in b], [x["sigma68"] for x in b],
                        color=colours[k], label=f"{m['model']} {flavour}", **style)
        ax.set_xlabel("true muon pT (GeV)")
        ax.set_ylabel("pT resolution (half 16-84% of (pT_est-pT)/pT)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(outdir / "pt_resolution.png", dpi=110)
        plt.close(fig)


def run(models: list[str] | None = None, outdir: Path = OUT_DIR, n_muons: int = F.N_TEST_MUONS,
        n_noise: int = F.N_TEST_NOISE, build_dir: Path = BUILD_DIR, reuse: int | None = None) -> dict:
    """The whole benchmark; returns what results.json holds."""
    log = Log()
    specs = [s for s in SPECS if not models or s.name in models]
    unknown = set(models or ()) - {s.name for s in SPECS}
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {[s.name for s in SPECS]}")
    samples = F.test_samples(n_muons, n_noise)
    log(f"test samples: {n_muons:,} muons and {n_noise:,} noise windows at each noise level")
    results = [run_model(spec, samples, build_dir, reuse, log) for spec in specs]
    res = {"part": PART, "events": {"muons": n_muons, "noise": n_noise}, "models": results,
           "rtl_events": sum(m["rtl"]["events"] for m in results),
           "rtl_mismatches": sum(m["rtl"]["mismatches"] for m in results)}
    res["rtl_bit_exact"] = res["rtl_mismatches"] == 0
    res["criterion_met"] = all(m["criterion_met"] for m in results)
    res["seconds"] = round(log.elapsed(), 1)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (outdir / "results.md").write_text(markdown(res))
    plots(res, outdir)
    log(f"wrote {outdir}: results.json, results.md, turn_on_pt10.png, turn_on_pt20.png, pt_resolution.png")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Muon trigger: QKeras vs firmware (RTL simulation)")
    ap.add_argument("--models", nargs="*", help=f"subset of {[s.name for s in SPECS]}")
    ap.add_argument("--muons", type=int, default=F.N_TEST_MUONS, help="test muons per noise level")
    ap.add_argument("--noise", type=int, default=F.N_TEST_NOISE, help="noise-only windows per noise level")
    ap.add_argument("--reuse", type=int, help="reuse factor of every layer (default: the models' own, 1)")
    ap.add_argument("--out", type=Path, default=OUT_DIR,
                    help="output directory (default build/bench/muon/results, untracked; the committed "
                         "results are rewritten only with --out benchmarks/muon_trigger/results/firmware)")
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("set TF_USE_LEGACY_KERAS=1 (QKeras needs legacy Keras)")
    res = run(args.models, args.out, args.muons, args.noise, reuse=args.reuse)
    print((args.out / "results.md").read_text())
    return 0 if res["rtl_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
