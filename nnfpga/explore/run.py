"""``nnfpga explore``: compile a model at every point of a design space, on Dask, and
write the table, the Pareto front, its plots and the command of every front point.

Order of work: everything the user gave is checked on the client first (the model
compiles at the default settings, every swept value, every point's configuration, the
data and labels, Yosys for ``--synth``); only then does the cluster start.  Points whose
key is already in the results folder are reused (`nnfpga.explore.store`); the others run
on the cluster (`nnfpga.explore.cluster`), each written to disk as it finishes.  With
``--search N`` the first half of the budget is a seeded random sample and the rest is
spent, batch by batch, on the unevaluated grid neighbours of the current front.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from nnfpga.core.errors import UserError
from nnfpga.explore import space
from nnfpga.explore.cluster import open_cluster, run_batch
from nnfpga.compiler.data_accuracy import check_labels
from nnfpga.explore.evaluate import ModelBytes, PointTask, Reference
from nnfpga.explore.store import ResultStore, digest, point_key, table_text, write_atomic, TABLE_FILE

#: Largest model file shipped to the workers (every format's own limit is lower).
MAX_MODEL_BYTES = 256 << 20
CONFIG_DIR = "configs"


@dataclass
class ExploreSettings:
    model: str
    outdir: Path
    target: str = "xcvu9p"
    clock: str = "240MHz"
    weights: str | None = None
    config: str | None = None
    reuse: int | None = None
    max_dsp: int | None = None
    ii: int | None = None
    sweeps: list = field(default_factory=list)          # [space.Sweep]
    search: int | None = None
    seed: int = 0
    synth: bool = False
    data: str | None = None
    labels: str | None = None
    scheduler: str | None = None
    jobs: int | None = None
    retry_failed: bool = False
    trust_model_code: bool = False


@dataclass
class ExploreResult:
    records: list[dict]          # the points of this exploration, grid order
    front: list[dict]
    reused: int
    computed: int
    failed: int
    lost: list[str]
    seconds: float
    workers: int
    files: list[str]


def explore(s: ExploreSettings, say: Callable[[str], None] = print) -> ExploreResult:
    start = time.perf_counter()
    space.check_sweeps(s.sweeps)
    model = _model_bytes(s)
    base_text = _base_config(s.config)
    reference = _reference(s, model, say)
    versions = _versions(s.synth)
    store = ResultStore(s.outdir)
    points = space.grid(s.sweeps)
    store.write_marker(_settings_record(s, len(points)) | {"reference": reference.against if reference else None})
    common = {"model": digest(model.data), "weights": digest(model.weights), "synth": s.synth,
              "data": _data_digest(reference), "versions": versions}
    tasks: dict[int, PointTask] = {}

    def task_of(p: space.Point) -> PointTask:
        if p.index not in tasks:
            tasks[p.index] = _task(p, s, base_text, common, store)
        return tasks[p.index]

    budget = len(points) if s.search is None else min(s.search, len(points))
    todo = points if s.search is None else space.initial_sample(points, budget, s.seed)
    for p in (points if len(points) <= 10_000 else todo):  # every configuration is checked before the
        task_of(p)                                              # cluster starts
    results: dict[int, dict] = {}
    reused = computed = 0
    lost: list[str] = []
    progress = _Progress(budget, say)
    names = [sw.name for sw in s.sweeps]
    table = _Table(s.outdir / TABLE_FILE, names)
    with open_cluster(s.scheduler, s.jobs, say) as cluster:
        say(f"nnfpga explore: {budget} points of {len(points)} ({'search' if s.search else 'grid'}) on "
            f"{cluster.workers} Dask worker{'s' if cluster.workers != 1 else ''}"
            + (f"; dashboard {cluster.dashboard}" if cluster.dashboard else ""))
        while todo:
            batch = []
            for p in todo:
                t = task_of(p)
                old = store.finished.get(t.key)
                if old is not None and not (s.retry_failed and old["status"] == "error"):
                    results[p.index] = _as_point(old, t)
                    reused += 1
                    progress.reused(results[p.index])
                else:
                    batch.append(t)

            def on_record(record: dict, by_index={t.index: t for t in batch}) -> None:
                store.add(record)
                results[record["index"]] = _as_point(record, by_index[record["index"]])
                progress.finished(results[record["index"]])
                table.update(results)

            outcome = run_batch(cluster, batch, model, reference, on_record, progress.running)
            computed += len(outcome.records)
            lost += [f"point {t.index} ({_params_text(t.params)}): {why}" for t, why in outcome.lost]
            todo = _next_points(s, points, results, budget) if s.search is not None else []
        progress.close()
    records = [results[i] for i in sorted(results)]
    table.update(results, force=True)
    from nnfpga.explore.front import write_front_outputs
    out = write_front_outputs(s.outdir, records, _title(s))
    return ExploreResult(records, out["front"], reused, computed, sum(r["status"] == "error" for r in records),
                         lost, time.perf_counter() - start, cluster.workers, [TABLE_FILE] + out["files"])


# ----------------------------------------------------------------------------- inputs
def _model_bytes(s: ExploreSettings) -> ModelBytes:
    from nnfpga.compiler.frontends.model_file import check_model_file
    path = Path(s.model)
    check_model_file(path, "a model file", MAX_MODEL_BYTES)
    weights = None
    if s.weights is not None:
        if path.suffix.lower() != ".json":
            raise UserError(f"--weights {s.weights} given for {s.model}: a weights file goes with a Keras .json "
                            "architecture file only")
        check_model_file(Path(s.weights), "a Keras weights file (.h5)", MAX_MODEL_BYTES)
        weights = Path(s.weights).read_bytes()
    return ModelBytes(path.name, path.read_bytes(), Path(s.weights).name if s.weights else None, weights,
                      s.trust_model_code)


def _base_config(config: str | None) -> str | None:
    if config is None:
        return None
    from nnfpga.compiler.config import load_config
    load_config(config)  # the file's own checks (exists, size, UTF-8, schema)
    return Path(config).read_text(encoding="utf-8")


def _model_source(s: ExploreSettings):
    from nnfpga.compiler.frontends.keras import with_weights
    return with_weights(s.model, s.weights)


def _reference(s: ExploreSettings, model: ModelBytes, say: Callable[[str], None]) -> Reference | None:
    """Compiles the model once at its defaults (a model nnfpga cannot read stops here, not
    at every point) and, with ``--data``, runs the source model on the samples with its own
    framework (`nnfpga.compiler.source_reference`; the compiler's float reference where
    the framework cannot run it, e.g. a QONNX model in onnxruntime)."""
    from nnfpga.compiler.frontends.pytorch import trusting_model_code
    from nnfpga.compiler.pipeline import build_graph
    if s.labels is not None and s.data is None:
        raise UserError("--labels needs --data (the samples they label)")
    with trusting_model_code(s.trust_model_code):
        graph = build_graph(_model_source(s))
    if s.data is None:
        return None
    from nnfpga.compiler.config import load_calibration
    from nnfpga.compiler.source_reference import source_outputs
    x, y = load_calibration(s.data, s.labels)
    x = np.asarray(x, dtype=np.float64)
    expected = tuple(graph.input.info.shape) if graph.input.info is not None else None
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise UserError(f"--data {s.data}: samples of shape {tuple(x.shape[1:])}; the model takes {expected}")
    try:
        with trusting_model_code(s.trust_model_code):
            outputs, against = source_outputs(_model_source(s), x, None, f"--data {s.data}")
    except UserError as e:
        from nnfpga.compiler.float_reference import float_forward
        say(f"nnfpga explore: note: {e}; the accuracy is measured against nnfpga's float reference of the "
            "model instead")
        outputs, against = float_forward(graph, x), "nnfpga float reference"
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(x), -1)
    if y is not None:
        y = check_labels(y, len(x), outputs.shape[1], s.labels or f"{s.data} (array 'y')")
    return Reference(x, outputs, y, against)


def _data_digest(reference: Reference | None) -> str | None:
    if reference is None:
        return None
    h = digest(np.ascontiguousarray(reference.x).tobytes() + str(reference.x.shape).encode()
               + np.ascontiguousarray(reference.outputs).tobytes() + reference.against.encode())
    if reference.labels is not None:
        h = digest(h + (digest(np.ascontiguousarray(reference.labels).tobytes()) or ""))
    return h


def _versions(synth: bool) -> dict:
    from nnfpga.core.version import __version__
    versions = {"nnfpga": __version__}
    if synth:
        from nnfpga.synth.yosys import yosys_version
        v = yosys_version()
        if v is None:
            raise UserError("--synth needs Yosys on PATH (the Debian package yosys), on the client and on every "
                            "Dask worker")
        versions["yosys"] = v
    return versions


# ----------------------------------------------------------------------------- points
def _task(p: space.Point, s: ExploreSettings, base_text: str | None, common: dict, store: ResultStore) -> PointTask:
    config_text = space.point_config_text(p, s.config, base_text)
    target, clock = p.value("target", s.target), p.value("clock", s.clock)
    reuse, max_dsp, ii = p.value("reuse", s.reuse), p.value("max_dsp", s.max_dsp), p.value("ii", s.ii)
    from nnfpga.core.clock import parse_clock_mhz
    key = point_key(common | {"target": target.lower(), "clock_mhz": parse_clock_mhz(clock), "reuse": reuse,
                              "max_dsp": max_dsp, "ii": ii, "config": config_text})
    config_file = None
    if config_text is not None:
        config_file = s.outdir / CONFIG_DIR / f"point-{key}.yml"
        if not config_file.exists():
            config_file.parent.mkdir(exist_ok=True)
            write_atomic(config_file, config_text)
    command = _command(s, target, clock, reuse, max_dsp, ii, config_file, p.index)
    return PointTask(p.index, key, dict(p.params), target, clock, reuse, max_dsp, ii, config_text, s.synth, command)


def _command(s: ExploreSettings, target: str, clock: str, reuse, max_dsp, ii, config_file: Path | None,
             index: int) -> str:
    words = ["nnfpga", "compile", s.model]
    if s.weights:
        words += ["--weights", s.weights]
    words += ["--target", target, "--clock", clock]
    for flag, v in (("--reuse", reuse), ("--max-dsp", max_dsp), ("--ii", ii)):
        if v is not None:
            words += [flag, str(v)]
    if config_file is not None:
        words += ["--config", str(config_file)]
    if s.trust_model_code:
        words.append("--trust-model-code")
    words += ["-o", f"fw-point{index}"]
    return shlex.join(words)


def _as_point(record: dict, task: PointTask) -> dict:
    """A stored record as this exploration's point (a point with the same key may have
    had another index, other sweep names or another config file name)."""
    return dict(record) | {"index": task.index, "params": dict(task.params), "command": task.command}


def _next_points(s: ExploreSettings, points: list[space.Point], results: dict[int, dict],
                 budget: int) -> list[space.Point]:
    room = budget - len(results)
    if room <= 0:
        return []
    from nnfpga.explore.front import objectives, pareto_front
    records = list(results.values())
    front = pareto_front(records, objectives(records))
    front_points = [points[r["index"]] for r in front]
    done = set(results)
    nxt = space.refinement(front_points, done, s.sweeps, points, room)
    return nxt or space.fill_random(points, done, room, s.seed)


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "the defaults"


def _title(s: ExploreSettings) -> str:
    swept = {sw.name for sw in s.sweeps}
    where = "" if "target" in swept else f" on {s.target}"
    return f"{Path(s.model).name}{where}" + ("" if "clock" in swept else f" at {s.clock}")


def _settings_record(s: ExploreSettings, n_points: int) -> dict:
    return {"tool": "nnfpga explore", "model": s.model, "weights": s.weights, "target": s.target, "clock": s.clock,
            "config": s.config, "sweeps": {sw.name: list(sw.values) for sw in s.sweeps}, "grid_points": n_points,
            "search": s.search, "seed": s.seed, "synth": s.synth, "data": s.data, "labels": s.labels}


class _Table:
    """points.csv, rewritten as points finish (at most every `INTERVAL_S`, so a long run's
    table is current without rewriting it per point) and once at the end."""

    INTERVAL_S = 2.0

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path, self.names, self.last = path, names, 0.0

    def update(self, results: dict[int, dict], force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.INTERVAL_S:
            write_atomic(self.path, table_text([results[i] for i in sorted(results)], self.names))
            self.last = now


# ----------------------------------------------------------------------------- progress
class _Progress:
    """A rich progress bar on a terminal; one line per point otherwise (logs, CI)."""

    def __init__(self, total: int, say: Callable[[str], None]) -> None:
        self.total, self.say = total, say
        self.done = self.failed = self.busy = 0
        self.bar = None
        if sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("points"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[state]}"), TimeElapsedColumn())
            self.task = self.bar.add_task("explore", total=total, state="")
            self.bar.start()

    def _update(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done,
                            state=f"running {self.busy}, failed {self.failed}")

    def reused(self, record: dict) -> None:
        self._count(record, "reused")

    def finished(self, record: dict) -> None:
        self._count(record, "done")

    def _count(self, record: dict, how: str) -> None:
        self.done += 1
        self.failed += record["status"] == "error"
        if self.bar is None:
            self.say(f"[{self.done}/{self.total}] point {record['index']} ({_params_text(record['params'])}): "
                     f"{how}, {_summary(record)}")
        self._update()

    def running(self, n: int) -> None:
        self.busy = n
        self._update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(r: dict) -> str:
    if r["status"] == "error":
        return f"failed: {(r['error'] or '').splitlines()[0][:160]}"
    lut = r["syn_lut"] if r.get("syn_lut") is not None else r["est_lut"]
    dsp = r["syn_dsp"] if r.get("syn_dsp") is not None else r["est_dsp"]
    return f"{r['latency_cycles']} cycles = {r['latency_ns']:g} ns, II {r['ii_cycles']}, {lut:,} LUT, {dsp:,} DSP"
