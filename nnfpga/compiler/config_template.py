"""``nnfpga config MODEL``: a commented starting configuration for a model.

Every layer of the model is listed with every key that applies to it; a commented line
(``# key: value``) shows the value the compiler uses now, so removing the ``# `` pins
exactly that value and compiles to the same firmware.  Values given in the config the
template was made with, and values chosen by post-training quantisation, trimming or
reuse selection (when ``nnfpga config`` is given calibration data or a DSP / II
target), are written active, marked with what chose them: compiling with the file
reproduces them without re-running the search.
"""

from __future__ import annotations

import json
import re
import textwrap

from nnfpga.compiler.config import CompileOptions, Config
from nnfpga.compiler.config_schema import CONFIG_VERSION, SCHEMA, Key
from nnfpga.compiler.source_layers import Layer, layer_groups
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, ScaleShift
from nnfpga.ir.ops.linear import acc_type_for
from nnfpga.ir.quant import WeightKind, float_weight_quantizer

SECTION_TITLES = {
    "ptq": "post-training quantisation: runs when calibration data is given (--calibration X.npy)",
    "pruning": "magnitude pruning, then removal of dead neurons (present = on, even when empty)",
    "precision": "data-dependent trimming of the types the compiler chose (needs calibration data)",
    "reuse": "reuse factors chosen for a DSP budget or an II limit",
}


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")


def yaml_key(name: str) -> str:
    """A layer name as a YAML key: plain when safe, else double-quoted (JSON is YAML)."""
    return name if _PLAIN_NAME.fullmatch(name) and name not in ("true", "false", "null", "yes", "no", "on",
                                                                 "off", "y", "n") else json.dumps(name)


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _chosen(graph: Graph) -> dict[tuple[str, str], str]:
    """(layer, key) -> what chose its value (ptq, trim, reuse selection)."""
    groups = layer_groups(graph)
    out: dict[tuple[str, str], str] = {}

    def slot(node_name: str) -> tuple[str, str]:
        for layer in groups.values():
            for n in layer.nodes:
                if n.name == node_name:
                    return layer.name, ("output" if n is layer.primary else "activation")
        return "", ""
    passes = graph.annotations.get("passes", {})
    for c in (passes.get("ptq") or {}).get("chosen", []):
        if c["what"] == "input":
            out[("", "input")] = "chosen by ptq"
        elif c["what"] == "weight":
            out[(c["layer"], "weight")] = out[(c["layer"], "bias")] = "chosen by ptq"
        elif c["what"] == "table_size":
            out[(c["layer"], "table_size")] = "chosen by ptq"
        else:
            out[slot(c["node"])] = "chosen by ptq"
    for t in (passes.get("trim") or {}).get("trimmed", []):
        out[slot(t["node"])] = "trimmed to the calibration data"
    for r in (passes.get("reuse") or {}).get("layers", []):
        if r.get("chosen"):
            out[(r["layer"], "reuse_factor")] = "chosen for the DSP/II target"
    return out


def _weight_type(node, which: str):
    q = node.kernel_quantizer if which == "weight" else node.bias_quantizer
    arr_q = node.kernel_q if which == "weight" else node.bias_q
    if q is None:   # a float layer: the compiler's quantiser at the frac it used
        return float_weight_quantizer(node.kernel if which == "weight" else node.bias, arr_q.frac).type, ""
    if q.kind is WeightKind.FIXED and q.scale == 1.0 and not q.per_channel:
        return q.type, ""
    return None, f"{q.kind.value} (the model's quantiser; a type here replaces it)"


def _layer_lines(layer: Layer, cfg: Config, chosen: dict) -> list[tuple[str, str, str]]:
    """(key, value, note) for every key that applies; value '' means informational."""
    p = layer.primary
    lines = []
    if isinstance(p, (Dense, Conv2D)):
        for which in ("weight", "bias"):
            if which == "bias" and p.bias_q is None:
                continue
            t, note = _weight_type(p, which)
            lines.append((which, t.spec() if t is not None else "", note))
        lines.append(("accumulator", "", ""))     # filled in by the caller: the exact type
        lines.append(("output", p.info.type.spec(), "exact range" if p.out_type is None else ""))
    elif isinstance(p, ScaleShift):   # an unfolded BatchNorm: its scale and shift are the weights
        for which in ("weight", "bias"):
            t, note = _weight_type(p, which)
            lines.append((which, t.spec() if t is not None else "", note))
        lines.append(("output", p.info.type.spec(), "exact range" if p.out_type is None else ""))
    elif isinstance(p, Activation):
        lines.append(("output", p.info.type.spec(), ""))
    act = layer.activation
    if act is not None:
        lines.append(("activation", act.info.type.spec(), ""))
    if layer.tables:
        t = layer.tables[0]
        lines.append(("table_size", str(t.table.size), ""))
    if isinstance(p, (Dense, Conv2D)):
        lines.append(("reuse_factor", str(p.reuse_factor), ""))
        z = float((p.kernel == 0).sum() / p.kernel.size)
        if p.kernel_q.kind not in (WeightKind.BINARY, WeightKind.PO2):
            lines.append(("sparsity", _fmt(z), "share of zero weights now"))
    return lines


def write_template(graph: Graph, options: CompileOptions, source: str, accumulators: dict | None = None) -> str:
    cfg = options.config
    chosen = _chosen(graph)
    acc = accumulators if accumulators is not None else _accumulators(graph)
    given = {(name, key): s for name, e in cfg.layers.items() for key, s in e.settings.items()}
    out = [
        f"# nnfpga configuration for {source} (model {graph.name})",
        "# Written by `nnfpga config`.  Every key is optional.  A commented line shows the value the",
        "# compiler uses now: remove the '# ' to fix that value, or change it.  Lines without '# '",
        "# came from the configuration given, or were chosen by a search (marked).",
        "# Types are ap_fixed types: fixed<W,I,ROUNDING,OVERFLOW> or ufixed<...> (unsigned), with",
        "# ROUNDING one of TRN, RND, RND_CONV and OVERFLOW one of WRAP, SAT (ap_fixed's TRN and WRAP",
        "# when not written).  Keys of a layer (by its name in the source model):",
    ]
    for k in SCHEMA["layer"].values():
        out += textwrap.wrap(f"{k.name} = {k.doc}", 92, initial_indent="#   ", subsequent_indent="#       ")
    out.append("")
    out.append(f"version: {CONFIG_VERSION}")
    in_type = graph.input.info.type.spec()
    if cfg.input is not None:
        out.append(f"input: {cfg.input.value.type.spec()}")
    elif ("", "input") in chosen:
        out.append(f"input: {in_type}   # {chosen[('', 'input')]}")
    else:
        out.append(f"# input: {in_type}")
    out.append("")
    out += _section_lines("defaults", cfg, options, "settings for every layer whose value the compiler "
                                                    "chooses (float layers)", always_header=True)
    out.append("")
    out.append("layers:")
    for layer in layer_groups(graph).values():
        if layer.is_input:
            continue
        lines = _layer_lines(layer, cfg, chosen)
        if not lines and layer.name not in cfg.layers:
            out.append(f"  # - {layer.name} ({layer.describe()}): no settings")
            continue
        out.append(f"  {yaml_key(layer.name)}:   # {layer.describe()}")
        for key, value, note in lines:
            if key == "accumulator":
                a = acc.get(layer.primary.name)
                value = a or ""
                note = "exact; accumulators keep every bit, a narrower type is an error"
            s = given.get((layer.name, key))
            if s is not None:
                out.append(f"    {key}: {_fmt(_plain(s.value))}")
            elif (layer.name, key) in chosen:
                out.append(f"    {key}: {value}   # {chosen[(layer.name, key)]}")
            elif value:
                out.append(f"    # {key}: {value}" + (f"   # {note}" if note else ""))
            else:
                out.append(f"    #   ({key}: {note})")
        for key in ("rounding", "overflow"):
            s = given.get((layer.name, key))
            if s is not None:
                out.append(f"    {key}: {s.value}")
    out.append("")
    for section in ("ptq", "pruning", "precision", "reuse"):
        out += _section_lines(section, cfg, options, SECTION_TITLES[section])
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _plain(v):
    return v.type.spec() if hasattr(v, "type") and hasattr(v, "text") else v


def _accumulators(graph: Graph) -> dict[str, str]:
    out = {}
    infos = {n.name: n.info for n in graph.nodes}
    for n in graph.nodes:
        if isinstance(n, (Dense, Conv2D)):
            x = infos[n.inputs[0]]
            lo, hi, _ = n.acc_range(x)
            out[n.name] = acc_type_for(lo, hi, n.acc_frac(x.type.frac)).spec()
    return out


def _section_lines(section: str, cfg: Config, options: CompileOptions, title: str,
                   always_header: bool = False) -> list[str]:
    settings = cfg.defaults if section == "defaults" else cfg.sections.get(section, {})
    present = section in cfg.present
    keys: dict[str, Key] = SCHEMA[section]
    active = present or always_header
    lines = [f"{section}:   # {title}" if active else f"# {section}:   # {title}"]
    for k in keys.values():
        s = settings.get(k.name)
        doc = f"   # {k.allowed()}: {k.doc}" if k.kind in ("choice",) else f"   # {k.doc}"
        if s is not None:
            lines.append(f"  {k.name}: {_fmt(_plain(s.value))}")
            continue
        default = _current_default(section, k, options)
        if default is None:
            allowed = "a type, e.g. fixed<8,3,RND,SAT>" if k.kind == "type" else k.allowed()
            lines.append(f"#   ({k.name}: {k.doc}; {allowed})")
        elif active:
            lines.append(f"  # {k.name}: {_fmt(default)}{doc}")
        else:
            lines.append(f"#   {k.name}: {_fmt(default)}{doc}")
    return lines


def _current_default(section: str, k: Key, options: CompileOptions):
    p = options.precision
    if section == "defaults":
        return {"weight_frac": p.weight_frac, "output_frac": p.activation_frac, "rounding": "RND",
                "overflow": "SAT", "reuse_factor": 1, "table_size": 2 ** p.table_index_bits}.get(k.name)
    return k.default


def config_text(model, source_name: str | None = None, *, config=None, precision=None, calibration=None,
                labels=None, max_dsp=None, ii=None, event_rate=None, clock_mhz: float | None = None,
                trim=None) -> str:
    """Compile ``model`` to the typed IR (no firmware) and write its configuration template."""
    from nnfpga.compiler.config import make_options
    from nnfpga.compiler.pipeline import build_graph
    options = make_options(config, precision, calibration, labels, max_dsp, ii, event_rate, clock_mhz, trim)
    graph = build_graph(model, options=options)
    name = source_name or (str(model) if isinstance(model, str) or hasattr(model, "__fspath__") else graph.name)
    return write_template(graph, options, name)
