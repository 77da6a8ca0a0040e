"""Bit-exact comparison of `nnfpga.ir.fixed.FixedType` with the Xilinx ap_fixed headers.

One C++ program (compiled once per session, all target types instantiated in it) reads
values from stdin and prints the raw bit pattern of each conversion result.  For every
rounding x overflow x signedness combination and a set of (width, integer) shapes the
tests check

* double -> type:  ``T x = d;``                  against ``FixedType.quantize(d)``
* fixed  -> type:  ``T x = ap_fixed<40,12>(..)`` against ``FixedType.requantize(raw, 28)``
  (int64 raw arrays, and float64 ones when the target fits in 53 bits), plus a 62-bit
  source ``ap_fixed<62,24>`` (int64 only).

Equality is exact; a failure lists the first mismatches.  Compiling the reference
program dominates the runtime (~0.1 s of g++ per instantiated type), which is why the
shape list is not longer.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import zlib

import numpy as np
import pytest

from nnfpga.ir.fixed import (FLOAT64_EXACT_BITS, FixedType, Overflow, Rounding,
                             bits_for_range, type_for_range)

# --------------------------------------------------------------------------- types
#: (width, integer) shapes: width 1..2 edge cases, integer > width, integer <= 0,
#: wide types on both sides of the float64 (53-bit) boundary.
SHAPES = [
    (1, 1), (1, 0), (1, -2), (1, 4),
    (2, 1), (2, 0), (2, -3), (2, 6),
    (3, 1), (5, 9), (6, -2),
    (8, 3), (8, -4), (8, 40), (4, 70),
    (16, 6), (18, 8), (32, 16),
    (40, -20), (53, 30), (54, 20), (60, 30), (62, 10),
]

ROUNDINGS = [Rounding.TRN, Rounding.RND, Rounding.RND_CONV]
OVERFLOWS = [Overflow.WRAP, Overflow.SAT]
MODES = list(itertools.product(ROUNDINGS, OVERFLOWS, [True, False]))
MODE_IDS = [f"{r.value}-{o.value}-{'signed' if s else 'unsigned'}" for r, o, s in MODES]

TYPES = [FixedType(w, i, s, r, o) for (r, o, s) in MODES for (w, i) in SHAPES]
TYPE_ID = {t: k for k, t in enumerate(TYPES)}

#: Sources of the fixed -> fixed conversions: (type, also test the float64 raw path).
SOURCES = [FixedType(40, 12), FixedType(62, 24)]
SOURCE_FLOAT_OK = [s.width <= FLOAT64_EXACT_BITS for s in SOURCES]

# --------------------------------------------------------------------------- C++ side
CPP_TEMPLATE = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ap_fixed.h>

template <int W, class T>
static inline void emit(const T& x) {
  unsigned long long u = x.range(W - 1, 0).to_uint64();
  printf("%llu\n", u);
}

template <int W, class T>
static void from_double(long n) {
  for (long i = 0; i < n; ++i) {
    unsigned long long bits;
    if (scanf("%llx", &bits) != 1) { fprintf(stderr, "bad double input\n"); exit(2); }
    double d;
    memcpy(&d, &bits, sizeof d);
    T x = d;
    emit<W>(x);
  }
}

template <int W, class T, class S>
static void from_fixed(long n) {
  for (long i = 0; i < n; ++i) {
    long long raw;
    if (scanf("%lld", &raw) != 1) { fprintf(stderr, "bad fixed input\n"); exit(2); }
    S s;
    s.setBits((ap_ulong)raw);  // keeps the low bits: two's complement of raw
    T x = s;
    emit<W>(x);
  }
}

template <int W, class T>
static void run(char kind, int src, long n) {
  if (kind == 'D') { from_double<W, T>(n); return; }
  switch (src) {
@SOURCE_CASES@
    default: fprintf(stderr, "bad source %d\n", src); exit(2);
  }
}

int main() {
  char kind;
  int id, src;
  long n;
  // job header: "D <type id> 0 <count>" or "F <type id> <source id> <count>"
  while (scanf(" %c %d %d %ld", &kind, &id, &src, &n) == 4) {
    switch (id) {
@TYPE_CASES@
      default: fprintf(stderr, "bad type id %d\n", id); return 2;
    }
  }
  return 0;
}
"""


def cpp_program() -> str:
    source_cases = "\n".join(
        f"    case {k}: from_fixed<W, T, {s.cpp()} >(n); return;" for k, s in enumerate(SOURCES))
    type_cases = "\n".join(
        f"      case {k}: run<{t.width}, {t.cpp()} >(kind, src, n); break;"
        for k, t in enumerate(TYPES))
    return (CPP_TEMPLATE.replace("@SOURCE_CASES@", source_cases)
            .replace("@TYPE_CASES@", type_cases))


@pytest.fixture(scope="module")
def apfixed_exe(tmp_path_factory):
    from nnfpga.sim.apfixed import compile_cpp

    # g++ and hls4ml's ap_types are part of the project's set-up: their absence is a failure
    return compile_cpp(cpp_program(), tmp_path_factory.mktemp("apfixed"), "apfixed_ref")


def run_reference(exe, jobs):
    """Run the reference program on ``jobs`` = [(kind, type, source index, values)].

    Returns one int64 array of raw results per job (sign-extended for signed types).
    """
    lines = []
    for kind, t, src, values in jobs:
        lines.append(f"{kind} {TYPE_ID[t]} {src} {len(values)}")
        if kind == "D":
            bits = np.asarray(values, dtype=np.float64).view(np.uint64)
            lines.extend(f"{b:x}" for b in bits.tolist())
        else:
            lines.extend(str(int(v)) for v in values)
    proc = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True,
                          text=True, check=True, timeout=120)
    out = np.array(proc.stdout.split(), dtype=np.uint64)
    assert out.size == sum(len(j[3]) for j in jobs), proc.stderr
    results, pos = [], 0
    for _, t, _, values in jobs:
        raw = out[pos:pos + len(values)].astype(np.int64)  # width <= 62: fits
        pos += len(values)
        if t.signed:
            raw = np.where(raw > t.max_raw, raw - (1 << t.width), raw)
        results.append(raw)
    return results


def as_exact_int64(raw: np.ndarray) -> np.ndarray:
    """Integer view of a raw array returned by FixedType; fails if it is not integral."""
    raw = np.asarray(raw)
    if raw.dtype.kind == "f":
        assert np.all(np.isfinite(raw)) and np.all(raw == np.floor(raw)), "non-integer raw"
        assert np.all(np.abs(raw) <= 2.0 ** FLOAT64_EXACT_BITS), "float raw beyond 2**53"
    return raw.astype(np.int64)


def mismatch_report(rows, total):
    lines = [f"{len(rows)} of {total} values differ from ap_fixed; first ones:"]
    for t, x, want, got in rows[:12]:
        lines.append(f"  {t.cpp():45s} input={x!r:>28}  ap_fixed={want}  nnfpga={got}")
    return "\n".join(lines)


def seed_for(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


# --------------------------------------------------------------------------- inputs
def boundary_raws(t: FixedType, rng: np.random.Generator) -> list[int]:
    """Target raw integers worth probing: around 0, the type's limits, and beyond them."""
    lo, hi = t.min_raw, t.max_raw
    span = hi - lo + 1
    ks = set(range(-3, 4))
    for b in (lo, hi, lo - span, hi + span, 2 * lo, 2 * hi, -hi, -lo):
        ks.update(range(b - 2, b + 3))
    ks.update(int(k) for k in rng.integers(lo - span, hi + span, size=12, endpoint=True))
    return sorted(ks)


def double_inputs(t: FixedType, rng: np.random.Generator) -> np.ndarray:
    f, w = t.frac, t.width
    vals = []
    for k in boundary_raws(t, rng):
        exact = np.ldexp(float(k), -f)
        tie = np.ldexp(float(2 * k + 1), -f - 1)          # exactly half an LSB above k
        vals += [exact, tie, np.ldexp(float(4 * k + 1), -f - 2), np.ldexp(float(4 * k + 3), -f - 2),
                 np.nextafter(exact, -np.inf), np.nextafter(exact, np.inf),
                 np.nextafter(tie, -np.inf), np.nextafter(tie, np.inf)]
    # Varied magnitudes: from far below one LSB to far above the range, both signs.
    exps = rng.integers(-f - 14, w - f + 14, size=200, endpoint=True)
    signs = rng.choice([-1.0, 1.0], size=200)
    vals += list(signs * np.ldexp(rng.uniform(1.0, 2.0, size=200), exps))
    vals += list(rng.uniform(1.25 * t.min_value - t.lsb, 1.25 * t.max_value + t.lsb, size=100))
    special = [0.0, 1e-300, 5e-324, 2.2250738585072014e-308, 1e-30, 0.5, 1.0, 3.0, 1e10, 1e30,
               1e300, 2.0 ** 52, 2.0 ** 53, 2.0 ** 62, 2.0 ** 63, 2.0 ** 64, 2.0 ** 100,
               1.7976931348623157e308, np.ldexp(1.0, w - f), np.ldexp(1.0, w - f - 1)]
    vals += special + [-v for v in special]
    vals = np.unique(np.asarray(vals, dtype=np.float64))  # note: merges -0.0 into 0.0
    vals = np.concatenate([vals, [-0.0]])
    assert np.all(np.isfinite(vals))
    return vals


def fixed_inputs(t: FixedType, src: FixedType, rng: np.random.Generator) -> list[int]:
    """Source raw integers: ties and neighbours around the target's boundaries, random."""
    shift = src.frac - t.frac  # bits dropped when positive
    vals = {src.min_raw, src.min_raw + 1, src.max_raw, src.max_raw - 1, 0, 1, -1, 2, -2}
    for k in boundary_raws(t, rng):
        if shift >= 0:
            c = k << shift
            vals.update((c - 1, c, c + 1))
            if shift > 0:
                half = 1 << (shift - 1)
                for tie in (c + half, c - half):
                    vals.update((tie - 1, tie, tie + 1))
                vals.add(c + 3 * (half >> 1) if shift > 1 else c)
        else:
            c = k >> -shift
            vals.update((c - 1, c, c + 1))
    mags = rng.integers(0, src.width, size=200)
    vals.update(int(s) * int(rng.integers(0, 1 << int(m), endpoint=True))
                for s, m in zip(rng.choice([-1, 1], size=200), mags))
    vals.update(int(v) for v in rng.integers(src.min_raw, src.max_raw, size=100, endpoint=True))
    return sorted(v for v in vals if src.min_raw <= v <= src.max_raw)


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("rounding,overflow,signed", MODES, ids=MODE_IDS)
def test_double_to_fixed_matches_ap_fixed(apfixed_exe, rounding, overflow, signed):
    types = [FixedType(w, i, signed, rounding, overflow) for (w, i) in SHAPES]
    jobs = [("D", t, 0, double_inputs(t, np.random.default_rng(seed_for("D", t.spec()))))
            for t in types]
    refs = run_reference(apfixed_exe, jobs)
    bad, total = [], 0
    for (_, t, _, x), want in zip(jobs, refs):
        got = t.quantize(x)
        assert got.shape == x.shape
        assert got.dtype == (np.int64 if t.width > FLOAT64_EXACT_BITS else np.float64), t
        got = as_exact_int64(got)
        total += x.size
        for j in np.flatnonzero(got != want):
            bad.append((t, float(x[j]), int(want[j]), int(got[j])))
    print(f"\n{MODE_IDS[MODES.index((rounding, overflow, signed))]}: "
          f"{total} double->fixed values compared")
    assert not bad, mismatch_report(bad, total)


@pytest.mark.parametrize("rounding,overflow,signed", MODES, ids=MODE_IDS)
def test_fixed_to_fixed_matches_ap_fixed(apfixed_exe, rounding, overflow, signed):
    types = [FixedType(w, i, signed, rounding, overflow) for (w, i) in SHAPES]
    jobs = []
    for t in types:
        for si, src in enumerate(SOURCES):
            if header_asserts(t, src):
                continue  # see test_fixed_to_fixed_far_below_lsb
            rng = np.random.default_rng(seed_for("F", t.spec(), src.spec()))
            jobs.append(("F", t, si, fixed_inputs(t, src, rng)))
    refs = run_reference(apfixed_exe, jobs)
    bad, total = [], 0
    for (_, t, si, raw), want in zip(jobs, refs):
        src = SOURCES[si]
        inputs = [np.array(raw, dtype=np.int64)]
        if SOURCE_FLOAT_OK[si] and t.width <= FLOAT64_EXACT_BITS:
            inputs.append(np.array(raw, dtype=np.float64))
        for arr in inputs:
            assert np.array_equal(arr.astype(np.int64), np.array(raw, dtype=np.int64))
            got = t.requantize(arr, src.frac)
            assert got.dtype == arr.dtype, (t, arr.dtype, got.dtype)
            got = as_exact_int64(got)
            total += arr.size
            for j in np.flatnonzero(got != want):
                bad.append((t, f"{src.cpp()} raw={raw[j]} ({arr.dtype})", int(want[j]), int(got[j])))
    print(f"\n{MODE_IDS[MODES.index((rounding, overflow, signed))]}: "
          f"{total} fixed->fixed values compared")
    assert not bad, mismatch_report(bad, total)


def header_asserts(t: FixedType, src: FixedType) -> bool:
    """ap_fixed's C simulation aborts on this conversion.

    With a rounding mode other than TRN, fixed -> fixed assignment reads the bit just
    below the target LSB with ``get_bit(F2 - F - 1)`` before checking that it lies inside
    the source, which trips ap_private's "Attempting to read bit beyond MSB" assertion
    when ``F2 - F > W2`` (the header's next line then ignores that bit and uses the sign).
    """
    return t.rounding is not Rounding.TRN and src.frac - t.frac > src.width


def test_fixed_to_fixed_far_below_lsb():
    """The conversions `header_asserts` excludes, checked against the header's intent.

    Every source value is below a quarter of the target LSB in magnitude, so the header's
    branch for this case (``qb = sign``, ``r = any bit set``, result ``-1`` or ``0`` plus
    carry) gives 0 for RND and RND_CONV.  (TRN does not assert; the header checks it.)
    """
    src = SOURCES[0]
    raw = [src.min_raw, src.min_raw + 1, -(1 << 20) - 1, -3, -1, 0, 1, 5, src.max_raw]
    checked = 0
    for t in TYPES:
        for s in SOURCES:
            if not header_asserts(t, s):
                continue
            for arr in (np.array(raw, dtype=np.int64), np.array(raw, dtype=np.float64)):
                got = as_exact_int64(t.requantize(arr, s.frac))
                assert np.array_equal(got, np.zeros(len(raw), dtype=np.int64)), (t, s, got)
                checked += 1
    assert checked > 0


def test_compile_cpp_reports_errors(tmp_path):
    from nnfpga.sim.apfixed import CompileError, ap_types_include_dir, compile_cpp

    assert (ap_types_include_dir() / "ap_fixed.h").is_file()
    with pytest.raises(CompileError, match="does_not_exist"):
        compile_cpp("int main() { return does_not_exist; }\n", tmp_path, "broken")
    with pytest.raises(ValueError):
        compile_cpp("int main() {}\n", tmp_path, "a/b")


def test_cpp_spelling():
    assert FixedType(16, 6).cpp() == "ap_fixed<16,6>"
    assert FixedType(8, -2, False).cpp() == "ap_ufixed<8,-2>"
    assert FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT).cpp() == \
        "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"
    assert FixedType(8, 3, True, Rounding.TRN, Overflow.SAT).cpp() == "ap_fixed<8,3,AP_TRN,AP_SAT>"
    assert FixedType(4, 9, False, Rounding.RND).cpp() == "ap_ufixed<4,9,AP_RND,AP_WRAP>"


# --------------------------------------------------------------------------- pure python
@pytest.mark.parametrize("lo,hi,expected", [
    (0, 0, (1, False)), (0, 1, (1, False)), (1, 1, (1, False)), (0, 2, (2, False)),
    (0, 3, (2, False)), (5, 5, (3, False)), (0, 255, (8, False)), (0, 256, (9, False)),
    (3, 2 ** 40, (41, False)),
    (-1, -1, (1, True)), (-1, 0, (1, True)), (-2, -2, (2, True)), (-2, 1, (2, True)),
    (-1, 1, (2, True)), (-2, 2, (3, True)), (-3, 1, (3, True)), (-4, 3, (3, True)),
    (-4, -4, (3, True)), (-5, -3, (4, True)), (-8, -4, (4, True)), (-9, -9, (5, True)),
    (-128, 127, (8, True)), (-129, 127, (9, True)), (-128, 128, (9, True)),
    (-1, 2 ** 20 - 1, (21, True)), (-(2 ** 61), 2 ** 61 - 1, (62, True)),
])
def test_bits_for_range(lo, hi, expected):
    assert bits_for_range(lo, hi) == expected
    w, s = expected
    # Minimality against FixedType's own raw bounds.
    assert FixedType(w, w, s).contains(lo, hi)
    if w > 1:
        assert not FixedType(w - 1, w - 1, s).contains(lo, hi)


def test_bits_for_range_exhaustive_small():
    for lo in range(-40, 41):
        for hi in range(lo, 41):
            w, s = bits_for_range(lo, hi)
            assert s == (lo < 0)
            assert FixedType(w, w, s).contains(lo, hi), (lo, hi)
            if w > 1:
                assert not FixedType(w - 1, w - 1, s).contains(lo, hi), (lo, hi)


def test_bits_for_range_rejects_empty():
    with pytest.raises(ValueError):
        bits_for_range(3, 2)


def test_type_for_range():
    assert type_for_range(0, 255, 4) == FixedType(8, 4, False)
    assert type_for_range(-128, 127, 7) == FixedType(8, 1, True)
    assert type_for_range(0, 255, 0, force_signed=True) == FixedType(9, 9, True)
    assert type_for_range(-3, 3, 0, force_signed=True) == FixedType(3, 3, True)
    assert type_for_range(0, 3, 10) == FixedType(2, -8, False)         # integer < 0
    assert type_for_range(0, 1000, -4) == FixedType(10, 14, False)     # integer > width
    t = type_for_range(-5, 9, 3, Rounding.RND_CONV, Overflow.SAT)
    assert t == FixedType(5, 2, True, Rounding.RND_CONV, Overflow.SAT)
    assert (t.min_raw, t.max_raw, t.frac) == (-16, 15, 3)


def test_spec_and_parse_round_trip():
    for t in TYPES + SOURCES:
        assert FixedType.parse(t.spec()) == t
        assert FixedType.parse(t.cpp()) == t
        assert FixedType.parse(str(t)) == t
        assert FixedType.from_json(t.to_json()) == t
    assert FixedType(8, 3, False, Rounding.RND, Overflow.SAT).spec() == "ufixed<8,3,RND,SAT>"
    assert FixedType(16, -2).spec() == "fixed<16,-2,TRN,WRAP>"
    assert FixedType.parse("ap_fixed<16,6>") == FixedType(16, 6)
    assert FixedType.parse("ap_ufixed<8, -2, AP_RND_CONV, AP_SAT>") == \
        FixedType(8, -2, False, Rounding.RND_CONV, Overflow.SAT)
    assert FixedType.parse("fixed<8,3,RND>") == FixedType(8, 3, True, Rounding.RND)
    assert FixedType.parse("ufixed<4,9,RND_CONV,WRAP>") == \
        FixedType(4, 9, False, Rounding.RND_CONV, Overflow.WRAP)
    for bad in ("fixed<8>", "int<8,3>", "fixed<8,3,RNDX>", "fixed<8,3,SAT,RND>", "fixed<a,3>", ""):
        with pytest.raises(ValueError):
            FixedType.parse(bad)
    with pytest.raises(ValueError):
        FixedType.parse("fixed<0,0>")
