"""Compile C++ against the Xilinx ``ap_types`` headers (``ap_fixed.h``, ``ap_int.h``).

The headers are not vendored: they are the copy shipped inside the installed ``hls4ml``
package (``hls4ml/templates/vivado/ap_types``), which is the open-source release of the
Vitis HLS arbitrary-precision types.  They are the reference for bit-exact behaviour
(tests compare `nnfpga.ir.fixed` against them) and are what the HLS C-simulation runner
compiles generated firmware with.

Public API: `ap_types_include_dir` and `compile_cpp`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["ApTypesNotFound", "CompileError", "ap_types_include_dir", "compile_cpp"]

#: Location of the headers inside the hls4ml package.
_AP_TYPES_SUBDIR = ("templates", "vivado", "ap_types")

#: Flags every compile uses; the ap_types headers need at least C++11.
DEFAULT_FLAGS = ("-O1", "-std=c++14")


class ApTypesNotFound(RuntimeError):
    """The ap_types headers could not be located (hls4ml missing or unexpected layout)."""


class CompileError(RuntimeError):
    """g++ failed; the message carries the command line and g++'s diagnostics."""

    def __init__(self, message: str, cmd: list[str] | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.cmd = cmd
        self.stderr = stderr


def ap_types_include_dir() -> Path:
    """Directory holding ``ap_fixed.h`` etc., as shipped in the installed hls4ml package.

    Raises `ApTypesNotFound` when hls4ml is not installed or does not contain the headers.
    The package is located without importing it (importing hls4ml is slow and pulls in
    optional dependencies).
    """
    if importlib.util.find_spec("hls4ml") is None:
        raise ApTypesNotFound(
            "the ap_types headers come from the hls4ml package, which is not installed "
            "in this Python environment (pip install hls4ml==1.3.0)")
    root = importlib.resources.files("hls4ml")
    candidate = root.joinpath(*_AP_TYPES_SUBDIR)
    try:
        path = Path(os.fspath(candidate))
    except TypeError as exc:  # e.g. a zipped installation: no real directory to -I
        raise ApTypesNotFound(
            f"hls4ml is installed at {root!s} but not as a plain directory; "
            "the ap_types headers cannot be passed to g++ from there") from exc
    if not (path / "ap_fixed.h").is_file():
        raise ApTypesNotFound(
            f"hls4ml is installed but {path} does not contain ap_fixed.h; "
            "this hls4ml version ships the headers elsewhere (expected hls4ml==1.3.0)")
    return path.resolve()


def _compiler() -> str:
    cxx = shutil.which("g++")
    if cxx is None:
        raise CompileError("g++ was not found on PATH; it is needed to compile C++ simulations")
    return cxx


def compile_cpp(source: str, workdir: Path, name: str,
                extra_flags: list[str] | tuple[str, ...] = (),
                include_dirs: list[Path] | tuple[Path, ...] = (),
                timeout: float | None = 600.0) -> Path:
    """Write ``source`` to ``workdir/name.cpp`` and compile it into ``workdir/name``.

    The compile uses ``g++ -O1 -std=c++14 -I<ap_types>`` plus ``include_dirs`` (before
    the ap_types directory) and ``extra_flags`` (appended last, so they can override the
    defaults).  Returns the path of the executable.  Raises `CompileError` with g++'s
    stderr when compilation fails or times out.
    """
    workdir = Path(workdir)
    if not name or "/" in name or os.sep in name:
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    src_path = workdir / f"{name}.cpp"
    exe_path = workdir / name
    src_path.write_text(source)
    cmd = [_compiler(), *DEFAULT_FLAGS]
    cmd += [f"-I{Path(d)}" for d in include_dirs]
    cmd += [f"-I{ap_types_include_dir()}", str(src_path), "-o", str(exe_path), *extra_flags]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as exc:
        raise CompileError(
            f"g++ failed (exit {exc.returncode}) compiling {src_path}:\n"
            f"$ {' '.join(cmd)}\n{exc.stderr.strip()}", cmd, exc.stderr) from None
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise CompileError(
            f"g++ timed out after {timeout} s compiling {src_path}:\n$ {' '.join(cmd)}\n{stderr.strip()}",
            cmd, stderr) from None
    return exe_path
