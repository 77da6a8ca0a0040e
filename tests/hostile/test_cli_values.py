"""Hostile command-line values: clocks that are negative, zero, NaN or absurd, counts
that are not positive whole numbers, empty parts, unknown simulators, output paths that
are folders or lie in missing folders.  Every one is refused before any model is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.hostile.firmware import copy_firmware
from tests.hostile.harness import MODELS, Case, run_case

QMLP = str(MODELS / "qmlp.h5")
COMPILE = ("compile", QMLP, "-o", "{tmp}/out")


def _fw_and_samples(tmp: Path) -> None:
    copy_firmware(tmp)
    np.save(tmp / "x.npy", np.zeros((2, 16)))


def compile_case(id_: str, extra: tuple[str, ...], messages, code: int = 2) -> Case:
    return Case(f"cli-{id_}", (*COMPILE, *extra), tuple(messages), code=code)


CLOCK_HELP = "write it like 240MHz"

CASES = [
    # --- the clock
    compile_case("clock-negative", ("--clock", "-5MHz"), ["--clock", "'-5MHz'", CLOCK_HELP]),
    compile_case("clock-negative-number", ("--clock", "-240"), ["--clock", "'-240'", CLOCK_HELP]),
    compile_case("clock-zero", ("--clock", "0"), ["--clock", "'0'", "1-1500 MHz"]),
    compile_case("clock-zero-ns", ("--clock", "0ns"), ["--clock", "'0ns'", "1-1500 MHz"]),
    compile_case("clock-1e9GHz", ("--clock", "1e9GHz"), ["--clock", "'1e9GHz'", CLOCK_HELP]),
    compile_case("clock-huge", ("--clock", "99999999GHz"), ["--clock", "1-1500 MHz"]),
    compile_case("clock-nan", ("--clock", "nan"), ["--clock", "'nan'", CLOCK_HELP]),
    compile_case("clock-inf", ("--clock", "inf"), ["--clock", "'inf'", CLOCK_HELP]),
    compile_case("clock-empty", ("--clock", ""), ["--clock", "''", CLOCK_HELP]),
    compile_case("clock-unit-only", ("--clock", "MHz"), ["--clock", "'MHz'", CLOCK_HELP]),
    compile_case("clock-hz", ("--clock", "240Hz"), ["--clock", "'240Hz'", CLOCK_HELP]),
    Case("cli-config-clock-negative", ("config", QMLP, "--clock", "-1GHz"), ("--clock", "'-1GHz'"), outputs=()),
    # a bare number is MHz (documented): accepted, with a note saying how it was read
    compile_case("clock-bare-number-is-mhz", ("--clock", "240"), ["--clock 240 read as 240 MHz"], code=0),
    # --- counts
    compile_case("reuse-zero", ("--reuse", "0"), ["--reuse", "'0'", "whole number from 1"]),
    compile_case("reuse-negative", ("--reuse", "-1"), ["--reuse", "'-1'", "whole number from 1"]),
    compile_case("reuse-word", ("--reuse", "abc"), ["--reuse", "'abc'", "whole number from 1"]),
    compile_case("reuse-fraction", ("--reuse", "1.5"), ["--reuse", "'1.5'", "whole number"]),
    compile_case("reuse-huge", ("--reuse", "1" + "0" * 30), ["--reuse", "1,000,000"]),
    compile_case("reuse-digits-limit", ("--reuse", "9" * 5000), ["--reuse", "whole number"]),
    compile_case("ii-zero", ("--ii", "0"), ["--ii", "'0'", "whole number from 1"]),
    compile_case("ii-negative", ("--ii", "-3"), ["--ii", "'-3'"]),
    compile_case("max-dsp-negative", ("--max-dsp", "-100"), ["--max-dsp", "'-100'", "whole number from 1"]),
    compile_case("max-dsp-word", ("--max-dsp", "lots"), ["--max-dsp", "'lots'"]),
    compile_case("event-rate-negative", ("--event-rate", "-40MHz"), ["--event-rate", "-40MHz"]),
    compile_case("event-rate-zero", ("--event-rate", "0"), ["--event-rate"]),
    compile_case("event-rate-above-clock", ("--event-rate", "400MHz"), ["event rate 400 MHz", "240 MHz"]),
    # --- names
    compile_case("target-empty", ("--target", ""), ["--target", "names no fpga part"]),
    compile_case("target-blank", ("--target", "   "), ["--target", "names no fpga part"]),
    compile_case("target-unknown", ("--target", "xc7z999-1"), ["unknown part 'xc7z999-1'", "known parts"]),
    compile_case("target-dash", ("--target", "-xcvu9p"), ["unknown part '-xcvu9p'"]),
    compile_case("name-dash", ("--name", "-top"), ["--name", "-top"]),
    # --- simulators (checked before the samples are read or any simulator starts)
    Case("cli-sim-unknown", ("verify", "{tmp}/fw", "--input", "{tmp}/x.npy", "--sim", "modelsim"),
         ("unknown simulator 'modelsim'", "verilator, ghdl, csim"), _fw_and_samples),
    Case("cli-sim-one-of-two-unknown", ("verify", "{tmp}/fw", "--input", "{tmp}/x.npy", "--sim", "csim,questa"),
         ("unknown simulator 'questa'",), _fw_and_samples),
    Case("cli-sim-empty", ("verify", "{tmp}/fw", "--input", "{tmp}/x.npy", "--sim", ","),
         ("--sim names no simulator",), _fw_and_samples),
    # --- report's options
    Case("cli-report-jobs-zero", ("report", "{tmp}/fw", "--jobs", "0"), ("--jobs", "'0'"), copy_firmware),
    Case("cli-report-timeout-nan", ("report", "{tmp}/fw", "--timeout", "nan"), ("--timeout", "above 0"),
         copy_firmware),
    Case("cli-report-memory-negative", ("report", "{tmp}/fw", "--memory-gb", "-1"), ("--memory-gb", "above 0"),
         copy_firmware),
    # --- output paths
    Case("cli-config-output-folder", ("config", QMLP, "-o", "{tmp}/dir"), ("dir", "names a folder"),
         lambda t: (t / "dir").mkdir(), outputs=()),
    Case("cli-config-output-missing-parent", ("config", QMLP, "-o", "{tmp}/no/such/c.yml"),
         ("c.yml", "does not exist"), outputs=()),
    Case("cli-config-output-exists", ("config", QMLP, "-o", "{tmp}/c.yml"), ("c.yml", "does not overwrite"),
         lambda t: (t / "c.yml").write_text("version: 1\n"), outputs=()),
    Case("cli-emulate-output-folder", ("emulate", "{tmp}/fw", "--input", "{tmp}/x.npy", "--output", "{tmp}/dir"),
         ("dir", "names a folder"), lambda t: (_fw_and_samples(t), (t / "dir").mkdir())),
    Case("cli-emulate-output-missing-parent",
         ("emulate", "{tmp}/fw", "--input", "{tmp}/x.npy", "--output", "{tmp}/no/y.npy"),
         ("y.npy", "does not exist"), _fw_and_samples),
    Case("cli-emulate-output-not-npy", ("emulate", "{tmp}/fw", "--input", "{tmp}/x.npy", "--output", "{tmp}/y.csv"),
         ("y.csv", "must end in .npy"), _fw_and_samples),
    Case("cli-compile-output-is-file", ("compile", QMLP, "-o", "{tmp}/afile"), ("afile", "not a folder"),
         lambda t: (t / "afile").write_text("mine"), outputs=()),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_cli_values(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)


def test_emulate_replaces_an_existing_output_file(tmp_path, capsys):
    """Documented: --output names the file to write; an existing file is replaced."""
    from nnfpga.compiler.cli import main
    _fw_and_samples(tmp_path)
    (tmp_path / "y.npy").write_text("old results")
    assert main(["emulate", str(tmp_path / "fw"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (2, 5)
