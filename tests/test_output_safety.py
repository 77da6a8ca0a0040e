"""The output folder survives interrupted compiles: kill -9 at any moment leaves the previous
complete output (its manifest verifies) or none, and the next compile removes what the
killed one left; work folders are unique, cleaned on every exit path, and nothing nnfpga
did not make is deleted; the tree has the permissions the umask asks for."""

from __future__ import annotations

import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnfpga.compiler import output_dir
from nnfpga.compiler.driver import compile_model
from nnfpga.compiler.output_dir import (MANIFEST, RUN_RECORD, WORK_FORMAT, WORK_MARKER, is_stale_work_folder,
                                        manifest_problems)
from nnfpga.core.errors import UserError
from tests.conftest import MODELS, ROOT

MODEL = MODELS / "ternary_mlp.h5"
KILLS = 20


def _complete(out: Path) -> bool:
    """``out`` is a whole nnfpga output: its manifest lists the IR and the HDL and verifies."""
    if not (out / MANIFEST).is_file():
        return False
    files = json.loads((out / MANIFEST).read_text())["files"]
    return {"ir.json", "rtl.json", "report.json"} <= set(files) and manifest_problems(out) == []


def _child(out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "nnfpga", "compile", str(MODEL), "-o", str(out)],
                            cwd=out.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _timed_run(out: Path) -> tuple[float, float | None]:
    """Seconds a whole child compile takes, and when its work folder first appeared."""
    start = time.monotonic()
    proc = _child(out)
    appeared = None
    while proc.poll() is None:
        if appeared is None and any(p.name.startswith(f".{out.name}.nnfpga-") for p in out.parent.iterdir()):
            appeared = time.monotonic() - start
        time.sleep(0.002)
    assert proc.returncode == 0
    return time.monotonic() - start, appeared


def test_kill_9_at_20_points_leaves_the_previous_output_or_none(tmp_path):
    out = tmp_path / "fw"
    _timed_run(out)  # warms the caches; the second run is the one measured
    duration, appeared = _timed_run(out)
    # a fixed schedule over the whole run, most points after the work folder appears
    rng = random.Random(18)
    start_writing = appeared if appeared is not None else 0.0
    points = [rng.uniform(0, duration) for _ in range(KILLS * 2 // 5)]
    points += [rng.uniform(start_writing, duration) for _ in range(KILLS - len(points))]
    outcomes = {"previous": 0, "absent": 0, "left work folder": 0}
    for at in points:
        proc = _child(out)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists():
            assert _complete(out), f"killed at {at:.3f} s: the output is not a whole nnfpga output"
            outcomes["previous"] += 1
        else:
            outcomes["absent"] += 1
        left = [p for p in tmp_path.iterdir() if p != out]
        assert all(is_stale_work_folder(p) for p in left), f"killed at {at:.3f} s: {left}"
        outcomes["left work folder"] += bool(left)
        compile_model(str(MODEL), outdir=out)
        assert [p.name for p in tmp_path.iterdir()] == ["fw"], f"after the kill at {at:.3f} s"
        assert _complete(out)
    print(f"compile {duration:.2f} s (work folder at {start_writing:.2f} s): {outcomes}")


def _interrupted(out: Path, patch) -> None:
    """Compile into ``out`` in a forked child that ``patch`` makes die (os._exit, like a
    kill: no clean-up) at one step."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            patch()
            compile_model(str(MODEL), outdir=out)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the child was meant to die at the patched step"


def _die(*args, **kwargs):
    os._exit(9)


def _die_after_first(real):
    """``real`` once (removing the new tree's folder), then death."""
    def call(*args, **kwargs):
        real(*args, **kwargs)
        os._exit(9)
    return call


STEPS = {
    "while writing the tree": lambda: setattr(importlib.import_module("nnfpga.backends.hls"), "write_hls", _die),
    "before the swap": lambda: setattr(output_dir, "_exchange", _die),
    "between the two renames": lambda: (setattr(output_dir, "_exchange", lambda a, b: False),
                                        setattr(output_dir.os, "rename", _die_after_first(os.rename))),
    "after the swap": lambda: setattr(output_dir.WorkFolder, "remove", _die),
    "while removing the work folder": lambda: setattr(output_dir.shutil, "rmtree",
                                                      _die_after_first(output_dir.shutil.rmtree)),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_compile_killed_at_each_step_is_cleaned_up_by_the_next(step, tmp_path):
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out)
    _interrupted(out, STEPS[step])
    assert not out.exists() or _complete(out)
    (left,) = [p for p in tmp_path.iterdir() if p != out]
    assert is_stale_work_folder(left) and (left / WORK_MARKER).is_file()
    (tmp_path / "mine").mkdir()
    compile_model(str(MODEL), outdir=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw", "mine"] and _complete(out)


def _marked(folder: Path, **fields) -> Path:
    folder.mkdir()
    info = {"format": WORK_FORMAT, "host": os.uname().nodename, "pid": os.getpid(), "pid_started": None}
    (folder / WORK_MARKER).write_text(json.dumps({**info, **fields}))
    (folder / "tree" / "vhdl").mkdir(parents=True)
    return folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_provably_stale_work_folders_are_removed(tmp_path):
    import socket
    host = socket.gethostname()
    dead = _marked(tmp_path / ".fw.nnfpga-dead1234", host=host, pid=_dead_pid())
    reused = _marked(tmp_path / ".fw.nnfpga-reus1234", host=host, pid_started=1)  # our pid, an older process
    live = _marked(tmp_path / ".fw.nnfpga-live1234", host=host, pid_started=output_dir._start_ticks(os.getpid()))
    other_host = _marked(tmp_path / ".fw.nnfpga-host1234", host=host + "-other", pid=_dead_pid())
    other_name = _marked(tmp_path / ".fw.nnfpga-x", host=host, pid=_dead_pid())  # not a mkdtemp name
    newline = _marked(tmp_path / ".f\nw.nnfpga-nl123456", host=host, pid=_dead_pid())
    unmarked = tmp_path / ".fw.nnfpga-none1234"
    unmarked.mkdir()
    linked = tmp_path / ".fw.nnfpga-link1234"
    linked.symlink_to(dead)
    removed = sorted(p.name for p in output_dir.remove_stale_work_folders(tmp_path))
    assert removed == sorted([dead.name, reused.name, newline.name])
    for kept in (live, other_host, other_name, unmarked, linked):
        assert kept.exists() or kept.is_symlink(), kept
    assert not dead.exists() and not reused.exists() and not newline.exists()


def test_work_folders_have_unique_names_and_the_users_backup_lookalikes_stay(tmp_path):
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out)
    (tmp_path / ".fw.old").mkdir()
    (tmp_path / ".fw.old" / "keep.txt").write_text("mine")
    (tmp_path / ".fw.new").write_text("a file where a backup folder used to go")
    a, b = output_dir.make_work_folder(out), output_dir.make_work_folder(out)
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path
    a.remove(), b.remove()
    compile_model(str(MODEL), outdir=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fw.new", ".fw.old", "fw"]
    assert (tmp_path / ".fw.old" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError, MemoryError])
def test_every_failure_removes_the_work_folder_and_keeps_the_output(error, tmp_path, monkeypatch):
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out)
    before = (out / MANIFEST).read_bytes()

    def broken(*args, **kwargs):
        raise error("stop")
    import nnfpga.backends.hls as hls
    monkeypatch.setattr(hls, "write_hls", broken)
    with pytest.raises(error):
        compile_model(str(MODEL), outdir=out)
    assert [p.name for p in tmp_path.iterdir()] == ["fw"]
    assert (out / MANIFEST).read_bytes() == before and _complete(out)


def test_a_file_added_during_the_compile_stops_the_swap(tmp_path, monkeypatch):
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out)
    import nnfpga.backends.hls as hls
    real = hls.write_hls

    def and_meanwhile(*args, **kwargs):
        (out / "notes.txt").write_text("written while nnfpga compiled")
        return real(*args, **kwargs)
    monkeypatch.setattr(hls, "write_hls", and_meanwhile)
    with pytest.raises(UserError, match="notes.txt"):
        compile_model(str(MODEL), outdir=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw"]
    assert (out / "notes.txt").read_text() == "written while nnfpga compiled"


def test_replacing_without_an_atomic_exchange(tmp_path, monkeypatch):
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out, reuse=2)
    monkeypatch.setattr(output_dir, "_exchange", lambda a, b: False)
    compile_model(str(MODEL), outdir=out)
    assert [p.name for p in tmp_path.iterdir()] == ["fw"] and _complete(out)
    assert json.loads((out / "report.json").read_text())["layers"][1]["reuse_factor"] == 1


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_the_tree_has_the_permissions_of_the_umask(umask, tmp_path):
    old = os.umask(umask)
    try:
        compile_model(str(MODEL), outdir=tmp_path / "new" / "parents" / "fw")
    finally:
        os.umask(old)
    root = tmp_path / "new"
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == want, f"{path}: {oct(mode)}, the umask {oct(umask)} asks for {oct(want)}"


def test_the_manifest_lists_every_file_but_the_run_record(tmp_path):
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out)
    files = set(json.loads((out / MANIFEST).read_text())["files"])
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == written - {MANIFEST, RUN_RECORD}
    assert json.loads((out / RUN_RECORD).read_text())["compile_seconds"] >= 0
    assert "compile_seconds" not in json.loads((out / "report.json").read_text())


def test_a_swap_the_file_system_refuses_is_the_users_error(tmp_path, monkeypatch):
    import errno
    out = tmp_path / "fw"
    compile_model(str(MODEL), outdir=out)
    before = (out / MANIFEST).read_bytes()

    def busy(a, b):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(b))
    monkeypatch.setattr(output_dir, "_exchange", busy)
    with pytest.raises(UserError, match=f"-o {out}: cannot put the output there: Device or resource busy"):
        compile_model(str(MODEL), outdir=out, reuse=2)
    assert [p.name for p in tmp_path.iterdir()] == ["fw"] and (out / MANIFEST).read_bytes() == before


def test_a_failed_compile_removes_the_parent_folders_it_made(tmp_path, monkeypatch):
    import nnfpga.backends.hls as hls

    def broken(*args, **kwargs):
        raise RuntimeError("stop")
    monkeypatch.setattr(hls, "write_hls", broken)
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError):
        compile_model(str(MODEL), outdir=tmp_path / "a" / "b" / "c" / "fw")
    assert [p.name for p in tmp_path.iterdir()] == ["a"] and not any((tmp_path / "a").iterdir())


def test_the_printer_child_of_a_killed_compile_dies_with_it(runs_here):
    """Else it would go on writing into a work folder that the next compile removes."""
    from nnfpga.compiler.forked_child import can_fork, run_beside
    if not runs_here:
        return
    assert can_fork(), "this test needs fork, two CPUs and a single thread"
    read_fd, write_fd = os.pipe()
    compile_pid = os.fork()
    if compile_pid == 0:  # pragma: no cover - the compile, killed while its child works
        try:
            os.close(read_fd)
            beside = run_beside(lambda: time.sleep(60), "a long task")
            os.write(write_fd, str(beside._pid).encode())
            os.close(write_fd)
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    os.close(write_fd)
    child = int(os.read(read_fd, 64))  # not to EOF: the child holds the pipe open while it lives
    os.close(read_fd)
    os.waitpid(compile_pid, 0)
    deadline = time.monotonic() + 10
    while output_dir._start_ticks(child) not in (None, -1) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert output_dir._start_ticks(child) in (None, -1), "the child outlived the killed compile"


def test_sigterm_removes_the_work_folder_before_the_process_ends(tmp_path):
    out = tmp_path / "fw"
    _timed_run(out)
    duration, appeared = _timed_run(out)
    start_writing = appeared if appeared is not None else 0.0
    rng = random.Random(15)
    codes = set()
    for at in sorted(rng.uniform(start_writing, duration) for _ in range(6)):
        proc = _child(out)
        time.sleep(at)
        proc.send_signal(signal.SIGTERM)
        codes.add(proc.wait())
        assert [p.name for p in tmp_path.iterdir()] in (["fw"], []), f"SIGTERM at {at:.3f} s"
        assert not out.exists() or _complete(out)
    assert codes <= {0, -signal.SIGTERM}, codes
