"""Names are data, and designs have a size limit (issue 18).

``names-``: model and layer names (and ``--name``/``--library``, file paths) holding
newlines, comment delimiters, quotes, backslashes, Tcl substitutions, tool directives,
non-ASCII, 300 characters: an illegal ``--name``/``--library`` is refused, anything
in a model compiles into files that parse (checked for every language in
`test_nasty_names_every_file_parses`).
``size-``: a design beyond ``--max-multiplications`` is refused quickly, naming the
layer, its figures and the flag, before the big weights are read where the file allows.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from nnfpga.compiler.size_guard import DEFAULT_MAX_MULTIPLICATIONS
from tests.hostile.harness import Case, run_case

#: A name with every character class that means something in one of the output languages.
NASTY = ('L1\nL2 -- c // d /* e */ "q" \'s\' \\ $x [1] {b} ; # \u00e9 \u00fc \u4e2d \x0c '
         '*/ `define ?? <script>&amp; |t| [/]')
#: What a raw newline from `NASTY` would leave in a file.
RAW_NEWLINE = b"L1\nL2"
LIMIT = f"{DEFAULT_MAX_MULTIPLICATIONS:,}"


# --------------------------------------------------------------------------- model files
def write_h5(path: Path, model_name: str, layers: list[tuple[str, int, str]], n_in: int = 4,
             lazy: bool = False) -> None:
    """A Keras Sequential .h5 of Dense layers ``(name, units, activation)``, written with
    h5py.  ``lazy``: kernels are allocated, not written (a huge one costs no disk; its
    values read as zeros)."""
    cfg = [{"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, n_in]}}]
    cfg += [{"class_name": "Dense", "config": {"name": n, "units": u, "activation": a}} for n, u, a in layers]
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": model_name, "layers": cfg}})
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n, _, _ in layers]
        prev = n_in
        for name, units, _ in layers:
            lg = g.create_group(name)
            lg.attrs["weight_names"] = [b"kernel:0", b"bias:0"]
            if lazy:
                lg.create_dataset("kernel:0", shape=(prev, units), dtype="f4")
            else:
                lg["kernel:0"] = rng.normal(size=(prev, units)).astype("f4")
            lg["bias:0"] = rng.normal(size=(units,)).astype("f4")
            prev = units


def _onnx_bytes(nodes, inits, graph_name: str, in_shape, out_shape) -> bytes:
    graph = helper.make_graph(nodes, graph_name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def mlp_onnx(graph_name: str, names: tuple[str, str, str]) -> bytes:
    """Gemm 4 -> 3, Relu, Gemm 3 -> 2 with the given node names."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
             for n, s in (("W1", (4, 3)), ("B1", (3,)), ("W2", (3, 2)), ("B2", (2,)))]
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name=names[0]),
             helper.make_node("Relu", ["h"], ["hr"], name=names[1]),
             helper.make_node("Gemm", ["hr", "W2", "B2"], ["y"], name=names[2])]
    return _onnx_bytes(nodes, inits, graph_name, ["N", 4], ["N", 2])


_CACHE: dict[str, bytes] = {}


def gemm_onnx(n_in: int, n_out: int) -> bytes:
    """One Gemm with a real (zero) float32 initializer, built once per module."""
    key = f"gemm{n_in}x{n_out}"
    if key not in _CACHE:
        inits = [numpy_helper.from_array(np.zeros((n_in, n_out), np.float32), "W"),
                 numpy_helper.from_array(np.zeros((n_out,), np.float32), "B")]
        _CACHE[key] = _onnx_bytes([helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="wide_gemm")], inits,
                                  "wide", ["N", n_in], ["N", n_out])
    return _CACHE[key]


def external_gemm(tmp: Path) -> None:
    """Gemm 1000 -> 100000 whose 400 MB kernel is external data, in a file that holds only
    16 bytes: refused from the shapes (reading the weights would fail otherwise)."""
    w = helper.make_tensor("W", TensorProto.FLOAT, (1000, 100000), vals=[])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", str(4 * 1000 * 100000))):
        w.external_data.add(key=k, value=v)
    b = numpy_helper.from_array(np.zeros((100000,), np.float32), "B")
    (tmp / "ext.onnx").write_bytes(_onnx_bytes([helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="ext_gemm")],
                                               [w, b], "ext", ["N", 1000], ["N", 100000]))
    (tmp / "w.bin").write_bytes(bytes(16))


def big_keras_zip(tmp: Path) -> None:
    """A Keras 3 .keras archive whose Dense 1000 -> 100000 kernel is allocated, not written."""
    import zipfile
    layers = [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 1000]}},
              {"class_name": "Dense", "config": {"name": "huge", "units": 100000, "activation": "relu"}}]
    with h5py.File(tmp / "w.h5", "w") as f:
        f.create_dataset("layers/huge/vars/0", shape=(1000, 100000), dtype="f4")
        f.create_dataset("layers/huge/vars/1", shape=(100000,), dtype="f4")
    with zipfile.ZipFile(tmp / "big.keras", "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        z.writestr("config.json", json.dumps({"class_name": "Sequential",
                                              "config": {"name": "big", "layers": layers}}))
        z.write(tmp / "w.h5", "model.weights.h5")
    (tmp / "w.h5").unlink()


def conv_onnx(tmp: Path) -> None:
    """Conv 3x3, 3 -> 8 channels on a 256x256 image: 216 weights, 13.9 M multiplications."""
    w = numpy_helper.from_array(np.full((8, 3, 3, 3), 0.25, np.float32), "W")
    (tmp / "conv.onnx").write_bytes(_onnx_bytes([helper.make_node("Conv", ["x", "W"], ["y"], name="big_conv",
                                                                  kernel_shape=[3, 3])],
                                                [w], "conv", ["N", 3, 256, 256], ["N", 8, 254, 254]))


def wide_input_onnx(tmp: Path) -> None:
    """A 300x300 input (90,000 values) pooled 4x4, then Gemm 5625 -> 2: few multiplications,
    a tensor beyond the limit."""
    w = numpy_helper.from_array(np.full((5625, 2), 0.5, np.float32), "W")
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "W"], ["y"], name="head")]
    (tmp / "wide.onnx").write_bytes(_onnx_bytes(nodes, [w], "wide_in", ["N", 1, 300, 300], ["N", 2]))


def _write(name: str, data_fn):
    return lambda tmp: (tmp / name).write_bytes(data_fn())


def _h5(name: str, model_name: str, layers, **kw):
    return lambda tmp: write_h5(tmp / name, model_name, layers, **kw)


def _compiled(name: str, model_name: str, layers):
    """Setup: a model with these names compiled into ``tmp/fw`` (for the verbs that read it)."""
    def setup(tmp: Path) -> None:
        from nnfpga.compiler.driver import compile_model
        write_h5(tmp / name, model_name, layers)
        compile_model(str(tmp / name), outdir=tmp / "fw")
    return setup


def _compile(model: str, *extra: str) -> tuple[str, ...]:
    return ("compile", f"{{tmp}}/{model}", "-o", "{tmp}/out", *extra)


DENSE_4 = [("d1", 3, "relu"), ("d2", 2, "linear")]
MODEL = "m.h5"

CASES = [
    # ---- --name / --library: refused as given, nothing renamed, nothing written
    Case("names-name-newline", _compile(MODEL, "--name", "core\nx"), ("--name", "not a legal"),
         _h5(MODEL, "m", DENSE_4)),
    Case("names-name-300-characters", _compile(MODEL, "--name", "a" * 300), ("--name", "300 characters", "at most 64"),
         _h5(MODEL, "m", DENSE_4)),
    Case("names-name-keyword", _compile(MODEL, "--name", "entity"), ("--name", "keyword"), _h5(MODEL, "m", DENSE_4)),
    Case("names-name-non-ascii", _compile(MODEL, "--name", "c\u00f6re"), ("--name", "not a legal"),
         _h5(MODEL, "m", DENSE_4)),
    Case("names-name-empty", _compile(MODEL, "--name", ""), ("--name", "non-empty"), _h5(MODEL, "m", DENSE_4)),
    Case("names-name-tcl-substitution", _compile(MODEL, "--name", "[exec touch pwned]"), ("--name", "not a legal"),
         _h5(MODEL, "m", DENSE_4)),
    Case("names-name-comment", _compile(MODEL, "--name", "core--x"), ("--name", "not a legal"),
         _h5(MODEL, "m", DENSE_4)),
    Case("names-library-semicolon", _compile(MODEL, "--library", "lib;use"), ("--library", "not a legal"),
         _h5(MODEL, "m", DENSE_4)),
    Case("names-library-300-characters", _compile(MODEL, "--library", "l" * 300),
         ("--library", "300 characters", "at most 64"), _h5(MODEL, "m", DENSE_4)),
    # ---- names inside the model: compiled, every file parses (code 0, checked below)
    Case("names-keras-nasty-layers", _compile(MODEL, "--html"), (),
         _h5(MODEL, NASTY, [(NASTY.replace("/", "|"), 3, "relu"), ("end\\", 2, "tanh")]), code=0),
    Case("names-keras-300-character-model", _compile(MODEL), (), _h5(MODEL, "m" * 300, DENSE_4), code=0),
    Case("names-onnx-nasty-nodes", _compile("m.onnx", "--html"), (),
         _write("m.onnx", lambda: mlp_onnx(NASTY + "x" * 300, (NASTY, NASTY + "_r", "*/ end;\n"))), code=0),
    Case("names-colliding-layers", _compile(MODEL), (),
         _h5(MODEL, "m", [("a-b", 3, "relu"), ("a_b", 3, "relu"), ("A B", 3, "relu"), ("a b", 2, "linear")]),
         code=0),
    Case("names-case-colliding-layers", _compile(MODEL), (),
         _h5(MODEL, "m", [("Dense", 3, "relu"), ("dense", 3, "relu"), ("DENSE", 2, "linear")]), code=0),
    Case("names-tool-directives", _compile(MODEL), (),
         _h5(MODEL, "m", [("synthesis translate_off", 3, "relu"), ("verilator lint_off", 3, "relu"),
                          ("pragma HLS inline off", 2, "linear")]), code=0),
    Case("names-keywords-and-ports", _compile(MODEL), (),
         _h5(MODEL, "entity", [("signal", 3, "relu"), ("clk", 3, "relu"), ("in_data", 2, "linear")]), code=0),
    Case("names-punctuation-only", _compile(MODEL), (),
         _h5(MODEL, "----", [("!!!", 3, "relu"), ("???", 3, "relu"), ("\u4e2d\u6587", 2, "linear")]), code=0),
    Case("names-nasty-model-path", ("compile", "{tmp}/we $ird [x] {y};#'\".onnx", "-o", "{tmp}/out"), (),
         _write("we $ird [x] {y};#'\".onnx", lambda: mlp_onnx("m", ("a", "b", "c"))), code=0),
    Case("names-config-verb", ("config", "{tmp}/m.h5", "-o", "{tmp}/cfg.yml"), (),
         _h5(MODEL, NASTY, [(NASTY.replace("/", "|"), 3, "relu"), ("d2", 2, "linear")]), code=0,
         outputs=("cfg.yml",)),
    Case("names-report-verb-markup", ("report", "{tmp}/fw"), (),
         _compiled(MODEL, "[bold]m[/]", [("[/]", 3, "relu"), ("[red]x", 2, "linear")]), code=0, outputs=("fw",)),
    # ---- size
    Case("size-dense-1000x100000-h5", _compile("big.h5"),
         ("big.h5", "'huge'", "100,000,000 weights", "1000x100000", f"limit of {LIMIT}", "--max-multiplications N"),
         _h5("big.h5", "big", [("huge", 100000, "relu")], n_in=1000, lazy=True)),
    Case("size-dense-1024x4096-h5", _compile("mid.h5"),
         ("mid.h5", "'wide'", "4,194,304", f"limit of {LIMIT}", "--max-multiplications N"),
         _h5("mid.h5", "mid", [("wide", 4096, "relu")], n_in=1024, lazy=True)),
    Case("size-keras3-archive-1000x100000", _compile("big.keras"),
         ("big.keras", "'huge'", "100,000,000 weights", f"limit of {LIMIT}", "--max-multiplications N"), big_keras_zip),
    Case("size-onnx-gemm-512x1024", _compile("g.onnx"),
         ("g.onnx", "wide_gemm", "524,288", "512x1024", f"limit of {LIMIT}", "--max-multiplications N"),
         _write("g.onnx", lambda: gemm_onnx(512, 1024))),
    Case("size-onnx-external-400mb", _compile("ext.onnx"),
         ("ext.onnx", "ext_gemm", "100,000,000", f"limit of {LIMIT}", "--max-multiplications N"), external_gemm),
    Case("size-conv-multiplications", _compile("conv.onnx"),
         ("conv.onnx", "big_conv", "13,935,456 multiplications", f"limit of {LIMIT}", "--max-multiplications N"),
         conv_onnx),
    Case("size-wide-input", _compile("wide.onnx"),
         ("wide.onnx", "90,000 values", f"limit of {LIMIT}", "--max-multiplications N"), wide_input_onnx),
    Case("size-banked-members", ("compile", "{tmp}/a.h5", "{tmp}/b.h5", "-o", "{tmp}/out"),
         ("a.h5", "4,194,304", "--max-multiplications N"),
         lambda tmp: [write_h5(tmp / n, "m", [("wide", 4096, "relu")], n_in=1024, lazy=True) for n in ("a.h5", "b.h5")]),
    Case("size-banked-together", ("compile", "{tmp}/a.h5", "{tmp}/b.h5", "{tmp}/c.h5", "-o", "{tmp}/out"),
         ("a.h5", "'wide'", "32,768 weights", "3 models of the banked ensemble 98,304 weights", f"limit of {LIMIT}"),
         lambda tmp: [write_h5(tmp / n, "m", [("wide", 1024, "relu")], n_in=32, lazy=True)
                      for n in ("a.h5", "b.h5", "c.h5")]),
    Case("size-flag-below-model", _compile(MODEL, "--max-multiplications", "17"),
         ("m.h5", "'d1'", "12 weights", "whole model 18 weights", "limit of 17", "--max-multiplications N"),
         _h5(MODEL, "m", [("d1", 3, "relu"), ("d2", 2, "linear")])),
    Case("size-flag-at-model", _compile(MODEL, "--max-multiplications", "18"), (),
         _h5(MODEL, "m", [("d1", 3, "relu"), ("d2", 2, "linear")]), code=0),
    Case("size-flag-one-below-model", _compile("mid.h5", "--max-multiplications", "2047"),
         ("'mid'", "2,048", "limit of 2,047"), _h5("mid.h5", "m", [("mid", 64, "relu")], n_in=32)),
    Case("size-flag-zero", _compile(MODEL, "--max-multiplications", "0"), ("--max-multiplications", "positive"),
         _h5(MODEL, "m", DENSE_4)),
    Case("size-flag-negative", _compile(MODEL, "--max-multiplications", "-5"), ("--max-multiplications", "positive"),
         _h5(MODEL, "m", DENSE_4)),
    Case("size-flag-word", _compile(MODEL, "--max-multiplications", "lots"), ("--max-multiplications", "invalid int"),
         _h5(MODEL, "m", DENSE_4)),
]


def _check_outputs(tmp: Path) -> None:
    """A compiled tree: no raw newline from a name, every file name bounded."""
    out = tmp / "out" if (tmp / "out").is_dir() else tmp / "fw"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert RAW_NEWLINE not in p.read_bytes(), f"{p}: a raw newline from a name"
        assert len(p.name.encode()) <= 100, f"{p.name}: file name not bounded"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_names_and_size(case, tmp_path, capsys):
    start = time.process_time()
    run_case(case, tmp_path, capsys)
    if case.id.startswith("size-") and case.code == 2:
        # the refusal comes before the frontend reads (and the passes process) the weights
        assert time.process_time() - start < 5.0, f"{case.id}: the refusal took {time.process_time() - start:.1f} s"
    if case.code == 0 and case.args[0] in ("compile", "report"):
        _check_outputs(tmp_path)
    if case.id == "names-config-verb":
        layers = yaml.safe_load((tmp_path / "cfg.yml").read_text())["layers"]
        assert NASTY.replace("/", "|") in layers


def test_help_states_the_default_limit(capsys):
    from nnfpga.compiler.cli import main
    assert main(["compile", "--help"]) == 0
    assert f"default {DEFAULT_MAX_MULTIPLICATIONS}" in " ".join(capsys.readouterr().out.split())


# --------------------------------------------------------------------------- every file parses
def _ap_types() -> str:
    from nnfpga.sim import apfixed
    return str(apfixed.ap_types_include_dir())


def _run(cmd: list[str], **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"


def _tcl_complete(path: Path) -> None:
    script = f"set f [open {{{path}}}]; set t [read $f]; close $f; puts [info complete $t]"
    r = subprocess.run(["tclsh"], input=script, capture_output=True, text=True)
    assert r.stdout.strip() == "1", f"{path}: not a complete Tcl script {r.stderr}"


def _check_parses(out: Path) -> None:
    rtl = json.loads((out / "rtl.json").read_text())
    name, lib = rtl["name"], rtl["library"]
    for p in out.rglob("*"):
        if p.is_file():
            assert RAW_NEWLINE not in p.read_bytes(), f"{p}: a raw newline from a name"
            assert len(p.name.encode()) <= 100, p.name
    verilog = sorted(str(p) for p in (out / "verilog").glob("*.v"))
    _run(["verilator", "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", name, *verilog])
    _run(["verilator", "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--timing", *verilog,
          *map(str, (out / "tb").glob("*.v"))])
    with tempfile.TemporaryDirectory() as work:
        core_first = sorted((out / "vhdl").glob("*.vhd"), key=lambda p: (p.stem != name, p.name))
        for p in core_first:
            _run(["ghdl", "-a", "--std=08", f"--workdir={work}", f"--work={lib}", str(p)])
        for p in (out / "tb").glob("*.vhd"):
            _run(["ghdl", "-s", "--std=08", f"--workdir={work}", f"-P{work}", str(p)])
    for p in [*out.rglob("*.tcl"), *out.rglob("*.xdc")]:
        _tcl_complete(p)
    for p in out.rglob("*.core"):
        assert yaml.safe_load(p.read_text())["name"].endswith(f":{name}:1.0.0")
    # the C++ checks are the slow part (the ap_fixed headers): both sources at once
    checks = [subprocess.Popen(["g++", "-fsyntax-only", "-std=c++14", "-I", str(out / "hls"), "-I", _ap_types(),
                                str(p)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for p in (out / "hls").glob("*.cpp")]
    assert len(checks) == 2
    for c in checks:
        text = c.communicate()[0]
        assert c.returncode == 0, f"{' '.join(c.args)}:\n{text[-3000:]}"
    html = (out / "report.html").read_text()
    assert "<script>&amp;" not in html


def _ir_with_names(long: str):
    """An IR graph (the Python API takes one) whose model and node names are raw, even
    with '/': no frontend sanitised them."""
    from tests.irmodels import random_mlp
    g = random_mlp([4, 3, 2], final_activation="tanh", name=long)
    renamed = {n.name: (f"{NASTY} {k}" if k % 2 else f"{long} {k}") for k, n in enumerate(g.nodes)}
    for n in g.nodes:
        n.name, n.inputs = renamed[n.name], [renamed[i] for i in n.inputs]
    g.outputs = [renamed[o] for o in g.outputs]
    return g


@pytest.mark.parametrize("kind", ["keras", "onnx", "ir"])
def test_nasty_names_every_file_parses(kind, tmp_path):
    """Model and layer names with newlines, ``--``, ``//``, ``/*``, ``*/``, quotes,
    backslashes, ``$``, ``[``, ``{``, ``}``, ``;``, ``#``, non-ASCII, 300 characters: every
    generated file parses in its language (Verilog, VHDL, Tcl/XDC, YAML, C++)."""
    from nnfpga.compiler.driver import compile_model
    long = NASTY + "y" * 300
    if kind == "keras":
        model = tmp_path / "m.h5"
        # h5 group names cannot hold '/', the layer names of Keras files never do
        write_h5(model, long, [(NASTY.replace("/", "|"), 3, "relu"), ("synthesis translate_off", 3, "tanh"),
                               ("end\\", 3, "linear"), ("a-b", 2, "relu"), ("a_b", 2, "softmax"),
                               (long.replace("/", "|"), 2, "linear")])
    elif kind == "onnx":
        model = tmp_path / "m.onnx"
        model.write_bytes(mlp_onnx(long, (NASTY, long, "*/ end;\n\\")))
    else:
        model = _ir_with_names(long)
    out = tmp_path / "out"
    compile_model(model if kind == "ir" else str(model), outdir=out, axi_stream=True, bunch_crossing=True,
                  html=True)
    _check_parses(out)
    if kind != "onnx":  # the ONNX frontend makes node names identifiers; the others keep them
        core = json.loads((out / "rtl.json").read_text())["name"]
        hls_top = [p for p in out.glob("hls/*.cpp") if not p.name.startswith("tb_")]
        for hdl in (out / "vhdl" / f"{core}.vhd", out / "verilog" / f"{core}.v", *hls_top):
            assert "L1\\nL2" in hdl.read_text(), f"{hdl.name}: the layer names are not in its comments"


def test_escapes_keep_the_text_and_one_line():
    """Each language's escape gives one line of printable ASCII; the Tcl word's value is
    exactly the text (read back by tclsh)."""
    from nnfpga.backends import escape
    for fn in (escape.vhdl_comment, escape.verilog_comment, escape.cpp_comment, escape.tcl_comment,
               escape.markdown_text, escape.html_text, escape.matplotlib_text, escape.rich_text):
        s = fn(NASTY)
        assert s.isascii() and s.isprintable() and "\n" not in s, fn.__name__
    assert "*/" not in escape.verilog_comment(NASTY) and "/*" not in escape.cpp_comment(NASTY)
    assert not escape.cpp_comment("x\\").endswith("\\") and "??" not in escape.cpp_comment("a??/")
    assert "synthesis translate_off" not in escape.vhdl_comment("synthesis translate_off")
    for text in (NASTY, "plain $v [x] ;# \"q\""):   # the escaped and the brace-quoted form
        script = (f"set v {escape.tcl_word(text)}\nfconfigure stdout -translation binary\n"
                  "puts -nonewline [encoding convertto utf-8 $v]\n")
        r = subprocess.run(["tclsh"], input=script.encode(), capture_output=True,
                           env=dict(os.environ, LANG="C.UTF-8"))
        assert r.returncode == 0, r.stderr
        assert r.stdout == text.encode("utf-8")


def test_long_names_are_bounded_distinct_and_stable():
    """A name too long for a file name keeps its start and a hash of the whole: two long
    names with the same start differ, the same name always gives the same identifier."""
    from nnfpga.backends.hls.names import sanitize as cpp_sanitize
    from nnfpga.backends.rtl.names import MAX_IDENTIFIER, Namer, default_library, top_name
    a, b = "m" * 300 + "a", "m" * 300 + "b"
    for derive in (top_name, cpp_sanitize, lambda n: default_library(top_name(n))):
        assert len(derive(a)) <= MAX_IDENTIFIER and derive(a) != derive(b) and derive(a) == derive(a)
    namer = Namer()
    assert len({namer.take(n) for n in ("a-b", "a_b", "A B", "a b", "a_b_1")}) == 5


def test_onnx_shape_walk_matches_onnx(tmp_path):
    """The size guard's protobuf walk finds the same nodes and weight shapes as onnx does
    (initializers, a Constant node, names with every odd character, external data)."""
    from nnfpga.compiler.size_guard import _onnx_parsed, _OnnxShapes
    (tmp_path / "mlp.onnx").write_bytes(mlp_onnx(NASTY, (NASTY, "", "c")))
    (tmp_path / "gemm.onnx").write_bytes(gemm_onnx(64, 32))
    external_gemm(tmp_path)
    conv_onnx(tmp_path)
    const = helper.make_node("Constant", [], ["W"], name="cw",
                             value=numpy_helper.from_array(np.ones((4, 2), np.float32)))
    (tmp_path / "const.onnx").write_bytes(_onnx_bytes([const, helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
                                                      [], "c", ["N", 4], ["N", 2]))
    for path in sorted(tmp_path.glob("*.onnx")):
        with open(path, "rb") as f:
            walked = _OnnxShapes(f).model()
        assert walked == _onnx_parsed(path), path.name
        assert walked[1], path.name
