"""The documentation: README.md, the MkDocs site (mkdocs.yml, docs/) and its generated
command-line reference.

Links must resolve inside the repository, the CLI reference must cover every verb and
option of the real parser, the Getting-started guide must run as written, and the site
must build with ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnfpga.compiler.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\S*)\n(.*?)^```", re.M | re.S)


def _without_code(text: str) -> str:
    """The Markdown text with fenced and inline code removed (links inside code are not links)."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path: Path) -> set[str]:
    """Heading anchors as MkDocs' toc extension makes them (lower case, punctuation dropped,
    spaces to hyphens), plus explicit ``{#id}`` attributes."""
    out = set()
    for line in _without_code(path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*$", line)
        if m:
            title = re.sub(r"<[^>]+>", "", m.group(1))
            slug = re.sub(r"[^\w\s-]", "", title.lower()).strip()
            out.add(re.sub(r"[-\s]+", "-", slug))  # as Markdown's toc slugify
        out.update(re.findall(r"\{#([\w-]+)\}", line))
    return out


def _links(path: Path) -> list[str]:
    return LINK.findall(_without_code(path.read_text()))


def test_pages_exist_and_have_links():
    # the check below must have something to check
    assert (ROOT / "mkdocs.yml").is_file() and len(PAGES) >= 12
    assert sum(len(_links(p)) for p in PAGES) > 50


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    bad = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto: ...
            bad.append(f"{target} (points outside the repository)")
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if ROOT not in dest.parents and dest != ROOT:
            bad.append(f"{target} (outside the repository)")
        elif not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not bad, f"{page.relative_to(ROOT)}: broken links: {bad}"


def test_no_references_to_outside_documents():
    files = [*PAGES, ROOT / "mkdocs.yml", ROOT / "requirements.txt"]
    for path in files:
        text = path.read_text()
        for word in ("../shared", "DESIGN.md", "BENCHMARKS.md"):
            assert word not in text, f"{path.relative_to(ROOT)} mentions {word}"


def test_requirements_comment_points_at_existing_setup_section():
    first = (ROOT / "requirements.txt").read_text().splitlines()[0]
    assert "docs/getting-started.md" in first and "Install" in first
    assert "install" in _anchors(DOCS / "getting-started.md")


def test_readme_is_one_screen():
    assert len((ROOT / "README.md").read_text().splitlines()) < 80


def _hook():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_covers_every_verb_and_option():
    hook = _hook()
    parser = _parser()
    text = hook.cli_reference_markdown(parser)
    verbs = hook._subparsers(parser)
    assert [v for v, _, _ in verbs] == ["compile", "config", "emulate", "verify", "report", "explore"]
    sections = dict(zip([v for v, _, _ in verbs], re.split(r"^## \w+$", text, flags=re.M)[1:]))
    for verb, _, sub in verbs:
        body = sections[verb]
        for action in sub._actions:
            names = action.option_strings or [action.metavar or action.dest]
            for name in names:
                assert f"`{name}" in body, f"{verb}: {name} missing from the CLI reference"
            if action.help:
                first_words = " ".join(action.help.split()[:4])
                assert hook._escape(first_words) in body, f"{verb} {names[0]}: help text missing"
    # and the page the site builds carries the marker the hook replaces
    assert hook.MARKER in (DOCS / "cli.md").read_text()


def test_cli_reference_marks_required_and_defaults():
    text = _hook().cli_reference_markdown(_parser())
    assert "| `-o OUTPUT`, `--output OUTPUT` | output directory (required) |" in text
    assert "default `verilator,ghdl,csim`" in text  # verify --sim, a default its help does not state


def _guide_commands() -> list[str]:
    text = (DOCS / "getting-started.md").read_text()
    commands = []
    for lang, body in FENCE.findall(text):
        if lang != "sh":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
    return commands


def test_getting_started_has_the_three_commands():
    commands = _guide_commands()
    for verb in ("compile", "report", "verify"):
        assert any(shlex.split(c)[:2] == ["nnfpga", verb] for c in commands), verb
    assert any("examples/models/qmlp.h5" in c for c in commands)


@pytest.mark.slow  # nnfpga verify builds and runs Verilator (about a minute)
def test_getting_started_runs_as_written(tmp_path):
    shutil.copytree(ROOT / "examples" / "models", tmp_path / "examples" / "models")
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]),
               PYTHONPATH=str(ROOT))
    commands = _guide_commands()
    assert len(commands) >= 6
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "fw" / "verify.json").is_file() and (tmp_path / "y.npy").is_file()


@pytest.mark.slow  # about 10-40 s on a busy machine
def test_mkdocs_build_strict(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (tmp_path / "site" / "cli.html").read_text()
    assert "--trust-model-code" in cli and "--max-multiplications" in cli  # the generated reference is in
    api = (tmp_path / "site" / "api.html").read_text()
    assert "nnfpga.api.compile" in api  # mkdocstrings rendered the API
