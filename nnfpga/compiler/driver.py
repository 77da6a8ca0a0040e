"""compile / emulate / verify: the verbs behind the CLI and the Python API.

`compile_model` checks ``-o``/``--dump-ir`` before compiling, builds the firmware tree in a
work folder beside OUTDIR and swaps it into place only when everything succeeded, so a
failed or killed compile never leaves a half-written OUTDIR (`nnfpga.compiler.output_dir`
says which folders it replaces and what it deletes).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from nnfpga.compiler.config import CompileOptions, make_options
from nnfpga.compiler.forked_child import Beside, run_beside
from nnfpga.compiler.output_dir import (IR_FILE, check_paths, cleanup_on_sigterm, install, make_work_folder,
                                        shown, write_manifest, write_run_record)
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.compiler.passes.error_bound import accuracy_summary
from nnfpga.compiler.pipeline import build_graph
from nnfpga.compiler.size_guard import check_limit
from nnfpga.core.clock import parse_clock_mhz
from nnfpga.core.errors import UserError
from nnfpga.core.parts import find_part
from nnfpga.ir.emulator import quantize_input, run_raw, user_output
from nnfpga.ir.graph import Graph

SIMULATORS = ("verilator", "ghdl", "csim")
MARKER = IR_FILE


@dataclass
class CompileResult:
    outdir: Path
    graph: Graph
    report: dict
    seconds: float
    #: values the compiler used instead of the requested ones (also in report.json)
    adjustments: list = field(default_factory=list)


def compile_model(model, target: str = "xcvu9p", clock: str | float = "240MHz",
                  outdir: str | Path = "fw", precision: Precision | None = None,
                  dump_ir: str | Path | None = None, *, config=None, calibration=None, labels=None,
                  max_dsp: int | None = None, ii: int | None = None, event_rate=None,
                  trim: bool | None = None, reuse: int | None = None,
                  options: CompileOptions | None = None, name: str | None = None,
                  library: str | None = None, axi_stream: bool = False,
                  bunch_crossing: bool = False, html: bool = False,
                  max_multiplications: int | None = None, data=None, pipeline: str = "auto") -> CompileResult:
    """``config`` (a YAML path or dict), ``calibration``/``labels`` (arrays), ``max_dsp``,
    ``ii``, ``event_rate``, ``trim`` and ``reuse`` (the global reuse factor) drive the optimisation passes (`config.make_options`).
    ``name``: the core's name (top entity/module and the prefix of its other design units;
    default: the model's name); ``library``: its VHDL library (default ``nnfpga_<name>``).
    ``axi_stream`` / ``bunch_crossing``: also write the AXI4-Stream wrapper / the
    bunch-crossing frame wrapper for ``clock`` (`nnfpga.backends.rtl.wrappers`).
    ``html``: also write report.html (matplotlib plots; about 2 s, so by default it is
    left to ``nnfpga report``, which writes it).  ``max_multiplications``: the size guard's
    limit (`nnfpga.compiler.size_guard`; default its DEFAULT_MAX_MULTIPLICATIONS).
    ``data``: a `nnfpga.compiler.data_accuracy.DataSet`: the golden model and the source
    framework run on its samples and the report gets their comparison (``data_accuracy``).
    ``pipeline``: where the RTL's pipeline registers go: ``auto`` (from ``clock`` and the
    part family's delays) or ``levels=N[,mult=M]`` (fixed; `RtlConfig`)."""
    start = time.perf_counter()
    part = find_part(target)
    clock_mhz = parse_clock_mhz(clock)
    _check_names(name, library)
    check_limit(max_multiplications)
    outdir = Path(outdir)
    dump_dir = Path(os.path.abspath(dump_ir)) if dump_ir else None
    check_paths(outdir, _input_files(model, config), Path(dump_ir) if dump_ir else None)
    options = options or make_options(config, precision, calibration, labels, max_dsp, ii, event_rate,
                                      clock_mhz, trim, reuse)
    from nnfpga.backends.rtl.lowering.builder import RtlConfig, pipeline_settings
    from nnfpga.backends.rtl.timing import part_family
    # one RTL configuration for the reuse search's prices and the lowering
    rtl_config = RtlConfig(clock_mhz=clock_mhz, family=part_family(part), shift_add=options.max_dsp == 0,
                           **pipeline_settings(pipeline))
    options = dataclasses.replace(options, dsp_type=part.dsp_type, rtl=rtl_config)
    if max_multiplications is not None:
        options = dataclasses.replace(options, max_multiplications=max_multiplications)
    graph = build_graph(model, precision, dump_dir, options=options)
    bound = accuracy_summary(graph)
    on_data = None
    if data is not None:  # before the tree is written: a bad sample file leaves no trace
        from nnfpga.compiler.data_accuracy import evaluate_on_data
        on_data = evaluate_on_data(graph, model, data, bound)
    destination = Path(os.path.abspath(outdir))  # "a/../fw" need not have an "a"
    with cleanup_on_sigterm():
        work = _os_error_is_users(outdir, lambda: make_work_folder(destination))
        try:
            report = _write_tree(graph, work.tree, part, clock_mhz, rtl_config, model, name, library, axi_stream,
                                 bunch_crossing, html, {"accuracy": bound, "data_accuracy": on_data})
            write_manifest(work.tree)
            seconds = time.perf_counter() - start
            write_run_record(work.tree, _run_record(model, outdir, seconds))
            _os_error_is_users(outdir, lambda: install(work, destination))
        except BaseException:
            work.abandon()
            raise
    return CompileResult(outdir, graph, report, seconds, report["adjustments"])


def _write_tree(graph: Graph, tmp: Path, part, clock_mhz: float, rtl_config, model, name: str | None,
                library: str | None, axi_stream: bool, bunch_crossing: bool, html: bool, figures: dict) -> dict:
    """Write the firmware tree of ``graph`` into ``tmp``; returns the report.  ``rtl_config``:
    the `RtlConfig` of the lowering (clock, part family, pipeline).  ``figures``:
    the accuracy sections (``accuracy``; ``data_accuracy`` when not None)."""
    from nnfpga.backends.hls import write_hls
    from nnfpga.backends.integration import write_integration
    from nnfpga.backends.report import build_report, write_report_files
    from nnfpga.backends.rtl import lower, write_netlist
    from nnfpga.backends.rtl.writer import resolve_library
    from nnfpga.backends.rtl.names import top_name
    from nnfpga.backends.rtl.wrappers import write_wrappers

    side: Beside | None = None
    try:
        graph.save(tmp / MARKER)
        try:
            netlist = lower(graph, rtl_config, name=top_name(graph.name) if name is None else name, check=False,
                            dsp_type=part.dsp_type)
            library = resolve_library(netlist, library)
            # the Verilog printer and the estimator run beside the VHDL printer, HLS and
            # integration: the two processes end about together
            side = run_beside(lambda: _verilog_and_estimate(netlist, tmp, library, part),
                              "Verilog and the resource estimate")
            rtl = write_netlist(netlist, tmp, library, languages=("vhdl",))
            extra: dict[str, list[str]] = {"vhdl": [], "verilog": []}
            if axi_stream or bunch_crossing:
                wrappers = write_wrappers(tmp, rtl, axi_stream=axi_stream,
                                          bx_clock_mhz=clock_mhz if bunch_crossing else None)
                for key in ("axi_stream", "bunch_crossing"):
                    for lang, file in wrappers.get(key, {}).get("files", {}).items():
                        extra[lang].append(file)
            # the build scripts get a complete part number (the device's default for a bare device)
            hls = write_hls(graph, tmp, part.vivado_part, clock_mhz, top=name)
            write_integration(graph, rtl, tmp, part.vivado_part, clock_mhz, extra_sources=extra)
            estimate = side.wait()
        except ValueError as e:
            raise UserError(f"{_model_name(model)}: {e}") from None
    except BaseException:
        if side is not None:
            side.cancel()
        raise
    report = build_report(graph, rtl, hls, part, clock_mhz, netlist=netlist, estimate=estimate)
    report["accuracy"] = figures["accuracy"]
    if figures.get("data_accuracy") is not None:
        report["data_accuracy"] = figures["data_accuracy"]
    report["adjustments"] = graph.annotations.get("adjustments", [])
    report["optimisation"] = graph.annotations.get("passes", {})
    write_report_files(tmp, report, html=html)  # report.json, report.md (, report.html)
    return report


def _os_error_is_users(outdir: Path, step):
    """Creating the folders beside OUTDIR and moving the tree in fail for reasons of the
    user's file system (permissions, a mount point, a full disk): say so, naming the path."""
    try:
        return step()
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise UserError(f"-o {shown(outdir)}: cannot put the output there: {e.strerror or e}{where}") from None


def _input_files(model, config) -> list[Path]:
    """The files a compile reads, which ``-o`` must not contain."""
    from nnfpga.compiler.frontends.keras import KerasJson
    files: list[Path] = []
    for item in (model if isinstance(model, (list, tuple)) else [model]):
        if isinstance(item, KerasJson):
            files += [Path(item.architecture), Path(item.weights)]
        elif isinstance(item, (str, Path)):
            files.append(Path(item))
    if isinstance(config, (str, Path)):
        files.append(Path(config))
    return files


def _run_record(model, outdir: Path, seconds: float) -> dict:
    """What differs from run to run (kept out of every other file of the tree)."""
    from nnfpga.core.version import __version__
    items = [getattr(m, "architecture", m) for m in (model if isinstance(model, (list, tuple)) else [model])]
    record = {"compile_seconds": round(seconds, 3),
              "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "host": socket.gethostname(), "pid": os.getpid(), "nnfpga_version": __version__,
              "outdir": os.path.abspath(outdir),
              "models": [os.path.abspath(m) if isinstance(m, (str, Path)) else _model_name(m) for m in items]}
    weights = [getattr(m, "weights", None) for m in (model if isinstance(model, (list, tuple)) else [model])]
    if any(isinstance(w, (str, Path)) for w in weights):   # a Keras .json: `nnfpga report --data` needs both
        record["weights"] = [os.path.abspath(w) if isinstance(w, (str, Path)) else None for w in weights]
    return record


def _verilog_and_estimate(netlist, outdir: Path, library: str, part):
    """Print the Verilog of ``netlist`` and return its resource estimate for ``part``."""
    from nnfpga.backends.report import estimate_on_part
    from nnfpga.backends.rtl.writer import write_hdl
    write_hdl(netlist, outdir, ("verilog",), library)
    return estimate_on_part(netlist, part)


def _model_name(model) -> str:
    if isinstance(model, (list, tuple)):
        return f"banked ensemble of {len(model)} models"
    return str(model) if isinstance(model, (str, Path)) else f"model {getattr(model, 'name', '')!r}"


def _check_names(name: str | None, library: str | None) -> None:
    """Before the (slow) compile: ``--name``/``--library`` are legal identifiers as given."""
    from nnfpga.backends.rtl.names import check_identifier
    try:
        if name is not None:
            check_identifier(name, "--name")
        if library is not None:
            check_identifier(library, "--library")
    except ValueError as e:
        raise UserError(str(e)) from None


# ----------------------------------------------------------------------------- loading
def load_firmware(outdir: str | Path) -> Graph:
    """The IR of an output directory, validated (`nnfpga.ir.validate`) before it is used."""
    from nnfpga.ir.validate import IRFileError, load_ir
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise UserError(f"{outdir}: not an nnfpga output directory (no such directory); run nnfpga compile first")
    if not (outdir / MARKER).is_file():
        raise UserError(f"{outdir}: not an nnfpga output directory (no {MARKER}); run nnfpga compile first")
    try:
        return load_ir(outdir / MARKER)
    except IRFileError as e:
        raise UserError(f"{outdir / MARKER}: {e}; recompile the model with nnfpga compile") from None


def _checked_bank(graph: Graph, bank, n: int, where: str):
    if graph.banks and bank is None:
        raise UserError(f"{where}: model {graph.name!r} is a banked ensemble of {graph.banks} networks: "
                        "every sample needs its bank index (an integer array 'bank' in the .npz, "
                        "beside 'x')")
    try:
        return graph.check_bank(bank, n)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None


def _quantized(graph: Graph, x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise UserError(f"{where}: holds {x.dtype} values; the samples must be real numbers")
    if x.ndim == 0 or x.size == 0:
        raise UserError(f"{where}: holds no samples (shape {x.shape}); give at least one")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        first = np.argwhere(~np.isfinite(x))[0]
        raise UserError(f"{where}: sample {int(first[0])}, feature {tuple(int(i) for i in first[1:])} is "
                        f"{x[tuple(first)]}; all values must be finite numbers")
    try:
        return quantize_input(graph, x)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None


def emulate_firmware(outdir: str | Path, x: np.ndarray, bank=None, source: str = "input") -> np.ndarray:
    """``bank``: per sample its bank index (a banked ensemble only).  ``source`` names
    the samples (their file) in error messages."""
    graph = load_firmware(outdir)
    x_raw = _quantized(graph, x, source)
    raw = run_raw(graph, x_raw, _checked_bank(graph, bank, len(x_raw), source))
    return user_output(graph, raw)


# ----------------------------------------------------------------------------- verify
def _runner(sim: str) -> Callable[[Path, np.ndarray], np.ndarray]:
    if sim == "verilator":
        from nnfpga.sim.verilator import run_verilator
        return run_verilator
    if sim == "ghdl":
        from nnfpga.sim.ghdl import run_ghdl
        return run_ghdl
    if sim == "csim":
        from nnfpga.sim.csim import run_csim
        return run_csim
    raise UserError(f"unknown simulator {sim!r}; choose from {', '.join(SIMULATORS)}")


def check_simulators(sims: list[str]) -> list[str]:
    """``sims`` if every name is a known simulator (and there is at least one)."""
    if not sims:
        raise UserError(f"--sim names no simulator; choose from {', '.join(SIMULATORS)}")
    for s in sims:
        if s not in SIMULATORS:
            raise UserError(f"unknown simulator {s!r} in --sim; choose from {', '.join(SIMULATORS)} "
                            "(comma-separated)")
    return sims


_SIM_LANGUAGE = {"verilator": "verilog", "ghdl": "vhdl", "csim": "hls"}


def verify_firmware(outdir: str | Path, x: np.ndarray, sims: list[str] | None = None,
                    progress: Callable[[str], None] = lambda s: None, bank=None, source: str = "input") -> dict:
    """Run each simulator on the samples and compare with the golden emulator bit for bit;
    the summary goes to verify.json and, as ``verification``, into report.json/.md (and
    report.html when the tree has one; `nnfpga report` writes it otherwise).
    ``bank``: per sample its bank index (a banked ensemble only); ``source`` names the
    samples (their file) in error messages and in the report."""
    outdir = Path(outdir)
    graph = load_firmware(outdir)
    sims = check_simulators(list(SIMULATORS) if sims is None else list(sims))
    x_raw = _quantized(graph, x, source)
    bank = _checked_bank(graph, bank, len(x_raw), source)
    from nnfpga.compiler.firmware_files import check_firmware_files, check_writable
    report = _tree_report(outdir)
    check_writable(outdir, ("verify.json",) + (("report.json", "report.md", "report.html") if report else ()))
    for sim in sims:
        check_firmware_files(outdir, graph, (_SIM_LANGUAGE[sim],), f"the {sim} simulation")
    golden = run_raw(graph, x_raw, bank).reshape(len(x_raw), -1)
    flat_in = x_raw.reshape(len(x_raw), -1).astype(np.int64)
    if bank is not None:  # the bank index travels as the last column (`bus.check_input`)
        flat_in = np.concatenate([flat_in, bank[:, None]], axis=1)
    results = {}
    for sim in sims:
        progress(f"{sim}: simulating {len(flat_in)} samples")
        start = time.perf_counter()
        got = _runner(sim)(outdir, flat_in).reshape(golden.shape)
        seconds = time.perf_counter() - start
        bad = np.any(got != golden, axis=1)
        first = int(np.argmax(bad)) if bad.any() else None
        results[sim] = {"mismatches": int(bad.sum()), "samples": int(len(golden)),
                        "mismatched_values": int(np.sum(got != golden)),
                        "first_mismatch": first, "seconds": round(seconds, 3)}
        progress(f"{sim}: {results[sim]['mismatches']} mismatching samples in {seconds:.1f} s")
    summary = {"samples": int(len(golden)), "results": results,
               "bit_exact": all(r["mismatches"] == 0 for r in results.values())}
    (outdir / "verify.json").write_text(json.dumps(summary, indent=2))
    if report is not None:
        from nnfpga.backends.report import write_report_files
        report["verification"] = verification_section(summary, source)
        write_report_files(outdir, report, html=(outdir / "report.html").is_file())
    return summary


def verification_section(summary: dict, source: str) -> dict:
    """The report's ``verification``: `verify_firmware`'s summary with each simulator's
    throughput."""
    sims = {}
    for sim, r in summary["results"].items():
        rate = r["samples"] / r["seconds"] if r["seconds"] > 0 else None
        sims[sim] = {**r, "samples_per_second": None if rate is None else round(rate, 1)}
    return {"data": source, "samples": summary["samples"], "bit_exact": summary["bit_exact"], "simulators": sims}


def _no_constant(token: str):
    raise ValueError(f"{token} is not a JSON number")


def _tree_report(outdir: Path) -> dict | None:
    """report.json of ``outdir`` for a verb that adds to it (None when the tree has none);
    a corrupt one is refused before any work, naming the file."""
    from nnfpga.backends.report.schema import validate
    path = outdir / "report.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
        errors = validate(report) if isinstance(report, dict) else ["not a JSON object"]
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        errors = [f"not JSON text ({str(e)[:200]})"]
    if errors:
        raise UserError(f"{path}: corrupt report ({errors[0]}); recompile the model with nnfpga compile "
                        "(or delete report.json to verify without updating the report)")
    return report
