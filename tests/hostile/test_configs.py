"""Hostile configuration files (``--config``): Python tags, recursive and exponential
aliases, deep nesting, huge numbers, wrong types per field, unknown layers and keys,
files that are not mappings, not text or empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.harness import MODELS, Case, run_case

QMLP = str(MODELS / "qmlp.h5")


def _yml(text: str | bytes):
    def write(tmp: Path) -> None:
        if isinstance(text, bytes):
            (tmp / "c.yml").write_bytes(text)
        else:
            (tmp / "c.yml").write_text(text)
    return write


def _laughs(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def config_case(id_: str, text: str | bytes, messages, verb: str = "compile") -> Case:
    args = (("compile", QMLP, "--config", "{tmp}/c.yml", "-o", "{tmp}/out") if verb == "compile" else
            ("config", QMLP, "--config", "{tmp}/c.yml", "-o", "{tmp}/out.yml"))
    return Case(f"config-{id_}", args, ("c.yml", *messages), _yml(text),
                outputs=("out",) if verb == "compile" else ("out.yml",))


CASES = [
    # --- never construct objects
    config_case("python-object", "defaults: !!python/object:os.system {}\n", [":1", "python/object", "not allowed"]),
    config_case("python-apply", "layers: !!python/object/apply:os.system ['touch pwned']\n",
                ["python/object/apply", "not allowed"]),
    config_case("python-name", "version: !!python/name:os.system\n", ["python/name", "not allowed"]),
    config_case("unknown-local-tag", "defaults:\n  reuse_factor: !custom 3\n", [":2", "!custom", "not allowed"]),
    config_case("binary-tag", "input: !!binary aGVsbG8=\n", ["binary", "not allowed"]),
    config_case("set-tag", "defaults: !!set {a, b}\n", ["set", "not allowed"]),
    # --- aliases and nesting
    config_case("recursive-alias-list", "layers: &a [*a]\n", ["*a", "recursive alias"]),
    config_case("recursive-alias-map", "defaults: &d {reuse_factor: *d}\n", ["*d", "recursive alias"]),
    config_case("billion-laughs", _laughs(), ["100,000 values", "aliases"]),
    config_case("billion-laughs-in-layers", "x: &x [a, a, a, a, a, a, a, a, a, a]\n" +
                "".join(f"y{i}: &y{i} [{', '.join([f'*{p}'] * 10)}]\n"
                        for i, p in enumerate(["x", "y0", "y1", "y2", "y3", "y4"])) +
                "layers: {fc1: *y5}\n", ["values", "aliases"]),
    config_case("deep-flow-lists", "layers: " + "[" * 50_000 + "]" * 50_000 + "\n", ["32 levels"]),
    config_case("deep-block-maps", "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n",
                ["32 levels"]),
    # --- numbers
    config_case("huge-integer", "defaults:\n  reuse_factor: " + "9" * 5000 + "\n", [":2", "5000 digits"]),
    config_case("integer-beyond-64-bits", "reuse:\n  max_dsp: 99999999999999999999\n", [":2", "far larger"]),
    config_case("reuse-above-limit", "defaults:\n  reuse_factor: 10000000\n",
                ["defaults.reuse_factor", "<= 1,000,000"]),
    config_case("float-overflow", "ptq:\n  tolerance: 1e999\n", ["ptq.tolerance", "a number >= 0"]),
    config_case("nan-tolerance", "ptq:\n  tolerance: .nan\n", ["ptq.tolerance", "nan"]),
    config_case("inf-sparsity", "pruning:\n  sparsity: .inf\n", ["pruning.sparsity", "< 1"]),
    config_case("huge-margin", "precision:\n  margin: 1e300\n", ["precision.margin", "<= 1024"]),
    config_case("negative-table", "defaults:\n  table_size: -1\n", ["defaults.table_size", "power of two"]),
    config_case("type-huge-width", "input: fixed<99999999999999999999,3>\n", ["input", "w in 1..62"]),
    # --- wrong types per field
    config_case("reuse-bool", "defaults:\n  reuse_factor: true\n", ["defaults.reuse_factor", "an integer"]),
    config_case("reuse-word", "defaults:\n  reuse_factor: four\n", ["defaults.reuse_factor", "an integer"]),
    config_case("reuse-float", "defaults:\n  reuse_factor: 4.0\n", ["defaults.reuse_factor", "an integer"]),
    config_case("reuse-list", "defaults:\n  reuse_factor: [1, 2]\n", ["defaults.reuse_factor", "a list"]),
    config_case("rounding-lowercase", "defaults:\n  rounding: rnd\n", ["defaults.rounding", "TRN, RND, RND_CONV"]),
    config_case("output-number", "layers:\n  fc1:\n    output: 8\n", [":3", "layers.fc1.output", "fixed<"]),
    config_case("trim-string", "precision:\n  trim: yes please\n", ["precision.trim", "true or false"]),
    config_case("version-date", "version: 2001-12-14\n", ["version", "expected 1"]),
    config_case("version-2", "version: 2\n", ["version", "expected 1"]),
    config_case("event-rate-word", "reuse:\n  event_rate: fast\n", ["event_rate"]),
    # --- structure
    config_case("not-a-mapping-list", "- defaults\n- layers\n", ["must be a mapping"]),
    config_case("not-a-mapping-scalar", "hello\n", ["must be a mapping"]),
    config_case("section-is-list", "layers: [fc1, fc2]\n", ["layers must map layer names"]),
    config_case("layer-is-number", "layers:\n  fc1: 3\n", [":2", "layers.fc1 must be a mapping"]),
    config_case("unknown-top-key", "defualts:\n  reuse_factor: 2\n", ["unknown key 'defualts'", "did you mean"]),
    config_case("unknown-layer-key", "layers:\n  fc1:\n    reuse: 2\n", ["unknown key 'reuse'", "layers.fc1"]),
    config_case("merge-key", "defaults:\n  <<: {reuse_factor: 2}\n", ["unknown key '<<'"]),
    config_case("duplicate-key", "defaults:\n  reuse_factor: 2\n  reuse_factor: 4\n", [":3", "duplicate key"]),
    config_case("complex-key", "? [a, b]\n: 1\n", ["a key must be a plain name"]),
    config_case("unknown-layer", "layers:\n  nope:\n    reuse_factor: 2\n", [":2", "nope", "fc1"]),
    config_case("unknown-layer-config-verb", "layers:\n  fc9:\n    reuse_factor: 2\n", ["fc9"], verb="config"),
    # --- files that are not YAML text
    config_case("binary-file", b"\x00\x01\x02\xff\xfe PK\x03\x04", ["not a utf-8 text file"]),
    config_case("control-characters", "defaults:\n  reuse_factor: 2\x07\n", ["not a yaml text file"]),
    config_case("latin1-file", "layers:\n  caf\xe9:\n    reuse_factor: 2\n".encode("latin-1"),
                ["not a utf-8 text file", "0xe9"]),
    config_case("too-large", "# padding\n" * 1_200_000, ["bytes", "at most 10,485,760"]),
    config_case("broken-yaml", "defaults: {reuse_factor: 2\n", ["not valid yaml"]),
    Case("config-missing-file", ("compile", QMLP, "--config", "{tmp}/nope.yml", "-o", "{tmp}/out"),
         ("nope.yml", "no such configuration file")),
    Case("config-is-directory", ("compile", QMLP, "--config", "{tmp}", "-o", "{tmp}/out"),
         ("is a directory", "yaml file")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_configs(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "version: 1\n"])
def test_an_empty_config_is_the_defaults(text, tmp_path):
    """Documented: an empty file (or one with only comments) sets nothing."""
    from nnfpga.compiler.config import load_config
    (tmp_path / "c.yml").write_text(text)
    cfg = load_config(tmp_path / "c.yml")
    assert (cfg.defaults, cfg.layers, cfg.sections, cfg.input) == ({}, {}, {}, None)


def test_a_plain_alias_is_still_read(tmp_path):
    """Aliases within the limits keep working: one layer's settings reused for another."""
    from nnfpga.compiler.config import load_config
    (tmp_path / "c.yml").write_text("layers:\n  fc1: &s {reuse_factor: 2}\n  fc2: *s\n")
    cfg = load_config(tmp_path / "c.yml")
    assert cfg.layers["fc2"].settings["reuse_factor"].value == 2
