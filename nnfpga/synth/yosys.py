"""Run Yosys ``synth_xilinx`` on a generated design (a subprocess with a time and memory limit).

`synth_xilinx(verilog, top, family, workdir)` writes ``workdir/synth.ys``::

    read_verilog <verilog>
    synth_xilinx -family <family> -top <top> -run :map_memory
    memory_map t:$mem_v2 r:RD_PORTS>2 %i
    synth_xilinx -family <family> -top <top> -run map_memory:
    tee -q -o stat.txt stat
    write_json netlist.json

i.e. plain ``synth_xilinx -family <family> -top <top>`` with one step added: a ROM read by
more than two ports (an activation table shared by a whole layer) is mapped to logic
before ``memory_libmap``, whose search over port assignments exhausts the memory of the
machine on such ROMs in Yosys 0.23 (a block RAM has two ports; so does the estimator's
block-RAM rule).  Tables read once or twice still go to block RAM.

The run streams the log into ``workdir/yosys.log`` and reports the pass being executed
through ``progress`` (``"2.28 MEMORY_LIBMAP"``); it is killed after ``timeout`` seconds
and limited to ``memory_gb`` of address space.  Failures raise `SynthesisError` with
the end of the log.  `cell_counts` reads the cell types of ``netlist.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from nnfpga.core.errors import UserError

#: Default limits of one Yosys run.
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_MEMORY_GB = 16.0

_PASS_RE = re.compile(r"^(\d+(?:\.\d+)*)\. Executing (\S+) pass")


class SynthesisError(UserError):
    """Yosys or GHDL failed, timed out or ran out of memory; the message says which and
    ends with the last lines of the log."""


def yosys_version() -> str | None:
    exe = shutil.which("yosys")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out or None


def _require_yosys() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise SynthesisError("yosys not found on PATH; install it (Debian: apt-get install yosys, "
                             "or `make setup` as root) to run synthesis")
    return exe


def synth_script(verilog: Path, top: str, family: str) -> str:
    return "\n".join([
        f"read_verilog {_quote(verilog)}",
        f"synth_xilinx -family {family} -top {top} -run :map_memory",
        "# ROMs with more than two read ports: logic (see nnfpga.synth.yosys)",
        "memory_map t:$mem_v2 r:RD_PORTS>2 %i",
        f"synth_xilinx -family {family} -top {top} -run map_memory:",
        "tee -q -o stat.txt stat",
        "write_json netlist.json",
        "",
    ])


def _quote(path: Path) -> str:
    text = str(path)
    return f'"{text}"' if any(c.isspace() for c in text) else text


def _limit_memory(gb: float) -> Callable[[], None] | None:
    """Child set-up: its own process group (a timeout kills Yosys and nothing else) and
    an address-space limit of ``gb`` GB."""
    if os.name != "posix":
        return None

    def apply() -> None:
        os.setsid()
        if gb:
            import resource
            limit = int(gb * 1024 ** 3)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_yosys(script: str, workdir: Path, timeout: float = DEFAULT_TIMEOUT_S,
              memory_gb: float = DEFAULT_MEMORY_GB,
              progress: Callable[[str], None] = lambda s: None) -> float:
    """Run ``script`` in ``workdir`` (log in ``yosys.log``); returns the seconds it took."""
    exe = _require_yosys()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "synth.ys").write_text(script)
    log_path = workdir / "yosys.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([exe, "-s", "synth.ys"], cwd=workdir, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                preexec_fn=_limit_memory(memory_gb))

        def pump() -> None:
            for line in proc.stdout:
                log.write(line)
                m = _PASS_RE.match(line)
                if m:
                    progress(f"{m.group(1)} {m.group(2)}")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            reader.join(5)
            raise SynthesisError(f"Yosys did not finish within {timeout:g} s and was stopped "
                                 f"(raise the limit with --timeout); log: {log_path}") from None
        except BaseException:
            _kill(proc)
            raise
        reader.join(30)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = _tail(log_path)
        why = (f"was stopped by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with code {proc.returncode}")
        memory_signs = ("out of memory", "bad_alloc", "failed to map segment", "cannot allocate memory")
        if proc.returncode in (-signal.SIGABRT, -signal.SIGKILL, -signal.SIGSEGV) or \
                any(sign in tail.lower() for sign in memory_signs):
            why += f", most likely out of memory (limit {memory_gb:g} GB; raise it with --memory-gb)"
        raise SynthesisError(f"Yosys {why}; log: {log_path}\n{tail}")
    return seconds


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()
    proc.wait()


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def synth_xilinx(verilog: Path, top: str, family: str, workdir: Path, timeout: float = DEFAULT_TIMEOUT_S,
                 memory_gb: float = DEFAULT_MEMORY_GB,
                 progress: Callable[[str], None] = lambda s: None) -> dict:
    """Synthesise ``verilog`` for ``family`` (xcup / xcu / xc7); returns ``{"seconds",
    "cells", "netlist", "log"}`` (paths in ``workdir``)."""
    verilog = Path(verilog).resolve()
    if not verilog.is_file():
        raise SynthesisError(f"{verilog}: no such Verilog file")
    workdir = Path(workdir)
    for stale in ("netlist.json", "stat.txt"):
        (workdir / stale).unlink(missing_ok=True)
    seconds = run_yosys(synth_script(verilog, top, family), workdir, timeout, memory_gb, progress)
    netlist = workdir / "netlist.json"
    if not netlist.is_file():
        raise SynthesisError(f"Yosys finished without writing {netlist}; log: {workdir / 'yosys.log'}")
    return {"seconds": seconds, "netlist": netlist, "log": workdir / "yosys.log",
            "cells": cell_counts(load_netlist(netlist), top)}


def load_netlist(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def top_module(netlist: dict, top: str) -> dict:
    mods = netlist.get("modules", {})
    if top in mods:
        return mods[top]
    for name, mod in mods.items():  # GHDL's netlist may spell the top differently
        if name.lower() == top.lower() or int(mod.get("attributes", {}).get("top", "0") or 0, 2) == 1:
            return mod
    raise SynthesisError(f"the synthesised netlist has no module {top!r} (has {', '.join(mods)})")


def cell_counts(netlist: dict, top: str) -> dict[str, int]:
    return dict(Counter(c["type"] for c in top_module(netlist, top).get("cells", {}).values()))
