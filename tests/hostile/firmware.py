"""Compiled output folders for the corpus modules that read one (emulate, verify, report):
each is compiled once per test session and copied into a case's folder by its setup."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from tests.hostile.harness import MODELS

QMLP = MODELS / "qmlp.h5"


@functools.lru_cache(maxsize=None)
def compiled(banks: int = 1) -> Path:
    """The qmlp firmware (``banks`` > 1: a banked ensemble of that many copies)."""
    import nnfpga
    out = Path(tempfile.mkdtemp(prefix="nnfpga-hostile-")) / "fw"
    model = str(QMLP) if banks == 1 else [str(QMLP)] * banks
    nnfpga.compile(model, outdir=out)
    return out


def copy_firmware(tmp: Path, banks: int = 1, name: str = "fw") -> Path:
    """A fresh copy of the compiled firmware at ``tmp / name``."""
    dest = tmp / name
    shutil.copytree(compiled(banks), dest)
    return dest
