"""The design space of ``nnfpga explore``: the swept settings, their points, the choice of
points (full grid, or a seeded search that refines around the Pareto front).

A sweep is ``KEY=V1,V2,...``.  ``KEY`` is one of the compile options in `OPTION_KEYS`
(``reuse``, ``max_dsp``, ``ii``, ``clock``, ``target``, ``config``) or ``SECTION.KEY`` of
the configuration file (``pruning.sparsity``, ``defaults.weight_frac``, ...), which
overrides that key of the point's configuration.  Every value is checked here, before any
point runs, with the rules ``nnfpga compile`` applies to the same option or key, so a
typing mistake stops the exploration at once instead of failing every point.

A `Point` is one combination, in the order of the sweeps as given (the first sweep varies
slowest), so the grid and its indices are deterministic.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from nnfpga.compiler.config import parse_config
from nnfpga.compiler.config_schema import SCHEMA
from nnfpga.core.clock import parse_clock_mhz
from nnfpga.core.errors import UserError
from nnfpga.core.limits import MAX_COUNT
from nnfpga.core.parts import find_part

#: Sweepable compile options (the config file's keys are swept as SECTION.KEY).
OPTION_KEYS = ("reuse", "max_dsp", "ii", "clock", "target", "config")
#: Largest number of points one exploration may hold (grid or search).
MAX_POINTS = 100_000


@dataclass(frozen=True)
class Sweep:
    name: str
    values: tuple


@dataclass(frozen=True)
class Point:
    index: int
    params: dict            # sweep name -> value (as the user wrote it; ints and floats parsed)

    def value(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


def split_values(text: str) -> list[str]:
    """``1,2,4`` -> [1, 2, 4] as text; commas inside ``<...>`` (a fixed-point type such
    as ``fixed<8,3,RND,SAT>``) do not split."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _budget(name: str, text: str) -> int:
    return 0 if text.strip() == "0" else _count(name, text)


def _count(name: str, text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_COUNT:
        raise UserError(f"--sweep {name}: {text!r} is not a whole number from 1 to {MAX_COUNT:,}")
    return value


def _prefixed(check: Callable[[str], object]) -> Callable[[str, str], str]:
    """A value check of `nnfpga compile`'s, its message prefixed with the sweep's name."""
    def checked(name: str, text: str) -> str:
        try:
            check(text)
        except UserError as e:
            raise UserError(f"--sweep {name}: {e}") from None
        return text
    return checked


def _config_file(name: str, text: str) -> str:
    path = Path(text)
    if not path.is_file():
        raise UserError(f"--sweep {name}: {text}: no such configuration file")
    return text


_OPTION_CHECKS: dict[str, Callable[[str, str], Any]] = {
    "reuse": _count, "max_dsp": _budget, "ii": _count, "clock": _prefixed(parse_clock_mhz), "target": _prefixed(find_part), "config": _config_file,
}


def _config_key(name: str) -> None:
    section, _, key = name.partition(".")
    if section not in SCHEMA or section in ("top", "layer") or SCHEMA["top"][section].kind != "section" \
            or section == "layers":
        sections = [s for s, k in SCHEMA["top"].items() if k.kind == "section" and s != "layers"]
        raise UserError(f"--sweep {name}: unknown setting; sweep one of {', '.join(OPTION_KEYS)} or a "
                        f"configuration key SECTION.KEY with SECTION one of {', '.join(sections)}")
    if key not in SCHEMA[section]:
        raise UserError(f"--sweep {name}: {section} has no key {key!r}; its keys: {', '.join(sorted(SCHEMA[section]))}")


def parse_sweep(text: str) -> Sweep:
    """``KEY=V1,V2,...`` checked; values of config keys are read as YAML scalars and
    checked when each point's configuration is built (`point_config_text`)."""
    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not name or not rest.strip():
        raise UserError(f"--sweep {text!r}: write KEY=V1,V2,... (e.g. reuse=1,2,4)")
    raw = split_values(rest)
    if any(v == "" for v in raw):
        raise UserError(f"--sweep {text!r}: an empty value between commas")
    if name in _OPTION_CHECKS:
        values = [_OPTION_CHECKS[name](name, v) for v in raw]
    elif "." in name:
        _config_key(name)
        values = [yaml.safe_load(v) if not v.startswith(("fixed<", "ufixed<")) else v for v in raw]
    else:
        raise UserError(f"--sweep {name}: unknown setting; sweep one of {', '.join(OPTION_KEYS)} or a "
                        "configuration key SECTION.KEY (e.g. pruning.sparsity)")
    if len(set(map(repr, values))) != len(values):
        raise UserError(f"--sweep {name}: a value is given twice")
    return Sweep(name, tuple(values))


def check_sweeps(sweeps: list[Sweep]) -> None:
    names = [s.name for s in sweeps]
    for n in names:
        if names.count(n) > 1:
            raise UserError(f"--sweep {n} is given twice; give all its values in one --sweep {n}=V1,V2,...")
    if grid_size(sweeps) > MAX_POINTS:
        raise UserError(f"the sweeps make {grid_size(sweeps):,} points; at most {MAX_POINTS:,} (use --search N "
                        "to sample a large space)")


def grid_size(sweeps: list[Sweep]) -> int:
    n = 1
    for s in sweeps:
        n *= len(s.values)
    return n


def grid(sweeps: list[Sweep]) -> list[Point]:
    """Every combination; the first sweep varies slowest."""
    names = [s.name for s in sweeps]
    return [Point(i, dict(zip(names, combo)))
            for i, combo in enumerate(itertools.product(*(s.values for s in sweeps)))]


# ----------------------------------------------------------------------------- search
def initial_sample(points: list[Point], budget: int, seed: int) -> list[Point]:
    """The first half of a search: a seeded random sample of the grid."""
    first = max(1, budget // 2)
    if first >= len(points):
        return list(points)
    return sorted(random.Random(seed).sample(points, first), key=lambda p: p.index)


def neighbours(point: Point, sweeps: list[Sweep], by_params: dict) -> list[Point]:
    """The grid points one step away from ``point`` along one sweep."""
    out = []
    for s in sweeps:
        pos = s.values.index(point.params[s.name])
        for step in (-1, 1):
            if 0 <= pos + step < len(s.values):
                params = dict(point.params)
                params[s.name] = s.values[pos + step]
                out.append(by_params[_params_key(params)])
    return out


def _params_key(params: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def refinement(front: list[Point], done: set[int], sweeps: list[Sweep], points: list[Point],
               room: int) -> list[Point]:
    """Up to ``room`` unevaluated grid neighbours of the front points, nearest the front
    first (in the front's order, then grid order)."""
    by_params = {_params_key(p.params): p for p in points}
    chosen: dict[int, Point] = {}
    for p in front:
        for q in neighbours(p, sweeps, by_params):
            if q.index not in done and q.index not in chosen:
                chosen[q.index] = q
                if len(chosen) == room:
                    return list(chosen.values())
    return list(chosen.values())


def fill_random(points: list[Point], done: set[int], room: int, seed: int) -> list[Point]:
    """When the front has no unevaluated neighbour left: more random points."""
    left = [p for p in points if p.index not in done]
    if len(left) <= room:
        return left
    return sorted(random.Random(seed + len(done)).sample(left, room), key=lambda p: p.index)


# ----------------------------------------------------------------------------- config
def point_config_text(point: Point, base_config: str | None, base_text: str | None) -> str | None:
    """The YAML configuration of ``point``: its ``config`` file (or the base ``--config``)
    with its ``SECTION.KEY`` values set; ``None`` when the point has no configuration.
    Checked as ``nnfpga compile --config`` would check it."""
    source = point.value("config", base_config)
    if "config" in point.params:
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = base_text
    overrides = {k: v for k, v in point.params.items() if "." in k}
    if text is None and not overrides:
        return None
    if text is not None:
        parse_config(text, str(source))             # the file as given must be valid on its own
    if not overrides:
        return text
    data = yaml.safe_load(text) if text else None
    data = data or {}
    for name, value in overrides.items():
        section, _, key = name.partition(".")
        if not isinstance(data.get(section), dict):
            data[section] = {}
        data[section][key] = value
    merged = yaml.safe_dump(data, sort_keys=False)
    where = " + ".join(([str(source)] if source else []) + [f"{k}={v}" for k, v in overrides.items()])
    try:
        parse_config(merged, where or "the swept settings")
    except UserError as e:
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
        raise UserError(f"--sweep {shown}: {e}") from None
    return merged
