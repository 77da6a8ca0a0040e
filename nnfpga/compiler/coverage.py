"""What nnfpga supports, generated from the code's own registries: the IR's ops and
activation functions with their status in the golden model, the HLS and the RTL backends,
the layers of each frontend with the IR ops they become, and the QKeras quantisers with
what they may quantise.

    python -m nnfpga.compiler.coverage --write README.md docs/models.md
    python -m nnfpga.compiler.coverage --check README.md docs/models.md

replace (or check) the text between ``<!-- supported:begin -->`` and
``<!-- supported:end -->`` (the full tables, `markdown`) and between
``<!-- supported-summary:begin -->`` and ``<!-- supported-summary:end -->`` (one short
table, `summary`) in each file; a test runs ``--check``, so the tables cannot drift from
the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnfpga.backends.hls.layers import EMITTERS
from nnfpga.backends.hls.layers.activation import supports as hls_supports
from nnfpga.backends.rtl.lowering.network import JOINS, LAYER_RULES, WIRING, function_form
from nnfpga.compiler.frontends import qkeras_quantizers as qq
from nnfpga.compiler.frontends.keras import LAYER_OPS
from nnfpga.compiler.frontends.onnx_ops import SUPPORTED as ONNX_SUPPORTED
from nnfpga.core.errors import UserError
from nnfpga.ir.ops import OP_CLASSES, Input, Op
from nnfpga.ir.ops.activation_functions import ACTIVATION_FUNCTIONS

BEGIN, END = "<!-- supported:begin -->", "<!-- supported:end -->"
SUMMARY_BEGIN, SUMMARY_END = "<!-- supported-summary:begin -->", "<!-- supported-summary:end -->"
YES, NO = "yes", "no"
#: Ops that no backend builds: passes fold them into a neighbour first.
FOLDED = "folded"


def op_status(op_type: str) -> tuple[str, str, str]:
    """(golden, HLS, RTL) of an IR op type: "yes", "no", or "folded" (a pass merges it
    into the layer before it; its own `emulate` is the base class's, which refuses)."""
    cls = OP_CLASSES[op_type]
    if cls is Input:
        return YES, YES, YES
    if cls.emulate is Op.emulate:
        return FOLDED, FOLDED, FOLDED
    rtl = cls in LAYER_RULES or issubclass(cls, WIRING + JOINS)
    return YES, YES if op_type in EMITTERS else NO, YES if rtl else NO


def function_status(name: str) -> tuple[str, str, str]:
    fn = ACTIVATION_FUNCTIONS[name]
    return YES, YES if hls_supports(fn) else NO, YES if function_form(fn) is not None else NO


def _all(statuses: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """A layer's status: every op it may become must be built; a folded op is built by
    the layer it is folded into, so it counts only when the layer has no other op (a
    BatchNormalization is folded, or else a ScaleShift)."""
    out = []
    for column in zip(*statuses) if statuses else [(YES,)] * 3:
        built = [c for c in column if c != FOLDED]
        out.append(FOLDED if not built else YES if all(c == YES for c in built) else NO)
    return tuple(out)   # type: ignore[return-value]


def quantiser_roles(name: str) -> tuple[bool, bool]:
    """(weights, activations): whether the QKeras quantiser ``name`` with its default
    arguments is read as a weight quantiser and as an activation quantiser."""
    roles = []
    for read in (lambda s: qq.weight_quantizer(s, "w", weights=None), lambda s: qq.activation_of(s, "a")):
        try:
            read(qq.parse_quantizer(f"{name}()", "q"))
            roles.append(True)
        except UserError:
            roles.append(False)
    return roles[0], roles[1]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown() -> str:
    ops = sorted(op for op in OP_CLASSES if op != "Input")
    op_rows = [[f"`{op}`", *op_status(op)] for op in ops]
    fn_rows = [[f"`{name}`", *function_status(name)] for name in ACTIVATION_FUNCTIONS]
    keras_rows = []
    for layer, layer_ops in LAYER_OPS.items():
        statuses = [op_status(op) if op != "Activation" else (YES, YES, YES) for op in layer_ops]
        became = ", ".join(f"`{op}`" for op in layer_ops) or "nothing (ignored at inference)"
        keras_rows.append([f"`{layer}`", became, *_all(statuses)])
    q_rows = [[f"`{name}`", *(YES if r else NO for r in quantiser_roles(name))] for name in qq.SUPPORTED]
    return "\n\n".join([
        "Generated from the code (`python -m nnfpga.compiler.coverage --write README.md docs/models.md`); "
        "\"folded\": merged into the layer before it by a compiler pass (a BatchNorm that cannot be "
        "folded becomes a `ScaleShift`).",
        "IR ops:\n\n" + _table(["op", "golden model", "HLS", "RTL"], op_rows),
        "Activation functions (of the `Activation` op):\n\n" + _table(["function", "golden model", "HLS", "RTL"],
                                                                     fn_rows),
        "Keras and QKeras layers (a layer is built where every op it may become is; an activation is one "
        "of the functions above):\n\n" + _table(["layer", "IR ops", "golden model", "HLS", "RTL"], keras_rows),
        "QKeras quantisers:\n\n" + _table(["quantiser", "weights", "activations"], q_rows),
        "ONNX ops: " + ", ".join(ONNX_SUPPORTED) + ".",
    ])


def summary() -> str:
    """One table: the Keras layers grouped by where they are built, the activation
    functions, the QKeras quantisers by role, and the ONNX ops in one line."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for layer, layer_ops in LAYER_OPS.items():
        status = _all([op_status(op) if op != "Activation" else (YES, YES, YES) for op in layer_ops])
        groups.setdefault(status, []).append(f"`{layer}`")
    rows = [["Keras/QKeras " + ", ".join(names), *status] for status, names in groups.items()]
    fns: dict[tuple[str, str, str], list[str]] = {}
    for name in ACTIVATION_FUNCTIONS:
        fns.setdefault(function_status(name), []).append(f"`{name}`")
    rows += [["activations " + ", ".join(names), *status] for status, names in fns.items()]
    roles = {name: quantiser_roles(name) for name in qq.SUPPORTED}
    weights = ", ".join(f"`{n}`" for n, (w, _) in roles.items() if w)
    acts = ", ".join(f"`{n}`" for n, (_, a) in roles.items() if a)
    rows.append([f"QKeras quantisers: weights {weights}; activations {acts}", YES, YES, YES])
    return (_table(["supported", "golden model", "HLS", "RTL"], rows) +
            f"\n\nONNX: {len(ONNX_SUPPORTED)} ops; the full tables (generated from the code): "
            "[Bring your own model](docs/models.md#the-supported-layers-table).")


def replaced(text: str, table: str, where: str, begin: str = BEGIN, end: str = END) -> str:
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"{where}: needs one {begin} ... {end} block")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def refreshed(text: str, where: str) -> str:
    """``text`` with every table block it holds regenerated (at least one block)."""
    blocks = [(b, e, make) for b, e, make in ((BEGIN, END, markdown), (SUMMARY_BEGIN, SUMMARY_END, summary))
              if b in text]
    if not blocks:
        raise ValueError(f"{where}: holds no {BEGIN} or {SUMMARY_BEGIN} block")
    for begin, end, make in blocks:
        text = replaced(text, make(), where, begin, end)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnfpga.compiler.coverage", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", nargs="+", type=Path, metavar="FILE")
    mode.add_argument("--check", nargs="+", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    stale = []
    for path in args.write or args.check:
        text = path.read_text()
        new = refreshed(text, str(path))
        if new != text:
            if args.write:
                path.write_text(new)
            stale.append(str(path))
    if args.check and stale:
        print(f"supported-layer tables out of date in {', '.join(stale)}: run python -m nnfpga.compiler.coverage "
              f"--write {' '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
