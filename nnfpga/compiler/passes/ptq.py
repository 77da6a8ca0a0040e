"""ptq: post-training quantisation of the float parts of a model with calibration data.

Contract: runs on float weights, after `prune` and before `quantize_weights`, when
calibration samples are given (``--calibration``) and ``ptq.enabled`` is true.  Only
what the compiler would otherwise choose is searched -- types set by the model's own
quantisers (QKeras, QONNX) or by the config file are never touched:

* the input type (when it is the compiler's default),
* per float Dense/Conv2D (and unfolded BatchNorm, a `ScaleShift`: its scale and shift):
  the weights' (and biases') fractional bits; integer bits
  just hold the largest weight (round to nearest, SAT),
* per layer output of a float model (``auto_frac`` nodes): fractional bits; integer
  bits hold the range observed on the calibration data times ``ptq.margin`` (never more
  than the exact range, and never more than the input range of the lookup table it
  feeds), round to nearest, **SAT** -- values outside the observed range saturate,
* per table lookup (tanh, sigmoid: `ActivationFunction.table_lookup`): the entries'
  fractional bits and the table size.

The reference is the float network (`float_reference`, float64, the float weights
after pruning).  The metric -- ``max_deviation`` (max |fixed - float| over all outputs
and samples, <= tolerance), ``agreement`` (share of samples whose class matches the
float model's, >= 1 - tolerance) or ``auc`` (AUC against labels, >= the float model's
AUC - tolerance) -- must hold on the calibration samples.  Search: every width at its
maximum must meet the tolerance (else a `UserError`); then the narrowest uniform
fractional width, then each tensor in turn narrowed as far as the metric allows
(bisection), twice over.  Every accepted configuration was evaluated with the golden
emulator, so the result meets the tolerance on the calibration data; the summary
``ptq`` gives the chosen and the default types, the metric for both, and the number of
evaluations.  Data-dependent: marked so in the summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnfpga.compiler.adjustments import record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.float_reference import float_forward, trace_float
from nnfpga.compiler.passes.precision import auto_type
from nnfpga.compiler.passes.quantize_weights import quantize_weights
from nnfpga.compiler.source_layers import layer_of
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import quantize_input, run_raw, user_output
from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, ScaleShift
from nnfpga.ir.quant import float_weight_quantizer
from nnfpga.ir.tables import LookupTable

DEFAULT_TOLERANCE = {"max_deviation": 0.01, "agreement": 0.001, "auc": 0.001}


# ----------------------------------------------------------------------------- metric
def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UserError("auc needs labels with both classes present in the calibration data")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    end = np.cumsum(counts)
    ranks = ((end - counts + 1 + end) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def decisions(y: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The class each sample's outputs choose: above ``threshold`` for one output, the
    largest output otherwise (the agreement metric here, the ``--data`` report's
    agreement and ``nnfpga explore``'s)."""
    y = y.reshape(len(y), -1)
    return (y[:, 0] > threshold) if y.shape[1] == 1 else y.argmax(axis=1)


@dataclass
class Metric:
    name: str
    tolerance: float
    reference: np.ndarray            # float model outputs (batch, ...)
    threshold: float = 0.5
    positive: np.ndarray | None = None
    target_class: int | None = None
    reference_value: float = 0.0

    def __post_init__(self) -> None:
        self.reference = self.reference.reshape(len(self.reference), -1)
        if self.name == "agreement":
            self._ref_classes = self._classes(self.reference)
        if self.name == "auc":
            self.reference_value = auc(self._score(self.reference), self.positive)

    def _classes(self, y: np.ndarray) -> np.ndarray:
        return decisions(y, self.threshold)

    def _score(self, y: np.ndarray) -> np.ndarray:
        return y[:, 0] if y.shape[1] == 1 else y[:, self.target_class]

    def value(self, y: np.ndarray) -> float:
        y = y.reshape(len(y), -1)
        if self.name == "max_deviation":
            return float(np.abs(y - self.reference).max())
        if self.name == "agreement":
            return float(np.mean(self._classes(y) == self._ref_classes))
        return auc(self._score(y), self.positive)

    def ok(self, v: float) -> bool:
        if self.name == "max_deviation":
            return v <= self.tolerance
        if self.name == "agreement":
            return v >= 1.0 - self.tolerance - 1e-12
        return v >= self.reference_value - self.tolerance - 1e-12

    def describe(self) -> str:
        if self.name == "max_deviation":
            return f"max |fixed - float| <= {self.tolerance:g}"
        if self.name == "agreement":
            return f"agreement with the float model >= {1 - self.tolerance:g}"
        return f"AUC >= float AUC {self.reference_value:.6f} - {self.tolerance:g}"


def _make_metric(options: CompileOptions, reference: np.ndarray) -> Metric:
    cfg = options.config
    name = cfg.get("ptq", "metric")
    tol_setting = cfg.setting("ptq", "tolerance")
    tol = tol_setting.value if tol_setting is not None else DEFAULT_TOLERANCE[name]
    n_out = int(np.prod(reference.shape[1:]))
    threshold = cfg.get("ptq", "threshold")
    target = cfg.get("ptq", "target_class")
    if name == "auc" and n_out > 1 and target is None:
        raise cfg.error(cfg.setting("ptq", "metric"), f"ptq.metric auc on a model with {n_out} outputs needs "
                                                      f"ptq.target_class (the output used as the score)")
    if target is not None and target >= n_out:
        raise cfg.error(cfg.setting("ptq", "target_class"), f"ptq.target_class {target} is not an output of a "
                                                            f"model with {n_out} outputs")
    positive = None
    if name == "auc":
        if options.labels is None:
            raise UserError("ptq.metric auc needs labels: an .npz calibration file with arrays x and y, or "
                            "--labels y.npy")
        labels = np.asarray(options.labels)
        if labels.ndim == 2 and labels.shape[1] > 1:
            positive = labels[:, target if target is not None else 0] > 0.5
        else:
            labels = labels.reshape(-1)
            if target is not None:
                positive = labels == target
            else:
                if not np.isin(labels, (0, 1)).all():
                    raise UserError("auc labels must be 0/1 (or give ptq.target_class for class indices)")
                positive = labels == 1
    return Metric(name, float(tol), reference, threshold, positive, target)


# ----------------------------------------------------------------------------- variables
@dataclass
class Var:
    key: str
    kind: str            # input | weight | output | table_frac | table_bits
    node: str
    lo: int
    hi: int
    data: dict = field(default_factory=dict)


class _Search:
    def __init__(self, graph: Graph, options: CompileOptions):
        self.g = graph
        self.opt = options
        cfg = options.config
        self.margin = cfg.get("ptq", "margin")
        self.max_frac = cfg.get("ptq", "max_frac")
        self.max_bits = int(math.log2(cfg.get("ptq", "max_table_size")))
        self.x = options.calibration
        try:
            self.trace = trace_float(graph, self.x)
        except ValueError as e:
            raise UserError(f"calibration data: {e}") from None
        self.metric = _make_metric(options, float_forward(graph, self.x))
        self.vars: list[Var] = []
        self.auto = [n for n in graph.nodes if n.auto_frac is not None and n.out_type is None]
        self.unquantised = {n.name for n in graph.nodes if isinstance(n, (Dense, Conv2D, ScaleShift)) and n.kernel_q is None}
        self.orig_input = graph.input.out_type
        self.orig_tables = {n.name: (n.table, n.inv_table) for n in graph.nodes if isinstance(n, Activation)}
        self.evaluations = 0
        self.cache: dict[tuple, tuple[float, bool]] = {}
        self._collect()

    # -- which tensors are free ------------------------------------------------------
    def _collect(self) -> None:
        g, opt = self.g, self.opt
        if not opt.input_pinned and g.input.out_type == opt.precision.input_type:
            obs = self.trace[g.input.name]
            self.vars.append(Var("input", "input", g.input.name, 0, self.max_frac,
                                 {"max": float(np.abs(obs).max()) if obs.size else 0.0,
                                  "signed": bool(obs.size and obs.min() < 0)}))
        for n in g.nodes:
            if isinstance(n, (Dense, Conv2D, ScaleShift)) and n.kernel_quantizer is None and not opt.weight_frac_pinned:
                self.vars.append(Var(f"{n.name}:weight", "weight", n.name, 0, self.max_frac,
                                     {"bias": n.bias is not None and n.bias_quantizer is None}))
            if n in self.auto and not opt.output_frac_pinned:
                rnd, ovf, where = opt.auto_modes.get(n.name, (Rounding.RND, Overflow.SAT, None))
                if ovf is not Overflow.SAT:
                    raise opt.config.error(where, f"{where.path}: WRAP conflicts with post-training "
                                                  f"quantisation, which takes integer bits from the calibration "
                                                  f"data: values outside that range must saturate (SAT)")
                obs = self.trace[n.name]
                self.vars.append(Var(f"{n.name}:output", "output", n.name, 0, self.max_frac,
                                     {"max": float(np.abs(obs).max()) if obs.size else 0.0, "rounding": rnd,
                                      "cap": self._table_cap(n)}))
            if isinstance(n, Activation) and n.properties.table_lookup:
                if f"{n.name}:output" not in opt.pinned and not opt.output_frac_pinned:
                    self.vars.append(Var(f"{n.name}:table_frac", "table_frac", n.name, 1, self.max_frac))
                if f"{n.name}:table_size" not in opt.pinned and not opt.table_size_pinned:
                    lo = min(4, n.table.index_type.width)
                    self.vars.append(Var(f"{n.name}:table_bits", "table_bits", n.name, lo,
                                         max(self.max_bits, lo)))

    def _table_cap(self, node) -> int | None:
        cons = self.g.consumers(node.name)
        if len(cons) == 1 and isinstance(cons[0], Activation) and cons[0].properties.table_lookup:
            idx = cons[0].table.index_type
            return idx.integer - 1 if idx.signed else idx.integer
        return None

    # -- one configuration --------------------------------------------------------------
    def apply(self, state: dict[str, int] | None) -> None:
        """Set the graph to ``state`` (None: the compiler's defaults) and type it."""
        g, p = self.g, self.opt.precision
        by_key = {v.key: v for v in self.vars}
        g.input.out_type = self.orig_input
        for v in self.vars:
            node = g.node(v.node)
            val = None if state is None else state[v.key]
            if v.kind == "input" and val is not None:
                hi = math.ceil(v.data["max"] * self.margin * 2.0 ** val)
                lo = -hi - 1 if v.data["signed"] else 0
                g.input.out_type = type_for_range(lo, hi, val, Rounding.RND, Overflow.SAT)
            elif v.kind == "weight":
                f = p.weight_frac if val is None else val
                node.kernel_quantizer = float_weight_quantizer(node.kernel, f)
                if v.data["bias"]:
                    node.bias_quantizer = float_weight_quantizer(node.bias, f)
                node.kernel_q = node.bias_q = None
        for n in g.nodes:
            if isinstance(n, Activation) and n.name in self.orig_tables and n.properties.table_lookup:
                table, _ = self.orig_tables[n.name]
                if state is None:
                    n.table = table
                    continue
                out = table.out_type
                if f"{n.name}:table_frac" in by_key:
                    f = state[f"{n.name}:table_frac"]
                    out = FixedType(f + out.integer, out.integer, out.signed, out.rounding, out.overflow)
                idx = table.index_type
                if f"{n.name}:table_bits" in by_key:
                    b = state[f"{n.name}:table_bits"]
                    idx = FixedType(b, idx.integer, idx.signed, idx.rounding, idx.overflow)
                n.table = _table(table.function, idx, out)
        quantize_weights(g, p.weight_frac)
        infos = {}
        for n in g.nodes:
            ins = [infos[i] for i in n.inputs]
            if n in self.auto:
                n.out_type = None
                exact = n.infer(ins)
                rnd, ovf, _ = self.opt.auto_modes.get(n.name, (Rounding.RND, Overflow.SAT, None))
                key = f"{n.name}:output"
                if state is not None and key in by_key:
                    n.out_type = self._output_type(by_key[key], state[key], exact, rnd)
                else:
                    n.out_type = auto_type(n, exact, rnd, ovf)
            n.info = n.infer(ins)
            infos[n.name] = n.info

    def _output_type(self, v: Var, f: int, exact, rnd: Rounding) -> FixedType:
        wide = FixedType(62, 62 - f, True, rnd, Overflow.SAT)
        elo, ehi = (int(a) for a in wide.requantize(np.array([exact.lo, exact.hi], dtype=np.int64),
                                                    exact.type.frac))
        hi_d = math.ceil(v.data["max"] * self.margin * 2.0 ** f)
        if v.data["cap"] is not None:
            hi_d = min(hi_d, (1 << (v.data["cap"] + f)) - 1 if v.data["cap"] + f >= 0 else 0)
        lo_d = -hi_d - 1 if elo < 0 else 0
        lo, hi = max(elo, lo_d), min(ehi, hi_d)
        if lo > hi:
            lo = hi = min(max(0, elo), ehi)
        return type_for_range(lo, hi, f, rnd, Overflow.SAT)

    def evaluate(self, state: dict[str, int] | None) -> tuple[float, bool]:
        key = None if state is None else tuple(state[v.key] for v in self.vars)
        if key is not None and key in self.cache:
            return self.cache[key]
        self.evaluations += 1
        try:
            self.apply(state)
            y = user_output(self.g, run_raw(self.g, quantize_input(self.g, self.x)))
        except ValueError:
            result = (math.inf if self.metric.name == "max_deviation" else -math.inf, False)
        else:
            value = self.metric.value(y)
            result = (value, self.metric.ok(value))
        if key is not None:
            self.cache[key] = result
        return result

    # -- the search --------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        state = {v.key: v.hi for v in self.vars}
        value, ok = self.evaluate(state)
        if not ok:
            raise UserError(f"post-training quantisation cannot meet the tolerance: with {self.max_frac} "
                            f"fractional bits everywhere and {2 ** self.max_bits}-entry tables the metric "
                            f"{self.metric.name} is {value:.6g}, but {self.metric.describe()} is required "
                            "(raise ptq.tolerance, ptq.max_frac or ptq.max_table_size; types set by the "
                            "model or the config are not searched)")
        fracs = [v for v in self.vars if v.kind in ("input", "weight", "output", "table_frac")]

        def uniform(f: int) -> dict[str, int]:
            return {**state, **{v.key: max(v.lo, min(v.hi, f)) for v in fracs}}
        lo, hi = 0, self.max_frac
        while lo < hi:
            mid = (lo + hi) // 2
            if self.evaluate(uniform(mid))[1]:
                hi = mid
            else:
                lo = mid + 1
        state = uniform(hi)
        for _ in range(2):
            changed = False
            for v in self.vars:
                lo, hi = v.lo, state[v.key]
                while lo < hi:
                    mid = (lo + hi) // 2
                    if self.evaluate({**state, v.key: mid})[1]:
                        hi = mid
                    else:
                        lo = mid + 1
                if hi < state[v.key]:
                    state[v.key], changed = hi, True
            if not changed:
                break
        return state


_TABLES: dict[tuple, LookupTable] = {}


def _table(function: str, idx: FixedType, out: FixedType) -> LookupTable:
    key = (function, idx, out)
    if key not in _TABLES:
        if len(_TABLES) > 512:
            _TABLES.clear()
        _TABLES[key] = LookupTable.build(function, idx, out)
    return _TABLES[key]


def _types(search: _Search) -> dict[str, dict]:
    g = search.g
    out = {}
    for v in search.vars:
        node = g.node(v.node)
        if v.kind == "input":
            t = g.input.out_type.spec()
        elif v.kind == "weight":
            t = node.kernel_quantizer.type.spec()
        elif v.kind == "output":
            t = node.out_type.spec()
        elif v.kind == "table_frac":
            t = node.table.out_type.spec()
        else:
            t = node.table.size
        what = {"table_bits": "table_size", "table_frac": "table_entries"}.get(v.kind, v.kind)
        out[v.key] = {"layer": layer_of(node), "node": node.name, "what": what,
                      "value": t}
    return out


def ptq(graph: Graph, options: CompileOptions) -> Graph:
    if options.calibration is None or not options.config.get("ptq", "enabled"):
        return graph
    search = _Search(graph, options)
    if not search.vars:
        record_pass(graph, "ptq", {"data_dependent": True, "chosen": [],
                                   "note": "nothing to choose: every type is set by the model or the config"})
        return graph
    default_value, default_ok = search.evaluate(None)
    defaults = _types(search)
    state = search.run()
    value, ok = search.evaluate(state)
    assert ok, "the accepted configuration must meet the tolerance"
    search.apply(state)
    chosen = _types(search)
    for n in search.auto:
        if f"{n.name}:output" in {v.key for v in search.vars}:
            n.auto_frac = None            # the type is chosen: later passes keep it
        else:
            n.out_type = None             # still the compiler's exact choice
    for n in graph.nodes:
        if n.name in search.unquantised:
            n.kernel_q = n.bias_q = None  # quantize_weights applies the chosen quantisers
    record_pass(graph, "ptq", {
        "data_dependent": True,
        "samples": int(len(options.calibration)),
        "metric": search.metric.name, "tolerance": search.metric.tolerance,
        "requirement": search.metric.describe(),
        "value": value, "default_value": default_value, "default_meets_tolerance": default_ok,
        "float_reference_value": search.metric.reference_value if search.metric.name == "auc" else None,
        "margin": search.margin, "evaluations": search.evaluations,
        "chosen": [{**chosen[k], "default": defaults[k]["value"]} for k in chosen],
    })
    return graph
