"""Physics figures of the muon-trigger networks for any prediction function.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.muon_trigger.figures [--predict keras|golden]

``--predict keras`` runs the trained QKeras models (their own quantised forward pass);
``--predict golden`` runs nnfpga's golden emulator on the same files (the firmware's
bits).  For the fully quantised models both give the same bits, hence the same figures.
Other callers use :func:`measure` with any ``predict(x) -> y`` (e.g. a firmware
simulation) and :func:`write_outputs`.

Figures of merit (fixed test samples, seeds below, never used in training):

* turn-on: trigger efficiency vs true pT in 1 GeV bins (3-30 GeV), for pT > 10 and
  > 20 GeV; an error-function fit gives the 50% point pT50 and the width; the plateau is
  the efficiency for true pT in [threshold + 5 GeV, 30 GeV]; "low-pT efficiency" is the
  efficiency for pT in [3 GeV, threshold - 3 GeV] (the rate the trigger lets through);
* regressions fire when pT_est > threshold and the window passes the 5-of-9-layers
  coincidence (train.decision);
* fake rate: fraction of noise-only windows that fire, at the nominal noise (1e-3 per
  strip) and at x10 (1e-2), with a 95% Clopper-Pearson interval;
* pT resolution (regressions): median and half the 16-84% spread of
  (pT_est - pT)/pT in 3 GeV bins; charge mis-identification sign(t) != q.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.muon_trigger import generator as gen  # noqa: E402
from benchmarks.muon_trigger.train import SPECS, Spec, decision, model_inputs, pt_estimate  # noqa: E402

#: the default --out: untracked (build/ is ignored); the committed results/ is rewritten
#: only when --out names it
RESULTS_DIR = ROOT / "build" / "bench" / "muon" / "figures"
MUON_SEED, NOISE_SEED, NOISE10_SEED, MUON10_SEED = 201, 202, 203, 204
N_TEST_MUONS, N_TEST_NOISE = 100_000, 100_000
PT_EDGES = np.arange(3.0, 31.0, 1.0)
RES_EDGES = np.arange(3.0, 31.0, 3.0)
THRESHOLDS = (10.0, 20.0)


def test_samples(n_muons: int = N_TEST_MUONS, n_noise: int = N_TEST_NOISE) -> dict[str, gen.MuonEvents]:
    return {
        "muons": gen.generate(n_muons, 0, seed=MUON_SEED),
        "muons_noise_x10": gen.generate(n_muons, 0, seed=MUON10_SEED, noise=10 * gen.NOISE),
        "noise": gen.generate(0, n_noise, seed=NOISE_SEED),
        "noise_x10": gen.generate(0, n_noise, seed=NOISE10_SEED, noise=10 * gen.NOISE),
    }


def clopper_pearson(k: int, n: int, cl: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta
    a = (1 - cl) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def turn_on(pt: np.ndarray, fired: np.ndarray, threshold: float) -> dict:
    from scipy.optimize import curve_fit
    from scipy.special import erf
    idx = np.digitize(pt, PT_EDGES) - 1
    n = np.bincount(idx, minlength=len(PT_EDGES) - 1)[:len(PT_EDGES) - 1]
    k = np.bincount(idx, weights=fired, minlength=len(PT_EDGES) - 1)[:len(PT_EDGES) - 1]
    eff = k / np.maximum(n, 1)
    err = np.sqrt(np.maximum(eff * (1 - eff), 1.0 / np.maximum(n, 1)) / np.maximum(n, 1))
    centres = 0.5 * (PT_EDGES[1:] + PT_EDGES[:-1])

    def model(x, p50, width, plateau):
        return 0.5 * plateau * (1 + erf((x - p50) / (np.sqrt(2) * width)))
    try:
        (p50, width, plateau_fit), _ = curve_fit(model, centres, eff, p0=(threshold, 2.0, 0.9), sigma=err,
                                                 bounds=([1, 0.05, 0], [60, 30, 1.0]))
    except RuntimeError:
        p50 = width = plateau_fit = float("nan")
    sel_plateau = (pt >= threshold + 5) & (pt <= 30)
    sel_low = (pt >= 3) & (pt <= threshold - 3)
    return {"threshold_gev": threshold, "pt50_gev": float(p50), "width_gev": float(width),
            "plateau_fit": float(plateau_fit),
            "plateau_efficiency": float(fired[sel_plateau].mean()),
            "low_pt_efficiency": float(fired[sel_low].mean()),
            "bins_gev": PT_EDGES.tolist(), "efficiency": eff.tolist(), "efficiency_error": err.tolist()}


def fake_rate(fired: np.ndarray) -> dict:
    k, n = int(fired.sum()), len(fired)
    lo, hi = clopper_pearson(k, n)
    return {"fired": k, "events": n, "rate": k / n, "cl95": [lo, hi]}


def resolution(pt: np.ndarray, q: np.ndarray, y: np.ndarray) -> dict:
    est = pt_estimate(y)
    rel = (est - pt) / pt
    t = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
    rows = []
    for lo, hi in zip(RES_EDGES[:-1], RES_EDGES[1:]):
        r = rel[(pt >= lo) & (pt < hi)]
        p16, p50, p84 = np.percentile(r, [16, 50, 84])
        rows.append({"pt_lo": float(lo), "pt_hi": float(hi), "median": float(p50), "sigma68": float((p84 - p16) / 2)})
    p16, p50, p84 = np.percentile(rel, [16, 50, 84])
    return {"bins": rows, "median": float(p50), "sigma68": float((p84 - p16) / 2),
            "charge_misid": float(np.mean(np.sign(t) != q))}


def measure(spec: Spec, predict: Callable[[np.ndarray], np.ndarray],
            samples: dict[str, gen.MuonEvents] | None = None) -> dict:
    """All figures of one model; ``predict`` maps the spec's inputs to raw outputs."""
    samples = samples or test_samples()
    out: dict = {"model": spec.name, "kind": spec.kind, "inputs": spec.inputs}
    pred = {k: np.asarray(predict(model_inputs(spec, ev))) for k, ev in samples.items()}
    thresholds = (spec.threshold,) if spec.kind == "classifier" else THRESHOLDS
    for thr in thresholds:
        key = f"pt{int(thr)}"
        fired = {k: decision(spec, pred[k], thr, samples[k].hits) for k in samples}
        out[key] = {
            "turn_on": turn_on(samples["muons"].pt, fired["muons"], thr),
            "turn_on_noise_x10": turn_on(samples["muons_noise_x10"].pt, fired["muons_noise_x10"], thr),
            "fake_rate": fake_rate(fired["noise"]),
            "fake_rate_noise_x10": fake_rate(fired["noise_x10"]),
        }
    if spec.kind == "regression":
        m = samples["muons"]
        out["resolution"] = resolution(m.pt, m.q, pred["muons"])
    return out


def keras_predict(spec: Spec) -> Callable[[np.ndarray], np.ndarray]:
    from qkeras.utils import load_qmodel
    model = load_qmodel(str(spec.path), compile=False)
    return lambda x: model.predict(x, batch_size=8192, verbose=0)


def golden_predict(spec: Spec) -> Callable[[np.ndarray], np.ndarray]:
    from nnfpga.compiler.pipeline import build_graph
    from nnfpga.ir.emulator import emulate
    graph = build_graph(spec.path)
    return lambda x: emulate(graph, x)


# ---------------------------------------------------------------------------- outputs
def _fmt_rate(fr: dict) -> str:
    if fr["fired"] == 0:
        return f"< {fr['cl95'][1]:.1e}"
    return f"{fr['rate']:.2e}"


def markdown(results: list[dict], predict_name: str) -> str:
    lines = [f"Muon trigger figures ({predict_name} predictions; {N_TEST_MUONS:,} test muons flat in "
             f"pT 3-30 GeV, {N_TEST_NOISE:,} noise-only windows per noise level).", "",
             "| model | threshold | pT50 (GeV) | width (GeV) | plateau eff. | low-pT eff. | "
             "plateau eff. (noise x10) | fake rate | fake rate (noise x10) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for key in ("pt10", "pt20"):
            if key not in r:
                continue
            d = r[key]
            t, t10 = d["turn_on"], d["turn_on_noise_x10"]
            lines.append(f"| {r['model']} | {int(t['threshold_gev'])} GeV | {t['pt50_gev']:.2f} | "
                         f"{t['width_gev']:.2f} | {t['plateau_efficiency']:.4f} | {t['low_pt_efficiency']:.4f} | "
                         f"{t10['plateau_efficiency']:.4f} | {_fmt_rate(d['fake_rate'])} | "
                         f"{_fmt_rate(d['fake_rate_noise_x10'])} |")
    regs = [r for r in results if "resolution" in r]
    if regs:
        lines += ["", "pT resolution of the regressions, (pT_est - pT)/pT: median / half 16-84% spread",
                  "", "| pT bin (GeV) | " + " | ".join(r["model"] for r in regs) + " |",
                  "| --- | " + " | ".join("---" for _ in regs) + " |"]
        for i, b in enumerate(regs[0]["resolution"]["bins"]):
            cells = [f"{r['resolution']['bins'][i]['median']:+.3f} / {r['resolution']['bins'][i]['sigma68']:.3f}"
                     for r in regs]
            lines.append(f"| {b['pt_lo']:.0f}-{b['pt_hi']:.0f} | " + " | ".join(cells) + " |")
        lines.append("| all | " + " | ".join(f"{r['resolution']['median']:+.3f} / {r['resolution']['sigma68']:.3f}"
                                            for r in regs) + " |")
        lines.append("| charge mis-ID | " + " | ".join(f"{r['resolution']['charge_misid']:.4f}" for r in regs) + " |")
    return "\n".join(lines) + "\n"


def plots(results: list[dict], outdir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for key, thr in (("pt10", 10), ("pt20", 20)):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for r in results:
            if key not in r:
                continue
            t = r[key]["turn_on"]
            c = 0.5 * (np.array(t["bins_gev"][1:]) + np.array(t["bins_gev"][:-1]))
            ax.errorbar(c, t["efficiency"], yerr=t["efficiency_error"], marker="o", ms=3, lw=1,
                        label=f"{r['model']} (pT50 {t['pt50_gev']:.1f} GeV)")
        ax.axvline(thr, color="grey", ls=":")
        ax.set_xlabel("true muon pT (GeV)")
        ax.set_ylabel("trigger efficiency")
        ax.set_title(f"Turn-on, pT > {thr} GeV (noise 1e-3/strip)")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        p = outdir / f"turn_on_{key}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    regs = [r for r in results if "resolution" in r]
    if regs:
        fig, axs = plt.subplots(1, 2, figsize=(10, 4))
        for r in regs:
            b = r["resolution"]["bins"]
            c = [0.5 * (x["pt_lo"] + x["pt_hi"]) for x in b]
            axs[0].plot(c, [x["sigma68"] for x in b], marker="o", label=r["model"])
            axs[1].plot(c, [x["median"] for x in b], marker="o", label=r["model"])
        axs[0].set_ylabel("pT resolution (half 16-84% of (pT_est-pT)/pT)")
        axs[1].set_ylabel("median (pT_est-pT)/pT")
        for ax in axs:
            ax.set_xlabel("true muon pT (GeV)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        p = outdir / "pt_resolution.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def write_outputs(results: list[dict], outdir: Path, predict_name: str) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps({"predict": predict_name, "models": results}, indent=1) + "\n")
    (outdir / "results.md").write_text(markdown(results, predict_name))
    plots(results, outdir)


def main(argv: list[str] | None = None) -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--predict", choices=("keras", "golden"), default="keras")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR,
                    help="output directory (default build/bench/muon/figures, untracked; the committed "
                         "figures are rewritten only with --out benchmarks/muon_trigger/results)")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    if args.predict == "keras" and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("set TF_USE_LEGACY_KERAS=1 (QKeras needs legacy Keras)")
    samples = test_samples()
    results = []
    for spec in SPECS:
        if args.only and spec.name not in args.only:
            continue
        predict = keras_predict(spec) if args.predict == "keras" else golden_predict(spec)
        results.append(measure(spec, predict, samples))
        print(f"{spec.name}: done", flush=True)
    write_outputs(results, args.out, args.predict)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
