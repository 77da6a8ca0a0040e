"""The HDL printers in a forked child (`nnfpga.compiler.forked_child`): same files as in one
process, the child's errors reach the user, a failure leaves nothing behind."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from nnfpga.compiler.driver import compile_model
from nnfpga.compiler.forked_child import JOBS_ENV, can_fork, run_beside
from nnfpga.core.errors import UserError
from tests.irmodels import random_mlp


def _tree(root: Path) -> dict[str, object]:
    """Every file's bytes but the run record (run.json: the compile time, which differs)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "run.json"}


def test_forked_printers_write_the_same_tree(tmp_path, monkeypatch, runs_here):
    if not runs_here:
        return
    assert can_fork(), "this test needs fork, two CPUs and a single thread"
    graph = random_mlp([12, 10, 4], seed=3, name="beside")
    compile_model(graph, "xcvu9p", "240MHz", tmp_path / "forked")
    monkeypatch.setenv(JOBS_ENV, "1")
    assert not can_fork()
    compile_model(graph, "xcvu9p", "240MHz", tmp_path / "inline")
    forked, inline = _tree(tmp_path / "forked"), _tree(tmp_path / "inline")
    assert "vhdl/beside.vhd" in forked and "verilog/beside.v" in forked
    assert forked == inline


@pytest.mark.parametrize("printer", ["print_vhdl", "print_verilog"])  # this process / the child
@pytest.mark.parametrize("jobs", ["2", "1"])
def test_printer_error_is_a_user_error_and_leaves_nothing(tmp_path, monkeypatch, jobs, printer):
    monkeypatch.setenv(JOBS_ENV, jobs)

    def broken(nl, library=None):
        raise ValueError("the printer refuses this core")

    monkeypatch.setattr(f"nnfpga.backends.rtl.writer.{printer}", broken)
    with pytest.raises(UserError, match="refuses this core"):
        compile_model(random_mlp([6, 4], seed=1, name="broken"), "xcvu9p", "240MHz", tmp_path / "fw")
    assert list(tmp_path.iterdir()) == []


def test_child_endings_reach_the_parent(runs_here):
    if not runs_here:
        return
    assert can_fork()

    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no")

    def raise_unpicklable():
        raise Unpicklable("odd failure")

    with pytest.raises(RuntimeError, match="Unpicklable: odd failure"):
        run_beside(raise_unpicklable, "test task").wait()
    with pytest.raises(RuntimeError, match="test task ended abnormally"):
        run_beside(lambda: os._exit(3), "test task").wait()
    assert run_beside(lambda: {"sum": sum(range(10))}, "test task").wait() == {"sum": 45}
    started = time.monotonic()
    run_beside(lambda: time.sleep(60), "sleeper").cancel()
    assert time.monotonic() - started < 10


def test_runs_in_this_process_when_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
        seen: list[int] = []
        run_beside(lambda: seen.append(os.getpid()), "inline task").wait()
        assert seen == [os.getpid()]  # a child's append would not be seen here
    finally:
        stop.set()
        thread.join()


def test_one_usable_cpu_means_no_child(monkeypatch):
    monkeypatch.setattr("nnfpga.compiler.forked_child.usable_cpus", lambda: 1)
    assert not can_fork()
