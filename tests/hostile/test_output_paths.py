"""Output paths: ``-o`` and ``--dump-ir`` naming files, folders of the user's, the current
directory, the model's folder, the root, odd names; nnfpga outputs with foreign or edited
files; look-alikes of the compiler's own work folders beside the output.  Each is a clean
exit-2 message naming the path, or a documented success that touches nothing else."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest

from nnfpga.compiler.output_dir import MANIFEST, WORK_FORMAT, WORK_MARKER
from tests.hostile.harness import MODELS, Case, run_case

MODEL = str(MODELS / "ternary_mlp.h5")
COMPILE = ("compile", MODEL)


@lru_cache(maxsize=1)
def _compiled() -> Path:
    """One nnfpga output of the model for the whole module (copied into each case)."""
    from nnfpga.compiler.driver import compile_model
    root = Path(tempfile.mkdtemp(prefix="nnfpga-out-cases-"))
    atexit.register(shutil.rmtree, root, True)
    compile_model(MODEL, outdir=root / "fw")
    return root / "fw"


def _output(tmp: Path, name: str = "out") -> Path:
    shutil.copytree(_compiled(), tmp / name)
    return tmp / name


def _write(rel: str, text: str = "mine\n"):
    def setup(tmp: Path) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return setup


def _folder(rel: str):
    return lambda tmp: (tmp / rel).mkdir(parents=True)


def _output_with(change):
    """An nnfpga output at ``out``, then ``change(out)``."""
    def setup(tmp: Path) -> None:
        change(_output(tmp))
    return setup


def _edit_vhdl(out: Path) -> None:
    (vhd,) = (out / "vhdl").glob("*.vhd")
    vhd.write_text(vhd.read_text() + "-- my fix\n")


def _later_files(out: Path) -> None:
    (out / "verify.json").write_text("{}")
    (out / "report.html").write_text("<html></html>")
    (out / "sim" / "verilator").mkdir(parents=True)
    (out / "sim" / "verilator" / "obj.o").write_bytes(b"\0")
    (out / "synth" / "verilog").mkdir(parents=True)
    (out / "vivado" / "out").mkdir()
    (out / "vivado" / "out" / "post_synth.dcp").write_bytes(b"\0")
    (out / "hls" / "ternary_mlp_prj" / "solution1").mkdir(parents=True)


def _marker(tmp: Path, name: str, **fields) -> None:
    (tmp / name).mkdir()
    info = {"format": WORK_FORMAT, "host": socket.gethostname(), "pid": os.getpid(), "pid_started": None}
    (tmp / name / WORK_MARKER).write_text(json.dumps({**info, **fields}))
    (tmp / name / "tree").mkdir()


def _beside_output(extra):
    def setup(tmp: Path) -> None:
        _output(tmp)
        extra(tmp)
    return setup


def _symlink(link: str, target: str, make_target: bool = True):
    def setup(tmp: Path) -> None:
        if make_target:
            (tmp / target).mkdir()
        (tmp / link).symlink_to(tmp / target)
    return setup


def _model_in(rel: str):
    def setup(tmp: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MODEL, tmp / rel)
    return setup


OK = ("compiled",)

CASES = [
    # -o names something that is not a folder, or a path through a file
    Case("out-existing-file", (*COMPILE, "-o", "{tmp}/out"), ("-o", "out", "exists and is not a folder"),
         _write("out"), outputs=()),
    Case("out-device", (*COMPILE, "-o", "/dev/null"), ("/dev/null", "is not a folder"), outputs=()),
    Case("out-inside-file", (*COMPILE, "-o", "{tmp}/notes.txt/fw"), ("notes.txt", "is a file, not a folder"),
         _write("notes.txt"), outputs=()),
    Case("out-deep-inside-file", (*COMPILE, "-o", "{tmp}/notes.txt/a/b/fw"), ("notes.txt", "is a file"),
         _write("notes.txt"), outputs=()),
    Case("out-inside-model-file", (*COMPILE, "-o", MODEL + "/fw"), ("ternary_mlp.h5", "is a file"), outputs=()),
    Case("out-symlink", (*COMPILE, "-o", "{tmp}/out"), ("out", "symbolic link"), _symlink("out", "real"),
         outputs=()),
    Case("out-dangling-symlink", (*COMPILE, "-o", "{tmp}/out"), ("out", "symbolic link"),
         _symlink("out", "gone", make_target=False), outputs=()),
    Case("out-through-broken-link", (*COMPILE, "-o", "{tmp}/broken/fw"), ("broken", "symbolic link that leads nowhere"),
         _symlink("broken", "gone", make_target=False), outputs=()),
    # folders that nnfpga did not write, or that hold the user's files
    Case("out-user-folder", (*COMPILE, "-o", "{tmp}/out"), ("out", "not an nnfpga output folder", MANIFEST),
         _write("out/thesis.tex"), outputs=()),
    Case("out-user-folder-with-ir-json", (*COMPILE, "-o", "{tmp}/out"),
         ("out", "ir.json", "before output manifests", "delete the folder yourself"),
         lambda tmp: (_write("out/ir.json", "{}")(tmp), _write("out/thesis.tex")(tmp)), outputs=()),
    Case("out-legacy-output", (*COMPILE, "-o", "{tmp}/out"), ("out", "no .nnfpga-manifest.json"),
         _output_with(lambda out: (out / MANIFEST).unlink()), outputs=()),
    Case("out-foreign-file", (*COMPILE, "-o", "{tmp}/out"), ("out", "notes.txt", "not written by nnfpga"),
         _output_with(lambda out: (out / "notes.txt").write_text("mine")), outputs=()),
    Case("out-edited-file", (*COMPILE, "-o", "{tmp}/out"), ("vhdl/ternary_mlp.vhd", "changed"),
         _output_with(_edit_vhdl), outputs=()),
    Case("out-foreign-folder", (*COMPILE, "-o", "{tmp}/out"), ("mydata/",),
         _output_with(lambda out: (_folder("mydata/run1")(out), _write("mydata/run1/a.csv")(out))), outputs=()),
    Case("out-file-in-vivado-folder", (*COMPILE, "-o", "{tmp}/out"), ("vivado/notes.txt",),
         _output_with(lambda out: (out / "vivado" / "notes.txt").write_text("mine")), outputs=()),
    Case("out-foreign-symlink", (*COMPILE, "-o", "{tmp}/out"), ("link",),
         _output_with(lambda out: (out / "link").symlink_to("/etc")), outputs=()),
    Case("out-corrupt-manifest", (*COMPILE, "-o", "{tmp}/out"), ("out", MANIFEST, "unreadable"),
         _output_with(lambda out: (out / MANIFEST).write_text("{not json")), outputs=()),
    Case("out-many-foreign-files", (*COMPILE, "-o", "{tmp}/out"), ("f00.txt", "and 4 more"),
         _output_with(lambda out: [(out / f"f{i:02d}.txt").write_text("x") for i in range(12)]), outputs=()),
    Case("out-inside-output", (*COMPILE, "-o", "{tmp}/out/sub"), ("out/sub", "inside the nnfpga output folder"),
         _output_with(lambda out: None), outputs=()),
    # folders that must never be replaced
    Case("out-root", (*COMPILE, "-o", "/"), ("-o /", "root of the file system"), outputs=()),
    Case("out-cwd", (*COMPILE, "-o", "."), ("-o .", "current directory"), outputs=()),
    Case("out-empty-string", (*COMPILE, "-o", ""), ("current directory",), outputs=()),
    Case("out-parent-of-cwd", (*COMPILE, "-o", ".."), ("-o ..", "contains it"), outputs=()),
    Case("out-model-folder", ("compile", "{tmp}/models/m.h5", "-o", "{tmp}/models"),
         ("models", "contains the input", "m.h5"), _model_in("models/m.h5"), outputs=()),
    Case("out-examples-folder", (*COMPILE, "-o", str(MODELS)), ("contains the input", "ternary_mlp.h5"),
         outputs=()),
    Case("out-contains-config", (*COMPILE, "--config", "{tmp}/out/c.yml", "-o", "{tmp}/out"),
         ("contains the input", "c.yml"), _write("out/c.yml", "defaults: {}\n"), outputs=()),
    # --dump-ir
    Case("out-dump-ir-file", (*COMPILE, "--dump-ir", "{tmp}/dump", "-o", "{tmp}/out"),
         ("--dump-ir", "dump", "not a folder"), _write("dump"), outputs=()),
    Case("out-dump-ir-user-folder", (*COMPILE, "--dump-ir", "{tmp}/dump", "-o", "{tmp}/out"),
         ("--dump-ir", "dump", "already holds files"), _write("dump/notes.txt"), outputs=()),
    Case("out-dump-ir-inside-file", (*COMPILE, "--dump-ir", "{tmp}/notes.txt/dump", "-o", "{tmp}/out"),
         ("--dump-ir", "notes.txt", "is a file"), _write("notes.txt"), outputs=()),
    Case("out-dump-ir-inside-output", (*COMPILE, "--dump-ir", "{tmp}/out/ir", "-o", "{tmp}/out"),
         ("--dump-ir", "overlaps the output folder"), outputs=()),
    Case("out-dump-ir-is-output", (*COMPILE, "--dump-ir", "{tmp}/out", "-o", "{tmp}/out"),
         ("--dump-ir", "overlaps"), outputs=()),
    Case("out-dump-ir-missing-parents", (*COMPILE, "--dump-ir", "{tmp}/a/b/dump", "-o", "{tmp}/out"), OK,
         code=0, outputs=("out", "a")),
    Case("out-dump-ir-empty-folder", (*COMPILE, "--dump-ir", "{tmp}/dump", "-o", "{tmp}/out"), OK,
         _folder("dump"), code=0, outputs=("out", "dump")),
    # documented successes
    Case("out-new", (*COMPILE, "-o", "{tmp}/out"), OK, code=0),
    Case("out-relative", (*COMPILE, "-o", "out"), OK, code=0),
    Case("out-trailing-slash", (*COMPILE, "-o", "{tmp}/out/"), OK, code=0),
    Case("out-dot-dot-segments", (*COMPILE, "-o", "{tmp}/nowhere/../out"), OK, code=0),
    Case("out-missing-parents", (*COMPILE, "-o", "{tmp}/a/b/c/out"), OK, code=0, outputs=("a",)),
    Case("out-empty-folder", (*COMPILE, "-o", "{tmp}/out"), OK, _folder("out"), code=0),
    Case("out-replaces-own-output", (*COMPILE, "-o", "{tmp}/out"), OK, _output_with(lambda out: None), code=0),
    Case("out-keeps-later-verbs-files", (*COMPILE, "-o", "{tmp}/out"), OK, _output_with(_later_files), code=0),
    Case("out-spaces", (*COMPILE, "-o", "{tmp}/my firmware"), OK, code=0, outputs=("my firmware",)),
    Case("out-unicode", (*COMPILE, "-o", "{tmp}/fïrmwäre-π"), OK, code=0, outputs=("fïrmwäre-π",)),
    Case("out-newline", (*COMPILE, "-o", "{tmp}/fw\nx"), OK, code=0, outputs=("fw\nx",)),
    Case("out-long-name", (*COMPILE, "-o", "{tmp}/" + "x" * 250), OK, code=0, outputs=("x" * 250,)),
    Case("out-name-too-long", (*COMPILE, "-o", "{tmp}/" + "x" * 300), ("x" * 40, "file name too long"),
         outputs=()),
    Case("out-inside-name-too-long", (*COMPILE, "-o", "{tmp}/" + "x" * 300 + "/fw"), ("file name too long",),
         outputs=()),
    Case("out-link-loop", (*COMPILE, "-o", "{tmp}/loop/fw"), ("loop", "leads nowhere"),
         lambda tmp: (tmp / "loop").symlink_to(tmp / "loop"), outputs=()),
    Case("out-dump-ir-name-too-long", (*COMPILE, "--dump-ir", "{tmp}/" + "d" * 300, "-o", "{tmp}/out"),
         ("--dump-ir", "file name too long"), outputs=()),
    Case("out-leading-dash-folder", (*COMPILE, "-o", "{tmp}/-fw"), OK, code=0, outputs=("-fw",)),
    Case("out-newline-file", (*COMPILE, "-o", "{tmp}/a\nb"), ("'", "a\\nb", "not a folder"), _write("a\nb"),
         outputs=()),
    # beside the output: the user's look-alikes of the compiler's own folders stay
    Case("out-user-backup-folder", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _write(".out.old/keep.txt")(tmp)), code=0),
    Case("out-user-backup-file", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _write(".out.old")(tmp)), code=0),
    Case("out-old-style-temp-folder", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _write(".out.ab12cd34/ir.json", "{}")(tmp)), code=0),
    Case("out-work-lookalike-no-marker", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _write(".out.nnfpga-abcd1234/keep.txt")(tmp)), code=0),
    Case("out-work-of-live-process", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _marker(tmp, ".out.nnfpga-live1234")), code=0),
    Case("out-work-of-other-host", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _marker(tmp, ".out.nnfpga-host1234", host="elsewhere", pid=2 ** 22 + 1)),
         code=0),
    Case("out-work-with-foreign-marker", (*COMPILE, "-o", "{tmp}/out"), OK,
         _beside_output(lambda tmp: _write(".out.nnfpga-mark1234/" + WORK_MARKER, '{"pid": 4194305}')(tmp)),
         code=0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_output_paths(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)
