"""The hostile-input corpus: each case is a command that a user (or an attacker) can
type, with the files it needs; running it must exit with the documented code, print no
traceback, name what is wrong, and change no file outside the outputs it names.

A corpus module declares ``CASES`` (a list of `Case`) and parametrises one test over them
with `run_case`; `tests/hostile/test_corpus.py` counts the cases of every module.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"


@dataclass(frozen=True)
class Case:
    """``args``: the CLI arguments; ``{tmp}`` in one is the case's own folder.
    ``setup(tmp)`` writes the files the command reads.  ``messages``: substrings the error
    paragraph must contain (case-insensitive): name the file, the layer, the field.
    ``outputs``: paths (relative to ``tmp``) the command may create or change; everything
    else in ``tmp`` must be left exactly as ``setup`` made it.
    ``isolated``: run in a child process (for inputs that may crash below Python)."""
    id: str
    args: tuple[str, ...]
    messages: tuple[str, ...]
    setup: Callable[[Path], None] = lambda tmp: None
    code: int = 2
    outputs: tuple[str, ...] = ("out",)
    isolated: bool = False
    timeout: float = 120.0


def _tree(root: Path, outputs: tuple[str, ...]) -> dict[str, str]:
    """Every file and folder below ``root`` except the allowed outputs: path -> content hash."""
    allowed = [root / o for o in outputs]
    state: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if any(path == a or a in path.parents for a in allowed):
            continue
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def _run_isolated(args: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "nnfpga", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=timeout, env=env)
    return r.returncode, r.stderr + r.stdout


def run_case(case: Case, tmp: Path, capsys) -> str:
    """Run ``case`` in ``tmp`` and check the promise; returns the printed error."""
    from nnfpga.compiler.cli import main
    case.setup(tmp)
    before = _tree(tmp, case.outputs)
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        if case.isolated:
            code, err = _run_isolated(args, tmp, case.timeout)
        else:
            try:
                code = main(args)
            except SystemExit as e:  # argparse's own errors
                code = e.code
            captured = capsys.readouterr()
            err = captured.err + captured.out
    finally:
        os.chdir(cwd)
    assert "Traceback" not in err, f"{case.id}: traceback printed:\n{err}"
    assert code == case.code, f"{case.id}: exit code {code}, expected {case.code}:\n{err}"
    for m in case.messages:
        assert m.lower() in err.lower(), f"{case.id}: the message does not say {m!r}:\n{err}"
    after = _tree(tmp, case.outputs)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{case.id}: files changed outside the outputs: {changed}"
    return err
