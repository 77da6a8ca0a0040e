"""The electron-ringer benchmark from generated events to verified firmware.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.electron_ringer [--reuse 4] [--out DIR]

1. the test sample (`train.sample("test")`: 50,000 electrons and 50,000 jets in the 25
   (E_T, |eta|) bins, generated from fixed seeds and cached in ``.cache/``);
2. the float ensemble (the 25 Keras float MLPs, each event through its bin's network) at
   its trigger configuration: the thresholds of ``models/thresholds.json`` (PD = 95% on
   the validation electrons);
3. the firmware: the 25 fully quantised QKeras MLPs compiled by nnfpga into ONE banked
   core (`nnfpga.compile(list_of_models)`: one datapath, the weights of the event's bin
   read from ROMs addressed by the bin index that arrives with the rings), run by the
   golden emulator and by Verilator on the generated Verilog on every test event; RTL
   must equal golden bit for bit;
4. comparison at the float model's operating point: per bin the firmware threshold is
   the one whose fake acceptance on the test jets is closest to, without exceeding, the
   float ensemble's; the detection probabilities at those thresholds are compared, per
   bin and overall;
5. hardware: latency, II and estimated resources of the core on xcvu9p at 240 and 320 MHz
   (nnfpga's report).

Writes ``results.json``, ``results.md``, ``roc_firmware.png`` (float vs firmware ROC, both
with the operating points) and ``pd_fa_bins.png`` (per-bin PD and FA) into ``--out``
(default ``build/bench/ringer/results``, untracked; pass
``--out benchmarks/electron_ringer/results/firmware`` to update the committed results).
Exits 1 if the RTL simulation differs from golden on any event.
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

from benchmarks.electron_ringer import figures as F  # noqa: E402
from benchmarks.electron_ringer import generator as G  # noqa: E402
from benchmarks.electron_ringer import train as T  # noqa: E402
from benchmarks.firmware import CLOCKS_MHZ, PART, Log, RtlRunner, compile_at_clocks  # noqa: E402

#: the default --out: untracked (build/ is ignored); the committed results/firmware/ is
#: rewritten only when --out names it
OUT_DIR = ROOT / "build" / "bench" / "ringer" / "results"
BUILD_DIR = ROOT / "build" / "bench" / "ringer"
#: the acceptance criterion of the benchmark: |PD firmware - PD float| at equal FA
MAX_PD_DIFFERENCE = 0.005


def matched_threshold(bkg: np.ndarray, target_fa: float) -> float:
    """The lowest threshold t (among the background scores, or below them all) whose
    fake acceptance ``mean(bkg > t)`` does not exceed ``target_fa``."""
    s = np.sort(np.asarray(bkg, dtype=np.float64))
    candidates = np.concatenate([[s[0] - 1.0], np.unique(s)])
    fa = 1 - np.searchsorted(s, candidates, side="right") / len(s)
    return float(candidates[np.argmax(fa <= target_fa + 1e-12)])


def operating_point(score: np.ndarray, thr_of_event: np.ndarray, sig: np.ndarray) -> dict:
    fired = score > thr_of_event
    return {"pd": float(fired[sig].mean()), "fa": float(fired[~sig].mean())}


def compare_at_float_fa(float_score, fw_score, bins, sig, float_thr: dict[int, float]) -> dict:
    """Per bin: the float ensemble's FA at its trigger thresholds defines the operating
    point; both the float and the firmware scores are then cut at their lowest threshold
    whose FA on the test jets does not exceed it (the same rule for both, so neither gains
    from where its threshold sits inside a step of the finite sample's FA), and their PDs
    compared.  Overall: every event at its bin's threshold."""
    rows, thr = [], {"float": {}, "firmware": {}}
    scores = {"float": float_score, "firmware": fw_score}
    for b in range(G.N_BINS):
        sel = bins == b
        trigger = operating_point(float_score[sel], np.full(sel.sum(), float_thr[b]), sig[sel])
        row = {"bin": b, "label": G.bin_label(b), "n_electrons": int((sel & sig).sum()),
               "n_jets": int((sel & ~sig).sum()), "float_trigger": trigger}
        for name, sc in scores.items():
            thr[name][b] = matched_threshold(sc[sel & ~sig], trigger["fa"])
            row[name] = operating_point(sc[sel], np.full(sel.sum(), thr[name][b]), sig[sel])
        row["pd_difference"] = row["firmware"]["pd"] - row["float"]["pd"]
        rows.append(row)
    overall = {name: operating_point(sc, np.array([thr[name][b] for b in bins]), sig)
               for name, sc in scores.items()}
    overall["float_trigger"] = operating_point(float_score, np.array([float_thr[b] for b in bins]), sig)
    overall["pd_difference"] = overall["firmware"]["pd"] - overall["float"]["pd"]
    overall["fa_difference"] = overall["firmware"]["fa"] - overall["float"]["fa"]
    return {"bins": rows, "overall": overall, "firmware_thresholds_raw": thr["firmware"],
            "float_thresholds_matched": thr["float"]}


def float_scores(test: G.RingEvents, x: np.ndarray) -> np.ndarray:
    predict = F.keras_predict("float")
    score = np.full(len(test), np.nan)
    for b in range(G.N_BINS):
        sel = test.bin == b
        score[sel] = predict(b, x[sel]).ravel()
    return score


def firmware(x: np.ndarray, bins: np.ndarray, reuse: int, log: Log, build_dir: Path = BUILD_DIR) -> dict:
    """Compile the banked core at each clock; golden and Verilator outputs at the first."""
    models = [T.model_path("qkeras", b) for b in range(G.N_BINS)]
    dirs, hardware = compile_at_clocks(models, build_dir, f"ringer_r{reuse}", reuse, log)
    runner = RtlRunner(dirs[CLOCKS_MHZ[0]])
    golden, rtl = runner.raw(x, bins)
    summary = runner.summary()
    log(f"golden and Verilator: {summary['events']} events, {summary['mismatches']} differ "
        f"(Verilator build {runner.build_seconds:.1f} s, {summary['events_per_second']:,} events/s)")
    fw_dir = runner.fw_dir
    return {"golden_raw": golden[:, 0], "rtl_raw": rtl[:, 0], "mismatches": summary["mismatches"],
            "output_type": str(runner.graph.output.info.type), "hardware": hardware, "verilator": summary,
            "firmware_dir": str(fw_dir.relative_to(ROOT)) if ROOT in fw_dir.parents else str(fw_dir)}


def markdown(res: dict) -> str:
    c = res["comparison"]
    lines = ["Electron ringer: float Keras ensemble vs nnfpga firmware (the 25 QKeras MLPs as one banked "
             "core, Verilator RTL simulation), on the test sample "
             f"({res['events']['electrons']} electrons, {res['events']['jets']} jets).",
             "Operating point per bin: the float ensemble's fake acceptance (FA) at its trigger thresholds "
             "(PD = 95% on the validation electrons; 'float trigger' columns); float and firmware are each cut at "
             "their lowest threshold with at most that FA on the test jets, and their detection "
             "probabilities (PD) compared.", "",
             "| bin | electrons / jets | PD / FA float trigger | PD float | FA float | PD firmware | FA firmware "
             "| PD fw - float |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def row(label: str, counts: str, r: dict) -> str:
        return (f"| {label} | {counts} | {r['float_trigger']['pd']:.4f} / {r['float_trigger']['fa']:.4f} | "
                f"{r['float']['pd']:.4f} | {r['float']['fa']:.4f} | {r['firmware']['pd']:.4f} | "
                f"{r['firmware']['fa']:.4f} | {r['pd_difference']:+.4f} |")
    for r in c["bins"]:
        lines.append(row(r["label"], f"{r['n_electrons']} / {r['n_jets']}", r))
    o = c["overall"]
    lines.append(row("**all bins**", f"{res['events']['electrons']} / {res['events']['jets']}", o))
    lines += ["", f"AUC (common threshold over all bins): float {res['auc']['float']:.4f}, "
              f"firmware {res['auc']['firmware']:.4f}.",
              f"RTL vs golden: {res['rtl_mismatches']} of {res['events']['total']} events differ "
              f"(Verilator, {res['verilator']['events_per_second']:,} events/s).", "",
              "| clock | latency (cycles) | latency (ns) | II | DSP | LUT | FF | BRAM | est. Fmax (MHz) | meets clock |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for clk, h in res["hardware"].items():
        r, t = h["resources"], h.get("timing") or {}
        lines.append(f"| {clk} | {h['latency_cycles']} | {h['latency_ns']} | {h['ii_cycles']} | {r['dsp']} | "
                     f"{r['lut']} | {r['ff']} | {r['bram']} | {t.get('fmax_mhz', '-')} | "
                     f"{'yes' if t.get('meets_clock') else 'no'} |")
    lines += ["", f"Resources and Fmax: nnfpga's analytic estimates for {PART} (reuse factor {res['reuse']}; "
              "no synthesis run); one core serves all 25 bins.", f"Criterion |PD firmware - PD float| < {MAX_PD_DIFFERENCE}: "
              f"{'met' if res['criterion_met'] else 'NOT met'} (overall {o['pd_difference']:+.4f})."]
    return "\n".join(lines) + "\n"


def plots(res: dict, curves: dict, outdir: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    c = res["comparison"]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, style in (("float", "-"), ("firmware", "--")):
        pd, fa = curves[name]
        ax.plot(fa, pd, ls=style, label=f"{name} (common threshold, AUC {res['auc'][name]:.4f})")
        o = c["overall"][name]
        ax.plot([o["fa"]], [o["pd"]], marker="*" if name == "float" else "o", ms=10, ls="",
                label=f"{name}: per-bin thresholds (PD {o['pd']:.4f}, FA {o['fa']:.4f})")
    F.finish_roc(fig, ax, "Ringer: float ensemble vs banked firmware (RTL)", outdir / "roc_firmware.png",
                 legend_size=7)

    fig, axs = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    b = np.arange(len(c["bins"]))
    for ax, key in zip(axs, ("pd", "fa")):
        ax.bar(b - 0.2, [r["float"][key] for r in c["bins"]], 0.4, label="float")
        ax.bar(b + 0.2, [r["firmware"][key] for r in c["bins"]], 0.4, label="firmware (RTL)")
        ax.set_ylabel({"pd": "detection probability", "fa": "fake acceptance"}[key])
        ax.grid(alpha=0.3, axis="y")
    axs[0].set_ylim(0.85, 1.0)
    axs[0].legend(fontsize=8)
    axs[1].set_xticks(b, [r["label"] for r in c["bins"]], rotation=90, fontsize=6)
    fig.suptitle("Per (E_T, |eta|) bin, firmware at the float fake acceptance")
    fig.tight_layout()
    fig.savefig(outdir / "pd_fa_bins.png", dpi=100)
    plt.close(fig)


def run(reuse: int = 4, outdir: Path = OUT_DIR, n_per_class: int | None = None,
        build_dir: Path = BUILD_DIR) -> dict:
    """The whole benchmark; returns what results.json holds.  ``n_per_class``: only the
    first N electrons and N jets of the test sample; ``build_dir``: the firmware trees."""
    log = Log()
    test = T.sample("test")
    if n_per_class is not None:  # a quick look: the first n electrons and the first n jets
        e, j = np.nonzero(test.is_electron)[0][:n_per_class], np.nonzero(~test.is_electron)[0][:n_per_class]
        test = test.take(np.concatenate([e, j]))
    x, bins, sig = test.normalised(), test.bin, test.is_electron
    log(f"test sample: {sig.sum()} electrons, {(~sig).sum()} jets")
    fl = float_scores(test, x)
    log("float ensemble (Keras) predictions")
    fw = firmware(x, bins, reuse, log, build_dir)
    fw_score = fw["rtl_raw"].astype(np.float64)
    comparison = compare_at_float_fa(fl, fw_score, bins, sig, F.stored_thresholds("float"))
    curves = {"float": F.roc(fl[sig], fl[~sig]), "firmware": F.roc(fw_score[sig], fw_score[~sig])}
    res = {"reuse": reuse, "part": PART,
           "events": {"electrons": int(sig.sum()), "jets": int((~sig).sum()), "total": int(len(sig))},
           "comparison": comparison,
           "auc": {"float": F.auc(fl[sig], fl[~sig]), "firmware": F.auc(fw_score[sig], fw_score[~sig])},
           "rtl_mismatches": fw["mismatches"], "rtl_bit_exact": fw["mismatches"] == 0,
           "hardware": fw["hardware"], "verilator": fw["verilator"], "output_type": fw["output_type"],
           "firmware_dir": fw["firmware_dir"],
           "roc": {k: {"pd": v[0].round(5).tolist(), "fa": v[1].round(6).tolist()} for k, v in curves.items()}}
    res["criterion_met"] = bool(abs(comparison["overall"]["pd_difference"]) < MAX_PD_DIFFERENCE)
    outdir.mkdir(parents=True, exist_ok=True)
    res["seconds"] = round(log.elapsed(), 1)
    (outdir / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (outdir / "results.md").write_text(markdown(res))
    plots(res, curves, outdir)
    log(f"wrote {outdir}/results.json, results.md, roc_firmware.png, pd_fa_bins.png")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Electron ringer: float ensemble vs banked firmware (RTL)")
    ap.add_argument("--reuse", type=int, default=4, help="reuse factor of the core (default 4: II 4, "
                                                         "40 MHz events at 160+ MHz)")
    ap.add_argument("--out", type=Path, default=OUT_DIR,
                    help="output directory (default build/bench/ringer/results, untracked; the committed "
                         "results are rewritten only with --out benchmarks/electron_ringer/results/firmware)")
    ap.add_argument("--events", type=int, help="use only the first N electrons and N jets (quick look)")
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("set TF_USE_LEGACY_KERAS=1 (the float reference is a Keras 2 model)")
    res = run(args.reuse, args.out, args.events)
    print((args.out / "results.md").read_text())
    return 0 if res["rtl_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
