"""Accuracy on the user's data: the golden fixed-point model against a reference on samples.

One description of the comparison for every verb: `compare_outputs` (deviation, decision
agreement, AUC / accuracy against labels) is what ``nnfpga explore`` records as its
``acc_*`` columns and what ``compile --data`` / ``report --data`` put into the report's
``data_accuracy`` section (`data_section`, which adds the guaranteed bound beside the
observed error, the saturated input values and a histogram of the deviation).

The reference of the report is the SOURCE framework's own prediction
(`nnfpga.compiler.source_reference`), so a user sees what the firmware changes relative to
what they trained and validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph

#: The threshold of a single-output model's decision (a sigmoid's usual cut).
THRESHOLD = 0.5
#: Bins of the deviation histogram.
HISTOGRAM_BINS = 20
#: Saturated input elements listed in a console warning (the rest are counted).
LISTED_ELEMENTS = 8


@dataclass(frozen=True)
class DataSet:
    """The user's samples (user layout), their labels and bank indices, and the file's name
    for messages."""

    x: np.ndarray
    labels: np.ndarray | None = None
    bank: np.ndarray | None = None
    name: str = "data"


def load_data(path: str) -> DataSet:
    """``--data FILE``: samples from .npy / .npz (``x``, optional labels ``y`` and bank
    indices ``bank``); every problem is a `UserError` naming the file."""
    from nnfpga.compiler.config import load_calibration
    from nnfpga.core.samples import load_bank
    x, y = load_calibration(path)
    return DataSet(np.asarray(x, dtype=np.float64), y, load_bank(path), str(path))


def as_data(data, labels=None, bank=None) -> DataSet:
    """``data=`` of the Python API: a file path (as ``--data``), a `DataSet`, or an array of
    samples (with ``labels`` and ``bank`` arrays)."""
    if isinstance(data, DataSet):
        return data
    if isinstance(data, (str, Path)):
        return load_data(str(data))
    x = np.asarray(data)
    if x.dtype.kind not in "fiub" or x.ndim == 0 or x.size == 0 or not np.isfinite(x.astype(np.float64)).all():
        raise UserError(f"data=: samples must be a non-empty array of finite real numbers (batch first); got "
                        f"{x.dtype} of shape {x.shape}")
    return DataSet(x.astype(np.float64), None if labels is None else np.asarray(labels),
                   None if bank is None else np.asarray(bank, dtype=np.int64), "data=")


# ----------------------------------------------------------------------------- comparison
def compare_outputs(fixed: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> dict:
    """``max_deviation``, ``mean_deviation`` (of |fixed - reference| over all outputs),
    ``agreement`` (fraction of samples whose `decisions` agree) and, with labels (as
    `check_labels` returns them), ``auc`` / ``auc_reference`` for one output or
    ``accuracy`` / ``accuracy_reference`` for several."""
    from nnfpga.compiler.passes.ptq import auc, decisions
    fixed = fixed.reshape(len(fixed), -1)
    reference = reference.reshape(len(reference), -1)
    dev = np.abs(fixed - reference)
    out = {"max_deviation": float(dev.max()), "mean_deviation": float(dev.mean()),
           "agreement": float(np.mean(decisions(fixed, THRESHOLD) == decisions(reference, THRESHOLD)))}
    if labels is None:
        return out
    labels = np.asarray(labels)
    if fixed.shape[1] == 1:
        positive = labels.reshape(-1) > 0.5
        out["auc"] = auc(fixed[:, 0], positive)
        out["auc_reference"] = auc(reference[:, 0], positive)
    else:
        truth = labels.argmax(axis=1) if labels.ndim == 2 else labels.reshape(-1).astype(np.int64)
        out["accuracy"] = float(np.mean(fixed.argmax(axis=1) == truth))
        out["accuracy_reference"] = float(np.mean(reference.argmax(axis=1) == truth))
    return out


def check_labels(labels: np.ndarray, n_samples: int, n_outputs: int, where: str) -> np.ndarray:
    """Labels that `compare_outputs` can use, or a `UserError` naming the file."""
    labels = np.asarray(labels)
    if len(labels) != n_samples:
        raise UserError(f"{where}: {len(labels)} labels for {n_samples} samples")
    if n_outputs == 1:
        flat = labels.reshape(n_samples, -1)
        if flat.shape[1] != 1 or not np.isin(flat, (0, 1)).all():
            raise UserError(f"{where}: a single-output model needs 0/1 labels (one per sample) for the AUC")
        if flat.min() == flat.max():
            raise UserError(f"{where}: the labels hold one class only; the AUC needs both")
        return flat.reshape(-1)
    if labels.ndim == 2 and labels.shape[1] == n_outputs:
        return labels
    flat = labels.reshape(-1)
    if labels.ndim > 1 and labels.size != n_samples or not np.all((flat >= 0) & (flat < n_outputs)
                                                                   & (flat == np.round(flat))):
        raise UserError(f"{where}: labels must be class indices 0..{n_outputs - 1} or one-hot rows of "
                        f"{n_outputs} for a model with {n_outputs} outputs")
    return flat


# ----------------------------------------------------------------------------- saturation
def saturation(graph: Graph, x: np.ndarray) -> dict:
    """The input values outside the input type's range (they saturate to its min/max):
    ``values`` in all, ``samples`` with at least one, and per input element (an index in
    the user's layout) its count."""
    t = graph.input.info.type
    x = np.asarray(x, dtype=np.float64)
    outside = (x < t.min_value) | (x > t.max_value)
    per_element = outside.sum(axis=0)
    elements = [{"element": [int(i) for i in idx], "count": int(per_element[idx])}
                for idx in zip(*np.nonzero(per_element))]
    return {"input_type": t.spec(), "input_range": [t.min_value, t.max_value],
            "values": int(outside.sum()),
            "samples": int(outside.reshape(len(x), -1).any(axis=1).sum()),
            "elements": elements}


def element_name(index: list[int]) -> str:
    """An input element's index as the report shows it: ``(2)``, ``(0, 3, 1)``."""
    return "(" + ", ".join(map(str, index)) + ")"


def saturation_warning(section: dict) -> str | None:
    """The console warning for saturated inputs (None when none saturate)."""
    sat = section["saturation"]
    if not sat["values"]:
        return None
    els = sorted(sat["elements"], key=lambda e: (-e["count"], e["element"]))
    listed = ", ".join(f"element {element_name(e['element'])}: {e['count']}" for e in els[:LISTED_ELEMENTS])
    more = f" and {len(els) - LISTED_ELEMENTS} more elements" if len(els) > LISTED_ELEMENTS else ""
    lo, hi = sat["input_range"]
    return (f"{section['data']}: {sat['values']} input values in {sat['samples']} of {section['samples']} samples "
            f"lie outside the input type {sat['input_type']} (range [{lo:g}, {hi:g}]) and saturate "
            f"({listed}{more}); widen the input type (the config's input precision) or scale the inputs")


# ----------------------------------------------------------------------------- the section
def _histogram(dev: np.ndarray) -> dict:
    top = float(dev.max())
    counts, edges = np.histogram(dev, bins=HISTOGRAM_BINS, range=(0.0, top if top > 0 else 1.0))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def data_section(graph: Graph, data: DataSet, fixed: np.ndarray, reference: np.ndarray, against: str,
                 bound: dict | None) -> dict:
    """The report's ``data_accuracy``: ``fixed`` (the golden model's outputs) against
    ``reference`` (``against``: the framework that computed them) on ``data``; ``bound``:
    the report's ``accuracy`` (the guaranteed error bound) shown beside the observed error."""
    n = len(fixed)
    fixed = fixed.reshape(n, -1)
    reference = np.asarray(reference, dtype=np.float64).reshape(n, -1)
    if reference.shape != fixed.shape:
        raise UserError(f"{data.name}: {against} gives {reference.shape[1]} outputs per sample, the compiled "
                        f"model {fixed.shape[1]}; is the model file the one this firmware was compiled from?")
    labels = None
    if data.labels is not None:
        labels = check_labels(data.labels, n, fixed.shape[1], f"{data.name} (array 'y')")
    dev = np.abs(fixed - reference)
    figures = compare_outputs(fixed, reference, labels)
    per_bound = (bound or {}).get("error_bound_per_output")
    per_output = [{"index": i, "max_abs_error": float(dev[:, i].max()), "mean_abs_error": float(dev[:, i].mean()),
                   "error_bound": float(per_bound[i]) if per_bound and len(per_bound) == dev.shape[1] else None}
                  for i in range(dev.shape[1])]
    bound_max = (bound or {}).get("error_bound_max")
    sat = saturation(graph, data.x)
    rule = f"output > {THRESHOLD:g}" if fixed.shape[1] == 1 else "argmax"
    section = {
        "data": data.name, "samples": int(n), "against": against,
        "max_abs_error": figures["max_deviation"], "mean_abs_error": figures["mean_deviation"],
        "per_output": per_output,
        "error_bound_max": bound_max,
        # the bound holds only for inputs inside the input type's range
        "within_bound": (None if bound_max is None or sat["values"] else
                         bool(figures["max_deviation"] <= bound_max)),
        "decision": {"rule": rule, "threshold": THRESHOLD if fixed.shape[1] == 1 else None,
                     "agreement": figures["agreement"]},
        "labels": None,
        "saturation": sat,
        "histogram": _histogram(dev),
    }
    if labels is not None:
        metric = "auc" if fixed.shape[1] == 1 else "accuracy"
        section["labels"] = {"metric": metric, "fixed": figures[metric], "framework": figures[f"{metric}_reference"]}
    return section


def evaluate_on_data(graph: Graph, model, data: DataSet, bound: dict | None) -> dict:
    """The ``data_accuracy`` section for ``graph`` compiled from ``model`` (a path, a
    `KerasJson`, a live model, or a list of them for a banked ensemble): the golden model
    and the source framework run on ``data``."""
    from nnfpga.compiler.source_reference import source_outputs
    from nnfpga.ir.emulator import emulate
    bank = data.bank
    if graph.banks:
        if bank is None:
            raise UserError(f"{data.name}: model {graph.name!r} is a banked ensemble of {graph.banks} networks: "
                            "every sample needs its bank index (an integer array 'bank' in the .npz, beside 'x')")
        try:
            bank = graph.check_bank(bank, len(data.x))
        except ValueError as e:
            raise UserError(f"{data.name}: {e}") from None
    else:
        bank = None
    try:
        fixed = emulate(graph, data.x, bank)
    except ValueError as e:
        raise UserError(f"{data.name}: {e}") from None
    reference, against = source_outputs(model, data.x, bank, data.name)
    return data_section(graph, data, fixed, reference, against, bound)


def summary_line(section: dict) -> str:
    """One console line of the section."""
    bound = section["error_bound_max"]
    beside = "" if bound is None else f" (guaranteed bound {bound:.3g})"
    dec = section["decision"]
    text = (f"on {section['data']} ({section['samples']} samples) against {section['against']}: "
            f"max |error| {section['max_abs_error']:.3g}{beside}, mean {section['mean_abs_error']:.3g}; "
            f"decisions ({dec['rule']}) agree on {100 * dec['agreement']:.2f}% of samples")
    lab = section.get("labels")
    if lab:
        text += f"; {lab['metric']} {lab['fixed']:.4f} (framework {lab['framework']:.4f})"
    return text
