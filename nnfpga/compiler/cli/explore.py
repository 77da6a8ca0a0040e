"""``nnfpga explore MODEL -o RESULTS --sweep KEY=V1,V2,...``: compile a model at every
point of a design space on Dask; write the table, the Pareto front, its plots and the
command that builds each front point (`nnfpga.explore`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnfpga.compiler.cli.options import budget, clock, clock_note, count, part
from nnfpga.core.errors import UserError


def _sweep(text: str):
    from nnfpga.explore.space import parse_sweep
    try:
        return parse_sweep(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--sweep ")) from None


def add_parser(sub) -> None:
    c = sub.add_parser("explore", help="compile a model at many design points (on Dask) and find the Pareto front",
                       description="Compile MODEL at every point of the swept settings (on a Dask cluster), write "
                                   "each finished point at once to RESULTS/points.jsonl, and the table "
                                   "(points.csv), the Pareto front (front.md, front.csv, plots/, index.html) "
                                   "and the command that builds each front point.  A rerun reuses every "
                                   "finished point.")
    c.add_argument("model", help="model file (.h5, .keras, .onnx, .pt/.pth, Keras .json with --weights)")
    c.add_argument("-o", "--output", required=True, metavar="RESULTS",
                   help="results folder (new, or one an earlier explore wrote)")
    c.add_argument("--target", default="xcvu9p", type=part, help="FPGA part (default xcvu9p)")
    c.add_argument("--clock", default="240MHz", type=clock, help="clock frequency (default 240MHz)")
    c.add_argument("--sweep", action="append", type=_sweep, default=[], metavar="KEY=V1,V2,...",
                   help="values of one setting: reuse, max_dsp, ii, clock, target, config (YAML files) or a "
                        "configuration key SECTION.KEY (e.g. pruning.sparsity=0,0.5); repeat for more settings")
    how = c.add_mutually_exclusive_group()
    how.add_argument("--grid", action="store_true", help="every combination of the sweeps (the default)")
    how.add_argument("--search", type=count, metavar="N",
                     help="N points: half a seeded random sample, the rest next to the Pareto front")
    c.add_argument("--seed", type=int, default=0, help="seed of --search's sample (default 0)")
    c.add_argument("--synth", action="store_true", help="also synthesise every point with Yosys (minutes each)")
    c.add_argument("--data", metavar="X", help="samples (.npy, or .npz with x [and labels y]): the accuracy of "
                                               "every point against the float network")
    c.add_argument("--labels", metavar="Y", help="labels of --data (.npy): AUC or classification accuracy")
    c.add_argument("--config", help="base configuration file (YAML) of every point")
    c.add_argument("--reuse", type=count, help="reuse factor of the points that do not sweep it")
    c.add_argument("--max-dsp", type=budget, help="DSP budget of the points that do not sweep it")
    c.add_argument("--ii", type=count, help="II limit of the points that do not sweep it")
    c.add_argument("--weights", metavar="FILE", help="weights (.h5) of a Keras .json architecture file")
    c.add_argument("--trust-model-code", action="store_true",
                   help="allow running the code inside a TorchScript .pt/.pth model file")
    c.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, "
                        "else a local cluster)")
    c.add_argument("--jobs", type=count, help="worker processes of the local cluster (default: one per core)")
    c.add_argument("--retry-failed", action="store_true",
                   help="recompute the points an earlier run recorded as failed")


def run(args: argparse.Namespace) -> int:
    from nnfpga.explore.run import ExploreSettings, explore
    clock_note(args.clock, "explore")
    if args.scheduler is not None and args.jobs is not None:
        raise UserError("--jobs sets the size of the local cluster; with --scheduler the cluster's workers are "
                        "what they are (start more with `dask worker`)")
    settings = ExploreSettings(
        model=args.model, outdir=Path(args.output), target=args.target, clock=args.clock, weights=args.weights,
        config=args.config, reuse=args.reuse, max_dsp=args.max_dsp, ii=args.ii, sweeps=args.sweep,
        search=args.search, seed=args.seed, synth=args.synth, data=args.data, labels=args.labels,
        scheduler=args.scheduler, jobs=args.jobs, retry_failed=args.retry_failed,
        trust_model_code=args.trust_model_code)
    result = explore(settings)
    ok = len(result.records) - result.failed
    print(f"explored {len(result.records)} points in {result.seconds:.1f} s on {result.workers} workers: "
          f"{result.computed} computed, {result.reused} reused from {args.output}; {ok} ok, {result.failed} failed")
    print(f"Pareto front: {len(result.front)} point{'s' if len(result.front) != 1 else ''}; see {Path(args.output) / 'front.md'} and "
          f"{Path(args.output) / 'index.html'}")
    for r in result.front[:10]:
        print(f"  {r['command']}")
    if len(result.front) > 10:
        print(f"  ... {len(result.front) - 10} more in front.md")
    if result.lost:
        print(f"nnfpga explore: {len(result.lost)} points were lost with their workers and are not recorded; "
              "rerun the same command to compute them:")
        for line in result.lost[:10]:
            print(f"  {line}")
        return 1
    return 0
