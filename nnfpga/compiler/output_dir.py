"""The output directory of ``nnfpga compile``: which paths may be written, how a tree is
put in place, and how nnfpga recognises (and only ever deletes) what it made itself.

* A compile builds its tree inside a *work folder* beside OUTDIR
  (``.<outdir>.nnfpga-XXXXXXXX``, a unique `tempfile.mkdtemp` name) that carries a marker
  file with the host and the process id of the compile.  The finished tree is swapped
  with OUTDIR in one step (``renameat2(RENAME_EXCHANGE)``; two renames where the file
  system cannot) and the work folder, now holding the previous output, is removed.  Every
  exit path of the compile removes it; a work folder left by a killed compile is removed
  by the next compile in that folder once its marker proves that the process which made
  it has gone.  Nothing else is ever deleted.
* Every tree carries ``.nnfpga-manifest.json``: each file the compile wrote with its
  SHA-256, and the paths the other verbs (report, verify) write later.  OUTDIR is only
  replaced when it is missing, an empty folder, or a tree whose manifest still matches
  (no foreign file, no edited file); otherwise the compile stops and names the files.
* The run's own figures (compile time, host, absolute paths) go to ``run.json``: every
  other file of the tree is the same for the same inputs.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nnfpga.core.errors import UserError

MANIFEST = ".nnfpga-manifest.json"
RUN_RECORD = "run.json"
MANIFEST_FORMAT = "nnfpga output manifest 1"
WORK_MARKER = ".nnfpga-work.json"
WORK_FORMAT = "nnfpga compile work folder 1"
#: written (or rewritten) inside an output tree after the compile by ``nnfpga report`` /
#: ``nnfpga verify``, the cocotb benches (``sim/``), and the tree's own Vivado / HLS scripts
#: run in place (their default output folders): not foreign, their contents not checked.
#: ``sim/`` and ``.csim/`` also held the simulator builds of nnfpga before the build cache
#: (`nnfpga.sim.build_cache`): an old output with them is still replaced
LATER_FILES = ("report.json", "report.md", "report.html", "verify.json")
LATER_FOLDERS = ("synth", "sim", ".csim", "hls/.csim", "vivado/out", "vivado/ip", "hls/*_prj")
#: the file the IR is saved in; an output made before manifests existed has one
IR_FILE = "ir.json"
_WORK_NAME = re.compile(r"^\..+\.nnfpga-[A-Za-z0-9_]{8}$", re.DOTALL)  # an output name may hold a newline
_LISTED = 8  # foreign files named in a message; the rest are counted


def shown(path: Path | str) -> str:
    """A path for a one-line message: control characters (a newline in a folder name)
    are escaped so that the message stays one paragraph."""
    text = str(path)
    return repr(text) if any(ord(c) < 32 or ord(c) == 127 for c in text) else text


# ----------------------------------------------------------------------------- checks
def check_paths(outdir: Path, inputs: list[Path], dump_ir: Path | None) -> None:
    """Everything about ``-o`` and ``--dump-ir`` that can be checked before compiling:
    raises `UserError` naming the path."""
    with _named_os_errors("-o", outdir):
        out = _check_output_location(outdir, inputs)
    if dump_ir is not None:
        with _named_os_errors("--dump-ir", dump_ir):
            _check_dump_dir(dump_ir, out)
    with _named_os_errors("-o", outdir):
        check_replaceable(Path(os.path.abspath(outdir)), outdir)


@contextmanager
def _named_os_errors(flag: str, path: Path):
    """A path the system cannot even look at (a name too long, a loop of links) is the
    user's to fix."""
    try:
        yield
    except OSError as e:
        raise UserError(f"{flag} {shown(path)}: cannot use this path ({e.strerror or e})") from None


def _check_output_location(outdir: Path, inputs: list[Path]) -> Path:
    """``outdir`` may hold a compile's output at all; returns it absolute."""
    _check_writable_location(outdir, "-o")
    out = _absolute(outdir)
    cwd = Path.cwd().resolve()
    if out == Path(out.anchor):
        raise UserError(f"-o {shown(outdir)}: is the root of the file system; "
                        "give a new folder for the firmware (e.g. -o fw)")
    if out == cwd or out in cwd.parents:
        raise UserError(f"-o {shown(outdir)}: is the current directory or contains it; nnfpga replaces "
                        "the output folder whole, so give a new folder for the firmware (e.g. -o fw)")
    for folder in out.parents:
        if (folder / MANIFEST).is_file():
            raise UserError(f"-o {shown(outdir)}: is inside the nnfpga output folder {shown(folder)}, which a "
                            "compile replaces whole; give a folder outside it")
    for path in inputs:
        try:
            src = _absolute(path)
        except OSError:  # an unusable input path: the frontend says so when it reads it
            continue
        if src == out or out in src.parents:
            raise UserError(f"-o {shown(outdir)}: contains the input {shown(path)}; nnfpga replaces the "
                            "output folder whole, so give a new folder for the firmware (e.g. -o fw)")
    return out


def _absolute(path: Path) -> Path:
    """``path`` made absolute with its existing part resolved (symbolic links followed)."""
    path = Path(os.path.abspath(path))
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.resolve() / path.relative_to(existing)


def _check_writable_location(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` is a folder we may write into (missing
    folders in between are created, like ``mkdir -p``)."""
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists():
        if parent.is_symlink():
            raise UserError(f"{flag} {shown(path)}: {shown(parent)} is a symbolic link that leads nowhere "
                            "(broken, or a loop)")
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {shown(path)}: {shown(parent)} is a file, not a folder; "
                        "give a path inside a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {shown(path)}: cannot write into {shown(parent)} (permission denied); "
                        "give a folder you can write to")


def _check_dump_dir(dump_ir: Path, out: Path) -> None:
    _check_writable_location(dump_ir, "--dump-ir")
    where = _absolute(dump_ir)
    if where == out or out in where.parents or where in out.parents:
        raise UserError(f"--dump-ir {shown(dump_ir)}: overlaps the output folder; the output folder is "
                        "replaced whole, so give the IR dumps a folder of their own")
    plain = Path(os.path.abspath(dump_ir))
    if plain.is_symlink() or (plain.exists() and not plain.is_dir()):
        raise UserError(f"--dump-ir {shown(dump_ir)}: exists and is not a folder; "
                        "give a new or empty folder for the IR after each pass")
    if plain.is_dir() and any(plain.iterdir()):
        raise UserError(f"--dump-ir {shown(dump_ir)}: is a folder that already holds files; the dumps are "
                        "numbered in the order the passes run, so give a new or empty folder")


def check_replaceable(outdir: Path, given: Path | None = None) -> None:
    """``outdir`` is missing, an empty folder, or an nnfpga output whose manifest matches.
    ``given``: the path as the user wrote it, for the message."""
    name = shown(given if given is not None else outdir)
    if outdir.is_symlink():
        raise UserError(f"-o {name}: is a symbolic link; give the folder it points to, "
                        "or a new folder (nnfpga would replace the link, not its target)")
    if not outdir.exists():
        return
    if not outdir.is_dir():
        raise UserError(f"-o {name}: exists and is not a folder; give a new folder "
                        "for the firmware (nnfpga only replaces its own output folders)")
    if not any(outdir.iterdir()):
        return
    if not (outdir / MANIFEST).is_file():
        if (outdir / IR_FILE).exists():
            raise UserError(f"-o {name}: has an {IR_FILE} but no {MANIFEST}, so it was written by an "
                            "nnfpga from before output manifests, or not by nnfpga: nnfpga cannot tell its "
                            "files from yours and does not replace it; delete the folder yourself or give "
                            "a new one")
        raise UserError(f"-o {name}: exists and is not an nnfpga output folder (no {MANIFEST}); "
                        "give a new folder (nnfpga only replaces its own output)")
    problems = manifest_problems(outdir)
    if problems:
        listed = ", ".join(shown(p) for p in problems[:_LISTED])
        more = f" and {len(problems) - _LISTED} more" if len(problems) > _LISTED else ""
        raise UserError(f"-o {name}: is an nnfpga output folder, but these files were not written "
                        f"by nnfpga or were changed since: {listed}{more}; nnfpga would delete them when "
                        "replacing the folder, so move them out (or delete the folder yourself) "
                        "or give a new folder")


# ----------------------------------------------------------------------------- manifest
def write_manifest(tree: Path) -> None:
    """Record every file below ``tree`` (the run record by name only: it differs per run)."""
    files = {}
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_file() and rel not in (MANIFEST, RUN_RECORD):
            files[rel] = _sha256(path)
    manifest = {"format": MANIFEST_FORMAT, "files": files, "run_record": RUN_RECORD,
                "written_later": {"files": list(LATER_FILES), "folders": list(LATER_FOLDERS)}}
    (tree / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def manifest_problems(outdir: Path) -> list[str]:
    """The paths (relative to ``outdir``) that contradict its manifest: foreign files and
    folders, symbolic links, files whose contents changed.  A corrupt manifest is one
    problem, named.  An empty list: the tree is what nnfpga wrote (plus what the later
    verbs write)."""
    try:
        manifest = json.loads((outdir / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("unknown format")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return [f"{MANIFEST} (unreadable or not an nnfpga manifest)"]
    folders = {p.as_posix() for rel in files for p in Path(rel).parents}
    problems: list[str] = []
    for top, dirs, names in os.walk(outdir):  # symbolic links are reported, never followed
        base = Path(top).relative_to(outdir)
        for name in sorted(dirs):
            rel = (base / name).as_posix()
            if os.path.islink(os.path.join(top, name)):
                problems.append(rel)
            elif rel not in folders and not _written_later(rel):
                problems.append(rel + "/")
        dirs[:] = [d for d in dirs if (base / d).as_posix() in folders]
        for name in sorted(names):
            rel = (base / name).as_posix()
            if rel in (MANIFEST, RUN_RECORD) or _written_later(rel):
                continue
            path = Path(top) / name
            if (path.is_symlink() or not path.is_file()  # a pipe would block the hashing
                    or rel not in files or _sha256(path) != files[rel]):
                problems.append(rel)
    return sorted(problems)


def _written_later(rel: str) -> bool:
    parts = rel.split("/")
    return rel in LATER_FILES or any(
        fnmatch.fnmatchcase("/".join(parts[:len(f.split("/"))]), f) for f in LATER_FOLDERS)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- work folder
@dataclass
class WorkFolder:
    """A compile's private folder beside OUTDIR; the tree is built in ``tree``."""
    path: Path
    tree: Path
    #: OUTDIR's parent folders this compile created, innermost first
    made_parents: tuple[Path, ...] = ()

    def abandon(self) -> None:
        """After a failure: remove the folder and the (still empty) parents we made."""
        self.remove()
        for folder in self.made_parents:
            try:
                folder.rmdir()
            except OSError:  # not empty: someone else uses it now
                break

    def remove(self) -> None:
        """Delete the folder, its marker last: a removal cut short by a kill leaves a
        folder that the next compile can still prove is ours."""
        try:
            entries = [p for p in self.path.iterdir() if p.name != WORK_MARKER]
        except OSError:
            return
        for path in entries:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)


def make_work_folder(outdir: Path) -> WorkFolder:
    """Create OUTDIR's missing parents and a marked work folder beside it (after removing
    stale ones of killed compiles).  The tree inside gets ordinary permissions (the
    umask's), the work folder itself stays private (0700) while it exists."""
    parent = Path(os.path.abspath(outdir)).parent
    missing = [p for p in (parent, *parent.parents) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work_folders(parent)
    # a shortened name: the output's own may use up the file system's 255 bytes
    work = Path(tempfile.mkdtemp(prefix=f".{outdir.name[:64]}.nnfpga-", dir=parent))
    folder = WorkFolder(work, work / "tree", tuple(missing))
    try:
        (work / WORK_MARKER).write_text(json.dumps(_this_process()))
        folder.tree.mkdir()
    except BaseException:
        folder.abandon()
        raise
    return folder


def install(work: WorkFolder, outdir: Path) -> None:
    """Put the finished tree at ``outdir`` and remove the work folder (with the previous
    output, which the manifest check allowed us to replace)."""
    check_replaceable(outdir)  # again: the folder may have changed while we compiled
    if outdir.exists():
        if not _exchange(work.tree, outdir):
            old = work.path / "previous"
            os.rename(outdir, old)
            try:
                os.rename(work.tree, outdir)
            except BaseException:
                os.rename(old, outdir)
                raise
    else:
        os.rename(work.tree, outdir)
    work.remove()


class Terminated(BaseException):
    """SIGTERM arrived during a compile: it unwinds like Ctrl-C, so the work folder goes."""


@contextmanager
def cleanup_on_sigterm():
    """Within: SIGTERM (a batch system's time limit, ``kill``) first removes the work
    folder, then ends the process as the signal asks.  Only where SIGTERM has its default
    action and this is the main thread: a program with its own handler keeps it."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    pid = os.getpid()

    def stop(signum, frame):
        if os.getpid() != pid:  # a forked helper: its parent cleans up
            os._exit(128 + signum)
        raise Terminated()
    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(pid, signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ----------------------------------------------------------------------------- stale folders
def _this_process() -> dict:
    return {"format": WORK_FORMAT, "host": socket.gethostname(), "pid": os.getpid(),
            "pid_started": _start_ticks(os.getpid())}


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid
    from the one that made a work folder; None where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":  # a zombie has finished; only its exit status is left
            return -1
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _process_gone(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    now = _start_ticks(pid)
    return now == -1 or (started is not None and now is not None and now != started)


def is_stale_work_folder(path: Path) -> bool:
    """``path`` is a work folder that nnfpga made (its name, owner and marker say so) on
    this host, and the compile that made it has gone."""
    try:
        if not _WORK_NAME.match(path.name) or path.is_symlink() or not path.is_dir():
            return False
        if path.stat().st_uid != os.getuid():
            return False
        marker = path / WORK_MARKER
        if marker.is_symlink() or not marker.is_file():
            return False
        info = json.loads(marker.read_text())
        if info.get("format") != WORK_FORMAT or info.get("host") != socket.gethostname():
            return False
        pid, started = info["pid"], info.get("pid_started")
        if not isinstance(pid, int) or pid <= 0 or not (started is None or isinstance(started, int)):
            return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return False
    return _process_gone(pid, started)


def remove_stale_work_folders(parent: Path) -> list[Path]:
    """Remove the work folders of killed compiles in ``parent``; returns them."""
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for path in entries:
        if is_stale_work_folder(path):
            WorkFolder(path, path / "tree").remove()
            removed.append(path)
    return removed


def write_run_record(tree: Path, record: dict) -> None:
    (tree / RUN_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
