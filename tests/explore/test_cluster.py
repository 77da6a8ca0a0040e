"""``nnfpga explore --scheduler`` on a real Dask cluster: a scheduler and two workers as
separate processes (``dask scheduler``, ``dask worker``), as a user starts them; one
worker killed mid-run; and ``--synth`` on the cluster.  Slow suite."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnfpga.explore.store import POINTS_FILE, TABLE_FILE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "float_mlp.h5"
SWEEPS = ["--sweep", "reuse=1,2,4,8", "--sweep", "clock=200MHz,240MHz,320MHz,400MHz"]   # 16 points
DASK = Path(sys.executable).parent / "dask"
ENV = os.environ | {"PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(DASK), *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the Dask scheduler did not open port {port}")


@pytest.fixture
def cluster():
    """A scheduler and two single-threaded workers without nannies (a killed worker stays
    dead, as when its machine goes away)."""
    port = free_port()
    scheduler = start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0")
    wait_for_port(port)
    address = f"tcp://127.0.0.1:{port}"
    workers = [start("worker", address, "--nthreads", "1", "--no-nanny", "--name", f"w{i}") for i in range(2)]
    try:
        yield address, workers
    finally:
        for p in workers + [scheduler]:
            stop(p)


def explore(outdir: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnfpga", "explore", str(MODEL), "-o", str(outdir), *args],
                          env=ENV, capture_output=True, text=True, timeout=900, **kw)


def test_cluster_run_equals_the_local_run_and_survives_a_lost_worker(cluster, tmp_path):
    address, workers = cluster
    local = explore(tmp_path / "local", "--jobs", "2", *SWEEPS)
    assert local.returncode == 0, local.stderr
    out = tmp_path / "cluster"
    proc = subprocess.Popen([sys.executable, "-m", "nnfpga", "explore", str(MODEL), "-o", str(out),
                             "--scheduler", address, *SWEEPS], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / POINTS_FILE).is_file() and len((out / POINTS_FILE).read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    stop(workers[0])                       # mid-run: the other worker finishes every point
    done_before_kill = len((out / POINTS_FILE).read_text().splitlines())
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert done_before_kill < 16
    assert "on 2 Dask workers" in stdout and "16 computed, 0 reused" in stdout and "16 ok" in stdout
    records = [json.loads(line) for line in (out / POINTS_FILE).read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(16))
    pids = {int(r["worker"].rpartition(":")[2]) for r in records}
    assert workers[0].pid in pids                          # the killed worker had done points
    assert {int(r["worker"].rpartition(":")[2]) for r in records[done_before_kill + 1:]} == {workers[1].pid}
    assert (out / TABLE_FILE).read_bytes() == (tmp_path / "local" / TABLE_FILE).read_bytes()
    assert (out / "front.md").read_bytes() == (tmp_path / "local" / "front.md").read_bytes()


def test_synthesis_on_the_cluster(cluster, tmp_path):
    address, _ = cluster
    out = tmp_path / "synth"
    model = ROOT / "examples" / "models" / "ternary_mlp.h5"
    result = subprocess.run([sys.executable, "-m", "nnfpga", "explore", str(model), "-o", str(out), "--scheduler",
                             address, "--synth", "--sweep", "clock=240MHz,400MHz"], env=ENV, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / POINTS_FILE).read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        assert r["status"] == "ok", r["error"]
        assert r["syn_lut"] > 0 and r["syn_ff"] > 0 and r["syn_dsp"] == 0 and r["syn_fmax_mhz"] > 0
    # synthesis is part of the key: without --synth the points are computed again
    again = subprocess.run([sys.executable, "-m", "nnfpga", "explore", str(model), "-o", str(out), "--scheduler",
                            address, "--sweep", "clock=240MHz,400MHz"], env=ENV, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0 and "2 computed, 0 reused" in again.stdout
