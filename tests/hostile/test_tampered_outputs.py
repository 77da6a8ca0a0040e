"""Tampered output folders: an ir.json with wrong types, absurd sizes, dangling or cyclic
references, edited types; a report.json that breaks its schema; rtl.json and the HLS
manifest edited; folders or files deleted.  emulate, verify and report name what is
wrong (and say to recompile) before any simulator or synthesis starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.hostile.firmware import copy_firmware
from tests.hostile.harness import Case, run_case

X = np.linspace(-1, 1, 2 * 16).reshape(2, 16)
EMULATE = ("emulate", "{tmp}/fw", "--input", "{tmp}/x.npy", "--output", "{tmp}/y.npy")
RECOMPILE = "recompile"


def _firmware(edit: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        fw = copy_firmware(tmp)
        np.save(tmp / "x.npy", X)
        if edit is not None:
            edit(fw)
    return setup


def _json_edit(file: str, edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def apply(fw: Path) -> None:
        d = json.loads((fw / file).read_text())
        edit(d)
        (fw / file).write_text(json.dumps(d))
    return apply


def _node(d: dict, name: str) -> dict:
    return next(n for n in d["nodes"] if n["name"] == name)


def _set(name: str, *path_and_value):
    *path, value = path_and_value

    def edit(d: dict) -> None:
        t = _node(d, name)
        for k in path[:-1]:
            t = t[k]
        t[path[-1]] = value
    return edit


def _raw(file: str, data: bytes) -> Callable[[Path], None]:
    return lambda fw: (fw / file).write_bytes(data)


def _delete(rel: str) -> Callable[[Path], None]:
    def apply(fw: Path) -> None:
        p = fw / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return apply


def ir_case(id_: str, edit: Callable[[Path], None], messages) -> Case:
    return Case(f"tampered-ir-{id_}", EMULATE, ("ir.json", *messages), _firmware(edit), outputs=("y.npy",))


def ir_json(id_: str, edit: Callable[[dict], object], messages) -> Case:
    return ir_case(id_, _json_edit("ir.json", edit), messages)


def verify_case(id_: str, sim: str, edit: Callable[[Path], None], messages) -> Case:
    return Case(f"tampered-verify-{id_}", ("verify", "{tmp}/fw", "--input", "{tmp}/x.npy", "--sim", sim),
                tuple(messages), _firmware(edit))


def report_case(id_: str, edit: Callable[[Path], None], messages, synth: bool = False) -> Case:
    return Case(f"tampered-report-{id_}", ("report", "{tmp}/fw", *(("--synth",) if synth else ())),
                tuple(messages), _firmware(edit))


def _cycle(d: dict) -> None:
    _node(d, "fc1")["inputs"] = ["fc2"]


CASES = [
    # --- ir.json: not an IR at all
    ir_case("not-json", _raw("ir.json", b"{this is not json"), ["not valid json", RECOMPILE]),
    ir_case("binary", _raw("ir.json", bytes(range(256)) * 4), ["not a text file"]),
    ir_case("empty", _raw("ir.json", b""), ["not valid json"]),
    ir_case("a-list", _raw("ir.json", b"[1, 2, 3]"), ["a json object", "list"]),
    ir_case("deep-nesting", _raw("ir.json", b"[" * 100_000 + b"]" * 100_000), ["nested too deeply"]),
    ir_json("nesting-hidden-in-a-list", lambda d: d["annotations"].update(x=[1, json.loads("[" * 500 + "]" * 500)]),
            ["nested more than 32 levels"]),
    ir_case("huge-integer-literal", _raw("ir.json", b'{"ir_version": ' + b"9" * 5000 + b"}"), ["not valid json"]),
    ir_case("is-a-directory", lambda fw: ((fw / "ir.json").unlink(), (fw / "ir.json").mkdir()),
            ["not an nnfpga output directory"]),
    # --- structure
    ir_json("missing-nodes", lambda d: d.pop("nodes"), ["'nodes'", "missing"]),
    ir_json("version-2", lambda d: d.update(ir_version=2), ["ir_version", "version 1"]),
    ir_json("nodes-empty", lambda d: d.update(nodes=[]), ["nodes", "non-empty list"]),
    ir_json("node-not-object", lambda d: d["nodes"].__setitem__(1, "fc1"), ["node 1", "a json object"]),
    ir_json("node-without-name", lambda d: d["nodes"][1].pop("name"), ["node 1", "field name"]),
    ir_json("unknown-op", _set("fc1", "op", "SelfDestruct"), ["'fc1'", "field op", "dense"]),
    ir_json("op-is-list", _set("fc1", "op", ["Dense"]), ["'fc1'", "field op"]),
    ir_json("duplicate-name", lambda d: d["nodes"][2].update(name="fc1"), ["'fc1'", "two nodes"]),
    ir_json("missing-field", lambda d: _node(d, "fc1").pop("kernel_q"), ["'fc1'", "'kernel_q'", "missing"]),
    ir_json("banks-string", lambda d: d.update(banks="two"), ["field banks", "integer"]),
    ir_json("banks-huge", lambda d: d.update(banks=10 ** 9), ["field banks"]),
    # --- references
    ir_json("dangling-input", _set("fc1", "inputs", ["ghost"]), ["'fc1'", "'ghost'", "dangling"]),
    ir_json("cycle", _cycle, ["'fc1'", "'fc2'", "cycle"]),
    ir_json("self-loop", _set("fc1", "inputs", ["fc1"]), ["'fc1'", "cycle"]),
    ir_json("dangling-output", lambda d: d.update(outputs=["nowhere"]), ["field outputs", "'nowhere'"]),
    ir_json("two-outputs", lambda d: d.update(outputs=["fc1", "output"]), ["field outputs", "one node name"]),
    ir_json("inputs-not-names", _set("fc1", "inputs", [1, 2]), ["'fc1'", "field inputs"]),
    # --- sizes and types, never trusted before allocation
    ir_json("width-1e9", _set("input", "out_type", "width", 10 ** 9), ["'input'", "out_type.width", "1 to 62"]),
    ir_json("width-string", _set("input", "out_type", "width", "eight"), ["'input'", "out_type.width"]),
    ir_json("info-width-1e9", _set("fc1", "info", "type", "width", 10 ** 9), ["'fc1'", "info.type.width"]),
    ir_json("rounding-unknown", _set("input", "out_type", "rounding", "UP"), ["out_type.rounding", "rnd_conv"]),
    ir_json("shape-1e12", _set("input", "shape", [10 ** 12]), ["'input'", "shape", "1,000,000,000,000 elements"]),
    ir_json("shape-product-huge", _set("input", "info", "shape", [10 ** 5] * 4), ["'input'", "info.shape"]),
    ir_json("shape-negative", _set("input", "shape", [-16]), ["'input'", "shape", "non-negative"]),
    ir_json("shape-float", _set("input", "shape", [16.0]), ["'input'", "shape"]),
    ir_json("kernel-data-short", lambda d: _node(d, "fc1")["kernel"]["data"].pop(), ["'fc1'", "kernel.data", "1,024"]),
    ir_json("kernel-data-nan", lambda d: _node(d, "fc1")["kernel"]["data"].__setitem__(0, "NaN"),
            ["'fc1'", "kernel.data", "finite"]),
    ir_case("nan-literal", lambda fw: (fw / "ir.json").write_text(
        (fw / "ir.json").read_text().replace('"data": [', '"data": [NaN, ', 1)), ["nan is not a json number"]),
    ir_json("raw-not-integers", lambda d: _node(d, "fc1")["kernel_q"]["raw"][0].__setitem__(0, 1.5),
            ["'fc1'", "kernel_q.raw", "64-bit integers"]),
    ir_json("raw-shape-lies", _set("fc1", "kernel_q", "shape", [16, 65]), ["'fc1'", "kernel_q.raw"]),
    ir_json("frac-huge", _set("fc1", "kernel_q", "frac", 10 ** 12), ["'fc1'", "kernel_q.frac", "1,024"]),
    ir_json("reuse-zero", _set("fc1", "reuse_factor", 0), ["'fc1'", "reuse_factor"]),
    ir_json("lo-beyond-64-bits", _set("fc1", "info", "lo", -(10 ** 30)), ["'fc1'", "info.lo"]),
    ir_json("layout-not-a-permutation", lambda d: d.update(input_layout={"shape": [4, 4], "order": [0] * 16}),
            ["input_layout", "permutation"]),
    ir_json("layout-wrong-size", lambda d: d.update(input_layout={"shape": [3, 3], "order": list(range(9))}),
            ["input_layout", "9 elements", "'input' has 16"]),
    # --- consistent structure, edited meaning: range analysis disagrees
    ir_json("edited-info-type", _set("fc1", "info", "type", "width", 12), ["'fc1'", "disagrees", "edited"]),
    ir_json("edited-info-range", _set("output", "info", "hi", 1), ["'output'", "disagrees"]),
    ir_json("edited-input-type", _set("input", "out_type", "width", 9), ["'input'", "disagrees"]),
    # --- report.json
    report_case("missing", _delete("report.json"), ["no report.json", "nnfpga compile"]),
    report_case("not-json", _raw("report.json", b"\x00\x01garbage"), ["report.json", "not json", RECOMPILE]),
    report_case("a-list", _raw("report.json", b"[]"), ["report.json", "list"]),
    report_case("latency-string", _json_edit("report.json", lambda d: d["latency"].update(cycles="many")),
                ["report.json", "report.latency.cycles", "integer"]),
    report_case("missing-resources", _json_edit("report.json", lambda d: d.pop("resources")),
                ["report.json", "'resources'"]),
    report_case("clock-negative", _json_edit("report.json", lambda d: d.update(clock_mhz=-240)),
                ["report.json", "clock_mhz"]),
    report_case("layers-not-list", _json_edit("report.json", lambda d: d.update(layers={"a": 1})),
                ["report.json", "report.layers"]),
    report_case("nan-literal", lambda fw: (fw / "report.json").write_text(
        (fw / "report.json").read_text().replace('"clock_mhz": 240.0', '"clock_mhz": NaN', 1)),
        ["report.json", "nan is not a json number"]),
    report_case("resources-absurd", _json_edit("report.json", lambda d: d["resources"]["estimate"].update(lut=10 ** 12)),
                ["report.json", "report.resources.estimate.lut", "not a figure of any design"]),
    report_case("available-negative", _json_edit("report.json", lambda d: d["resources"]["available"].update(ff=-1)),
                ["report.json", "report.resources.available.ff", "-1"]),
    report_case("layers-too-many", _json_edit("report.json", lambda d: d.update(layers=d["layers"] * 200)),
                ["report.json", "1,600 layers"]),
    Case("tampered-report-html-is-a-link", ("report", "{tmp}/fw"), ("report.html", "symbolic link"),
         _firmware(lambda fw: ((fw.parent / "victim.txt").write_text("keep me"),
                               (fw / "report.html").symlink_to(fw.parent / "victim.txt")))),
    report_case("html-is-a-folder", lambda fw: (fw / "report.html").mkdir(), ["report.html", "is a folder"]),
    Case("tampered-report-not-an-output", ("report", "{tmp}/plain"), ("plain", "not an nnfpga output directory"),
         lambda tmp: ((tmp / "plain").mkdir(), (tmp / "plain" / "notes.txt").write_text("hi"))),
    Case("tampered-report-no-such-folder", ("report", "{tmp}/nowhere"), ("nowhere", "no such directory")),
    report_case("synth-rtl-files-traversal",
                _json_edit("rtl.json", lambda d: d["files"].update(verilog="../../etc/passwd")),
                ["rtl.json files.verilog", "../../etc/passwd", "not a file inside"], synth=True),
    report_case("synth-no-verilog", _delete("verilog"), ["verilog/qmlp.v is missing", "yosys synthesis", RECOMPILE],
                synth=True),
    report_case("synth-no-rtl-json", _delete("rtl.json"), ["rtl.json is missing", RECOMPILE], synth=True),
    report_case("synth-bad-ir", _raw("ir.json", b"nope"), ["ir.json", "not valid json"], synth=True),
    # --- verify: files deleted or edited, found before any simulator starts
    verify_case("no-verilog-folder", "verilator", _delete("verilog"),
                ["verilog/qmlp.v is missing", "verilator simulation", RECOMPILE]),
    verify_case("no-vhdl-folder", "ghdl", _delete("vhdl"), ["vhdl/qmlp.vhd is missing", "ghdl", RECOMPILE]),
    verify_case("no-hls-folder", "csim", _delete("hls"), ["hls/nnfpga_hls.json is missing", RECOMPILE]),
    verify_case("deleted-weights-header", "csim", _delete("hls/weights/w_fc2.h"),
                ["hls/weights/w_fc2.h is missing", "csim simulation", RECOMPILE]),
    verify_case("deleted-hls-source", "csim", _delete("hls/qmlp.cpp"), ["hls/qmlp.cpp is missing"]),
    verify_case("no-rtl-json", "verilator", _delete("rtl.json"), ["rtl.json is missing", RECOMPILE]),
    verify_case("no-ir-json", "csim", _delete("ir.json"), ["no ir.json", "not an nnfpga output directory"]),
    verify_case("rtl-latency-string", "verilator",
                _json_edit("rtl.json", lambda d: d.update(latency_cycles="soon")),
                ["rtl.json", "field latency_cycles", "'soon'", RECOMPILE]),
    verify_case("rtl-latency-huge", "ghdl", _json_edit("rtl.json", lambda d: d.update(latency_cycles=10 ** 15)),
                ["rtl.json", "field latency_cycles"]),
    verify_case("rtl-top-injection", "verilator", _json_edit("rtl.json", lambda d: d.update(top="x; rm -rf ~")),
                ["rtl.json", "field top", "identifier"]),
    verify_case("rtl-files-absolute", "ghdl", _json_edit("rtl.json", lambda d: d["files"].update(vhdl="/etc/passwd")),
                ["rtl.json files.vhdl", "/etc/passwd", "not a file inside"]),
    verify_case("rtl-outputs-edited", "verilator", _json_edit("rtl.json", lambda d: d.update(n_outputs=6)),
                ["rtl.json", "field n_outputs", "5"]),
    verify_case("rtl-out-type-edited", "verilator",
                _json_edit("rtl.json", lambda d: d["out_type"].update(width=16)),
                ["rtl.json", "field out_type", "fixed<15,6"]),
    verify_case("rtl-not-json", "ghdl", _raw("rtl.json", b"\xff\xfe"), ["rtl.json", "not a valid json"]),
    verify_case("hls-manifest-not-object", "csim", _raw("hls/nnfpga_hls.json", b"42"),
                ["nnfpga_hls.json", "not an object"]),
    verify_case("hls-inputs-edited", "csim", _json_edit("hls/nnfpga_hls.json", lambda d: d.update(n_in=17)),
                ["nnfpga_hls.json", "field n_in", "16"]),
    verify_case("hls-input-type-edited", "csim",
                _json_edit("hls/nnfpga_hls.json", lambda d: d["input_type"].update(signed=False)),
                ["nnfpga_hls.json", "field input_type"]),
    verify_case("hls-source-traversal", "csim",
                _json_edit("hls/nnfpga_hls.json", lambda d: d.update(sources=["../../../etc/passwd"])),
                ["hls/nnfpga_hls.json", "not a file inside"]),
    verify_case("hls-headers-not-list", "csim", _json_edit("hls/nnfpga_hls.json", lambda d: d.update(headers="*.h")),
                ["nnfpga_hls.json", "field headers", "a list"]),
    Case("tampered-verify-json-is-a-link", ("verify", "{tmp}/fw", "--input", "{tmp}/x.npy", "--sim", "csim"),
         ("verify.json", "symbolic link"),
         _firmware(lambda fw: ((fw.parent / "victim.txt").write_text("keep me"),
                               (fw / "verify.json").symlink_to(fw.parent / "victim.txt")))),
    verify_case("bad-ir-before-sim", "verilator,ghdl,csim", _json_edit("ir.json", _cycle), ["ir.json", "cycle"]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_tampered_outputs(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)


def test_an_untouched_output_still_loads_and_emulates(tmp_path):
    """The validation accepts what compile writes: the same IR, the same outputs."""
    from nnfpga.compiler.driver import emulate_firmware, load_firmware
    from nnfpga.ir.validate import load_ir
    fw = copy_firmware(tmp_path)
    graph = load_firmware(fw)
    assert graph.to_json() == json.loads((fw / "ir.json").read_text())
    assert load_ir(fw / "ir.json", complete=False).to_json() == graph.to_json()
    assert emulate_firmware(fw, X).shape == (2, 5)
