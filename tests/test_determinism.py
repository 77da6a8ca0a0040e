"""The same inputs give the same tree, byte for byte: every example model and the banked
ensemble of the README, compiled twice into different folders from different working
directories (the model named by an absolute and by a relative path).  Only run.json, the
run record, may differ; it is named in the README and in the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nnfpga.compiler.driver import compile_model
from nnfpga.compiler.output_dir import MANIFEST, RUN_RECORD
from tests.conftest import MODELS, ROOT

RINGER = ROOT / "benchmarks" / "electron_ringer" / "models" / "qkeras"

DESIGNS = {path.name: ([path], {}) for path in sorted(MODELS.iterdir())}
# the README's banked ensemble: et0_eta0.h5 ... et4_eta4.h5 --reuse 4 --name ringer
DESIGNS["ringer-ensemble"] = (sorted(RINGER.glob("*.h5")), {"reuse": 4, "name": "ringer"})
# everything optional that compile writes: the wrappers and report.html
DESIGNS["ternary-wrappers-html"] = ([MODELS / "ternary_mlp.h5"],
                                    {"axi_stream": True, "bunch_crossing": True, "html": True, "clock": "320MHz"})


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != RUN_RECORD}


def _compile(paths: list[Path], kwargs: dict, outdir: Path, relative_to: Path | None) -> None:
    names = [os.path.relpath(p, relative_to) if relative_to else str(p) for p in paths]
    compile_model(names[0] if len(names) == 1 else names, outdir=outdir, **kwargs)


def test_every_example_model_is_covered():
    assert len(DESIGNS) >= 4 + 2 and len(DESIGNS["ringer-ensemble"][0]) == 25


@pytest.mark.parametrize("label", list(DESIGNS))
def test_two_compiles_give_the_same_tree(label, tmp_path, monkeypatch):
    paths, kwargs = DESIGNS[label]
    (tmp_path / "one").mkdir()
    (tmp_path / "two" / "elsewhere").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "one")
    _compile(paths, kwargs, tmp_path / "one" / "fw", None)
    monkeypatch.chdir(tmp_path / "two" / "elsewhere")
    _compile(paths, kwargs, Path("../firmware"), tmp_path / "two" / "elsewhere")
    first, second = _tree(tmp_path / "one" / "fw"), _tree(tmp_path / "two" / "firmware")
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"{label}: these files differ between two compiles: {differ}"
    listed = set(json.loads(first[MANIFEST])["files"])
    assert listed == set(first) - {MANIFEST}, "the manifest lists every file but itself and run.json"
    for run in (tmp_path / "one" / "fw" / RUN_RECORD, tmp_path / "two" / "firmware" / RUN_RECORD):
        assert json.loads(run.read_text())["compile_seconds"] >= 0


def test_no_file_but_the_run_record_names_the_folder_or_the_host(tmp_path):
    import socket
    out = tmp_path / "a_very_particular_folder"
    compile_model(str(MODELS / "ternary_mlp.h5"), outdir=out)
    marks = [str(tmp_path).encode(), b"a_very_particular_folder", str(ROOT).encode()]
    if len(socket.gethostname()) > 3:  # a short host name occurs in any text by chance
        marks.append(socket.gethostname().encode())
    for name, data in _tree(out).items():
        for mark in marks:
            assert mark not in data, f"{name} holds {mark!r}, which differs from run to run"
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["outdir"] == str(out) and record["host"] == socket.gethostname()
