"""The connectivity of a Keras Functional model that is not a chain: which layers each
layer reads, the model's inputs and outputs, and the shape every layer gives.

Keras records a layer's calls in ``inbound_nodes``: Keras 2 as
``[[[name, node, tensor, kwargs], ...]]`` (one list per call), Keras 3 as
``[{"args": [...{"keras_history": [name, node, tensor]}...], "kwargs": {...}}]``.  A layer
called more than once (a shared layer) is refused by name; layers are read in the
config's order, which Keras writes in topological order (checked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfpga.compiler.frontends import keras_checks as kc
from nnfpga.compiler.frontends.keras_shapes import Shape, _CHECKS, _Weights
from nnfpga.core.errors import UserError

#: Layers that join several tensors, each with the IR ops it becomes.
MERGE_LAYERS: dict[str, tuple[str, ...]] = {
    "Add": ("Add",), "Subtract": ("Add",), "Average": ("Add", "ScaleShift"), "Concatenate": ("Concatenate",),
}


@dataclass
class Topology:
    """What each layer reads (layer names, in argument order), and the model's input and
    output layers in the model's order."""

    inbound: dict[str, list[str]]
    inputs: list[str]
    outputs: list[str]


def inbound_names(nodes) -> list[str]:
    """The layer names a Keras node list (``inbound_nodes``, ``output_layers``) refers to, in order."""
    found: list[str] = []

    def walk(x) -> None:
        if isinstance(x, dict):
            if "keras_history" in x:
                history = x["keras_history"]
                found.append(str(history[0]) if isinstance(history, list) and history else repr(history))
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            if x and isinstance(x[0], str) and len(x) >= 3 and isinstance(x[1], int):
                found.append(x[0])  # Keras 2: [layer name, node index, tensor index(, kwargs)]
                return
            for v in x:
                walk(v)

    walk(nodes)
    return found


def functional_topology(cfg: dict, layers: list[dict], where: str) -> Topology | None:
    """The topology of a Functional model's config, or None when it is a chain (every
    layer reads exactly the layer before it, the last layer is the one output), which
    the frontend reads in order.  A config without connectivity (a live model's) is read
    as a chain."""
    names = [kc.layer_name(lc) for lc in layers]
    inbound: dict[str, list[str]] = {}
    for lc, name in zip(layers, names):
        nodes = lc.get("inbound_nodes")
        if nodes is None:
            continue
        if not isinstance(nodes, list):
            raise UserError(f"{where}: layer {name!r} ({lc.get('class_name')}): field 'inbound_nodes' is "
                            f"{kc.short(nodes)}; it must be a list of the layer's calls")
        if len(nodes) > 1:
            raise UserError(f"{where}: layer {name!r} ({lc.get('class_name')}) is called {len(nodes)} times; a "
                            "layer shared between several calls is not supported: give each call its own layer")
        inbound[name] = inbound_names(nodes)
    if any(lc.get("inbound_nodes") is None and lc.get("class_name") != "InputLayer" for lc in layers):
        return None   # a config without connectivity (a live model's): read in order
    for name in names:
        inbound.setdefault(name, [])
    outputs = inbound_names(cfg.get("output_layers", [])) or names[-1:]
    inputs = inbound_names(cfg.get("input_layers", [])) or [n for n in names if not inbound[n]]
    if (not inbound[names[0]] and all(inbound[n] == [p] for p, n in zip(names, names[1:]))
            and outputs == names[-1:] and inputs == names[:1]):
        return None
    seen: set[str] = set()
    for lc, name in zip(layers, names):
        if lc.get("class_name") == "InputLayer":
            if inbound[name]:
                raise UserError(f"{where}: input layer {name!r} reads {kc.short(inbound[name])}")
        elif not inbound[name]:
            raise UserError(f"{where}: layer {name!r} ({lc.get('class_name')}) reads no tensor")
        late = [r for r in inbound[name] if r not in seen]
        if late:
            known = set(names)
            what = "not a layer of the model" if any(r not in known for r in late) else "listed after it"
            raise UserError(f"{where}: layer {name!r} reads {kc.short(late)}, {what}")
        if lc.get("class_name") not in MERGE_LAYERS and len(inbound[name]) > 1:
            raise UserError(f"{where}: layer {name!r} ({lc.get('class_name')}) reads {len(inbound[name])} tensors "
                            f"({kc.short(inbound[name])}); only {', '.join(MERGE_LAYERS)} join tensors")
        seen.add(name)
    for what, listed in (("output", outputs), ("input", inputs)):
        missing = [n for n in listed if n not in seen]
        if missing:
            raise UserError(f"{where}: the model's {what}s name {kc.short(missing)}, not a layer of the model")
    if len(set(outputs)) != len(outputs):
        raise UserError(f"{where}: the model lists the output {kc.short(outputs)} more than once")
    not_inputs = [n for n in inputs if next(lc for lc in layers if kc.layer_name(lc) == n)["class_name"]
                  != "InputLayer"]
    if not_inputs:
        raise UserError(f"{where}: the model's inputs {kc.short(not_inputs)} are not InputLayers")
    return Topology(inbound, inputs, outputs)


def layer_shapes(layers: list[dict], topo: Topology, weights: dict[str, list[np.ndarray]], source: str,
                 weights_file: str) -> dict[str, Shape]:
    """The Keras output shape (no batch) of every layer, checking each config and its
    weights against the shapes that reach it (`keras_shapes`)."""
    out: dict[str, Shape] = {}
    for lc in layers:
        cls, cfg, name = lc["class_name"], lc["config"], kc.layer_name(lc)
        where = f"{source}: layer {name!r} ({cls})"
        if cls == "InputLayer":
            found = kc.input_shape(cfg, where)
            if found is None:
                raise UserError(f"{where}: the input shape is not given (field 'batch_input_shape' or 'batch_shape')")
            out[name] = found[0]
            continue
        ins = [out[r] for r in topo.inbound[name]]
        if cls in MERGE_LAYERS:
            out[name] = merge_shape(cls, cfg, ins, where)
        else:
            check = _CHECKS.get(cls)
            out[name] = check(cfg, ins[0], _Weights(weights.get(name), where, weights_file), where) if check else ins[0]
    return out


def merge_shape(cls: str, cfg: dict, shapes: list[Shape], where: str) -> Shape:
    if len(shapes) < 2 or (cls == "Subtract" and len(shapes) != 2):
        raise UserError(f"{where}: reads {len(shapes)} tensors; {cls} needs "
                        f"{'exactly two' if cls == 'Subtract' else 'two or more'}")
    if cls != "Concatenate":
        if len(set(shapes)) != 1:
            raise UserError(f"{where}: the inputs have shapes {[list(s) for s in shapes]}; {cls} needs equal shapes "
                            "(broadcasting is not supported)")
        return shapes[0]
    rank = len(shapes[0])
    axis = concat_axis(cfg, rank, where)
    if any(len(s) != rank for s in shapes) or len({s[:axis] + s[axis + 1:] for s in shapes}) != 1:
        raise UserError(f"{where}: the inputs have shapes {[list(s) for s in shapes]}; they must agree on every "
                        f"axis but the concatenation axis {cfg.get('axis', -1)}")
    return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]


def concat_axis(cfg: dict, rank: int, where: str) -> int:
    """Keras's ``axis`` (counting the batch axis) as an axis of the sample's shape."""
    axis = cfg.get("axis", -1)
    if not kc.is_int(axis) or not (-rank <= axis <= rank) or axis == 0:
        raise UserError(f"{where}: field 'axis' is {kc.short(axis)}; it must be an axis of the sample "
                        f"(1..{rank} or -{rank}..-1; 0 is the batch)")
    return axis - 1 if axis > 0 else axis + rank
