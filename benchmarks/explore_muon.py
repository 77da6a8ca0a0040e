"""``nnfpga explore`` on the muon-trigger CNN (cnn_pt10): a 64-point sweep (reuse x clock x
pruning), scored on generated events, with 1 and then 2 local Dask workers.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.explore_muon [--jobs 1,2] [--events 4000]
        [--synth-points 8] [--ringer N]

Each run starts from an empty results folder under build/explore/ (nothing is reused),
and prints its wall time; the front, its plots and commands are in the folder.  With
``--synth-points N`` a further N-point sweep (reuse x clock) of examples/models/float_mlp.h5
runs with ``--synth`` on a two-worker cluster (a `dask scheduler` and two `dask
worker` processes) and prints the Yosys/estimate ratio of LUT and FF per point.
With ``--ringer N`` a 32-point precision x reuse sweep of one NeuralRinger MLP runs,
scored (AUC) on N generated electrons and N jets.  Nothing tracked in the repository is
written.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.muon_trigger import generator as gen  # noqa: E402
from benchmarks.muon_trigger.train import SPECS, model_inputs, targets  # noqa: E402

BUILD = ROOT / "build" / "explore"
MODELS = HERE / "muon_trigger" / "models"
SWEEP = ["--sweep", "reuse=1,2,4,8", "--sweep", "clock=200MHz,240MHz,320MHz,400MHz",
         "--sweep", "pruning.sparsity=0,0.25,0.5,0.75"]
RINGER_SWEEP = ["--sweep", "reuse=1,2,4,8", "--sweep", "defaults.weight_frac=4,6,8,10",
                "--sweep", "defaults.output_frac=6,10"]
SYNTH_SWEEP = ["--sweep", "reuse=1,2,4,8", "--sweep", "clock=240MHz,320MHz"]
SYNTH_MODEL = ROOT / "examples" / "models" / "float_mlp.h5"     # reuse changes its design (DSPs, ROMs)


def samples(n: int, model: str) -> tuple[Path, Path]:
    """Muons and noise-only windows (half each), never used in training (seed 4242)."""
    spec = next(s for s in SPECS if s.name == model)
    events = gen.generate(n // 2, n - n // 2, seed=4242)
    x = model_inputs(spec, events)
    BUILD.mkdir(parents=True, exist_ok=True)
    xp, yp = BUILD / f"{model}_x.npy", BUILD / f"{model}_y.npy"
    np.save(xp, x)
    np.save(yp, targets(spec, events).astype(np.int64))
    return xp, yp


def rel(path: Path) -> str:
    """Paths relative to the repository (the commands in front.md then run from a clone)."""
    return os.path.relpath(path, ROOT)


def nnfpga(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nnfpga", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synth_sweep(n_points: int) -> None:
    port = free_port()
    dask = Path(sys.executable).parent / "dask"
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    time.sleep(3)
    procs += [subprocess.Popen([str(dask), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
              for _ in range(2)]
    try:
        out = BUILD / "float_mlp-synth"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        sweep = SYNTH_SWEEP if n_points == 8 else ["--sweep", f"reuse={','.join(str(2 ** k) for k in range(n_points))}"]
        seconds = nnfpga("explore", rel(SYNTH_MODEL), "-o", rel(out), "--scheduler",
                         f"tcp://127.0.0.1:{port}", "--synth", *sweep)
        print(f"--synth sweep of {SYNTH_MODEL.name}, {n_points} points on a 2-worker cluster: {seconds:.0f} s")
        with open(out / "points.csv") as f:
            rows = list(csv.DictReader(f))
        print("| point | reuse | clock | est LUT | Yosys LUT | ratio | est FF | Yosys FF | ratio | DSP est/Yosys |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["status"] != "ok":
                print(f"| {r['index']} | failed: {r['error']} |")
                continue
            el, sl, ef, sf = (int(r[k]) for k in ("est_lut", "syn_lut", "est_ff", "syn_ff"))
            print(f"| {r['index']} | {r['p.reuse']} | {r.get('p.clock', '')} | {el:,} | {sl:,} | {sl / el:.2f} | "
                  f"{ef:,} | {sf:,} | {sf / ef:.2f} | {r['est_dsp']}/{r['syn_dsp']} |")
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)


def ringer_sweep(n_per_class: int) -> None:
    """A 32-point precision x reuse sweep of one NeuralRinger MLP (the et0_eta0 bin),
    scored (AUC) on generated electrons and jets of that bin."""
    from benchmarks.electron_ringer import generator as G
    ev = G.RingEvents.concatenate([G.generate("electron", n_per_class, 9101), G.generate("jet", n_per_class, 9102)])
    sel = ev.bin == 0
    x, y = BUILD / "ringer_x.npy", BUILD / "ringer_y.npy"
    BUILD.mkdir(parents=True, exist_ok=True)
    np.save(x, ev.normalised()[sel])
    np.save(y, ev.is_electron[sel].astype(np.int64))
    out = BUILD / "ringer-et0_eta0"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    seconds = nnfpga("explore", rel(HERE / "electron_ringer" / "models" / "float" / "et0_eta0.h5"), "-o", rel(out),
                     "--data", rel(x), "--labels", rel(y), *RINGER_SWEEP)
    front = sum(1 for _ in open(out / "front.csv")) - 1
    print(f"32-point sweep of the ringer MLP et0_eta0 ({int(sel.sum())} events of its bin scored per point): "
          f"{seconds:.1f} s wall; front {front} points -> {out}/front.md")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # the cluster's processes are stopped on kill too
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", default="1,2", help="local worker counts to time (default 1,2)")
    ap.add_argument("--events", type=int, default=4000)
    ap.add_argument("--synth-points", type=int, default=0, help="also run the --synth sweep (8 points)")
    ap.add_argument("--ringer", type=int, default=0, metavar="N",
                    help="also sweep a ringer MLP, scored on N generated electrons and N jets")
    args = ap.parse_args(argv)
    x, y = samples(args.events, "cnn_pt10")
    for jobs in [int(j) for j in args.jobs.split(",") if j]:
        out = BUILD / f"cnn_pt10-jobs{jobs}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        seconds = nnfpga("explore", rel(MODELS / "cnn_pt10.h5"), "-o", rel(out), "--jobs", str(jobs),
                         "--data", rel(x), "--labels", rel(y), *SWEEP)
        front = sum(1 for _ in open(out / "front.csv")) - 1
        print(f"64-point sweep of cnn_pt10 ({args.events} events scored per point), {jobs} worker(s): "
              f"{seconds:.1f} s wall; front {front} points -> {out}/front.md, {out}/plots/")
    if args.synth_points:
        synth_sweep(args.synth_points)
    if args.ringer:
        ringer_sweep(args.ringer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
