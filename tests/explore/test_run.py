"""``nnfpga explore`` on a local Dask cluster: the table, reuse of finished points, a
killed run resumed, failing points recorded, accuracy on the user's data, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnfpga.compiler.cli import main
from nnfpga.explore.store import POINTS_FILE, TABLE_FILE

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "float_mlp.h5"
SWEEPS = ["--sweep", "reuse=1,2,4", "--sweep", "clock=200MHz,240MHz,320MHz,400MHz"]   # 12 points


def explore(outdir: Path, *extra: str, model: Path = MODEL) -> int:
    return main(["explore", str(model), "-o", str(outdir), "--jobs", "2", *extra])


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run of the 12-point sweep."""
    out = tmp_path_factory.mktemp("explore") / "ref"
    assert explore(out, *SWEEPS) == 0
    return out


def test_every_point_is_written_with_its_figures(reference, capsys):
    records = [json.loads(line) for line in lines(reference / POINTS_FILE)]
    assert sorted(r["index"] for r in records) == list(range(12))
    assert len({r["key"] for r in records}) == 12
    for r in records:
        assert r["status"] == "ok", r["error"]
        assert r["latency_cycles"] > 0 and r["ii_cycles"] == r["params"]["reuse"]
        assert abs(r["latency_ns"] - r["latency_cycles"] * 1000 / r["clock_mhz"]) < 1e-2
    table = lines(reference / TABLE_FILE)
    assert table[0].startswith("index,key,status,p.reuse,p.clock,")
    assert [row.split(",")[0] for row in table[1:]] == [str(i) for i in range(12)]
    for name in ("front.md", "front.csv", "index.html", "explore.json"):
        assert (reference / name).is_file()


def test_a_point_reports_what_compile_reports(reference, tmp_path):
    """Point 7 (reuse 2, 400 MHz) against `nnfpga compile` run by hand with its command."""
    r = next(json.loads(line) for line in lines(reference / POINTS_FILE) if json.loads(line)["index"] == 7)
    args = r["command"].split()[1:]
    out = tmp_path / "fw"
    args[args.index("-o") + 1] = str(out)
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert (r["latency_cycles"], r["est_lut"], r["est_ff"], r["est_dsp"], r["clock_mhz"]) == \
        (report["latency"]["cycles"], report["resources"]["estimate"]["lut"],
         report["resources"]["estimate"]["ff"], report["resources"]["estimate"]["dsp"], 400.0)


def test_rerun_reuses_every_finished_point(reference, tmp_path, capsys):
    out = tmp_path / "again"
    (out).mkdir()
    for name in (POINTS_FILE, "explore.json"):
        (out / name).write_bytes((reference / name).read_bytes())
    capsys.readouterr()
    assert explore(out, *SWEEPS) == 0
    said = capsys.readouterr().out
    assert "0 computed, 12 reused" in said
    assert (out / TABLE_FILE).read_bytes() == (reference / TABLE_FILE).read_bytes()
    assert (out / "front.md").read_bytes() == (reference / "front.md").read_bytes()
    # a wider sweep computes only its new points
    assert explore(out, "--sweep", "reuse=1,2,4,8", "--sweep", "clock=200MHz,240MHz,320MHz,400MHz") == 0
    assert "4 computed, 12 reused" in capsys.readouterr().out


def test_killed_run_resumes_with_only_the_unfinished_points(reference, tmp_path):
    out = tmp_path / "killed"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "nnfpga", "explore", str(MODEL), "-o", str(out), "--jobs", "1", *SWEEPS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (out / POINTS_FILE).is_file() and len(lines(out / POINTS_FILE)) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(lines(out / POINTS_FILE))
    assert 3 <= done < 12
    assert len(lines(out / TABLE_FILE)) >= 2        # the table is kept current during the run
    with open(out / POINTS_FILE, "a") as f:      # a line the kill cut short
        f.write('{"key": "0123456789abcdef", "sta')
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{12 - done} computed, {done} reused" in result.stdout
    assert len(lines(out / POINTS_FILE)) == 12
    assert (out / TABLE_FILE).read_bytes() == (reference / TABLE_FILE).read_bytes()


def test_a_failing_point_is_recorded_and_the_rest_runs(tmp_path, capsys):
    out = tmp_path / "fails"
    # --reuse 4 agrees with defaults.reuse_factor 4 and conflicts with 2
    assert explore(out, "--reuse", "4", "--sweep", "defaults.reuse_factor=4,2") == 0
    said = capsys.readouterr().out
    assert "1 ok, 1 failed" in said
    by_index = {json.loads(x)["index"]: json.loads(x) for x in lines(out / POINTS_FILE)}
    assert by_index[0]["status"] == "ok" and by_index[0]["ii_cycles"] == 4
    assert by_index[1]["status"] == "error" and "--reuse 4 conflicts" in by_index[1]["error"]
    assert "configs/point-" in by_index[0]["command"]
    config = Path(by_index[0]["command"].split("--config ")[1].split()[0])
    assert config.read_text() == "defaults:\n  reuse_factor: 4\n"
    # recorded failures are not recomputed unless asked
    assert explore(out, "--reuse", "4", "--sweep", "defaults.reuse_factor=4,2") == 0
    assert "0 computed, 2 reused" in capsys.readouterr().out
    assert explore(out, "--reuse", "4", "--sweep", "defaults.reuse_factor=4,2", "--retry-failed") == 0
    assert "1 computed, 1 reused" in capsys.readouterr().out


def test_accuracy_on_the_users_data(tmp_path):
    """Against the source model run by its framework (tf_keras here), computed in the test."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras
    from nnfpga.compiler.passes.ptq import auc
    from nnfpga.api import compile as compile_model, emulate
    model = ROOT / "examples" / "models" / "float_mlp.h5"
    keras_model = tf_keras.models.load_model(model, compile=False)
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, size=(300, *keras_model.input_shape[1:])).astype(np.float32)
    ref = keras_model.predict(x, verbose=0).reshape(300, -1).astype(np.float64)
    assert ref.shape[1] == 1      # one output: the AUC against 0/1 labels
    y = (ref[:, 0] + rng.normal(0, ref.std(), 300) > np.median(ref[:, 0])).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "acc"
    assert explore(out, "--sweep", "reuse=1,2", "--data", str(tmp_path / "x.npy"), "--labels",
                   str(tmp_path / "y.npy"), model=model) == 0
    assert "tf_keras" in json.loads((out / "explore.json").read_text())["reference"]
    records = {json.loads(x)["index"]: json.loads(x) for x in lines(out / POINTS_FILE)}
    fixed = emulate(compile_model(str(model), outdir=tmp_path / "fw", reuse=2).outdir, x).reshape(300, -1)
    r = records[1]
    # the same framework on the same float32 values: the figures are equal, not close
    assert r["acc_max_deviation"] == float(np.abs(fixed - ref).max()) > 0
    assert r["acc_mean_deviation"] == float(np.abs(fixed - ref).mean())
    assert r["acc_auc"] == auc(fixed[:, 0], y == 1) and r["acc_auc_reference"] == auc(ref[:, 0], y == 1)
    assert 0.5 < r["acc_auc"] < 1
    assert r["acc_agreement"] == float(np.mean((fixed[:, 0] > 0.5) == (ref[:, 0] > 0.5)))
    assert r["acc_accuracy"] is None


@pytest.mark.parametrize("args, words", [
    (["--sweep", "reuse=0"], "reuse: '0' is not a whole number"),
    (["--sweep", "colour=red"], "unknown setting"),
    (["--labels", "y.npy"], "--labels needs --data"),
    (["--sweep", "pruning.sparsity=2"], "pruning.sparsity=2"),
    (["--scheduler", "tcp://127.0.0.1:9", "--sweep", "reuse=1"], "--jobs sets the size"),
])
def test_bad_input_is_named_before_anything_runs(tmp_path, capsys, args, words):
    out = tmp_path / "bad"
    assert explore(out, *args) == 2
    assert words in capsys.readouterr().err
    assert not (out / POINTS_FILE).exists()


def test_unreachable_scheduler_and_foreign_folder(tmp_path, capsys):
    assert main(["explore", str(MODEL), "-o", str(tmp_path / "s"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    assert explore(tmp_path / "mine", "--sweep", "reuse=1") == 2
    assert "did not write" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "none.h5"), "-o", str(tmp_path / "n")]) == 2
    assert "none.h5: no such file" in capsys.readouterr().err


def test_search_evaluates_its_budget_next_to_the_front(reference, tmp_path, capsys):
    """16-point grid, --search 8: 4 seeded random points, then neighbours of the front;
    every point evaluated is a grid point with the figures the full grid gives it."""
    out = tmp_path / "search"
    (out).mkdir()
    grid = {json.loads(x)["key"]: json.loads(x) for x in lines(reference / POINTS_FILE)}
    sweeps = ["--sweep", "reuse=1,2,4,8", "--sweep", "clock=200MHz,240MHz,320MHz,400MHz"]
    assert explore(out, "--search", "8", "--seed", "1", *sweeps) == 0
    assert "8 computed, 0 reused" in capsys.readouterr().out
    records = [json.loads(x) for x in lines(out / POINTS_FILE)]
    assert len(records) == 8 and len({r["index"] for r in records}) == 8
    for r in records:
        if r["key"] in grid:
            assert r["latency_cycles"] == grid[r["key"]]["latency_cycles"]
            assert r["est_lut"] == grid[r["key"]]["est_lut"]
    from nnfpga.explore import space
    from nnfpga.explore.front import objectives, pareto_front
    pts = space.grid([space.parse_sweep("reuse=1,2,4,8"), space.parse_sweep("clock=200MHz,240MHz,320MHz,400MHz")])
    first = {p.index for p in space.initial_sample(pts, 8, seed=1)}
    assert first <= {r["index"] for r in records}
    rest = [r for r in records if r["index"] not in first]
    sample = [r for r in records if r["index"] in first]
    front = pareto_front(sample, objectives(sample))
    near = {q.index for p in front for q in space.neighbours(pts[p["index"]], [
        space.parse_sweep("reuse=1,2,4,8"), space.parse_sweep("clock=200MHz,240MHz,320MHz,400MHz")],
        {space._params_key(x.params): x for x in pts})}
    assert rest and all(r["index"] in near for r in rest[:1])
    # the same search again: the same points, all reused
    assert explore(out, "--search", "8", "--seed", "1", *sweeps) == 0
    assert "0 computed, 8 reused" in capsys.readouterr().out
