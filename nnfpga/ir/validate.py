"""Loading ``ir.json`` without trusting it: the one place where a (possibly tampered or
damaged) IR file is checked before it becomes a `Graph`.

The checks, in order, each failing with an `IRFileError` that names the node and the
field: the file is UTF-8 JSON of bounded size and nesting; the structure has the keys and
JSON types the IR writes; every fixed-point type is one nnfpga can build (width 1..62);
every shape is made of positive integers whose product stays below `MAX_ELEMENTS` and
every stored array holds as many numbers as its shape says (so no size read from the file
is trusted before memory is allocated for it); node references point at earlier nodes
(no dangling names, no cycles); the ops are built; and range analysis run again must
reproduce the shape, type and range stored for every node, so an edited type cannot make
the emulator disagree with the firmware the same compile wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nnfpga.core.limits import MAX_COUNT
from nnfpga.ir.fixed import Overflow, Rounding
from nnfpga.ir.graph import IR_VERSION, Graph
from nnfpga.ir.layout import Layout
from nnfpga.ir.ops import OP_CLASSES, Op

#: The largest ir.json read (bytes).
MAX_IR_BYTES = 1 << 30
#: The most elements one tensor or stored array may have.
MAX_ELEMENTS = 50_000_000
#: The deepest JSON nesting ir.json can need (the IR writes at most a handful of levels).
MAX_DEPTH = 32
#: The most weight banks an ensemble may have.
MAX_BANKS = 1 << 16
#: Bound on a type's integer bits (the binary point may sit far outside the word, not unboundedly).
MAX_INTEGER_BITS = 1024


class IRFileError(ValueError):
    """ir.json is not a valid IR; the message names the node and the field."""


def load_ir(path: str | Path, complete: bool = True) -> Graph:
    """The graph of the IR file ``path``, validated as the module docstring describes.
    ``complete``: the IR of an output directory (quantised and inferred), so range
    analysis must reproduce it; False for the IR dumped between passes (``--dump-ir``)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_IR_BYTES:
        raise IRFileError(f"is {size:,} bytes, above the {MAX_IR_BYTES:,} an IR file may have")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise IRFileError("is not a text file (not UTF-8), so not the JSON IR nnfpga writes") from None
    try:
        d = json.loads(text, parse_constant=_not_a_number)
    except ValueError as e:   # JSONDecodeError, or an integer of thousands of digits
        raise IRFileError(f"is not valid JSON ({str(e)[:200]})") from None
    except RecursionError:
        raise IRFileError("is nested too deeply to be an IR file") from None
    return graph_from_json(d, complete)


def _not_a_number(token: str):
    raise ValueError(f"{token} is not a JSON number")


def graph_from_json(d: Any, complete: bool = True) -> Graph:
    """`Graph.from_json` after the structural checks (``complete``: and the inference
    check); every failure an `IRFileError`."""
    _check_depth(d, 0)
    _check_top(d)
    names = _check_nodes(d["nodes"])
    _check_outputs(d["outputs"], names)
    nodes = [_build(n) for n in d["nodes"]]
    try:
        layouts = [Layout.from_json(d.get(k)) for k in ("input_layout", "output_layout")]
    except (ValueError, TypeError, KeyError) as e:
        raise IRFileError(f"field input_layout/output_layout is invalid ({e})") from None
    g = Graph(d["name"], nodes, list(d["outputs"]), layouts[0], layouts[1], dict(d.get("annotations", {})),
              d.get("banks", 0))
    if complete:
        _check_inference(g)
        _check_layouts(g)
    return g


def _check_layouts(g: Graph) -> None:
    """A layout re-orders exactly the elements of the tensor at its boundary."""
    for key, node in (("input_layout", g.input), ("output_layout", g.output)):
        layout = getattr(g, key)
        n = math.prod(node.info.shape)
        if layout is not None and layout.size != n:
            raise IRFileError(f"field {key} orders {layout.size:,} elements; node {node.name!r} has {n:,} "
                              f"(shape {list(node.info.shape)})")


# ----------------------------------------------------------------------------- structure
def _check_depth(v: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise IRFileError(f"is nested more than {MAX_DEPTH} levels deep, which no IR file is")
    if isinstance(v, dict):
        for x in v.values():
            _check_depth(x, depth + 1)
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, (dict, list)):
                _check_depth(x, depth + 1)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _expect(ok: bool, where: str, field: str, expected: str, got: Any) -> None:
    if not ok:
        shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:57] + "..."
        raise IRFileError(f"{where}field {field} must be {expected}, got {shown}")


def _check_top(d: Any) -> None:
    _expect(isinstance(d, dict), "", "(the file)", "a JSON object", type(d).__name__)
    for key in ("ir_version", "name", "outputs", "nodes"):
        if key not in d:
            raise IRFileError(f"the field {key!r} is missing")
    if d["ir_version"] != IR_VERSION:
        raise IRFileError(f"field ir_version is {d['ir_version']!r}; this nnfpga reads IR version {IR_VERSION}")
    _expect(isinstance(d["name"], str), "", "name", "a string", d["name"])
    _expect(isinstance(d["nodes"], list) and len(d["nodes"]) > 0, "", "nodes", "a non-empty list of nodes",
            d["nodes"])
    _expect(isinstance(d["outputs"], list) and len(d["outputs"]) == 1 and isinstance(d["outputs"][0], str), "",
            "outputs", "a list of one node name", d["outputs"])
    banks = d.get("banks", 0)
    _expect(_is_int(banks) and (banks == 0 or 2 <= banks <= MAX_BANKS), "", "banks",
            f"an integer from 2 to {MAX_BANKS} (or absent)", banks)
    _expect(isinstance(d.get("annotations", {}), dict), "", "annotations", "a JSON object", d.get("annotations"))
    for key in ("input_layout", "output_layout"):
        lay = d.get(key)
        if lay is not None:
            _expect(isinstance(lay, dict), "", key, "a JSON object or null", lay)
            _check_shape(lay.get("shape"), "", f"{key}.shape")
            _expect(isinstance(lay.get("order"), list) and all(_is_int(i) for i in lay["order"]), "",
                    f"{key}.order", "a list of integers", lay.get("order"))


def _check_nodes(nodes: list) -> list[str]:
    names: list[str] = []
    for i, n in enumerate(nodes):
        _expect(isinstance(n, dict), f"node {i}: ", "(the node)", "a JSON object", n)
        _expect(isinstance(n.get("name"), str) and n["name"] != "", f"node {i}: ", "name", "a non-empty string",
                n.get("name"))
        where = f"node {n['name']!r}: "
        if n["name"] in names:
            raise IRFileError(f"{where}the name is given to two nodes")
        _expect(isinstance(n.get("op"), str) and n["op"] in OP_CLASSES, where, "op", "one of " + ", ".join(sorted(OP_CLASSES)), n.get("op"))
        _expect(isinstance(n.get("inputs"), list) and all(isinstance(x, str) for x in n["inputs"]), where,
                "inputs", "a list of node names", n.get("inputs"))
        for ref in n["inputs"]:
            if ref not in names:
                later = any(isinstance(m, dict) and m.get("name") == ref for m in nodes)
                why = ("a node that comes later or the node itself (a cycle, or nodes out of order)" if later
                       else "no node (a dangling reference)")
                raise IRFileError(f"{where}field inputs names {ref!r}, {why}")
        _check_values(n, where, "")
        names.append(n["name"])
    return names


def _check_outputs(outputs: list, names: list[str]) -> None:
    for ref in outputs:
        if ref not in names:
            raise IRFileError(f"field outputs names {ref!r}, which is no node (a dangling reference)")


#: Integer fields that count bits or exponents: bounded, as 2**value is computed from them.
_BIT_FIELDS = ("frac", "min_exp", "max_exp", "alpha_frac", "auto_frac", "integer")
#: Integer fields that are sizes of a window or a shape.
_SIZE_LISTS = ("strides", "pool_size", "target_shape", "order")
#: Integer arrays (raw integers of quantised weights, table entries, ranges).
_INT_ARRAYS = ("raw", "entries", "raw_range", "index")
_INT64 = 1 << 63


def _check_values(v: Any, where: str, path: str) -> None:
    """Every fixed-point type, shape, stored array and number below ``v`` (a node's JSON)."""
    if isinstance(v, list):
        for i, x in enumerate(v):
            if isinstance(x, (dict, list)):
                _check_values(x, where, f"{path}[{i}]")
        return
    if not isinstance(v, dict):
        return
    if {"width", "integer", "signed", "rounding", "overflow"} <= v.keys():
        _check_type(v, where, path or "type")
    if "shape" in v:
        _check_shape(v["shape"], where, f"{path}.shape".lstrip("."))
        if "data" in v:
            _check_data(v, where, path)
    for key, x in v.items():
        field = f"{path}.{key}".lstrip(".")
        if key in ("shape", "data"):
            continue
        if key in _INT_ARRAYS:
            _check_int_array(x, where, field, v.get("shape") if key == "raw" else None)
        elif key in _SIZE_LISTS:
            _expect(isinstance(x, list) and len(x) <= 8 and all(_is_int(s) and 0 <= s <= MAX_ELEMENTS for s in x),
                    where, field, "a list of at most 8 non-negative integers", x)
        elif isinstance(x, (dict, list)):
            _check_values(x, where, field)
        elif isinstance(x, bool) or x is None or isinstance(x, str):
            continue
        elif isinstance(x, int):
            bound = MAX_INTEGER_BITS if key in _BIT_FIELDS else MAX_COUNT if key == "reuse_factor" else _INT64 - 1
            _expect(abs(x) <= bound and (key != "reuse_factor" or x >= 1), where, field,
                    f"an integer of magnitude at most {bound:,}" + (" (and at least 1)" if key == "reuse_factor"
                                                                    else ""), x)
        elif isinstance(x, float):
            _expect(math.isfinite(x), where, field, "a finite number", x)


def _check_int_array(x: Any, where: str, field: str, shape: Any) -> None:
    """A (nested) list of int64 integers; as many as ``shape`` says when it is given."""
    flat, stack = 0, [x]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        _expect(_is_int(item) and -_INT64 <= item < _INT64, where, field, "a list of 64-bit integers", item)
        flat += 1
        if flat > MAX_ELEMENTS:
            raise IRFileError(f"{where}field {field} holds more than {MAX_ELEMENTS:,} numbers")
    if shape is not None and flat != math.prod(shape):
        raise IRFileError(f"{where}field {field} holds {flat:,} numbers; its shape {shape} needs {math.prod(shape):,}")


def _check_type(t: dict, where: str, field: str) -> None:
    _expect(_is_int(t["width"]) and 1 <= t["width"] <= 62, where, f"{field}.width",
            "an integer from 1 to 62 (bits)", t["width"])
    _expect(_is_int(t["integer"]) and abs(t["integer"]) <= MAX_INTEGER_BITS, where, f"{field}.integer",
            f"an integer of magnitude at most {MAX_INTEGER_BITS}", t["integer"])
    _expect(isinstance(t["signed"], bool), where, f"{field}.signed", "true or false", t["signed"])
    _expect(t["rounding"] in [r.value for r in Rounding], where, f"{field}.rounding",
            "one of " + ", ".join(r.value for r in Rounding), t["rounding"])
    _expect(t["overflow"] in [o.value for o in Overflow], where, f"{field}.overflow",
            "one of " + ", ".join(o.value for o in Overflow), t["overflow"])


def _check_shape(shape: Any, where: str, field: str) -> None:
    _expect(isinstance(shape, list) and len(shape) <= 8 and all(_is_int(s) and s >= 0 for s in shape), where,
            field, "a list of at most 8 non-negative integers", shape)
    n = math.prod(shape)
    if n > MAX_ELEMENTS:
        raise IRFileError(f"{where}field {field} is {shape}: {n:,} elements, above the {MAX_ELEMENTS:,} "
                          "an IR tensor may have")


def _check_data(arr: dict, where: str, path: str) -> None:
    data, n = arr["data"], math.prod(arr["shape"])
    field = f"{path}.data".lstrip(".")
    _expect(isinstance(data, list), where, field, "a list of numbers", data)
    if len(data) != n:
        raise IRFileError(f"{where}field {field} holds {len(data):,} numbers; its shape {arr['shape']} needs {n:,}")
    bad = next((x for x in data if isinstance(x, bool) or not isinstance(x, (int, float)) or
                (isinstance(x, float) and not math.isfinite(x))), None)
    if bad is not None:
        raise IRFileError(f"{where}field {field} holds {bad!r}; every value must be a finite number")


# ----------------------------------------------------------------------------- meaning
def _build(n: dict) -> Op:
    try:
        return Op.from_json(n)
    except KeyError as e:
        raise IRFileError(f"node {n['name']!r}: the field {e.args[0]!r} is missing") from None
    except (ValueError, TypeError, IndexError, AttributeError, OverflowError) as e:
        raise IRFileError(f"node {n['name']!r} ({n['op']}): invalid fields ({e})") from None


def _check_inference(g: Graph) -> None:
    """Range analysis again from the ops: it must give every node its stored info."""
    stored = {n.name: n.info for n in g.nodes}
    try:
        g.input
        g.infer()
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as e:
        raise IRFileError(f"is not a consistent IR: {e}") from None
    for n in g.nodes:
        old = stored[n.name]
        if old is not None and (tuple(old.shape), old.type, old.lo, old.hi) != \
                (tuple(n.info.shape), n.info.type, n.info.lo, n.info.hi):
            raise IRFileError(f"node {n.name!r}: field info (shape {list(old.shape)}, type {old.type.spec()}, "
                              f"range [{old.lo}, {old.hi}]) disagrees with what its op and inputs give "
                              f"(shape {list(n.info.shape)}, type {n.info.type.spec()}, range "
                              f"[{n.info.lo}, {n.info.hi}]): the file was edited or damaged")
