"""Physics figures of the Ringer ensemble for any prediction function.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.electron_ringer.figures [--predict keras|golden]

``--predict keras`` runs the saved Keras (float) and QKeras models; ``--predict golden``
runs nnfpga's golden emulator on the same files (the firmware's bits: equal to QKeras
for the quantised flavour, within the compiler's precision of the float one).  Other
callers pass any ``predict(bin, x) -> scores`` to :func:`measure`.

On the test sample (train.sample("test"), never used in training), per (E_T, |eta|) bin
and overall (each event through its own bin's network):

* PD / FA: detection probability (electrons accepted) and fake acceptance (jets
  accepted) at the thresholds of models/thresholds.json (set for PD = 95% on the
  validation electrons: the trigger's configuration);
* FA at PD = 95% with the threshold tuned on the test electrons themselves, and the
  area under the ROC curve;
* ROC curves (per bin and overall with one common output threshold), with the single
  shower-shape cut R_eta (EM2) as a reference.
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

from benchmarks.electron_ringer import generator as G  # noqa: E402
from benchmarks.electron_ringer import train as T  # noqa: E402

#: the default --out: untracked (build/ is ignored); the committed results/ is rewritten
#: only when --out names it
RESULTS_DIR = ROOT / "build" / "bench" / "ringer" / "figures"
PD_GRID = np.concatenate([np.linspace(0.5, 0.9, 41), np.linspace(0.901, 1.0, 100)])


def roc(sig: np.ndarray, bkg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(PD, FA) at thresholds placed at signal quantiles (PD from 0.5 to 1)."""
    s, b = np.sort(sig.ravel()), np.sort(bkg.ravel())
    thr = np.quantile(s, 1 - PD_GRID)
    pd = 1 - np.searchsorted(s, thr, side="right") / len(s)
    fa = 1 - np.searchsorted(b, thr, side="right") / len(b)
    return pd, fa


def auc(sig: np.ndarray, bkg: np.ndarray) -> float:
    """P(score_signal > score_background) + 0.5 P(equal)."""
    allv = np.concatenate([sig.ravel(), bkg.ravel()])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    # average ranks of ties
    sv = allv[order]
    _, first, counts = np.unique(sv, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    ns, nb = sig.size, bkg.size
    return float((ranks[:ns].sum() - ns * (ns + 1) / 2) / (ns * nb))


def measure(predict: Callable[[int, np.ndarray], np.ndarray], thresholds: dict[int, float],
            test: G.RingEvents | None = None) -> dict:
    test = test or T.sample("test")
    x = test.normalised()
    bins = test.bin
    score = np.full(len(test), np.nan)
    for b in range(G.N_BINS):
        sel = bins == b
        if sel.any():
            score[sel] = np.asarray(predict(b, x[sel]), dtype=np.float64).ravel()
    thr = np.array([thresholds[b] for b in bins])
    fired = score > thr
    sig = test.is_electron
    rows = []
    for b in range(G.N_BINS):
        sel = bins == b
        s, k = score[sel & sig], score[sel & ~sig]
        t95 = T.threshold_for_pd(s)
        pd_c, fa_c = roc(s, k)
        rows.append({"bin": b, "label": G.bin_label(b), "n_electrons": int(s.size), "n_jets": int(k.size),
                     "pd": float(np.mean(fired[sel & sig])), "fa": float(np.mean(fired[sel & ~sig])),
                     "fa_at_pd95": float(np.mean(k > t95)), "auc": auc(s, k),
                     "roc_pd": pd_c.round(5).tolist(), "roc_fa": fa_c.round(6).tolist()})
    pd_all, fa_all = roc(score[sig], score[~sig])
    r_pd, r_fa = roc(test.shapes["r_eta"][sig], test.shapes["r_eta"][~sig])
    return {"bins": rows,
            "overall": {"pd": float(np.mean(fired[sig])), "fa": float(np.mean(fired[~sig])),
                        "n_electrons": int(sig.sum()), "n_jets": int((~sig).sum()),
                        "auc_common_threshold": auc(score[sig], score[~sig]),
                        "roc_pd": pd_all.round(5).tolist(), "roc_fa": fa_all.round(6).tolist()},
            "r_eta_reference": {"auc": auc(test.shapes["r_eta"][sig], test.shapes["r_eta"][~sig]),
                                "fa_at_pd95": float(np.mean(test.shapes["r_eta"][~sig] >
                                                            T.threshold_for_pd(test.shapes["r_eta"][sig]))),
                                "roc_pd": r_pd.round(5).tolist(), "roc_fa": r_fa.round(6).tolist()}}


def keras_predict(flavour: str) -> Callable[[int, np.ndarray], np.ndarray]:
    cache: dict[int, object] = {}

    def predict(b: int, x: np.ndarray) -> np.ndarray:
        if b not in cache:
            cache[b] = T.load(flavour, b)
        return cache[b].predict(x, batch_size=8192, verbose=0)
    return predict


def golden_predict(flavour: str) -> Callable[[int, np.ndarray], np.ndarray]:
    from nnfpga.compiler.pipeline import build_graph
    from nnfpga.ir.emulator import emulate
    return lambda b, x: emulate(build_graph(T.model_path(flavour, b)), x)


def stored_thresholds(flavour: str) -> dict[int, float]:
    d = json.loads((T.MODELS_DIR / "thresholds.json").read_text())
    return {int(b): float(v[flavour]["threshold"]) for b, v in d["bins"].items()}


# ---------------------------------------------------------------------------- outputs
def markdown(results: dict, predict_name: str) -> str:
    fl = list(results)
    head = ["| bin | electrons / jets |"]
    sep = ["| --- | --- |"]
    for f in fl:
        head.append(f" PD {f} | FA {f} | FA@PD95 {f} | AUC {f} |")
        sep.append(" --- | --- | --- | --- |")
    lines = [f"Electron ringer figures ({predict_name} predictions; thresholds from models/thresholds.json, "
             f"set for PD = {T.TARGET_PD:.0%} on the validation electrons).", "", "".join(head), "".join(sep)]
    first = results[fl[0]]
    for i, row in enumerate(first["bins"]):
        cells = [f"| {row['label']} | {row['n_electrons']} / {row['n_jets']} |"]
        for f in fl:
            r = results[f]["bins"][i]
            cells.append(f" {r['pd']:.4f} | {r['fa']:.4f} | {r['fa_at_pd95']:.4f} | {r['auc']:.4f} |")
        lines.append("".join(cells))
    cells = [f"| **all bins** | {first['overall']['n_electrons']} / {first['overall']['n_jets']} |"]
    for f in fl:
        o = results[f]["overall"]
        cells.append(f" {o['pd']:.4f} | {o['fa']:.4f} | | {o['auc_common_threshold']:.4f} |")
    lines.append("".join(cells))
    ref = first["r_eta_reference"]
    lines += ["", f"Reference, one cut on R_eta (EM2) over all bins: FA at PD = 95% {ref['fa_at_pd95']:.4f}, "
              f"AUC {ref['auc']:.4f}."]
    return "\n".join(lines) + "\n"


def finish_roc(fig, ax, title: str, path: Path, legend_size: int) -> None:
    """The ROC axes every ringer figure shares (log fake acceptance against detection
    probability), then save and close."""
    import matplotlib.pyplot as plt
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0.5, 1.0)
    ax.set_xlabel("fake acceptance (jets)")
    ax.set_ylabel("detection probability (electrons)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=legend_size, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plots(results: dict, outdir: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for f, r in results.items():
        ax.plot(r["overall"]["roc_fa"], r["overall"]["roc_pd"], label=f"ringer {f} (common threshold)")
    ref = next(iter(results.values()))["r_eta_reference"]
    ax.plot(ref["roc_fa"], ref["roc_pd"], ls="--", color="grey", label="R_eta cut (reference)")
    for f, r in results.items():
        ax.plot([r["overall"]["fa"]], [r["overall"]["pd"]], marker="*", ms=12, ls="",
                label=f"{f}: per-bin thresholds")
    finish_roc(fig, ax, "Ringer ROC, all (E_T, |eta|) bins", outdir / "roc_overall.png", legend_size=8)

    n_et, n_eta = len(G.ET_EDGES) - 1, len(G.ETA_EDGES) - 1
    fig, axs = plt.subplots(n_et, n_eta, figsize=(13, 11), sharex=True, sharey=True)
    for f, r in results.items():
        for row in r["bins"]:
            ie, ia = divmod(row["bin"], n_eta)
            ax = axs[ie, ia]
            ax.plot(row["roc_fa"], row["roc_pd"], label=f)
            ax.set_title(row["label"], fontsize=7)
    for ax in axs.ravel():
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
        ax.set_ylim(0.5, 1.0)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=7)
    axs[0, 0].legend(fontsize=7)
    fig.supxlabel("fake acceptance (jets)")
    fig.supylabel("detection probability (electrons)")
    fig.tight_layout()
    fig.savefig(outdir / "roc_bins.png", dpi=90)
    plt.close(fig)

    fig, axs = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False)
    for ax, (f, r) in zip(axs[0], results.items()):
        m = np.array([row["fa_at_pd95"] for row in r["bins"]]).reshape(n_et, n_eta)
        im = ax.imshow(m, origin="lower", cmap="viridis")
        for ie in range(n_et):
            for ia in range(n_eta):
                ax.text(ia, ie, f"{m[ie, ia]:.3f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(n_eta), [f"{G.ETA_EDGES[i]:g}-{G.ETA_EDGES[i + 1]:g}" for i in range(n_eta)], fontsize=7)
        ax.set_yticks(range(n_et), [f"{G.ET_EDGES[i]:g}-{G.ET_EDGES[i + 1]:g}" for i in range(n_et)], fontsize=7)
        ax.set_xlabel("|eta|")
        ax.set_ylabel("E_T (GeV)")
        ax.set_title(f"{f}: FA at PD = 95%")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(outdir / "fa_at_pd95.png", dpi=100)
    plt.close(fig)


def write_outputs(results: dict, outdir: Path, predict_name: str) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps({"predict": predict_name, "flavours": results}) + "\n")
    (outdir / "results.md").write_text(markdown(results, predict_name))
    plots(results, outdir)


def main(argv: list[str] | None = None) -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--predict", choices=("keras", "golden"), default="keras")
    ap.add_argument("--flavours", nargs="*", default=list(T.FLAVOURS), choices=T.FLAVOURS)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR,
                    help="output directory (default build/bench/ringer/figures, untracked; the committed "
                         "figures are rewritten only with --out benchmarks/electron_ringer/results)")
    args = ap.parse_args(argv)
    if args.predict == "keras" and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("set TF_USE_LEGACY_KERAS=1 (QKeras needs legacy Keras)")
    test = T.sample("test")
    results = {}
    for f in args.flavours:
        predict = keras_predict(f) if args.predict == "keras" else golden_predict(f)
        results[f] = measure(predict, stored_thresholds(f), test)
    write_outputs(results, args.out, args.predict)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
