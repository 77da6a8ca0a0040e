"""The corpus as a whole: its size (the README promises what it tests) and its ids."""

import importlib
import pkgutil

import tests.hostile as hostile

MIN_CASES = 150


def _corpus() -> list:
    cases = []
    for info in pkgutil.iter_modules(hostile.__path__):
        if info.name.startswith("test_") and info.name != "test_corpus":
            cases += getattr(importlib.import_module(f"tests.hostile.{info.name}"), "CASES", [])
    return cases


def test_the_corpus_has_enough_cases_with_unique_ids():
    cases = _corpus()
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    assert len(cases) >= MIN_CASES, f"{len(cases)} hostile cases, {MIN_CASES} promised"
