"""The configuration file (``--config nnfpga.yml``) and the compile options.

The file is YAML, read with the safe loader's *composer* so every key and value keeps
its line number; it is validated strictly against `config_schema.SCHEMA`:

* an unknown key, a duplicate key or an invalid value is a `UserError` naming the
  file, the line and the allowed keys / values (the closest known key is suggested);
* layer names are checked against the model when the config is applied (pass
  `apply_config`): an unknown layer, or a key that does not apply to that layer, is an
  error at the entry's line;
* nothing is normalised; where the compiler cannot use a value as given it records an
  adjustment (`nnfpga.compiler.adjustments`) that the report shows.

Layout of the file (every key optional)::

    version: 1
    input: fixed<12,3,RND,SAT>
    defaults:   {weight_frac, output_frac, weight, bias, output, activation, accumulator,
                 rounding, overflow, reuse_factor, table_size}
    layers:
      <source layer name>: {weight, bias, output, activation, accumulator, rounding,
                            overflow, reuse_factor, table_size, sparsity}
    ptq:        {enabled, metric, tolerance, margin, max_frac, max_table_size, threshold, target_class}
    pruning:    {sparsity, scope, dead_units}
    precision:  {trim, margin}
    reuse:      {max_dsp, ii, event_rate}

`CompileOptions` gathers the config, the calibration data and the command-line targets
(``--max-dsp``, ``--ii``, ``--event-rate``) for the passes; a value given both on the
command line and in the file must agree.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nnfpga.compiler.config_schema import SCHEMA, Key, SchemaError, TypeValue
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.core.errors import UserError
from nnfpga.core.samples import load_samples


# ----------------------------------------------------------------------------- located YAML
@dataclass
class Loc:
    """A YAML value with its 1-based line (None for configs given as Python dicts)."""

    value: Any          # dict[str, Loc] | list[Loc] | scalar
    line: int | None
    plain: bool = True  # an unquoted scalar


#: The largest configuration file read (bytes).
MAX_CONFIG_BYTES = 10 << 20
#: The deepest nesting of mappings and lists (a valid file needs 3).
MAX_DEPTH = 32
#: The most values a file may stand for once its aliases are expanded.
MAX_VALUES = 100_000
#: The tags a configuration may spell (plain YAML data); no other tag is ever constructed.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def _yaml_error(e: yaml.YAMLError, source: str) -> UserError:
    if isinstance(e, yaml.reader.ReaderError):   # a control character: binary, not text
        return UserError(f"{source}: not a YAML text file (character {e.character!r} at byte {e.position}); "
                         "--config takes a YAML file (see nnfpga config MODEL)")
    mark = getattr(e, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = (getattr(e, "problem", None) or str(e)).splitlines()[0]
    return UserError(f"{source}{line}: not valid YAML: {problem}")


def _screen(text: str, source: str) -> None:
    """Walk the YAML event stream (iteratively: no recursion, no construction) and refuse,
    before anything is built, a tag other than plain data, an alias to a value that
    contains it, nesting deeper than `MAX_DEPTH`, and aliases that expand to more than
    `MAX_VALUES` values (the "billion laughs")."""
    sizes: dict[str, int] = {}       # anchor -> values it stands for
    stack: list[list] = []           # open collections: [anchor, values so far]
    total = 0
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            line = ev.start_mark.line + 1
            tag = getattr(ev, "tag", None)
            if tag is not None and tag not in _PLAIN_TAGS and tag != "!":
                raise UserError(f"{source}:{line}: the tag {tag!r} is not allowed; a configuration holds plain "
                                "YAML data (mappings, lists, numbers, strings, true/false), never tagged objects")
            if isinstance(ev, yaml.AliasEvent):
                if any(open_[0] == ev.anchor for open_ in stack):
                    raise UserError(f"{source}:{line}: the alias *{ev.anchor} refers to a value that contains "
                                    "it (a recursive alias); write the settings out")
                size = sizes.get(ev.anchor, 1)
            elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                stack.append([ev.anchor, 1])
                if len(stack) > MAX_DEPTH:
                    raise UserError(f"{source}:{line}: nested more than {MAX_DEPTH} levels deep; a configuration "
                                    "needs 3 (layers: name: key: value)")
                continue
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                anchor, size = stack.pop()
                if anchor is not None:
                    sizes[anchor] = size
            elif isinstance(ev, yaml.ScalarEvent):
                size = 1
                if ev.anchor is not None:
                    sizes[ev.anchor] = 1
            else:
                continue
            total += size if isinstance(ev, yaml.AliasEvent) else 1
            if stack:
                stack[-1][1] += size
            if total > MAX_VALUES or (stack and stack[-1][1] > MAX_VALUES):
                raise UserError(f"{source}:{line}: the file stands for more than {MAX_VALUES:,} values once its "
                                "aliases (*name) are expanded; a configuration needs far fewer: write the "
                                "settings out or use defaults:")
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from None


def _compose(text: str, source: str) -> Loc | None:
    _screen(text, source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from None
    return None if node is None else _located(node, source)


_SCALARS = yaml.constructor.SafeConstructor()
#: Integers beyond this are refused as they are read (no setting needs more than 64 bits).
_MAX_INT = 1 << 63


def _scalar(node: yaml.ScalarNode, source: str) -> Any:
    where = f"{source}:{node.start_mark.line + 1}"
    if node.tag == "tag:yaml.org,2002:int" and len(node.value) > 24:
        raise UserError(f"{where}: the integer {node.value[:20]}... ({len(node.value)} digits) is far larger "
                        "than any setting allows")
    try:
        value = _SCALARS.construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError) as e:
        raise UserError(f"{where}: cannot read the value {node.value[:40]!r} ({e})") from None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT:
        raise UserError(f"{where}: the integer {value} is far larger than any setting allows")
    return value


def _located(node: yaml.Node, source: str) -> Loc:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Loc] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise UserError(f"{source}:{k.start_mark.line + 1}: a key must be a plain name")
            key = str(k.value)
            if key in out:
                raise UserError(f"{source}:{k.start_mark.line + 1}: duplicate key {key!r} "
                                f"(first given at line {out[key].line})")
            out[key] = _located(v, source)
            out[key].line = k.start_mark.line + 1   # messages point at the key's line
        return Loc(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Loc([_located(v, source) for v in node.value], line)
    return Loc(_scalar(node, source), line, plain=node.style is None)


def _from_python(v: Any) -> Loc:
    if isinstance(v, dict):
        return Loc({str(k): _from_python(x) for k, x in v.items()}, None)
    if isinstance(v, (list, tuple)):
        return Loc([_from_python(x) for x in v], None)
    return Loc(v, None)


# ----------------------------------------------------------------------------- the config
@dataclass(frozen=True)
class Setting:
    value: Any          # validated: TypeValue, int, float, str, bool
    line: int | None
    path: str           # e.g. "layers.hidden1.output"


@dataclass
class LayerEntry:
    name: str
    line: int | None
    settings: dict[str, Setting]


@dataclass
class Config:
    source: str = "<config>"
    input: Setting | None = None
    defaults: dict[str, Setting] = field(default_factory=dict)
    layers: dict[str, LayerEntry] = field(default_factory=dict)
    sections: dict[str, dict[str, Setting]] = field(default_factory=dict)   # ptq, pruning, ...
    present: set = field(default_factory=set)                               # top-level keys given

    def where(self, item: Setting | LayerEntry | int | None) -> str:
        line = item if isinstance(item, int) or item is None else item.line
        return f"{self.source}:{line}" if line is not None else self.source

    def error(self, item, message: str) -> UserError:
        return UserError(f"{self.where(item)}: {message}")

    def setting(self, section: str, key: str) -> Setting | None:
        return self.sections.get(section, {}).get(key)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        s = self.setting(section, key)
        if s is not None:
            return s.value
        k = SCHEMA[section][key]
        return k.default if default is None else default


def _suggest(name: str, known) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or \
        [k for k in known if len(name) >= 3 and (k.startswith(name) or name.startswith(k))][:1]
    return f"did you mean {close[0]!r}? " if close else ""


def _check_keys(loc: Loc, schema: dict[str, Key], where: str, cfg: Config) -> dict[str, Setting]:
    if loc.value is None:
        return {}
    if not isinstance(loc.value, dict):
        raise cfg.error(loc.line, f"{where} must be a mapping of settings, got {loc.value!r}")
    out = {}
    for key, v in loc.value.items():
        path = f"{where}.{key}"
        if key not in schema:
            raise cfg.error(v.line, f"unknown key {key!r} in {where}; {_suggest(key, schema)}"
                                    f"allowed keys: {', '.join(sorted(schema))}")
        k = schema[key]
        if isinstance(v.value, (dict, list)):
            raise cfg.error(v.line, f"invalid value for {path}: expected {k.allowed()}, got a "
                                    f"{'mapping' if isinstance(v.value, dict) else 'list'}")
        try:
            value = k.check(v.value, v.plain)
        except SchemaError as e:
            raise cfg.error(v.line, str(e).replace(f"for {k.name}:", f"for {path}:")) from None
        out[key] = Setting(value, v.line, path)
    return out


def _check_modes(settings: dict[str, Setting], cfg: Config, where: str) -> None:
    """A type spelled without modes next to an explicit rounding/overflow key is ambiguous."""
    for mode, spelled in (("rounding", "rounding_spelled"), ("overflow", "overflow_spelled")):
        if mode not in settings:
            continue
        for key in ("output", "activation"):
            s = settings.get(key)
            if s is not None and not getattr(s.value, spelled):
                raise cfg.error(s, f"{s.path} {s.value.text} spells no {mode} mode (ap_fixed's default "
                                   f"{'TRN' if mode == 'rounding' else 'WRAP'} would apply) while {where}.{mode}: "
                                   f"{settings[mode].value} is set; write the mode in the type, e.g. "
                                   f"{_with_mode(s.value, mode, settings[mode].value)}")


def _with_mode(tv: TypeValue, mode: str, value: str) -> str:
    t = tv.type.with_modes(rounding=value) if mode == "rounding" else tv.type.with_modes(overflow=value)
    return t.spec()


def _validate(root: Loc | None, source: str) -> Config:
    cfg = Config(source)
    if root is None or root.value is None:
        return cfg
    if not isinstance(root.value, dict):
        raise cfg.error(root.line, "the configuration must be a mapping of keys (version, input, defaults, "
                                   "layers, ptq, pruning, precision, reuse)")
    top = SCHEMA["top"]
    for key, v in root.value.items():
        if key not in top:
            raise cfg.error(v.line, f"unknown key {key!r} at the top level; {_suggest(key, top)}"
                                    f"allowed keys: {', '.join(top)}")
        cfg.present.add(key)
        if top[key].kind != "section":
            if isinstance(v.value, (dict, list)):
                raise cfg.error(v.line, f"invalid value for {key}: expected {top[key].allowed()}")
            try:
                value = top[key].check(v.value, v.plain)
            except SchemaError as e:
                raise cfg.error(v.line, str(e)) from None
            if key == "input":
                cfg.input = Setting(value, v.line, "input")
            continue
        if key == "layers":
            cfg.layers = _validate_layers(v, cfg)
        elif key == "defaults":
            cfg.defaults = _check_keys(v, SCHEMA["defaults"], "defaults", cfg)
            for a, b in (("weight", "weight_frac"), ("output", "output_frac")):
                if a in cfg.defaults and b in cfg.defaults:
                    raise cfg.error(cfg.defaults[b], f"defaults.{a} and defaults.{b} both set the float layers' "
                                                     f"{a} precision; give one of them")
            _check_modes(cfg.defaults, cfg, "defaults")
        else:
            cfg.sections[key] = _check_keys(v, SCHEMA[key], key, cfg)
    return cfg


def _validate_layers(loc: Loc, cfg: Config) -> dict[str, LayerEntry]:
    if loc.value is None:
        return {}
    if not isinstance(loc.value, dict):
        raise cfg.error(loc.line, "layers must map layer names to their settings")
    out = {}
    for name, v in loc.value.items():
        settings = _check_keys(v, SCHEMA["layer"], f"layers.{name}", cfg)
        _check_modes(settings, cfg, f"layers.{name}")
        out[name] = LayerEntry(name, v.line, settings)
    return out


def load_config(source: str | Path | dict | Config | None) -> Config | None:
    """A validated `Config` from a YAML file path, a dict (API) or a `Config`."""
    if source is None or isinstance(source, Config):
        return source
    if isinstance(source, dict):
        return _validate(_from_python(source), "<config>")
    path = Path(source)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; --config takes a YAML file (see nnfpga config MODEL)")
    if not path.is_file():
        raise UserError(f"{path}: no such configuration file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: {path.stat().st_size:,} bytes; a configuration file may have at most "
                        f"{MAX_CONFIG_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not a UTF-8 text file (byte {e.object[e.start]:#04x} at position {e.start}); "
                        "--config takes a YAML file (see nnfpga config MODEL)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the configuration ({e.strerror})") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    return _validate(_compose(text, source), source)


# ----------------------------------------------------------------------------- options
@dataclass
class CompileOptions:
    """Everything the passes need besides the graph."""

    precision: Precision = field(default_factory=Precision)
    config: Config = field(default_factory=Config)
    calibration: np.ndarray | None = None      # float samples, user layout
    labels: np.ndarray | None = None           # for the auc metric
    max_dsp: int | None = None
    ii: int | None = None                      # the II limit (from --ii / --event-rate)
    ii_reason: str = ""
    clock_mhz: float | None = None
    event_rate_hz: float | None = None
    trim: bool = False
    dsp_type: str = "DSP48E2"                  # the part's DSP primitive (the reuse search's costs)
    rtl: object = None                         # the RtlConfig the lowering will use (clock, pipeline)
    max_multiplications: int | None = None     # the size guard's limit (None: its default)
    # Filled by apply_config for the later passes (node name -> value).
    auto_modes: dict = field(default_factory=dict)        # node -> (Rounding, Overflow, Setting|None)
    accumulators: dict = field(default_factory=dict)      # node -> Setting
    sparsity: dict = field(default_factory=dict)          # node -> Setting
    pinned: set = field(default_factory=set)              # "node:weight" ... set by the config
    weight_frac_pinned: bool = False
    output_frac_pinned: bool = False
    table_size_pinned: bool = False
    input_pinned: bool = False

    @property
    def pruning_requested(self) -> bool:
        c = self.config
        return "pruning" in c.present or any("sparsity" in e.settings for e in c.layers.values())


def precision_from_config(cfg: Config, base: Precision | None = None) -> Precision:
    """The frontend's default precision with the config's ``defaults`` applied."""
    p = base or Precision()
    d = cfg.defaults
    changes = {}
    if "weight_frac" in d:
        changes["weight_frac"] = d["weight_frac"].value
    if "output_frac" in d:
        changes["activation_frac"] = d["output_frac"].value
    if "table_size" in d:
        changes["table_index_bits"] = int(math.log2(d["table_size"].value))
    return dataclasses.replace(p, **changes) if changes else p


def _agree(cli, setting: Setting | None, cfg: Config, flag: str, show=lambda v: v):
    """The value given on the command line and/or in the file; both must agree."""
    if setting is None:
        return cli
    if cli is None or cli == setting.value:
        return setting.value
    raise UserError(f"{flag} {show(cli)} conflicts with {setting.path}: {show(setting.value)} at "
                    f"{cfg.where(setting)}; give the value in one place")


def make_options(config=None, precision: Precision | None = None, calibration=None, labels=None,
                 max_dsp: int | None = None, ii: int | None = None, event_rate=None,
                 clock_mhz: float | None = None, trim: bool | None = None,
                 reuse: int | None = None) -> CompileOptions:
    """Validate and merge the command-line / API options with the config file.

    ``reuse`` (``--reuse R``) is the global reuse factor: the same as ``defaults:
    reuse_factor`` in the file (both given must agree); per-layer entries override it."""
    from nnfpga.compiler.config_schema import parse_rate
    cfg = load_config(config) or Config()
    for flag, v, least in (("--max-dsp", max_dsp, 0), ("--ii", ii, 1), ("--reuse", reuse, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least):
            raise UserError(f"{flag} must be a {'non-negative' if least == 0 else 'positive'} integer, got {v!r}")
    if event_rate is not None:
        try:
            event_rate = parse_rate(event_rate, "--event-rate")
        except SchemaError as e:
            raise UserError(str(e)) from None
    if reuse is not None:
        given = _agree(int(reuse), cfg.defaults.get("reuse_factor"), cfg, "--reuse")
        cfg.defaults.setdefault("reuse_factor", Setting(given, None, "--reuse"))
    opts = CompileOptions(precision=precision_from_config(cfg, precision), config=cfg, clock_mhz=clock_mhz)
    opts.max_dsp = _agree(max_dsp, cfg.setting("reuse", "max_dsp"), cfg, "--max-dsp")
    ii = _agree(ii, cfg.setting("reuse", "ii"), cfg, "--ii")
    rate = _agree(event_rate, cfg.setting("reuse", "event_rate"), cfg, "--event-rate", lambda v: f"{v:g} Hz")
    opts.event_rate_hz = rate
    limits = []
    if ii is not None:
        limits.append((int(ii), f"II limit {ii}"))
    if rate is not None:
        if clock_mhz is None:
            raise UserError("an event rate needs the clock frequency to give an II limit")
        rate_ii = math.floor(clock_mhz * 1e6 / rate + 1e-9)
        if rate_ii < 1:
            raise UserError(f"event rate {rate / 1e6:g} MHz is above the clock ({clock_mhz:g} MHz): no design "
                            "can accept more than one event per cycle")
        limits.append((rate_ii, f"event rate {rate / 1e6:g} MHz at {clock_mhz:g} MHz: one event every "
                                f"{clock_mhz * 1e6 / rate:g} cycles"))
    if limits:
        opts.ii, opts.ii_reason = min(limits)
    opts.trim = bool(_agree(trim if trim else None, cfg.setting("precision", "trim"), cfg, "--trim"))
    if calibration is not None:
        opts.calibration = np.asarray(calibration, dtype=np.float64)
        if opts.calibration.ndim < 2 or len(opts.calibration) == 0:
            raise UserError(f"calibration data must hold a batch of samples, got shape {opts.calibration.shape}")
        if not np.isfinite(opts.calibration).all():
            raise UserError("calibration data holds NaN or infinite values")
    if labels is not None:
        opts.labels = np.asarray(labels)
        if opts.calibration is None:
            raise UserError("labels were given without calibration data")
        if len(opts.labels) != len(opts.calibration):
            raise UserError(f"{len(opts.labels)} labels for {len(opts.calibration)} calibration samples")
    if opts.trim and opts.calibration is None:
        s = cfg.setting("precision", "trim")
        raise UserError(("precision.trim at " + cfg.where(s) if s else "--trim") +
                        " needs calibration data (--calibration X.npy)")
    d = cfg.defaults
    opts.weight_frac_pinned = "weight_frac" in d or "weight" in d
    opts.output_frac_pinned = "output_frac" in d or "output" in d
    opts.table_size_pinned = "table_size" in d
    opts.input_pinned = cfg.input is not None
    return opts


def load_calibration(path: str | Path, labels_path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Calibration samples from ``.npy`` / ``.npz`` (array ``x``; labels ``y`` in the same
    ``.npz`` or in ``labels_path``)."""
    x = load_samples(path)
    y = None
    if Path(path).suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "y" in data.files and "x" in data.files:
                y = np.asarray(data["y"])
    if labels_path is not None:
        if y is not None:
            raise UserError(f"{path} holds labels y and --labels {labels_path} gives labels too; give them once")
        y = load_samples(labels_path)
    if y is not None and len(y) != len(x):
        source = labels_path if labels_path is not None else f"{path} (array 'y')"
        raise UserError(f"{source}: {len(y)} labels for {len(x)} calibration samples in {path}; "
                        "give one label per sample")
    return x, y
