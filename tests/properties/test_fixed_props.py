"""Hypothesis: `nnfpga.ir.fixed` against the real ap_fixed headers on random types.

One Hypothesis example is a batch of random cases -- a random target ``ap_fixed`` /
``ap_ufixed`` (width 1-62, integer bits far outside [0, width], every rounding and
overflow mode) with one operation and random operands:

* ``quantize``: ``T x = double``            vs ``T.quantize(d)``
* ``cast``:     ``T x = S(raw)``            vs ``T.requantize(raw, S.frac)``
* ``add`` / ``sub`` / ``mul``: ``T x = a op b`` (ap_fixed's exact result type) vs the
  exact integer result requantised into ``T`` (the IR's arithmetic),

compiled into ONE C++ program per example (a function template instantiated per case)
that reads the batch from a file.  Operands include the grid's extremes, zero, ties
and neighbours of the target's LSB and range.  Profiles: one batch in the default
suite, four in the slow one; derandomised, no example database.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nnfpga.ir.fixed import FixedType, Rounding
from nnfpga.sim.apfixed import compile_cpp
from tests.properties.strategies import OVERFLOWS, ROUNDINGS, fixed_types

OPS = ("quantize", "cast", "add", "sub", "mul")


@dataclass
class Case:
    op: str
    target: FixedType
    sources: tuple[FixedType, ...]
    #: doubles (quantize) or rows of raw operands
    values: list


@st.composite
def operand_types(draw, max_width: int) -> FixedType:
    """Operands of arithmetic: their exact results stay well inside int64."""
    width = draw(st.integers(1, max_width))
    return FixedType(width, draw(st.integers(-4, width + 4)), draw(st.booleans()), draw(ROUNDINGS),
                     draw(OVERFLOWS))


def _raws(draw, t: FixedType, n: int) -> list[int]:
    special = [t.min_raw, t.max_raw, 0, 1, t.max_raw - 1, t.min_raw + 1]
    special = [v for v in special if t.min_raw <= v <= t.max_raw]
    rand = draw(st.lists(st.integers(t.min_raw, t.max_raw), min_size=n, max_size=n))
    return special + rand


def _doubles(draw, t: FixedType, n: int) -> list[float]:
    lsb = 2.0 ** -t.frac
    near = [k * lsb / 2 for k in (-3, -1, 0, 1, 3)]                       # ties around zero
    near += [(t.max_raw + 0.5) * lsb, (t.min_raw - 0.5) * lsb, t.max_raw * lsb, t.min_raw * lsb,
             (t.max_raw + 1) * lsb, (t.min_raw - 1) * lsb]                 # the range's edges
    rand = draw(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=n, max_size=n))
    ties = draw(st.lists(st.integers(2 * t.min_raw - 4, 2 * t.max_raw + 4), min_size=n, max_size=n))
    return near + rand + [np.ldexp(float(k), -t.frac - 1) for k in ties]


def _header_asserts(target: FixedType, src_width: int, src_frac: int) -> bool:
    """ap_fixed's C simulation aborts on this conversion (see
    tests/test_fixed_apfixed.py::header_asserts): rounding reads a bit below the source."""
    return target.rounding is not Rounding.TRN and src_frac - target.frac > src_width


@st.composite
def cases(draw) -> Case:
    op = draw(st.sampled_from(OPS))
    target = draw(fixed_types())
    n = 12
    if op == "quantize":
        return Case(op, target, (), _doubles(draw, target, n))
    if op == "cast":
        src = draw(fixed_types())
        if _header_asserts(target, src.width, src.frac):
            target = target.with_modes(rounding=Rounding.TRN)
        return Case(op, target, (src,), [[v] for v in _raws(draw, src, n)])
    a, b = draw(operand_types(24)), draw(operand_types(24))
    width = a.width + b.width + 2   # at least the exact result's width (both ops)
    frac = a.frac + b.frac if op == "mul" else max(a.frac, b.frac)
    if _header_asserts(target, min(width, 8), frac):
        target = target.with_modes(rounding=Rounding.TRN)
    ra, rb = _raws(draw, a, n), _raws(draw, b, n)
    return Case(op, target, (a, b), [[x, y] for x in ra[:6] for y in rb[:6]] + list(map(list, zip(ra, rb))))


def expected(case: Case) -> np.ndarray:
    """The IR's result: raw integers (int64) of the target."""
    t = case.target
    if case.op == "quantize":
        return np.asarray(t.quantize(np.array(case.values, dtype=np.float64))).astype(np.int64)
    raw = np.array(case.values, dtype=np.int64)
    if case.op == "cast":
        return np.asarray(t.requantize(raw[:, 0], case.sources[0].frac)).astype(np.int64)
    a, b = case.sources
    if case.op == "mul":
        return np.asarray(t.requantize(raw[:, 0] * raw[:, 1], a.frac + b.frac)).astype(np.int64)
    f = max(a.frac, b.frac)
    x, y = raw[:, 0] << (f - a.frac), raw[:, 1] << (f - b.frac)
    return np.asarray(t.requantize(x + y if case.op == "add" else x - y, f)).astype(np.int64)


CPP_HEAD = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ap_fixed.h>

template <int W, class T> static void emit(const T &x) {
    std::printf("%llu\n", (unsigned long long)x.range(W - 1, 0).to_uint64());
}
static long long next_int() {
    long long v;
    if (std::scanf("%lld", &v) != 1) std::exit(2);
    return v;
}
template <int W, class T> static void quantize(long n) {
    for (long i = 0; i < n; i++) {
        unsigned long long bits;
        if (std::scanf("%llx", &bits) != 1) std::exit(2);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        T x = d;
        emit<W>(x);
    }
}
template <int W, class T, class S> static void cast(long n) {
    for (long i = 0; i < n; i++) {
        S s;
        s.setBits((ap_ulong)next_int());
        T x = s;
        emit<W>(x);
    }
}
template <int W, class T, class A, class B, int OP> static void arith(long n) {
    for (long i = 0; i < n; i++) {
        A a;
        B b;
        a.setBits((ap_ulong)next_int());
        b.setBits((ap_ulong)next_int());
        T x;
        if (OP == 0) x = a + b;
        else if (OP == 1) x = a - b;
        else x = a * b;
        emit<W>(x);
    }
}
"""


def cpp_program(batch: list[Case]) -> str:
    arms = []
    for k, c in enumerate(batch):
        t = c.target
        if c.op == "quantize":
            call = f"quantize<{t.width}, {t.cpp()} >(n)"
        elif c.op == "cast":
            call = f"cast<{t.width}, {t.cpp()}, {c.sources[0].cpp()} >(n)"
        else:
            code = {"add": 0, "sub": 1, "mul": 2}[c.op]
            call = f"arith<{t.width}, {t.cpp()}, {c.sources[0].cpp()}, {c.sources[1].cpp()}, {code}>(n)"
        arms.append(f"        case {k}: {call}; break;")
    return CPP_HEAD + "\n".join([
        "int main() {", "    int k;", "    long n;",
        "    while (std::scanf(\"%d %ld\", &k, &n) == 2) {", "        switch (k) {", *arms,
        "        default: return 2;", "        }", "    }", "    return 0;", "}", ""])


def stdin_text(batch: list[Case], indices: list[int] | None = None) -> str:
    """The program's input for ``batch`` (``indices``: the cases' numbers in the program,
    by default their positions)."""
    lines = []
    for k, c in zip(indices if indices is not None else range(len(batch)), batch):
        lines.append(f"{k} {len(c.values)}")
        if c.op == "quantize":
            lines += [f"{b:x}" for b in np.array(c.values, dtype=np.float64).view(np.uint64).tolist()]
        else:
            lines += [" ".join(map(str, row)) for row in c.values]
    return "\n".join(lines) + "\n"


#: What ap_fixed's own header asserts say when a conversion reads a bit outside its
#: operand (its C simulation aborts; `_header_asserts` avoids the cases known to do so).
HEADER_ASSERT = "Attempting to"


def reference(batch: list[Case], work: Path) -> list[np.ndarray | None]:
    """ap_fixed's results per case; None for a case on which the header's own asserts
    abort the program (found by running the cases one by one after an abort)."""
    exe = compile_cpp(cpp_program(batch), work, "fixed_props", extra_flags=["-O0"])
    run = subprocess.run([str(exe)], input=stdin_text(batch), capture_output=True, text=True, timeout=600)
    if run.returncode == 0:
        return _parse(batch, run.stdout.split())
    assert HEADER_ASSERT in run.stderr, f"the reference failed: {run.stderr[-2000:]}"
    results = []
    for k, c in enumerate(batch):
        one = subprocess.run([str(exe)], input=stdin_text([c], [k]), capture_output=True, text=True, timeout=600)
        if one.returncode != 0:
            assert HEADER_ASSERT in one.stderr, f"the reference failed on case {k}: {one.stderr[-2000:]}"
            results.append(None)
        else:
            results += _parse([c], one.stdout.split())
    return results


def _parse(batch: list[Case], out: list[str]) -> list[np.ndarray]:
    results, pos = [], 0
    for c in batch:
        raw = np.array(out[pos:pos + len(c.values)], dtype=np.uint64).astype(np.int64)  # width <= 62
        pos += len(c.values)
        t = c.target
        results.append(np.where(raw > t.max_raw, raw - (1 << t.width), raw) if t.signed else raw)
    assert pos == len(out), "the reference printed more values than asked for"
    return results


def run_profile(batches: int, per_batch: int) -> int:
    checked, aborted = [0], [0]

    @settings(max_examples=batches, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(st.lists(cases(), min_size=per_batch, max_size=per_batch))
    def check(batch):
        with tempfile.TemporaryDirectory(prefix="nnfpga-fixed-props-") as tmp:
            refs = reference(batch, Path(tmp))
        bad = []
        aborted[0] += sum(want is None for want in refs)
        for c, want in zip(batch, refs):
            if want is None:   # ap_fixed's header cannot compute it: nothing to compare
                continue
            got = expected(c)
            for j in np.flatnonzero(got != want)[:2]:
                bad.append(f"{c.op} -> {c.target.cpp()} from {[s.cpp() for s in c.sources]} "
                           f"operands {c.values[j]!r}: ap_fixed {want[j]}, nnfpga {got[j]}")
        assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:20])
        checked[0] += sum(len(c.values) for c, want in zip(batch, refs) if want is not None)

    check()
    print(f"\nfixed-point properties: {checked[0]} values in {batches * per_batch} random cases agree with ap_fixed "
          f"({aborted[0]} cases ap_fixed's header asserts abort on, not compared)")
    assert aborted[0] <= batches * per_batch // 100, f"{aborted[0]} cases not comparable: the test checks too little"
    return checked[0]


def test_fixed_point_matches_ap_fixed_fast():
    assert run_profile(batches=1, per_batch=40) > 0


@pytest.mark.slow
def test_fixed_point_matches_ap_fixed_slow():
    assert run_profile(batches=4, per_batch=80) > 0


def test_a_case_the_header_aborts_on_is_set_aside(tmp_path):
    """A cast whose rounding reads a bit below its source (`_header_asserts`): ap_fixed's C
    simulation aborts; `reference` gives None for it and the other cases' results."""
    src = FixedType(4, -6, True)      # frac 10 on 4 bits
    bad = Case("cast", FixedType(8, 6, True, Rounding.RND), (src,), [[3], [-5]])
    assert _header_asserts(bad.target, src.width, src.frac)
    good = Case("cast", FixedType(8, 6, True, Rounding.TRN), (src,), [[3], [-5]])
    refs = reference([good, bad], tmp_path)
    assert refs[1] is None
    assert np.array_equal(refs[0], expected(good))
