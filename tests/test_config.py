"""The configuration file: strict validation with file:line, binding to the model's layers,
adjustments that are reported, and `nnfpga config` templates that round-trip."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from nnfpga.ir.validate import load_ir
from nnfpga.compiler.adjustments import AdjustmentWarning
from nnfpga.compiler.cli import main
from nnfpga.compiler.config import load_config, make_options
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate
from tests.conftest import MODELS

FLOAT = MODELS / "float_mlp.h5"
QMLP = MODELS / "qmlp.h5"


def _write(tmp_path, text: str, name: str = "nnfpga.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _samples(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    return means[rng.integers(0, 5, n)] + rng.normal(0, scale, (n, 16))


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("text, line, message", [
    ("version: 1\nlayer:\n  hidden1: {}\n", 2,
     "unknown key 'layer' at the top level; did you mean 'layers'? allowed keys: version, input, defaults"),
    ("layers:\n  hidden1:\n    reuse: 4\n", 3,
     "unknown key 'reuse' in layers.hidden1; did you mean 'reuse_factor'? allowed keys: accumulator, activation, "
     "bias, output, overflow, reuse_factor, rounding, sparsity, table_size, weight"),
    ("layers:\n  hidden1:\n    rounding: rnd\n", 3,
     "invalid value 'rnd' for layers.hidden1.rounding: expected one of TRN, RND, RND_CONV"),
    ("layers:\n  hidden1:\n    overflow: saturate\n", 3,
     "invalid value 'saturate' for layers.hidden1.overflow: expected one of WRAP, SAT"),
    ("defaults:\n  reuse_factor: 0\n", 2, "invalid value 0 for defaults.reuse_factor: expected an integer >= 1"),
    ("defaults:\n  reuse_factor: 4.0\n", 2, "invalid value 4.0 for defaults.reuse_factor: expected an integer"),
    ("defaults:\n  table_size: 1000\n", 2,
     "invalid value 1000 for defaults.table_size: expected a power of two from 16 to 65536 (16, 32, 64"),
    ("layers:\n  hidden1:\n    sparsity: 1.0\n", 3,
     "invalid value 1.0 for layers.hidden1.sparsity: expected a number >= 0 and < 1"),
    ("layers:\n  hidden1:\n\n    output: fixed<8>\n", 4,
     "invalid value 'fixed<8>' for layers.hidden1.output: expected a fixed-point type fixed<W,I[,ROUNDING"),
    ("input: fixed<99,3>\n", 1, "invalid value 'fixed<99,3>' for input: expected a fixed-point type"),
    ("ptq:\n  metric: accuracy\n", 2,
     "invalid value 'accuracy' for ptq.metric: expected one of max_deviation, agreement, auc"),
    ("reuse:\n  event_rate: fast\n", 2, "invalid value 'fast' for reuse.event_rate: expected an event rate"),
    ("version: 2\n", 1, "invalid value 2 for version: expected 1"),
    ("layers:\n  hidden1:\n    reuse_factor: 2\n  hidden1:\n    reuse_factor: 3\n", 4,
     "duplicate key 'hidden1' (first given at line 2)"),
    ("layers:\n  hidden1: [1, 2]\n", 2, "layers.hidden1 must be a mapping of settings"),
    ("layers:\n  hidden1:\n    reuse_factor: 2\n   bad indent\n", 4, "not valid YAML"),
    ("- a\n- b\n", 1, "the configuration must be a mapping of keys"),
    ("defaults:\n  weight_frac: 8\n  weight: fixed<8,2,RND,SAT>\n", 2,
     "defaults.weight and defaults.weight_frac both set"),
    ("layers:\n  hidden1:\n    output: fixed<8,3>\n    rounding: RND\n", 3,
     "layers.hidden1.output fixed<8,3> spells no rounding mode (ap_fixed's default TRN would apply) while "
     "layers.hidden1.rounding: RND is set; write the mode in the type, e.g. fixed<8,3,RND,WRAP>"),
])
def test_invalid_config_names_file_line_and_allowed_values(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert message in str(e.value)


def test_valid_config_keeps_values_and_lines(tmp_path):
    path = _write(tmp_path, "version: 1\ninput: fixed<12,3,RND,SAT>\ndefaults:\n  weight_frac: 8\n"
                            "layers:\n  hidden1:\n    reuse_factor: 4\n    sparsity: 1e-1\n  hidden2:\n"
                            "ptq:\n  tolerance: 0.05\nreuse:\n  event_rate: 40MHz\n")
    cfg = load_config(path)
    assert cfg.input.value.type.spec() == "fixed<12,3,RND,SAT>" and cfg.input.line == 2
    assert cfg.defaults["weight_frac"].value == 8
    s = cfg.layers["hidden1"].settings
    assert s["reuse_factor"].value == 4 and s["reuse_factor"].line == 7
    assert s["sparsity"].value == 0.1       # YAML 1.1 reads 1e-1 as text; a plain scalar is a number
    assert cfg.layers["hidden2"].settings == {}
    assert cfg.get("reuse", "event_rate") == 40e6
    assert cfg.get("ptq", "margin") == 1.25   # schema default


def test_quoted_numbers_are_not_numbers(tmp_path):
    with pytest.raises(UserError, match=r":2: invalid value '0.1' for ptq.tolerance: expected a number"):
        load_config(_write(tmp_path, "ptq:\n  tolerance: '0.1'\n"))


@pytest.mark.parametrize("text, line, message", [
    ("layers:\n  hiden1:\n    reuse_factor: 2\n", 2,
     "unknown layer 'hiden1'; did you mean 'hidden1'? the model's layers are: features, hidden1, hidden2, score"),
    ("layers:\n  hidden1:\n    reuse_factor: 2\n  features:\n    output: fixed<8,3,RND,SAT>\n", 4,
     "'features' is the model's input; set its type with the top-level key 'input'"),
])
def test_unknown_layer_is_an_error_at_its_line(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as e:
        build_graph(FLOAT, options=make_options(path))
    assert str(e.value).startswith(f"{path}:{line}: ") and message in str(e.value), str(e.value)


@pytest.mark.parametrize("model, text, line, message", [
    (QMLP, "layers:\n  fc1:\n    table_size: 256\n", 3,
     "layers.fc1.table_size: layer 'fc1' (Dense 16 -> 64) has no lookup table; table_size applies to layers "
     "with tanh, sigmoid or softmax"),
    (QMLP, "layers:\n  relu1:\n    weight: fixed<8,3,RND,SAT>\n", 3,
     "layer 'relu1' (Activation relu) has no weights; weight applies to Dense and Conv2D layers"),
    (QMLP, "layers:\n  fc1:\n    activation: fixed<8,3,RND,SAT>\n", 3,
     "layer 'fc1' (Dense 16 -> 64) has no activation of its own; use output"),
    (QMLP, "layers:\n  fc1:\n    rounding: RND\n", 3,
     "layer 'fc1' (Dense 16 -> 64) has no type chosen by the compiler"),
    (FLOAT, "layers:\n  hidden1:\n    weight: fixed<6,0>\n", 3,
     "do not fit fixed<6,0,TRN,WRAP> and would wrap around"),
    (FLOAT, "layers:\n  hidden1:\n    accumulator: fixed<27,7,TRN,WRAP>\n", 3,
     "layers.hidden1.accumulator: layer 'hidden1' needs the accumulator fixed<28,8,TRN,WRAP> (its exact range "
     "is [-122.315, 122.807]); fixed<27,7,TRN,WRAP> cannot hold it"),
    (FLOAT, "defaults:\n  accumulator: fixed<40,22,TRN,WRAP>\n", 2,
     "defaults.accumulator: layer 'hidden1' needs the accumulator fixed<28,8,TRN,WRAP> (its products have 20 "
     "fractional bits)"),
    (FLOAT, "layers:\n  score:\n    overflow: WRAP\nptq:\n  tolerance: 0.05\n", 3,
     "layers.score.overflow: WRAP conflicts with post-training quantisation"),
])
def test_setting_that_does_not_apply_is_an_error(tmp_path, model, text, line, message):
    path = _write(tmp_path, text)
    cal = _samples(200, 0) / 4 if "ptq" in text else None
    with pytest.raises(UserError) as e:
        build_graph(model, options=make_options(path, calibration=cal))
    assert str(e.value).startswith(f"{path}:{line}: ") and message in str(e.value), str(e.value)


def test_config_values_reach_the_ir(tmp_path):
    path = _write(tmp_path, "input: fixed<12,3,RND,SAT>\ndefaults:\n  weight_frac: 8\n  rounding: RND_CONV\n"
                            "layers:\n  hidden1:\n    output: fixed<12,4,RND,SAT>\n    table_size: 256\n"
                            "  hidden2:\n    activation: fixed<9,2,RND,SAT>\n    weight: fixed<8,1,RND,SAT>\n"
                            "  score:\n    bias: fixed<10,2,RND,SAT>\n")
    g = build_graph(FLOAT, options=make_options(path))
    n = {x.name: x for x in g.nodes}
    assert n["input"].info.type.spec() == "fixed<12,3,RND,SAT>"
    assert n["hidden1"].info.type.spec() == "fixed<12,4,RND,SAT>"
    assert n["hidden1_tanh"].table.size == 256 and n["hidden1_tanh"].table.index_type.integer == 3
    assert n["hidden2_tanh"].info.type.spec() == "fixed<9,2,RND,SAT>"
    assert n["hidden2"].kernel_q.frac == 7 and n["hidden1"].kernel_q.frac == 8   # explicit type / weight_frac
    assert n["score"].bias_q.frac == 8
    assert n["hidden2"].info.type.rounding.value == "RND_CONV"                   # defaults.rounding on auto types
    applied = g.annotations["passes"]["config"]["applied"]
    assert {"layer": "hidden1", "setting": "layers.hidden1.table_size", "value": "256", "line": 8} in applied


def test_saturating_weights_are_reported_not_silent(tmp_path):
    path = _write(tmp_path, "layers:\n  hidden1:\n    weight: fixed<6,0,RND,SAT>\n")
    with pytest.warns(AdjustmentWarning, match=r"layer 'hidden1': weight fixed<6,0,RND,SAT>: \d+ of 512 weights"):
        g = build_graph(FLOAT, options=make_options(path))
    (adj,) = g.annotations["adjustments"]
    assert adj["setting"] == "weight" and "saturate" in adj["reason"]


def test_cli_and_config_values_must_agree(tmp_path):
    path = _write(tmp_path, "reuse:\n  max_dsp: 100\n")
    assert make_options(path, max_dsp=100).max_dsp == 100
    with pytest.raises(UserError, match=rf"--max-dsp 50 conflicts with reuse.max_dsp: 100 at {re.escape(str(path))}:2"):
        make_options(path, max_dsp=50)
    opts = make_options(event_rate="40MHz", clock_mhz=240.0)
    assert opts.ii == 6 and "one event every 6 cycles" in opts.ii_reason
    with pytest.raises(UserError, match="above the clock"):
        make_options(event_rate="300MHz", clock_mhz=240.0)
    with pytest.raises(UserError, match="needs calibration data"):
        make_options(trim=True)


def test_cli_compile_reports_adjustments(tmp_path, capsys):
    path = _write(tmp_path, "layers:\n  hidden2:\n    accumulator: fixed<40,12,TRN,WRAP>\n")
    out = tmp_path / "fw"
    assert main(["compile", str(FLOAT), "--config", str(path), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: layer 'hidden2': accumulator fixed<40,12,TRN,WRAP> -> fixed<25,5,TRN,WRAP>" in err
    report = json.loads((out / "report.json").read_text())
    (adj,) = report["adjustments"]
    assert adj == {"layer": "hidden2", "node": "hidden2", "setting": "accumulator",
                   "requested": "fixed<40,12,TRN,WRAP>", "used": "fixed<25,5,TRN,WRAP>",
                   "reason": "accumulators are exact: the range analysis needs no more bits"}
    assert json.loads((out / "ir.json").read_text())["annotations"]["adjustments"] == [adj]


def test_cli_config_error_exits_2(tmp_path, capsys):
    path = _write(tmp_path, "layers:\n  hidden1:\n    reuse_factor: many\n")
    assert main(["compile", str(FLOAT), "--config", str(path), "-o", str(tmp_path / "fw")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: invalid value 'many' for layers.hidden1.reuse_factor: expected an integer >= 1" in err
    assert "Traceback" not in err and not (tmp_path / "fw").exists()


# ----------------------------------------------------------------------------- templates
def _uncomment_all(text: str) -> str:
    """Remove '# ' from every indented 'key: value' line (what a user does to pin a value)."""
    return re.sub(r"^(\s+)# ([a-z_]+: \S.*)$", r"\1\2", text, flags=re.M)


@pytest.mark.parametrize("model", [FLOAT, QMLP])
def test_config_template_round_trips(model, tmp_path, capsys):
    path = tmp_path / "nnfpga.yml"
    assert main(["config", str(model), "-o", str(path)]) == 0
    text = path.read_text()
    base = build_graph(model)
    layers = {n.source_layer for n in base.nodes if n.op_type in ("Dense", "Activation")}
    for name in layers:
        assert re.search(rf"^  {name}:", text, flags=re.M), f"layer {name} not listed"
    x = _samples(2000, 1) / (4 if model == FLOAT else 1)
    pinned = _write(tmp_path, _uncomment_all(text), "pinned.yml")
    assert text.count("\n    # ") > 10 and _uncomment_all(text).count("\n    # ") == 0
    for cfg in (path, pinned):
        g = build_graph(model, options=make_options(cfg))
        assert [n.info.type for n in g.nodes] == [n.info.type for n in base.nodes]
        assert np.array_equal(emulate(g, x), emulate(base, x))
    # refuses to overwrite
    assert main(["config", str(model), "-o", str(path)]) == 2
    assert "exists" in capsys.readouterr().err


def test_config_template_keeps_given_settings_active(tmp_path, capsys):
    given = _write(tmp_path, "layers:\n  fc2:\n    reuse_factor: 1\n    sparsity: 0.25\npruning:\n  scope: layer\n",
                   "given.yml")
    assert main(["config", str(QMLP), "--config", str(given)]) == 0
    text = capsys.readouterr().out
    assert "\n  fc2:   # Dense 64 -> 32\n" in text
    assert "\n    reuse_factor: 1\n    sparsity: 0.25\n" in text
    assert "\npruning:   # " in text and "\n  scope: layer\n" in text
    cfg = load_config(_write(tmp_path, text, "again.yml"))
    assert cfg.layers["fc2"].settings["sparsity"].value == 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = build_graph(QMLP, options=make_options(given))
        b = build_graph(QMLP, options=make_options(tmp_path / "again.yml"))
    x = _samples(1000, 2)
    assert np.array_equal(emulate(a, x), emulate(b, x))


def test_passes_run_in_declared_order_and_dump_the_ir(tmp_path):
    from nnfpga.compiler.pipeline import PIPELINE
    path = _write(tmp_path, "pruning:\n  sparsity: 0.5\nlayers:\n  hidden1:\n    reuse_factor: 1\n")
    dump = tmp_path / "dump"
    assert main(["compile", str(FLOAT), "--config", str(path), "--dump-ir", str(dump), "-o", str(tmp_path / "fw")]) == 0
    files = sorted(p.name for p in dump.iterdir())
    assert files == [f"{i:02d}_{name}.json" for i, (name, _) in enumerate(PIPELINE)]
    assert [name for name, _ in PIPELINE] == ["fold_batchnorm", "apply_config", "prune", "ptq", "quantize_weights",
                                              "remove_dead_units", "infer_precision", "trim_precision",
                                              "select_reuse"]
    pruned = load_ir(dump / "02_prune.json", complete=False)
    assert float((pruned.node("hidden1").kernel == 0).mean()) == 0.5
    final = load_ir(dump / files[-1], complete=False)
    assert final.to_json() == json.loads((tmp_path / "fw" / "ir.json").read_text())


def test_template_quotes_layer_names_yaml_would_misread(tmp_path):
    from nnfpga.compiler.config_template import write_template
    from tests.irmodels import random_mlp
    g = random_mlp([4, 3, 2])
    names = {"fc1": "onnx::Gemm_7: #1", "fc2": "yes"}
    for n in g.nodes:
        n.source_layer = names.get(n.name, n.source_layer or n.name)
    opts = make_options()
    text = write_template(g, opts, "ir")
    assert '\n  "onnx::Gemm_7: #1":   # Dense 4 -> 3\n' in text and '\n  "yes":   # Dense 3 -> 2\n' in text
    cfg = load_config(_write(tmp_path, re.sub(r"^(\s+)# ([a-z_]+: \S.*)$", r"\1\2", text, flags=re.M)))
    assert set(cfg.layers) == {"onnx::Gemm_7: #1", "relu1", "yes"}
    assert cfg.layers["yes"].settings["reuse_factor"].value == 1
