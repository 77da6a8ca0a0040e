"""The configuration file's schema: every key, where it may appear, its allowed values.

One table (`SCHEMA`) drives validation (`nnfpga.compiler.config`), the error messages
(which list the allowed keys and values) and the commented template that
``nnfpga config MODEL`` writes, so the three cannot disagree.

A value is never normalised: ``rnd`` is not ``RND``, ``4.0`` is not a reuse factor, a
table size of 1000 is not rounded to 1024.  A wrong value is an error that names the
file, the line and what is allowed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from nnfpga.core.limits import MAX_COUNT
from nnfpga.ir.fixed import FixedType
from nnfpga.ir.ops.activation_functions import names_where

CONFIG_VERSION = 1

ROUNDING = ("TRN", "RND", "RND_CONV")
OVERFLOW = ("WRAP", "SAT")
METRICS = ("max_deviation", "agreement", "auc")
TABLE_SIZES = tuple(2 ** k for k in range(4, 17))          # 16 ... 65536 entries
#: The largest range margin: a wider one would ask for more integer bits than a type has.
MAX_MARGIN = 1024.0
TYPE_HELP = ("a fixed-point type fixed<W,I[,ROUNDING[,OVERFLOW]]> or ufixed<...> with W in 1..62, "
             "ROUNDING one of TRN, RND, RND_CONV and OVERFLOW one of WRAP, SAT "
             "(omitted modes are ap_fixed's defaults TRN and WRAP), e.g. fixed<8,3,RND,SAT>")


class SchemaError(ValueError):
    """A value that does not match its key's schema; the message says what is allowed."""


@dataclass(frozen=True)
class TypeValue:
    """A fixed-point type as written, remembering which modes were spelled out."""

    type: FixedType
    text: str
    rounding_spelled: bool
    overflow_spelled: bool

    def __str__(self) -> str:
        return self.type.spec()


@dataclass(frozen=True)
class Key:
    name: str
    kind: str                 # type | int | float | choice | bool | rate | pow2
    doc: str
    lo: float | None = None   # inclusive bounds for int / float
    hi: float | None = None
    hi_open: bool = False     # hi is exclusive
    choices: tuple = ()
    default: Any = None       # shown in the template (None: no default / model-dependent)

    def allowed(self) -> str:
        if self.kind == "type":
            return TYPE_HELP
        if self.kind in ("choice",):
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "pow2":
            return "a power of two from 16 to 65536 (" + ", ".join(str(c) for c in TABLE_SIZES) + ")"
        if self.kind == "rate":
            return "an event rate such as 40MHz, 750kHz or a number of Hz"
        if self.kind == "int" and self.lo is not None and self.lo == self.hi:
            return f"{self.lo:g}"
        what = "an integer" if self.kind == "int" else "a number"
        show = (lambda v: f"{int(v):,}") if self.kind == "int" else (lambda v: f"{v:g}")
        bounds = []
        if self.lo is not None:
            bounds.append(f">= {show(self.lo)}")
        if self.hi is not None:
            bounds.append(f"{'<' if self.hi_open else '<='} {show(self.hi)}")
        return what + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: Any, plain: bool = True) -> Any:
        """The validated value, or `SchemaError`.  ``plain``: an unquoted YAML scalar
        (only those may be read as numbers when YAML left them as strings)."""
        bad = SchemaError(f"invalid value {value!r} for {self.name}: expected {self.allowed()}")
        k = self.kind
        if k == "type":
            if not isinstance(value, str):
                raise bad
            return parse_type(value, self.name)
        if k == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise bad
            return value
        if k == "bool":
            if not isinstance(value, bool):
                raise bad
            return value
        if k == "int" or k == "pow2":
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            if k == "pow2":
                if value not in TABLE_SIZES:
                    raise bad
                return value
            self._bounds(value, bad)
            return value
        if k == "float":
            if isinstance(value, str) and plain and _FLOAT_RE.fullmatch(value.strip()):
                value = float(value)          # YAML 1.1 reads 1e-3 as a string
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad
            self._bounds(float(value), bad)
            return float(value)
        if k == "rate":
            return parse_rate(value, self.name)
        raise AssertionError(k)

    def _bounds(self, v: float, bad: SchemaError) -> None:
        if self.lo is not None and v < self.lo:
            raise bad
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            raise bad


_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_RATE_RE = re.compile(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(hz|khz|mhz|ghz)?", re.IGNORECASE)
_RATE_UNITS = {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}


def parse_type(text: str, key: str = "type") -> TypeValue:
    try:
        t = FixedType.parse(text)
    except ValueError as e:
        raise SchemaError(f"invalid value {text!r} for {key}: expected {TYPE_HELP}") from e
    inner = text.replace(" ", "")
    n_parts = len(inner[inner.index("<") + 1:-1].split(","))
    return TypeValue(t, text, n_parts >= 3, n_parts >= 4)


def parse_rate(value: Any, key: str = "event_rate") -> float:
    """An event rate in Hz: ``40MHz``, ``750kHz``, ``1e6`` (Hz) or a number of Hz."""
    bad = SchemaError(f"invalid value {value!r} for {key}: expected an event rate such as 40MHz, "
                      "750kHz or a positive number of Hz")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, float)):
        hz = float(value)
    elif isinstance(value, str) and (m := _RATE_RE.fullmatch(value.strip())):
        hz = float(m.group(1)) * _RATE_UNITS[(m.group(2) or "hz").lower()]
    else:
        raise bad
    if not (math.isfinite(hz) and hz > 0):
        raise bad
    return hz


def _t(name, doc, default=None):
    return Key(name, "type", doc, default=default)


# ----------------------------------------------------------------------------- the keys
# Which activations a key applies to comes from their entries, so the documentation
# follows the op set: "linear/relu/.../softmax output; the table entries for tanh/sigmoid".
_OUTPUT_TYPED = "/".join(names_where(lambda f: not f.table_lookup))
_TABLE_LOOKUPS = "/".join(names_where(lambda f: f.table_lookup))
_WITH_TABLES = "/".join(names_where(lambda f: bool(f.tables)))

_LAYER_KEYS = [
    _t("weight", "type of the kernel weights (replaces the model's quantiser for this layer); of a "
                 "BatchNormalization that is not folded: of its per-channel scale"),
    _t("bias", "type of the biases; of a BatchNormalization that is not folded: of its shift"),
    _t("output", "type of the layer's output (for Dense/Conv2D: before its activation)"),
    _t("activation", f"type of the output of the layer's own activation ({_OUTPUT_TYPED} output; "
                     f"the table entries for {_TABLE_LOOKUPS})"),
    _t("accumulator", "an upper bound for the exact accumulator: accumulators always keep every bit; "
                      "a type that cannot hold the exact range is an error, a wider one is reported"),
    Key("rounding", "choice", "rounding of the types the compiler chooses for this layer", choices=ROUNDING),
    Key("overflow", "choice", "overflow of the types the compiler chooses for this layer", choices=OVERFLOW),
    Key("reuse_factor", "int", "multiplications per multiplier unit (the layer accepts an input every "
                               "R cycles and uses about ceil(multiplications/R) DSPs)", lo=1, hi=MAX_COUNT, default=1),
    Key("table_size", "pow2", f"entries of the {_WITH_TABLES} lookup tables (same input range, "
                              "finer steps)", default=1024),
    Key("sparsity", "float", "magnitude pruning: fraction of this layer's weights that become zero",
        lo=0.0, hi=1.0, hi_open=True, default=0.0),
]
_LAYER = {k.name: k for k in _LAYER_KEYS}

SCHEMA: dict[str, dict[str, Key]] = {
    "top": {k.name: k for k in [
        Key("version", "int", "configuration format version", lo=CONFIG_VERSION, hi=CONFIG_VERSION,
            default=CONFIG_VERSION),
        _t("input", "type of the model's input (replaces the model's own input quantiser)"),
        Key("defaults", "section", "settings for every layer whose value the compiler chooses"),
        Key("layers", "section", "settings per layer, by the layer's name in the source model"),
        Key("ptq", "section", "post-training quantisation (runs with --calibration)"),
        Key("pruning", "section", "magnitude pruning and removal of dead neurons"),
        Key("precision", "section", "data-dependent trimming of layer output types"),
        Key("reuse", "section", "choice of reuse factors for a DSP or II budget"),
    ]},
    "defaults": {k.name: k for k in [
        _t("weight", "type of the weights of every float (unquantised) layer"),
        _t("bias", "type of the biases of every float layer"),
        _t("output", "type of the output of every float Dense/Conv2D layer (and unfolded BatchNormalization)"),
        _t("activation", "type of every activation output the compiler chooses"),
        _t("accumulator", "an upper bound for every exact accumulator (see layers)"),
        Key("weight_frac", "int", "fractional bits of float weights (integer bits follow their range)",
            lo=0, hi=32, default=10),
        Key("output_frac", "int", "fractional bits of float layer outputs (integer bits follow their exact "
                                  "range)", lo=0, hi=32, default=10),
        _LAYER["rounding"], _LAYER["overflow"], _LAYER["reuse_factor"], _LAYER["table_size"],
    ]},
    "layer": _LAYER,
    "ptq": {k.name: k for k in [
        Key("enabled", "bool", "run post-training quantisation when calibration data is given", default=True),
        Key("metric", "choice", "what must stay within the tolerance: max |fixed - float| over all outputs, "
                                "classification agreement with the float model, or AUC against labels",
            choices=METRICS, default="max_deviation"),
        Key("tolerance", "float", "allowed max deviation (max_deviation), or allowed loss of agreement / AUC "
                                  "(defaults 0.01 / 0.001 / 0.001)", lo=0.0),
        Key("margin", "float", "integer bits hold the observed range times this factor", lo=1.0, hi=MAX_MARGIN,
            default=1.25),
        Key("max_frac", "int", "largest number of fractional bits tried", lo=1, hi=30, default=16),
        Key("max_table_size", "pow2", "largest lookup table tried", default=4096),
        Key("threshold", "float", "decision threshold of a single-output classifier (agreement)", default=0.5),
        Key("target_class", "int", "output used as the score for auc on a multi-output model", lo=0, hi=MAX_COUNT),
    ]},
    "pruning": {k.name: k for k in [
        Key("sparsity", "float", "target fraction of zero weights", lo=0.0, hi=1.0, hi_open=True, default=0.0),
        Key("scope", "choice", "layer: every layer reaches the target; global: one magnitude threshold over "
                               "all layers' weights", choices=("layer", "global"), default="layer"),
        Key("dead_units", "choice", "remove neurons/filters whose outputs no longer influence the result "
                                    "(bit-exact)", choices=("remove", "keep"), default="remove"),
    ]},
    "precision": {k.name: k for k in [
        Key("trim", "bool", "narrow compiler-chosen output types to the range seen in the calibration data "
                            "(saturating; data-dependent)", default=False),
        Key("margin", "float", "trimmed types hold the observed range times this factor", lo=1.0, hi=MAX_MARGIN,
            default=1.25),
    ]},
    "reuse": {k.name: k for k in [
        Key("max_dsp", "int", "DSP budget: choose reuse factors with the least latency that fit it (0: every "
                              "constant product as LUT shift-add logic, no DSP)", lo=0,
            hi=MAX_COUNT),
        Key("ii", "int", "initiation interval limit in cycles", lo=1, hi=MAX_COUNT),
        Key("event_rate", "rate", "event rate to sustain (with the clock: an II limit), e.g. 40MHz"),
    ]},
}

SECTIONS = ("defaults", "ptq", "pruning", "precision", "reuse")
