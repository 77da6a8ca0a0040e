"""C-simulation of a generated HLS firmware tree with g++ and the real ap_fixed headers.

`run_csim` compiles the tree's top function together with its own test bench
(``tb_<top>.cpp``, the one Vitis HLS runs too) against the ``ap_types`` headers shipped in
the installed hls4ml package (located by `nnfpga.sim.apfixed`, never copied), caches the
executable by the content of every compiled file (in the build cache,
`nnfpga.sim.build_cache`, outside the tree), runs it on raw input integers and
returns the raw output integers.  It decides nothing: callers compare its result with the
golden emulator (`nnfpga.ir.emulator.run_raw`), bit for bit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from nnfpga.ir.fixed import FixedType
from nnfpga.sim import apfixed, build_cache

MANIFEST = "nnfpga_hls.json"
#: Flags of the C-sim build, appended after apfixed's defaults (so -O2 wins).  The three
#: warnings gate GCC's "access analysis" pass, which takes half the compile time on the
#: constant arrays of ap_fixed (each element has a dynamic initializer) and can never
#: fire on generated code (it checks new/delete and free pairings).
CSIM_FLAGS = ("-O2", "-Wno-mismatched-new-delete", "-Wno-mismatched-dealloc", "-Wno-free-nonheap-object")


class CSimError(RuntimeError):
    """The C-sim executable failed; the message carries its stderr."""


def find_tree(fw_dir: Path) -> tuple[Path, dict]:
    """The directory holding the manifest (``fw_dir`` or ``fw_dir/hls``) and the manifest."""
    fw_dir = Path(fw_dir)
    for d in (fw_dir, fw_dir / "hls"):
        if (d / MANIFEST).is_file():
            return d, json.loads((d / MANIFEST).read_text())
    raise FileNotFoundError(f"{fw_dir} is not an HLS firmware tree written by nnfpga "
                            f"(no {MANIFEST} in it or in its hls/ sub-directory)")


def build_csim(fw_dir: Path, cache_dir: Path | None = None) -> Path:
    """Compile (or reuse from the build cache, `nnfpga.sim.build_cache`) the C-sim
    executable of a firmware tree.  ``cache_dir``: the cache's root folder instead of
    `build_cache.cache_root`."""
    tree, man = find_tree(fw_dir)
    compiled = [*man["sources"], *man["headers"], man["testbench"]]
    h = hashlib.sha256()
    for part in (_toolchain_id(), " ".join((*apfixed.DEFAULT_FLAGS, *CSIM_FLAGS))):
        h.update(part.encode() + b"\0")
    for rel in compiled:
        h.update(rel.encode() + b"\0" + (tree / rel).read_bytes() + b"\0")
    key = h.hexdigest()[:32]
    name = f"csim_{man['top']}"

    def build(tmp: Path, _: Path) -> None:
        unity = (f"// nnfpga C-sim: the firmware tree {tree} and its test bench, one translation unit\n"
                 + "".join(f'#include "{rel}"\n' for rel in (*man["sources"], man["testbench"])))
        apfixed.compile_cpp(unity, tmp, name, extra_flags=list(CSIM_FLAGS), include_dirs=[tree])
        (tmp / f"{name}.cpp").unlink()  # names the tree it was built from: not part of the entry

    return build_cache.entry("csim", key, build, what="the HLS C-sim", root=cache_dir) / name


@functools.lru_cache(maxsize=1)
def _toolchain_id() -> str:
    """g++'s version line and a hash of the ap_types headers: a cached binary is reused
    only with the very compiler and headers that built it."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise apfixed.CompileError("g++ was not found on PATH; it is needed for the HLS C-sim")
    version = subprocess.run([cxx, "--version"], check=True, capture_output=True, text=True).stdout
    inc = apfixed.ap_types_include_dir()
    h = hashlib.sha256()
    for p in sorted(inc.rglob("*.h")):
        h.update(str(p.relative_to(inc)).encode() + p.read_bytes())
    return f"{cxx} {version.splitlines()[0]} {inc} {h.hexdigest()}"


def _raw_inputs(x_raw: np.ndarray, man: dict) -> np.ndarray:
    """Checked raw input rows; a banked ensemble's rows end with the bank index."""
    banks = int(man.get("banks", 0))
    if not banks:
        return _raw_data(x_raw, man)
    x = np.asarray(x_raw)
    n_in = int(man["n_in"])
    if x.ndim != 2 or x.shape[1] != n_in + 1:
        raise ValueError(f"C-sim input of shape {x.shape}: each row of the banked ensemble must hold "
                         f"{n_in} values and the bank index")
    bank = x[:, n_in]
    if np.any(bank != np.round(bank)) or (bank.size and (bank.min() < 0 or bank.max() >= banks)):
        raise ValueError(f"C-sim bank indices must be integers in 0..{banks - 1}")
    return np.concatenate([_raw_data(x[:, :n_in], man), bank.astype(np.int64)[:, None]], axis=1)


def _raw_data(x_raw: np.ndarray, man: dict) -> np.ndarray:
    t = FixedType.from_json(man["input_type"])
    n_in = int(man["n_in"])
    x = np.asarray(x_raw)
    if x.ndim == 1 and x.size == n_in:
        x = x[None]
    if x.ndim == 0 or int(np.prod(x.shape[1:])) != n_in:
        raise ValueError(f"C-sim input of shape {x.shape}: each sample must hold {n_in} values "
                         f"(input shape {man['input_shape']})")
    x = x.reshape(len(x), n_in)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError("C-sim inputs must be raw integers (value * 2^frac), got non-integer values")
        if x.size and np.max(np.abs(x)) >= 2.0 ** 62:
            raise ValueError("C-sim input raw integers are too large")
    elif x.dtype.kind not in "iu":
        raise ValueError(f"C-sim inputs must be raw integers, got dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.size and (x.min() < t.min_raw or x.max() > t.max_raw):
        raise ValueError(f"C-sim inputs [{x.min()}, {x.max()}] are outside the raw range "
                         f"[{t.min_raw}, {t.max_raw}] of the input type {t.cpp()}")
    return x


def sign_extend(raw: np.ndarray, t: FixedType) -> np.ndarray:
    """Raw integers reduced to the low ``t.width`` bits, sign-extended when ``t`` is signed."""
    v = np.bitwise_and(np.asarray(raw, dtype=np.int64), (1 << t.width) - 1)
    if t.signed:
        v = np.where(v >= 1 << (t.width - 1), v - (1 << t.width), v)
    return v


def run_csim(fw_dir: Path, x_raw: np.ndarray, cache_dir: Path | None = None,
             timeout: float | None = 600.0) -> np.ndarray:
    """Run the C-sim of the firmware tree ``fw_dir`` (``<outdir>/hls`` or ``<outdir>``).

    ``x_raw``: raw integers of the input type, shape ``(batch, *input_shape)`` or
    ``(batch, n_in)`` (int or integer-valued float).  Returns int64 raw integers of the
    output type, shape ``(batch, *output_shape)`` like `nnfpga.ir.emulator.run_raw`.
    """
    tree, man = find_tree(fw_dir)
    x = _raw_inputs(x_raw, man)
    out_t = FixedType.from_json(man["output_type"])
    shape = (len(x), *man["output_shape"])
    if len(x) == 0:
        return np.zeros(shape, dtype=np.int64)
    exe = build_csim(tree, cache_dir)
    build_cache.report(f"simulating {len(x)} samples")
    with tempfile.TemporaryDirectory(prefix="nnfpga-csim-") as tmp:
        fin, fout = Path(tmp) / "inputs.txt", Path(tmp) / "outputs.txt"
        fin.write_text("".join(" ".join(map(str, row)) + "\n" for row in x.tolist()))
        try:
            subprocess.run([str(exe), str(fin), str(fout)], check=True, capture_output=True,
                           text=True, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            raise CSimError(f"C-sim {exe} failed (exit {exc.returncode}):\n{exc.stderr.strip()}") from None
        except subprocess.TimeoutExpired:
            raise CSimError(f"C-sim {exe} did not finish within {timeout} s") from None
        y = np.array(fout.read_text().split(), dtype=np.int64)
    if y.size != len(x) * int(man["n_out"]):
        raise CSimError(f"C-sim wrote {y.size} values for {len(x)} samples of {man['n_out']} outputs")
    return sign_extend(y, out_t).reshape(shape)
