"""The simulators' build cache: compiled models live outside the output folder.

A Verilator model takes 25-35 s to build, GHDL's analysis several seconds, the HLS
C-sim about ten: `entry` builds each once per content and reuses it.  Every entry sits
under `cache_root` (``$NNFPGA_CACHE_DIR``, else ``$XDG_CACHE_HOME/nnfpga``, else
``~/.cache/nnfpga``) in ``builds/<kind>-<key>``, where the key is a hash of everything
that decides the build (the sources read, the harness/testbench text, the tool and its
version, the flags), so an unchanged tree reuses its binary and two different trees
never share one.

A build runs in a temporary folder beside the entries and is renamed into place once
complete, with a marker file written last inside it: an entry without its marker (or a
temporary folder whose process is gone) is a killed build, removed and never used.  Two
processes building the same key wait for one another (a lock per key); had they not, the
rename would still let the loser use the winner's entry.  After each build the least
recently used entries beyond ``$NNFPGA_CACHE_MAX_GB`` (default 2) are deleted; using an
entry touches its marker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from nnfpga.core.errors import UserError

__all__ = ["COUNTS", "MARKER", "cache_root", "content_key", "entry", "max_bytes", "progress", "prune", "report"]

MARKER = "nnfpga-build.json"
DEFAULT_MAX_GB = 2.0
#: a temporary build folder older than this is abandoned even if its process id is alive
#: again (pid reuse, another host sharing the cache)
STALE_SECONDS = 24 * 3600
_TMP_PREFIX = ".tmp-"

#: builds and cache hits of this process, per kind: tests check reuse with these
COUNTS: dict[str, dict[str, int]] = {}

_reporter: Callable[[str], None] | None = None


def cache_root() -> Path:
    """``$NNFPGA_CACHE_DIR``, else ``$XDG_CACHE_HOME/nnfpga``, else ``~/.cache/nnfpga``."""
    base = os.environ.get("NNFPGA_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "nnfpga"


def max_bytes() -> int:
    """The size limit of the build entries: ``$NNFPGA_CACHE_MAX_GB`` gigabytes (default 2)."""
    text = os.environ.get("NNFPGA_CACHE_MAX_GB", "").strip()
    try:
        gb = float(text) if text else DEFAULT_MAX_GB
    except ValueError:
        gb = -1.0
    if not gb >= 0 or gb == float("inf"):
        raise UserError(f"NNFPGA_CACHE_MAX_GB={text!r}: the size limit of the simulator build cache must be "
                        f"a number of gigabytes >= 0 (default {DEFAULT_MAX_GB:g})")
    return int(gb * 1e9)


def content_key(*parts: bytes | str) -> str:
    """A hash of ``parts`` (each separated, so ("ab", "c") differs from ("a", "bc"))."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else bytes(p)
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()[:32]


@contextlib.contextmanager
def progress(fn: Callable[[str], None] | None) -> Iterator[None]:
    """Send the cache's messages ("building ...", "using the cached ...") to ``fn``
    while the block runs (the simulators are called through layers that take no callback)."""
    global _reporter
    old, _reporter = _reporter, fn
    try:
        yield
    finally:
        _reporter = old


def report(msg: str) -> None:
    """One progress message to the current `progress` callback, if any."""
    if _reporter is not None:
        _reporter(msg)


def entry(kind: str, key: str, build: Callable[[Path, Path], None], *, what: str,
          root: Path | None = None) -> Path:
    """The folder of the finished build ``kind``/``key``: reused when present, else made
    by ``build(folder, final)`` in a temporary folder and renamed into place (``final``: the
    entry's path once renamed, for tools that record absolute paths).  ``what`` names the
    build in progress messages ("the Verilator model").  A failing ``build`` leaves nothing."""
    limit = max_bytes()  # a bad setting stops before the build, not after it
    builds = Path(root if root is not None else cache_root()) / "builds"
    try:
        builds.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the simulator build cache {builds.parent}: {e.strerror or e}; set "
                        "NNFPGA_CACHE_DIR to a writable folder") from None
    name = f"{kind}-{key}"
    final = builds / name
    counts = COUNTS.setdefault(kind, {"builds": 0, "hits": 0})
    if _complete(final):
        return _hit(final, counts, what)
    with _locked(builds / f".lock-{name}"):
        if _complete(final):  # another process built it while we waited
            return _hit(final, counts, what)
        _clean(builds)
        report(f"building {what} (cached for next time)")
        t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}.{socket.gethostname()}.{os.getpid()}.",
                                    dir=builds))
        try:
            build(tmp, final)
            size = _size(tmp)
            (tmp / MARKER).write_text(json.dumps({"kind": kind, "key": key, "what": what, "bytes": size,
                                                  "build_seconds": round(time.perf_counter() - t0, 3)}))
            try:
                os.rename(tmp, final)
            except OSError:  # the same build renamed into place by a process that took no lock
                if not _complete(final):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        counts["builds"] += 1
    prune(builds.parent, limit, keep=final)
    return final


def _hit(final: Path, counts: dict[str, int], what: str) -> Path:
    with contextlib.suppress(OSError):
        os.utime(final / MARKER)  # most recently used: the last to be pruned
    counts["hits"] += 1
    report(f"using the cached build of {what}")
    return final


def _complete(path: Path) -> bool:
    return (path / MARKER).is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (released by the kernel if the process dies)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _clean(builds: Path) -> None:
    """Remove killed builds: entries without their marker, and temporary folders whose
    process is gone (or that are older than `STALE_SECONDS`)."""
    host = socket.gethostname()
    now = time.time()
    for p in builds.iterdir():
        if p.name.startswith(".lock-") or not p.is_dir():
            continue
        if p.name.startswith(_TMP_PREFIX):
            head, _, rest = p.name.rpartition(".")  # <prefix><name>.<host>.<pid>.<random>
            head, _, pid = head.rpartition(".")  # (a host name may hold dots)
            try:
                alive = head.endswith(f".{host}") and _alive(int(pid))
            except ValueError:
                alive = False
            try:
                old = now - p.stat().st_mtime > STALE_SECONDS
            except OSError:
                continue
            if not alive or old:
                shutil.rmtree(p, ignore_errors=True)
        elif not _complete(p):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def prune(root: Path | None = None, limit: int | None = None, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used complete entries until the rest fit in ``limit``
    bytes (default `max_bytes`); ``keep`` (the entry just built) is never deleted.
    Returns the deleted entries."""
    builds = Path(root if root is not None else cache_root()) / "builds"
    limit = max_bytes() if limit is None else limit
    entries = []
    for p in builds.iterdir() if builds.is_dir() else ():
        marker = p / MARKER
        try:
            used = marker.stat().st_mtime
            size = int(json.loads(marker.read_text()).get("bytes", 0))
        except (OSError, ValueError, AttributeError):
            continue
        entries.append((used, size, p))
    total = sum(size for _, size, _ in entries)
    deleted = []
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if keep is not None and p == keep:
            continue
        # the marker goes first: a half-deleted entry is then never mistaken for a build
        with contextlib.suppress(OSError):
            (p / MARKER).unlink()
            shutil.rmtree(p, ignore_errors=True)
            with contextlib.suppress(OSError):
                (builds / f".lock-{p.name}").unlink()
            deleted.append(p)
            total -= size
    return deleted
