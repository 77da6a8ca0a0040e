"""The package's layering: no import cycle in ``nnfpga/``, and no layer imports one above it.

Every module of ``nnfpga/`` is parsed with `ast` (the code is never imported), and every
import statement counts, including those inside functions: a lazy import only hides a
cycle from the interpreter, not from the reader.  The layers, bottom to top::

    core  <  ir  <  backends  <  sim  <  synth  <  compiler  <  compiler.cli, api, explore, nnfpga

A module may import its own layer and the layers below it.  ``sim`` runs the firmware
that ``backends`` writes (it reads the RTL summary), and ``synth`` synthesises it (with
GHDL from ``sim`` for the VHDL), so both sit above ``backends``; ``backends`` never runs
a tool.  ``api`` and ``compiler.cli`` are the user-facing verbs above the compiler, and
the package root ``nnfpga`` re-exports the API; ``explore`` (the design-space exploration)
drives the compiler like the API and is driven by its CLI verb, so it shares their layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nnfpga"

#: (module-name prefix, rank); the longest matching prefix decides a module's layer.
LAYERS = (
    ("nnfpga.core", 0),
    ("nnfpga.ir", 1),
    ("nnfpga.backends", 2),
    ("nnfpga.sim", 3),
    ("nnfpga.synth", 4),
    ("nnfpga.compiler", 5),
    ("nnfpga.compiler.cli", 6),
    ("nnfpga.api", 6),
    ("nnfpga.explore", 6),
    ("nnfpga.__main__", 7),
    ("nnfpga", 7),
)


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of the package (a package is
    named by its ``__init__.py``)."""
    mods = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its code.

    ``from pkg import x`` is an import of the module ``pkg.x`` when that is a module, else
    of ``pkg`` itself.  Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``;
    those implicit edges are left out, or every package whose ``__init__`` re-exports its
    submodules would be a cycle."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..y import z
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
    return {m for m in found if m in known and m != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    mods = module_files(package)
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for root in sorted(graph):
        if colour[root] != WHITE:
            continue
        path = [root]
        stack = [iter(sorted(graph[root]))]
        colour[root] = GREY
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour[nxt] == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def rank(module: str) -> int:
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return dict(LAYERS)[best]


def test_the_graph_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "nnfpga"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from nnfpga.sub.b import g\n    return g\n")
    (pkg / "sub" / "b.py").write_text("import nnfpga.sub.a\nfrom nnfpga import sub\n")
    graph = import_graph(pkg)
    assert graph == {"nnfpga": set(), "nnfpga.sub": {"nnfpga.sub.b"}, "nnfpga.sub.a": {"nnfpga.sub.b"},
                     "nnfpga.sub.b": {"nnfpga.sub", "nnfpga.sub.a"}}
    assert find_cycle(graph) == ["nnfpga.sub", "nnfpga.sub.b", "nnfpga.sub"]
    assert find_cycle({**graph, "nnfpga.sub.b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_layer_imports_a_layer_above_it():
    graph = import_graph()
    upward = sorted(f"{m} (layer {rank(m)}) imports {t} (layer {rank(t)})"
                    for m, targets in graph.items() for t in targets if rank(t) > rank(m))
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_core_is_self_contained():
    # the bottom package imports nothing else of nnfpga, so any layer may use it
    graph = import_graph()
    outside = sorted(f"{m} imports {t}" for m, targets in graph.items() if m.startswith("nnfpga.core")
                     for t in targets if not t.startswith("nnfpga.core"))
    assert not outside, "\n".join(outside)


def test_every_package_has_a_layer():
    # a new sub-package must be placed in LAYERS on purpose, not fall into the top layer
    unplaced = sorted(m for m in module_files() if m not in ("nnfpga", "nnfpga.__main__")
                      and not any(m == p or m.startswith(p + ".") for p, _ in LAYERS if p != "nnfpga"))
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"
