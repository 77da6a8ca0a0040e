"""The simulators' build cache (`nnfpga.sim.build_cache`): builds outside the output
folder, reused by content, atomic under concurrency, killed builds ignored, bounded in
size; and ``nnfpga verify`` leaving OUTDIR as compile wrote it plus verify.json."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnfpga.compiler.cli import main
from nnfpga.sim import build_cache

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"
MODEL = MODELS / "ternary_mlp.h5"  # 16 inputs
MAX_OUTDIR_BYTES = 5_000_000


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache for the test (never the user's ~/.cache/nnfpga)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("NNFPGA_CACHE_DIR", str(root))
    monkeypatch.delenv("NNFPGA_CACHE_MAX_GB", raising=False)
    monkeypatch.setattr(build_cache, "COUNTS", {})
    return root


def _entries(root: Path, kind: str | None = None) -> list[Path]:
    builds = root / "builds"
    return sorted(p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (kind is None or p.name.startswith(kind + "-"))) if builds.is_dir() else []


def _writer(text: str, calls: list | None = None, size: int = 0):
    def build(tmp: Path, final: Path) -> None:
        if calls is not None:
            calls.append(final)
        (tmp / "out.txt").write_text(text)
        if size:
            (tmp / "blob").write_bytes(b"\0" * size)
    return build


# ----------------------------------------------------------------------------- the cache alone
def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NNFPGA_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert build_cache.cache_root() == tmp_path / "home" / ".cache" / "nnfpga"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build_cache.cache_root() == tmp_path / "xdg" / "nnfpga"
    monkeypatch.setenv("NNFPGA_CACHE_DIR", str(tmp_path / "mine"))
    assert build_cache.cache_root() == tmp_path / "mine"


def test_entry_built_once_then_reused(cache):
    calls, seen = [], []
    with build_cache.progress(seen.append):
        first = build_cache.entry("demo", "k1", _writer("one", calls), what="the demo")
        again = build_cache.entry("demo", "k1", _writer("other", calls), what="the demo")
    assert first == again and first.parent == cache / "builds"
    assert (first / "out.txt").read_text() == "one" and len(calls) == 1
    assert build_cache.COUNTS["demo"] == {"builds": 1, "hits": 1}
    assert seen == ["building the demo (cached for next time)", "using the cached build of the demo"]
    other = build_cache.entry("demo", "k2", _writer("two", calls), what="the demo")
    assert other != first and (other / "out.txt").read_text() == "two"
    marker = json.loads((first / build_cache.MARKER).read_text())
    assert marker["key"] == "k1" and marker["bytes"] == 3


def test_content_key_separates_parts():
    assert build_cache.content_key("ab", "c") != build_cache.content_key("a", "bc")
    assert build_cache.content_key(b"x", "y") == build_cache.content_key("x", b"y")


def test_failed_build_leaves_nothing(cache):
    def broken(tmp: Path, final: Path) -> None:
        (tmp / "half.o").write_text("x")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        build_cache.entry("demo", "k", broken, what="the demo")
    assert [p.name for p in (cache / "builds").iterdir() if not p.name.startswith(".lock-")] == []
    assert build_cache.COUNTS["demo"]["builds"] == 0


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_killed_builds_are_ignored_and_cleaned(cache):
    import socket
    builds = cache / "builds"
    builds.mkdir(parents=True)
    # a build killed before its rename: its temporary folder, its process gone
    dead = builds / f".tmp-demo-k.{socket.gethostname()}.{_dead_pid()}.abc123"
    (dead / "obj").mkdir(parents=True)
    # an entry without its marker (renamed by hand, or the marker lost): never used
    (builds / "demo-k").mkdir()
    (builds / "demo-k" / "out.txt").write_text("half")
    # a build in progress in a live process (this one's parent) is left alone
    live = builds / f".tmp-demo-other.{socket.gethostname()}.{os.getppid()}.xyz789"
    live.mkdir()
    got = build_cache.entry("demo", "k", _writer("whole"), what="the demo")
    assert (got / "out.txt").read_text() == "whole"
    assert not dead.exists() and live.exists()
    assert build_cache.COUNTS["demo"]["builds"] == 1


def test_loser_of_a_race_uses_the_winners_entry(cache):
    """Another process (one that took no lock) renames the same build into place first."""
    def racing(tmp: Path, final: Path) -> None:
        winner = final.parent / ".tmp-winner"
        winner.mkdir()
        (winner / "out.txt").write_text("winner")
        (winner / build_cache.MARKER).write_text(json.dumps({"bytes": 6}))
        os.rename(winner, final)
        (tmp / "out.txt").write_text("loser")

    got = build_cache.entry("demo", "k", racing, what="the demo")
    assert (got / "out.txt").read_text() == "winner"
    assert [p.name for p in (cache / "builds").iterdir() if not p.name.startswith(".lock-")] == ["demo-k"]


def _concurrent_build(root: str, out: str) -> None:
    os.environ["NNFPGA_CACHE_DIR"] = root

    def slow(tmp: Path, final: Path) -> None:
        with open(Path(root) / "calls.txt", "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (tmp / "out.txt").write_text(str(os.getpid()))

    got = build_cache.entry("demo", "same", slow, what="the demo")
    Path(out).write_text(f"{got}\n{(got / 'out.txt').read_text()}")


def test_two_processes_building_the_same_key(cache, tmp_path):
    cache.mkdir()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_concurrent_build, args=(str(cache), str(tmp_path / f"r{i}"))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    results = {(tmp_path / f"r{i}").read_text() for i in range(2)}
    assert len(results) == 1  # the same entry with the same content for both
    assert len((cache / "calls.txt").read_text().split()) == 1  # built once: the second waited
    assert len(_entries(cache)) == 1


def test_least_recently_used_entries_pruned(cache, monkeypatch):
    monkeypatch.setenv("NNFPGA_CACHE_MAX_GB", str(2.5e-6))  # 2,500 bytes: two 1,000-byte entries
    a = build_cache.entry("demo", "a", _writer("a", size=1000), what="a")
    b = build_cache.entry("demo", "b", _writer("b", size=1000), what="b")
    past = time.time() - 100
    os.utime(a / build_cache.MARKER, (past, past))
    os.utime(b / build_cache.MARKER, (past + 1, past + 1))
    build_cache.entry("demo", "a", _writer("a"), what="a")  # used: now the most recent
    c = build_cache.entry("demo", "c", _writer("c", size=1000), what="c")
    assert a.exists() and c.exists() and not b.exists()
    assert build_cache.max_bytes() == 2500
    monkeypatch.setenv("NNFPGA_CACHE_MAX_GB", "0")
    d = build_cache.entry("demo", "d", _writer("d"), what="d")
    assert _entries(cache) == [d]  # the one just built stays even above the limit


def test_bad_settings_are_user_errors(cache, monkeypatch, tmp_path):
    from nnfpga.core.errors import UserError
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv("NNFPGA_CACHE_MAX_GB", bad)
        with pytest.raises(UserError, match="NNFPGA_CACHE_MAX_GB"):
            build_cache.max_bytes()
    monkeypatch.delenv("NNFPGA_CACHE_MAX_GB")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NNFPGA_CACHE_DIR", str(tmp_path / "file" / "cache"))
    with pytest.raises(UserError, match="NNFPGA_CACHE_DIR"):
        build_cache.entry("demo", "k", _writer("x"), what="the demo")


# ----------------------------------------------------------------------------- verify
def _compile(out: Path, *extra: str) -> set[str]:
    assert main(["compile", str(MODEL), "--target", "xcvu9p", "--clock", "240MHz", "-o", str(out), *extra]) == 0
    return _files(out)


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*")}


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


@pytest.fixture
def samples(tmp_path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(5).normal(size=(300, 16)))
    return path


def test_verify_ghdl_keeps_outdir_clean_and_reuses(cache, tmp_path, samples, capsys):
    out = tmp_path / "fw"
    compiled = _compile(out)
    assert main(["verify", str(out), "--input", str(samples), "--sim", "ghdl"]) == 0
    assert _files(out) == compiled | {"verify.json"}
    assert "ghdl: building the GHDL analysis of the VHDL (cached for next time)" in capsys.readouterr().err
    [entry] = _entries(cache, "ghdl")
    built = (entry / build_cache.MARKER).read_text()

    assert main(["verify", str(out), "--input", str(samples), "--sim", "ghdl"]) == 0
    assert "ghdl: using the cached build of the GHDL analysis of the VHDL" in capsys.readouterr().err
    assert build_cache.COUNTS["ghdl"] == {"builds": 1, "hits": 1}
    assert _entries(cache, "ghdl") == [entry] and (entry / build_cache.MARKER).read_text() == built

    _compile(out, "--reuse", "2")  # another tree: another key, the first entry untouched
    assert main(["verify", str(out), "--input", str(samples), "--sim", "ghdl"]) == 0
    assert build_cache.COUNTS["ghdl"] == {"builds": 2, "hits": 1}
    assert len(_entries(cache, "ghdl")) == 2 and entry in _entries(cache, "ghdl")


@pytest.mark.slow
def test_verify_all_simulators_outdir_small_and_cached(cache, tmp_path, samples, capsys):
    out = tmp_path / "fw"
    compiled = _compile(out)
    assert main(["verify", str(out), "--input", str(samples)]) == 0
    err = capsys.readouterr().err
    assert "verilator: building the Verilator model (cached for next time)" in err
    assert "csim: building the HLS C-sim (cached for next time)" in err
    assert _files(out) == compiled | {"verify.json"}
    assert not (out / "sim").exists() and not (out / ".csim").exists() and not (out / "hls" / ".csim").exists()
    assert _size(out) < MAX_OUTDIR_BYTES
    kinds = ("verilator", "ghdl", "csim")
    first = {k: _entries(cache, k) for k in kinds}
    assert all(len(v) == 1 for v in first.values())
    assert all(build_cache.COUNTS[k]["builds"] == 1 for k in kinds)

    assert main(["verify", str(out), "--input", str(samples)]) == 0
    err = capsys.readouterr().err
    assert "verilator: using the cached build of the Verilator model" in err and "building" not in err
    assert all(build_cache.COUNTS[k] == {"builds": 1, "hits": 1} for k in kinds)

    _compile(out, "--reuse", "2")
    assert main(["verify", str(out), "--input", str(samples), "--sim", "verilator,csim"]) == 0
    for k in ("verilator", "csim"):
        assert len(_entries(cache, k)) == 2 and set(first[k]) < set(_entries(cache, k))
    assert _size(out) < MAX_OUTDIR_BYTES


@pytest.mark.slow
def test_ghdl_synth_netlist_in_the_cache(cache, tmp_path):
    from nnfpga.compiler.driver import load_firmware
    from nnfpga.ir.emulator import run_raw
    from nnfpga.sim.ghdl import run_ghdl_synth
    out = tmp_path / "fw"
    compiled = _compile(out)
    g = load_firmware(out)
    t = g.input.info.type
    x = np.random.default_rng(2).integers(t.min_raw, t.max_raw + 1, (100, 16))
    np.testing.assert_array_equal(run_ghdl_synth(out, x), run_raw(g, x).reshape(100, -1))
    assert _files(out) == compiled
    assert len(_entries(cache, "ghdl-synth")) == 1 and len(_entries(cache, "verilator")) == 1


@pytest.mark.parametrize("model", sorted(p.name for p in MODELS.iterdir() if p.suffix in (".h5", ".keras")))
def test_every_example_outdir_under_5mb_after_verify(cache, tmp_path, model):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / model), "--target", "xcvu9p", "--clock", "240MHz", "-o", str(out)]) == 0
    compiled = _files(out)
    n_in = json.loads((out / "rtl.json").read_text())["n_inputs"]
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(50, n_in)))
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npy"), "--sim", "ghdl"]) == 0
    assert _files(out) == compiled | {"verify.json"}
    assert _size(out) < MAX_OUTDIR_BYTES
