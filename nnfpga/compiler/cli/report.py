"""``nnfpga report OUTDIR [--synth]``: print the report and write report.html (its
matplotlib plots are made here, not by every compile); with ``--synth`` run Yosys first
(a rich status line with the elapsed time and the pass each run is in), store the results
in report.json and rewrite report.md too."""

from __future__ import annotations

import argparse
import shlex
import json
import threading
import time
from pathlib import Path
from typing import Callable

from nnfpga.compiler.cli.options import count, positive
from nnfpga.core.errors import UserError


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="print latency, II, resources and timing, write report.html "
                                      "(--synth: Yosys synthesis first)")
    r.add_argument("outdir")
    r.add_argument("--synth", action="store_true",
                   help="synthesise with Yosys synth_xilinx (the Verilog, and the VHDL through GHDL) and "
                        "store the results in report.json/.md/.html")
    r.add_argument("--no-vhdl", dest="vhdl", action="store_false",
                   help="with --synth: skip the VHDL cross-check")
    r.add_argument("--timeout", type=positive, help="with --synth: seconds per Yosys run (default 3600)")
    r.add_argument("--memory-gb", type=positive, help="with --synth: memory limit per Yosys run (default 16)")
    r.add_argument("--jobs", type=count, default=2, help="with --synth: Yosys runs at once (default 2)")
    r.add_argument("--data", metavar="FILE",
                   help="samples (.npy, or .npz with x, optional labels y, bank indices bank): run the golden "
                        "model and the source framework (the model run.json names) on them and store the "
                        "comparison in report.json/.md/.html")
    r.add_argument("--trust-model-code", action="store_true",
                   help="with --data and a TorchScript model: allow running its code (as for compile)")


def run(args: argparse.Namespace) -> int:
    from nnfpga.compiler.cli.compile import print_data_accuracy
    from nnfpga.compiler.frontends.pytorch import trusting_model_code
    with trusting_model_code(args.trust_model_code):
        report = run_report(args.outdir, synth=args.synth, vhdl=args.vhdl, timeout=args.timeout,
                            memory_gb=args.memory_gb, jobs=args.jobs, data=args.data)
    print_data_accuracy(report if args.data else {}, "report")
    out = Path(args.outdir)
    files = ["report.json", "report.md", "report.html"] if args.synth or args.data else ["report.html"]
    print(f"wrote {', '.join(str(out / f) for f in files)}")
    nxt = "" if args.synth else f"nnfpga report {shlex.quote(args.outdir)} --synth (Yosys), "
    print(f"next: open {out / 'report.html'} in a browser; {nxt}nnfpga verify {shlex.quote(args.outdir)} "
          "--input x.npy (simulate, compare bit by bit)")
    return 0


#: No resource count or per-layer figure of a real design is negative or comes near this;
#: others (an edited file) would make the plots ask for images millions of pixels wide.
MAX_REPORT_FIGURE = 1e9
#: The most layers a report may list (each is a row of the plots).
MAX_REPORT_LAYERS = 1000


def _not_a_number(token: str):
    raise ValueError(f"{token} is not a JSON number")


def _implausible(report: dict) -> list[str]:
    """Figures under resources and layers outside [0, `MAX_REPORT_FIGURE`], or more than
    `MAX_REPORT_LAYERS` layers (paths as the schema's messages give them)."""
    if len(report.get("layers", [])) > MAX_REPORT_LAYERS:
        return [f"report.layers: {len(report['layers']):,} layers, more than the {MAX_REPORT_LAYERS:,} a report "
                "may list"]
    stack = [(f"report.{k}", report[k]) for k in ("resources", "layers") if k in report]
    while stack:
        where, v = stack.pop()
        if isinstance(v, dict):
            stack += [(f"{where}.{k}", x) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [(f"{where}[{i}]", x) for i, x in enumerate(v)]
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 <= v <= MAX_REPORT_FIGURE:
            return [f"{where}: {v:g} is not a figure of any design (0 to {MAX_REPORT_FIGURE:g})"]
    return []


def load_report(outdir: Path) -> dict:
    """report.json of ``outdir``, checked against its schema before anything reads it."""
    from nnfpga.backends.report.schema import validate
    outdir = Path(outdir)
    path = outdir / "report.json"
    if not outdir.is_dir():
        raise UserError(f"{outdir}: not an nnfpga output directory (no such directory); run nnfpga compile first")
    if not path.is_file():
        hint = "" if (outdir / "ir.json").is_file() else " (it is not an nnfpga output directory)"
        raise UserError(f"{outdir}: no report.json{hint}; run nnfpga compile first")
    try:
        report = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_not_a_number)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, or an integer of thousands of digits
        raise UserError(f"{path}: corrupt report, not JSON text ({str(e)[:200]}); recompile the model with "
                        "nnfpga compile") from None
    except RecursionError:
        raise UserError(f"{path}: corrupt report, nested too deeply; recompile the model with nnfpga compile") \
            from None
    if not isinstance(report, dict):
        raise UserError(f"{path}: corrupt report: a JSON {type(report).__name__}, not an object; recompile the "
                        "model with nnfpga compile")
    errors = validate(report) or _implausible(report)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{path}: corrupt report: {errors[0]}{more}; the schema is "
                        "nnfpga/backends/report/schema.json; recompile the model with nnfpga compile")
    return report


def _refresh(outdir: Path, old: dict) -> dict:
    """The report rebuilt from ir.json/rtl.json with this nnfpga (keeps compile-time
    keys the report builder does not make, e.g. the optimisation record)."""
    from nnfpga.backends.report import build_report
    from nnfpga.backends.rtl import read_summary
    from nnfpga.compiler.driver import load_firmware
    from nnfpga.core.parts import find_part
    graph = load_firmware(outdir)
    try:
        rtl = read_summary(outdir)
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    new = build_report(graph, rtl, old.get("hls", {}), find_part(old["part"]), float(old["clock_mhz"]))
    for key, value in old.items():
        new.setdefault(key, value)
    return new


def run_report(outdir: str | Path, synth: bool = False, vhdl: bool = True, timeout: float | None = None,
               memory_gb: float | None = None, jobs: int = 2, data: str | None = None) -> dict:
    """Print the report of the firmware tree ``outdir`` and write its report.html; with
    ``synth``, first synthesise it (`nnfpga.synth.firmware.run_synthesis`; ``vhdl``: the
    VHDL too) and store the results in report.json/.md/.html.  ``data``: a sample file on
    which the golden model and the source framework (the model run.json names) are
    compared (`nnfpga.compiler.data_accuracy`), stored likewise.  Returns the report."""
    from nnfpga.backends.report import add_synthesis, write_report_files
    from nnfpga.backends.report.text import print_summary
    from nnfpga.synth import yosys
    from nnfpga.synth.firmware import run_synthesis
    from nnfpga.compiler.firmware_files import check_writable
    outdir = Path(outdir)
    report = load_report(outdir)
    rewrite = synth or data is not None
    check_writable(outdir, ("report.html", "report.json", "report.md") if rewrite else ("report.html",))
    if data is not None:  # before a (long) synthesis: a bad file or a missing model fails at once
        from nnfpga.compiler.data_accuracy import evaluate_on_data, load_data
        from nnfpga.compiler.driver import load_firmware
        from nnfpga.compiler.source_reference import source_model_of
        samples = load_data(data)
        report["data_accuracy"] = evaluate_on_data(load_firmware(outdir), source_model_of(outdir), samples,
                                                   report.get("accuracy"))
    if synth:
        if report.get("synth_family") is None:  # Versal: Yosys has no synth_xilinx family for it
            from nnfpga.core.parts import no_yosys_message
            raise UserError(f"{outdir}: {no_yosys_message(report['part'], report['part_family'])}")
        from nnfpga.compiler.driver import load_firmware
        from nnfpga.compiler.firmware_files import check_firmware_files
        graph = load_firmware(outdir)
        check_firmware_files(outdir, graph, ("verilog", "vhdl") if vhdl else ("verilog",), "Yosys synthesis")
        report = _refresh(outdir, report)
        sources = ["verilog"] + (["vhdl"] if vhdl else [])
        status = {src: "starting" for src in sources}
        start = time.monotonic()
        results = _with_status(lambda progress: run_synthesis(
            outdir, report["top"], report["synth_family"], report["clock_mhz"], sources,
            timeout or yosys.DEFAULT_TIMEOUT_S, memory_gb or yosys.DEFAULT_MEMORY_GB, progress, jobs),
            status, start)
        report = add_synthesis(report, results)
    if rewrite:
        write_report_files(outdir, report)
    else:
        from nnfpga.backends.report.html import report_html
        (outdir / "report.html").write_text(report_html(report))
    print_summary(report, outdir, compact=False)
    return report


def _with_status(work: Callable[[Callable[[str, str], None]], dict], status: dict, start: float) -> dict:
    """Run ``work(progress)`` under a rich status line refreshed every second."""
    from rich.console import Console
    con = Console(stderr=True)
    lock = threading.Lock()

    def line() -> str:
        with lock:
            parts = ", ".join(f"{src}: {msg}" for src, msg in status.items())
        return f"Yosys synth_xilinx [{time.monotonic() - start:5.0f} s] {parts}"

    def progress(src: str, msg: str) -> None:
        with lock:
            status[src] = msg

    done = threading.Event()
    with con.status(line(), spinner="dots") as st:
        def tick() -> None:
            while not done.wait(1.0):
                st.update(line())
        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            result = work(progress)
        finally:
            done.set()
            ticker.join(2)
    con.print(f"synthesis finished after {time.monotonic() - start:.0f} s", highlight=False)
    return result
