"""CLI basics: the first cases of the corpus (and a template for the others)."""

import pytest

from tests.hostile.harness import MODELS, Case, run_case

QMLP = str(MODELS / "qmlp.h5")

CASES = [
    Case("missing-model", ("compile", "{tmp}/missing.h5", "-o", "{tmp}/out"), ("missing.h5", "no such file")),
    Case("unknown-part", ("compile", QMLP, "--target", "xc9999", "-o", "{tmp}/out"), ("unknown part 'xc9999'",)),
    Case("clock-word", ("compile", QMLP, "--clock", "fast", "-o", "{tmp}/out"), ("cannot read clock 'fast'",)),
    Case("emulate-no-firmware", ("emulate", "{tmp}/nowhere", "--input", "{tmp}/x.npy", "--output", "{tmp}/y.npy"),
         ("not an nnfpga output directory",), outputs=("y.npy",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_basics(case, tmp_path, capsys):
    run_case(case, tmp_path, capsys)
