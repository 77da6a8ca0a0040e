"""apply_config: bind the configuration file to the graph's layers.

Contract: runs on float weights, after `fold_batchnorm` and before any quantisation.
Sets, exactly as written and nowhere else:

* ``input``: the Input node's type (replacing the model's own input quantiser);
* ``defaults``: the things the compiler would otherwise choose -- weight/bias
  quantisers of float layers (``weight``/``bias``; of an unfolded BatchNormalization
  (`ScaleShift`): its scale and shift), output types of float layers
  (``output`` for Dense/Conv2D, ``activation`` for the outputs of auto-typed activations
  (`Op.auto_typed`), for table entries and softmax outputs), ``accumulator`` bounds,
  ``reuse_factor`` of every Dense/Conv2D; ``weight_frac``/``output_frac``/``table_size``
  reach the frontend through `config.precision_from_config`;
* ``layers.<name>``: the same for one source layer, overriding the model's own
  quantisers too, plus its pruning target ``sparsity``.

``rounding``/``overflow`` and ``accumulator``/``sparsity`` are handed to the passes that
use them (`CompileOptions.auto_modes`, ``.accumulators``, ``.sparsity``).  A layer name
the model does not have, or a key that does not apply to the layer (``table_size`` on a
layer without a table, ``weight`` on an activation, ...), is a `UserError` at the
entry's line.  Weights that do not fit a requested type are an error with WRAP and an
adjustment (saturation, reported) with SAT.  Nothing else changes.
"""

from __future__ import annotations

import math

import numpy as np

from nnfpga.compiler.adjustments import record_adjustment, record_pass
from nnfpga.compiler.config import CompileOptions, Config, LayerEntry, Setting, _suggest
from nnfpga.compiler.source_layers import Layer, layer_groups, rebuild_table
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, ScaleShift
from nnfpga.ir.ops.activation_functions import names_where
from nnfpga.ir.quant import Quantizer, WeightKind


def _listed(names: tuple[str, ...]) -> str:
    """``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


#: for the message on ``table_size``: "tanh, sigmoid or softmax"
_TABLE_FUNCTIONS = _listed(names_where(lambda f: bool(f.tables)))


def apply_config(graph: Graph, options: CompileOptions) -> Graph:
    cfg = options.config
    applied: list[dict] = []
    groups = layer_groups(graph)

    def note(layer: str, s: Setting) -> None:
        applied.append({"layer": layer, "setting": s.path, "value": str(s.value), "line": s.line})

    if cfg.input is not None:
        graph.input.out_type = cfg.input.value.type
        note(graph.input.source_layer, cfg.input)
    _apply_defaults(graph, options, note)
    for name, entry in cfg.layers.items():
        layer = groups.get(name)
        if layer is None:
            known = [k for k, g in groups.items()]
            raise cfg.error(entry, f"unknown layer {name!r}; {_suggest(name, known)}the model's layers are: "
                                   f"{', '.join(known)}")
        if layer.is_input and entry.settings:
            raise cfg.error(entry, f"{name!r} is the model's input; set its type with the top-level key "
                                   f"'input', not under layers")
        for key, s in entry.settings.items():
            _apply_layer_key(graph, options, layer, entry, key, s)
            note(name, s)
    if applied:
        record_pass(graph, "config", {"file": cfg.source, "applied": applied})
    return graph


# ----------------------------------------------------------------------------- defaults
def _apply_defaults(graph: Graph, options: CompileOptions, note) -> None:
    d = options.config.defaults
    if not d:
        return
    for node in graph.nodes:
        layer = node.source_layer or node.name
        if isinstance(node, (Dense, Conv2D)):
            if "weight" in d and node.kernel_quantizer is None:
                _set_quantizer(graph, options.config, node, "weight", d["weight"], layer)
            if "bias" in d and node.bias is not None and node.bias_quantizer is None:
                _set_quantizer(graph, options.config, node, "bias", d["bias"], layer)
            if "accumulator" in d:
                options.accumulators[node.name] = d["accumulator"]
            if "reuse_factor" in d:
                node.reuse_factor = d["reuse_factor"].value
                options.pinned.add(f"{node.name}:reuse_factor")
            if "output" in d and node.auto_frac is not None:
                node.out_type, node.auto_frac = d["output"].value.type, None
        elif isinstance(node, ScaleShift):   # an unfolded BatchNorm: scale as weights, shift as biases
            if "weight" in d and node.kernel_quantizer is None:
                _set_quantizer(graph, options.config, node, "weight", d["weight"], layer)
            if "bias" in d and node.bias_quantizer is None:
                _set_quantizer(graph, options.config, node, "bias", d["bias"], layer)
            if "output" in d and node.auto_frac is not None:
                node.out_type, node.auto_frac = d["output"].value.type, None
        elif isinstance(node, Activation):
            if "activation" in d:
                t = d["activation"].value.type
                if node.auto_typed and node.auto_frac is not None:
                    node.out_type, node.auto_frac = t, None
                elif node.properties.tables:
                    rebuild_table(node, out_type=t)
                    options.pinned.add(f"{node.name}:output")
        if node.auto_frac is not None and ("rounding" in d or "overflow" in d):
            options.auto_modes[node.name] = _modes(d, options.auto_modes.get(node.name))
    for key, s in d.items():
        note("", s)


def _modes(settings: dict[str, Setting], previous=None) -> tuple[Rounding, Overflow, Setting | None]:
    rnd, ovf, where = previous if previous is not None else (Rounding.RND, Overflow.SAT, None)
    if "rounding" in settings:
        rnd = Rounding(settings["rounding"].value)
    if "overflow" in settings:
        ovf, where = Overflow(settings["overflow"].value), settings["overflow"]
    return rnd, ovf, where


# ----------------------------------------------------------------------------- one layer
def _apply_layer_key(graph: Graph, options: CompileOptions, layer: Layer, entry: LayerEntry,
                     key: str, s: Setting) -> None:
    cfg = options.config
    name = layer.name
    desc = f"layer {name!r} ({layer.describe()})"

    def refuse(why: str):
        return cfg.error(s, f"{s.path}: {desc} {why}")

    if key in ("weight", "bias", "accumulator", "reuse_factor", "sparsity"):
        node = layer.weighted if key in ("weight", "bias") else layer.weights
        if node is None:
            raise refuse(f"has no weights; {key} applies to Dense and Conv2D layers"
                         + (" and to BatchNormalization (scale, shift)" if key in ("weight", "bias") else ""))
        if key in ("weight", "bias"):
            if key == "bias" and node.bias is None:
                raise refuse("has no bias")
            _set_quantizer(graph, cfg, node, key, s, name)
        elif key == "accumulator":
            options.accumulators[node.name] = s
        elif key == "reuse_factor":
            node.reuse_factor = s.value
            options.pinned.add(f"{node.name}:reuse_factor")
        else:
            kind = node.kernel_quantizer.kind if node.kernel_quantizer is not None else WeightKind.FIXED
            if kind in (WeightKind.BINARY, WeightKind.PO2) and "weight" not in entry.settings:
                raise refuse(f"has {kind.value} weights, which are never zero; it cannot be pruned")
            options.sparsity[node.name] = s
        return
    if key == "output":
        node = layer.primary
        if node.auto_typed:
            node.out_type, node.auto_frac = s.value.type, None
        elif isinstance(node, Activation):   # an activation with tables, a layer of its own
            rebuild_table(node, out_type=s.value.type)
        else:
            raise refuse("has no output type of its own (it keeps its input's type)")
        options.pinned.add(f"{node.name}:output")
        return
    if key == "activation":
        node = layer.activation
        if node is None:
            raise refuse("has no activation of its own; use output")
        if node.auto_typed:
            node.out_type, node.auto_frac = s.value.type, None
        else:
            rebuild_table(node, out_type=s.value.type)
        options.pinned.add(f"{node.name}:output")
        return
    if key == "table_size":
        tables = layer.tables
        if not tables:
            raise refuse(f"has no lookup table; table_size applies to layers with {_TABLE_FUNCTIONS}")
        for node in tables:
            rebuild_table(node, index_bits=int(math.log2(s.value)))
            options.pinned.add(f"{node.name}:table_size")
        return
    if key in ("rounding", "overflow"):
        autos = [n for n in layer.nodes if n.auto_frac is not None]
        if not autos:
            raise refuse(f"has no type chosen by the compiler ({key} applies to those); its types come "
                         "from the model's quantisers or from this file")
        for n in autos:
            options.auto_modes[n.name] = _modes({key: s}, options.auto_modes.get(n.name))
        return
    raise AssertionError(key)


def _set_quantizer(graph: Graph, cfg: Config, node, which: str, s: Setting, layer: str) -> None:
    t: FixedType = s.value.type
    values = node.kernel if which == "weight" else node.bias
    wide = FixedType(62, 62 - t.frac, True, t.rounding, Overflow.SAT)
    raw = wide.quantize(values)
    over = (raw < t.min_raw) | (raw > t.max_raw)
    if over.any():
        count = f"{int(over.sum())} of {over.size} {which}s of layer {layer!r} " \
                f"(largest |value| {float(np.abs(values).max()):g})"
        if t.overflow is Overflow.WRAP:
            raise cfg.error(s, f"{s.path}: {count} do not fit {t} and would wrap around; give the type more "
                               f"integer bits or overflow SAT")
        record_adjustment(graph, layer=layer, node=node.name, setting=which, requested=t.spec(), used=t.spec(),
                          reason=f"{count} exceed the range [{t.min_value:g}, {t.max_value:g}] and saturate")
    q = Quantizer(WeightKind.FIXED, t)
    if which == "weight":
        node.kernel_quantizer, node.kernel_q = q, None
    else:
        node.bias_quantizer, node.bias_q = q, None
        node.kernel_q = None   # quantize_weights re-quantises the layer as a whole
