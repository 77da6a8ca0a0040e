"""Hostile sample files for emulate, verify and calibration: pickles, object and string
arrays, forged and truncated headers, broken zips, wrong shapes, NaN, empty batches,
bank indices that do not fit."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.firmware import QMLP, copy_firmware
from tests.hostile.harness import Case, run_case

GOOD = np.linspace(-1, 1, 3 * 16).reshape(3, 16)


def _fw(then=None, banks: int = 1):
    def setup(tmp: Path) -> None:
        copy_firmware(tmp, banks)
        if then is not None:
            then(tmp)
    return setup


def _npy_header(shape, descr: str = "<f8", version: int = 1) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}".encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H", len(header)) + header


def _write(name: str, data: bytes):
    return lambda tmp: (tmp / name).write_bytes(data)


def _save(name: str, array):
    def write(tmp: Path) -> None:
        np.save(tmp / name, array, allow_pickle=True)
    return write


def _savez(name: str, **arrays):
    def write(tmp: Path) -> None:
        np.savez(tmp / name, **arrays)
    return write


def _both(*steps):
    def setup(tmp: Path) -> None:
        for s in steps:
            s(tmp)
    return setup


def _zip_of(name: str, members: dict[str, bytes]):
    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp / name, "w") as z:
            for k, v in members.items():
                z.writestr(k, v)
    return write


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _truncated_npz(tmp: Path) -> None:
    np.savez(tmp / "x.npz", x=GOOD)
    data = (tmp / "x.npz").read_bytes()
    (tmp / "x.npz").write_bytes(data[: len(data) // 2])


def _corrupt_npz_member(tmp: Path) -> None:
    np.savez_compressed(tmp / "x.npz", x=GOOD)
    data = bytearray((tmp / "x.npz").read_bytes())
    for i in range(60, 200):   # scramble the deflated stream, keep the zip directory
        data[i] ^= 0x5A
    (tmp / "x.npz").write_bytes(bytes(data))


def _lying_member(tmp: Path) -> None:
    """A member whose npy header declares 10^12 rows while the zip says it is small."""
    _zip_of("x.npz", {"x.npy": _npy_header((10 ** 12, 16)) + b"\0" * 64})(tmp)


EMULATE = ("emulate", "{tmp}/fw", "--output", "{tmp}/y.npy", "--input")
VERIFY = ("verify", "{tmp}/fw", "--sim", "csim", "--input")
OUT = ("y.npy",)


def emulate_case(id_: str, file: str, messages, setup, banks: int = 1, code: int = 2) -> Case:
    return Case(f"samples-{id_}", (*EMULATE, f"{{tmp}}/{file}"), tuple(messages), _fw(setup, banks), code=code,
                outputs=OUT)


CASES = [
    # --- what the file is
    emulate_case("missing", "nothing.npy", ["nothing.npy", "no such file"], None),
    emulate_case("directory", "adir", ["adir", "is a directory"], lambda t: (t / "adir").mkdir()),
    emulate_case("empty-file", "x.npy", ["x.npy", "neither signature"], _write("x.npy", b"")),
    emulate_case("text-file", "x.npy", ["x.npy", "not a .npy/.npz"], _write("x.npy", b"1,2,3\n4,5,6\n")),
    emulate_case("raw-pickle", "x.npy", ["x.npy", "neither signature"],
                 _write("x.npy", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02e.")),
    emulate_case("object-array", "x.npy", ["x.npy", "python objects", "never unpickles"],
                 _save("x.npy", np.array([[1.0, "a"], [None, 2]], dtype=object))),
    emulate_case("object-array-in-npz", "x.npz", ["x.npz", "'x'", "python objects"],
                 _zip_of("x.npz", {"x.npy": _npy_header((2, 16), "|O") + b"\x80\x04N."})),
    emulate_case("string-array", "x.npy", ["x.npy", "<U3", "real numbers"], _save("x.npy", np.array([["abc"] * 16]))),
    emulate_case("bytes-array", "x.npy", ["x.npy", "|S2", "real numbers"], _save("x.npy", np.array([[b"ab"] * 16]))),
    emulate_case("complex-array", "x.npy", ["x.npy", "complex128", "real numbers"],
                 _save("x.npy", GOOD.astype(np.complex128))),
    emulate_case("record-array", "x.npy", ["x.npy", "real numbers"],
                 _save("x.npy", np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]))),
    # --- forged headers
    emulate_case("header-1e12-rows", "x.npy", ["x.npy", "1000000000000", "limit"],
                 _write("x.npy", _npy_header((10 ** 12, 16)) + b"\0" * 128)),
    emulate_case("header-more-than-file", "x.npy", ["x.npy", "truncated", "(1000, 16)"],
                 _write("x.npy", _npy_header((1000, 16)) + b"\0" * 128)),
    emulate_case("header-garbage", "x.npy", ["x.npy", "header"],
                 _write("x.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': 'what', 'shape': ((}\n")),
    emulate_case("header-negative-shape", "x.npy", ["x.npy", "header"],
                 _write("x.npy", _npy_header((-3, 16)) + b"\0" * 128)),
    emulate_case("header-only-magic", "x.npy", ["x.npy", "header"], _write("x.npy", b"\x93NUMPY")),
    emulate_case("header-version-9", "x.npy", ["x.npy", "header"],
                 _write("x.npy", b"\x93NUMPY\x09\x00" + _npy_header((3, 16))[8:] + b"\0" * 400)),
    # --- zips
    emulate_case("npz-truncated", "x.npz", ["x.npz", "corrupt or truncated"], _truncated_npz),
    emulate_case("npz-corrupt-member", "x.npz", ["x.npz", "corrupt or truncated"], _corrupt_npz_member),
    emulate_case("npz-member-lies-about-rows", "x.npz", ["x.npz", "'x'", "limit"], _lying_member),
    emulate_case("npz-member-truncated", "x.npz", ["x.npz", "'x'", "truncated"],
                 _zip_of("x.npz", {"x.npy": _npy_header((100, 16)) + b"\0" * 64})),
    emulate_case("npz-empty-zip", "x.npz", ["x.npz", "none is named 'x'"], _zip_of("x.npz", {})),
    emulate_case("npz-no-x", "x.npz", ["x.npz", "'a'", "'b'", "none is named 'x'"],
                 _savez("x.npz", a=GOOD, b=GOOD)),
    emulate_case("npz-pickled-member", "x.npz", ["x.npz", "'x'", "header"],
                 _zip_of("x.npz", {"x.npy": b"\x80\x04N."})),
    # --- the values
    emulate_case("wrong-shape", "x.npy", ["x.npy", "(7,)", "(16,)"], _save("x.npy", np.zeros((3, 7)))),
    emulate_case("wrong-rank", "x.npy", ["x.npy", "(4, 4)", "(16,)"], _save("x.npy", np.zeros((3, 4, 4)))),
    emulate_case("scalar", "x.npy", ["x.npy", "single number"], _save("x.npy", np.float64(3.0))),
    emulate_case("zero-samples", "x.npy", ["x.npy", "no samples"], _save("x.npy", np.zeros((0, 16)))),
    emulate_case("nan", "x.npy", ["x.npy", "sample 2", "feature (5,)", "nan"],
                 _save("x.npy", np.where(np.arange(48).reshape(3, 16) == 37, np.nan, GOOD))),
    emulate_case("inf", "x.npy", ["x.npy", "sample 0", "feature (0,)", "inf"],
                 _save("x.npy", np.where(np.arange(48).reshape(3, 16) == 0, -np.inf, GOOD))),
    emulate_case("nan-in-npz", "x.npz", ["x.npz", "sample 1", "feature (0,)"],
                 _savez("x.npz", x=np.where(np.arange(48).reshape(3, 16) == 16, np.nan, GOOD))),
    # --- bank indices
    emulate_case("bank-missing", "x.npz", ["x.npz", "banked ensemble", "'bank'"], _savez("x.npz", x=GOOD), banks=2),
    emulate_case("bank-wrong-length", "x.npz", ["x.npz", "2 bank indices for 3 samples"],
                 _savez("x.npz", x=GOOD, bank=np.array([0, 1])), banks=2),
    emulate_case("bank-out-of-range", "x.npz", ["x.npz", "banks 0..1"],
                 _savez("x.npz", x=GOOD, bank=np.array([0, 1, 5])), banks=2),
    emulate_case("bank-negative", "x.npz", ["x.npz", "banks 0..1"],
                 _savez("x.npz", x=GOOD, bank=np.array([0, -1, 1])), banks=2),
    emulate_case("bank-fractional", "x.npz", ["x.npz", "'bank'", "integers"],
                 _savez("x.npz", x=GOOD, bank=np.array([0.5, 1, 0])), banks=2),
    emulate_case("bank-strings", "x.npz", ["x.npz", "'bank'", "real numbers"],
                 _savez("x.npz", x=GOOD, bank=np.array(["a", "b", "c"])), banks=2),
    emulate_case("bank-2d", "x.npz", ["x.npz", "'bank'", "(3, 2)"],
                 _savez("x.npz", x=GOOD, bank=np.zeros((3, 2), dtype=int)), banks=2),
    emulate_case("bank-for-plain-model", "x.npz", ["x.npz", "no weight banks"],
                 _savez("x.npz", x=GOOD, bank=np.array([0, 1, 0]))),
    # --- documented successes beside the refusals
    emulate_case("ok-npz-single-array-any-name", "x.npz", ["wrote 3 outputs"], _savez("x.npz", events=GOOD), code=0),
    emulate_case("ok-npz-compressed", "x.npz", ["wrote 3 outputs"],
                 lambda t: np.savez_compressed(t / "x.npz", x=GOOD), code=0),
    emulate_case("ok-integers", "x.npy", ["wrote 3 outputs"], _save("x.npy", np.ones((3, 16), dtype=np.int16)),
                 code=0),
    emulate_case("ok-fortran-order", "x.npz", ["wrote 3 outputs"], _savez("x.npz", x=np.asfortranarray(GOOD)),
                 code=0),
    emulate_case("ok-one-sample-without-batch", "x.npy", ["wrote 1 outputs"], _save("x.npy", GOOD[0]), code=0),
    # --- verify reads the same files (through --input or --data), checked before any simulator
    Case("samples-verify-zero-samples", (*VERIFY, "{tmp}/x.npy"), ("x.npy", "no samples"),
         _fw(_save("x.npy", np.zeros((0, 16))))),
    Case("samples-verify-data-object", ("verify", "{tmp}/fw", "--sim", "csim", "--data", "{tmp}/x.npy"),
         ("x.npy", "python objects"), _fw(_save("x.npy", np.array([None, 1], dtype=object)))),
    Case("samples-verify-wrong-shape", (*VERIFY, "{tmp}/x.npy"), ("x.npy", "(15,)", "(16,)"),
         _fw(_save("x.npy", np.zeros((2, 15))))),
    Case("samples-verify-nan", (*VERIFY, "{tmp}/x.npy"), ("x.npy", "sample 0", "feature (3,)"),
         _fw(_save("x.npy", np.where(np.arange(48).reshape(3, 16) == 3, np.nan, GOOD)))),
    # --- calibration data and labels (compile --calibration / --labels)
    Case("samples-calibration-pickle", ("compile", str(QMLP), "--calibration", "{tmp}/c.npy", "-o", "{tmp}/out"),
         ("c.npy", "python objects"), _save("c.npy", np.array([None], dtype=object))),
    Case("samples-labels-count", ("compile", str(QMLP), "--calibration", "{tmp}/c.npy", "--labels", "{tmp}/l.npy",
                                  "-o", "{tmp}/out"), ("l.npy", "c.npy", "5 labels", "3 calibration samples"),
         _both(_save("c.npy", GOOD), _save("l.npy", np.zeros(5)))),
    Case("samples-labels-nan", ("compile", str(QMLP), "--calibration", "{tmp}/c.npy", "--labels", "{tmp}/l.npy",
                                "-o", "{tmp}/out"), ("l.npy", "sample 1"),
         _both(_save("c.npy", GOOD), _save("l.npy", np.array([0, np.nan, 1])))),
    Case("samples-labels-without-calibration", ("compile", str(QMLP), "--labels", "{tmp}/l.npy", "-o", "{tmp}/out"),
         ("--labels needs --calibration",), _save("l.npy", np.zeros(3))),
    Case("samples-labels-twice", ("compile", str(QMLP), "--calibration", "{tmp}/c.npz", "--labels", "{tmp}/l.npy",
                                  "-o", "{tmp}/out"), ("c.npz", "l.npy", "give them once"),
         _both(_savez("c.npz", x=GOOD, y=np.zeros(3)), _save("l.npy", np.zeros(3)))),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_samples(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)


def test_a_valid_npz_with_banks_emulates(tmp_path, capsys):
    """The documented success beside the refusals: x and bank in one .npz, overwriting --output."""
    from nnfpga.compiler.cli import main
    copy_firmware(tmp_path, banks=2)
    np.savez(tmp_path / "x.npz", x=GOOD, bank=np.array([0, 1, 1]))
    (tmp_path / "y.npy").write_bytes(b"old")
    assert main(["emulate", str(tmp_path / "fw"), "--input", str(tmp_path / "x.npz"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (3, 5)


def test_npz_members_read_as_numpy_reads_them(tmp_path):
    """The header-checked .npz reader gives numpy's own array, whatever the memory order."""
    from nnfpga.core.samples import load_samples
    x = np.asfortranarray(np.arange(48, dtype=np.int32).reshape(3, 16))
    np.savez_compressed(tmp_path / "x.npz", x=x)
    np.save(tmp_path / "x.npy", x)
    assert np.array_equal(load_samples(tmp_path / "x.npz"), x)
    assert np.array_equal(load_samples(tmp_path / "x.npy"), x)
