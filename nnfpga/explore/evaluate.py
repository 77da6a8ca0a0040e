"""One design point, evaluated where a Dask worker runs it: compile, optionally synthesise
with Yosys, optionally score on the user's data; the result is one flat record.

A `PointTask` carries everything the point needs as bytes and values (the model file's
bytes and name, the configuration's text), never a path that exists only on the client,
so a worker on another machine needs nothing but nnfpga (and Yosys for ``--synth``).
The samples and the source model's outputs on them (`Reference`: the model run by its
own framework, `nnfpga.compiler.source_reference`) are computed once on the client and
shipped to every worker once; workers never import TensorFlow or torch.

A point that fails (the compiler refuses the combination, Yosys fails) returns a record
with ``status: "error"`` and the message; it never raises, so one bad point cannot stop
an exploration.  Records hold only values that the point determines (the run-dependent
``seconds``/``worker``/``finished_utc`` are kept apart by `nnfpga.explore.store`), so
two runs of one exploration give the same table.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnfpga.compiler.data_accuracy import compare_outputs
from nnfpga.core.errors import UserError

__all__ = ["FIGURES", "RUN_FIELDS", "ModelBytes", "PointTask", "Reference", "accuracy",
           "evaluate_point", "report_figures"]

#: The record's columns, in table order (`nnfpga.explore.store` writes them).
FIGURES = ("target", "clock_mhz", "latency_cycles", "latency_ns", "ii_cycles",
           "est_lut", "est_ff", "est_dsp", "est_bram", "est_fmax_mhz", "fits", "meets_clock",
           "syn_lut", "syn_ff", "syn_dsp", "syn_bram", "syn_carry8", "syn_fmax_mhz",
           "acc_max_deviation", "acc_mean_deviation", "acc_agreement",
           "acc_auc", "acc_auc_reference", "acc_accuracy", "acc_accuracy_reference")
#: What only the run decides (kept out of the deterministic table).
RUN_FIELDS = ("seconds", "worker", "finished_utc")


@dataclass(frozen=True)
class ModelBytes:
    """A model file (and the weights file of a Keras .json) as bytes."""

    name: str
    data: bytes
    weights_name: str | None = None
    weights: bytes | None = None
    trust_model_code: bool = False


@dataclass(frozen=True)
class PointTask:
    index: int
    key: str
    params: dict
    target: str
    clock: str
    reuse: int | None
    max_dsp: int | None
    ii: int | None
    config_text: str | None
    synth: bool
    command: str


@dataclass(frozen=True)
class Reference:
    """The user's samples, their labels and the source model's outputs on them
    (``against`` names what computed them, e.g. "tf_keras 2.21.0")."""

    x: np.ndarray
    outputs: np.ndarray
    labels: np.ndarray | None = None
    against: str = ""


def evaluate_point(task: PointTask, model: ModelBytes, reference: Reference | None = None) -> dict:
    """Run one point; a record (see the module doc), never an exception for a failure of
    the point itself."""
    start = time.perf_counter()
    record = {"index": task.index, "key": task.key, "status": "ok", "error": None, "params": task.params}
    record.update(dict.fromkeys(FIGURES))
    try:
        with tempfile.TemporaryDirectory(prefix="nnfpga-explore-") as tmp:
            record.update(_run(task, model, reference, Path(tmp)))
    except UserError as e:
        record.update(status="error", error=str(e))
    except Exception as e:  # a bug, or a tool that broke: the point records it, the run goes on
        record.update(status="error", error=f"internal error: {type(e).__name__}: {e}")
    record["command"] = task.command
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return record


def _run(task: PointTask, model: ModelBytes, reference: Reference | None, tmp: Path) -> dict:
    from nnfpga.compiler.adjustments import AdjustmentWarning
    from nnfpga.compiler.driver import compile_model
    from nnfpga.compiler.frontends.pytorch import trusting_model_code
    model_dir = tmp / "model"
    model_dir.mkdir()
    model_path = model_dir / model.name
    model_path.write_bytes(model.data)
    source = str(model_path)
    if model.weights is not None:
        from nnfpga.compiler.frontends.keras import with_weights
        (model_dir / model.weights_name).write_bytes(model.weights)
        source = with_weights(source, str(model_dir / model.weights_name))
    config = None
    if task.config_text is not None:
        config = tmp / "point.yml"
        config.write_text(task.config_text, encoding="utf-8")
    with warnings.catch_warnings(), trusting_model_code(model.trust_model_code):
        warnings.simplefilter("ignore", AdjustmentWarning)
        result = compile_model(source, task.target, task.clock, tmp / "fw", config=config, reuse=task.reuse,
                               max_dsp=task.max_dsp, ii=task.ii)
    figures = report_figures(result.report)
    if task.synth:
        figures.update(_synthesis(tmp / "fw", result.report))
    if reference is not None:
        from nnfpga.ir.emulator import emulate
        fixed = emulate(result.graph, reference.x)
        figures.update(accuracy(fixed, reference.outputs, reference.labels))
    return figures


def report_figures(report: dict) -> dict:
    """The record's compile figures from a report.json."""
    est = report["resources"]["estimate"]
    timing = report["timing"]["estimate"]
    return {"target": report["part"], "clock_mhz": report["clock_mhz"],
            "latency_cycles": report["latency"]["cycles"], "latency_ns": report["latency"]["ns"],
            "ii_cycles": report["ii_cycles"], "est_lut": est["lut"], "est_ff": est["ff"], "est_dsp": est["dsp"],
            "est_bram": est["bram"], "est_fmax_mhz": timing["fmax_mhz"],
            "fits": bool(report["resources"]["fits"]), "meets_clock": bool(timing["meets_clock"])}


def _synthesis(outdir: Path, report: dict) -> dict:
    from nnfpga.synth.firmware import synthesise
    from nnfpga.synth.yosys import SynthesisError
    try:
        rec = synthesise(outdir, report["top"], report["synth_family"], report["clock_mhz"], "verilog")
    except SynthesisError as e:
        raise UserError(f"Yosys synthesis failed: {e}") from None
    return {"syn_lut": rec["lut"], "syn_ff": rec["ff"], "syn_dsp": rec["dsp"], "syn_bram": rec["bram"],
            "syn_carry8": rec["carry8"], "syn_fmax_mhz": rec["timing"]["fmax_mhz"]}


# ----------------------------------------------------------------------------- accuracy
def accuracy(fixed: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> dict:
    """The fixed-point network against the reference (and both against the labels), as
    the record's ``acc_*`` columns (`nnfpga.compiler.data_accuracy.compare_outputs`)."""
    names = {"max_deviation": "acc_max_deviation", "mean_deviation": "acc_mean_deviation",
             "agreement": "acc_agreement", "auc": "acc_auc", "auc_reference": "acc_auc_reference",
             "accuracy": "acc_accuracy", "accuracy_reference": "acc_accuracy_reference"}
    return {names[k]: v for k, v in compare_outputs(fixed, reference, labels).items()}
