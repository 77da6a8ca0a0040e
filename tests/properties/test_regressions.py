"""Networks the property suites found, each reduced to the smallest case that shows it.

* a heavily pruned MLP whose tanh table is addressed by fewer bits than the table
  needs: Verilator -Wall stopped on the Verilog (WIDTHEXPAND), so ``verify`` crashed;
* a relu rounded half-to-even into a 4-bit type: the RTL range of the rounded value was
  one wider than the IR's ("range analyses disagree", an internal error);
* a time-multiplexed Dense layer (reuse 2) whose accumulator's partial sums leave the
  final sum's range: the same internal error;
* an HLS Dense layer whose output conversion rounds away more bits than its accumulator
  has: the ap_fixed headers' C simulation asserted and the C-sim aborted.
"""

from __future__ import annotations

import subprocess

import numpy as np

from nnfpga.backends.rtl.lowering import lower
from nnfpga.backends.rtl.netlist_sim import evaluate
from nnfpga.backends.rtl.writer import write_rtl
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.quant import Quantizer, WeightKind
from nnfpga.sim.verilator import verilator_env
from tests.conftest import needs_ghdl, needs_verilator
from tests.irmodels import random_mlp
from tests.properties.strategies import build_network, grid_inputs


def _lint(fw, info) -> None:
    exe, env = verilator_env()
    v = subprocess.run([exe, "--lint-only", "-Wall", str(fw / info["files"]["verilog"])],
                       capture_output=True, text=True, env=env)
    assert v.returncode == 0 and not v.stderr.strip(), v.stderr
    g = subprocess.run(["ghdl", "-s", "--std=08", str(fw / info["files"]["vhdl"])], capture_output=True,
                       text=True, cwd=fw)
    assert g.returncode == 0 and not (g.stderr + g.stdout).strip(), g.stderr + g.stdout


@needs_verilator
@needs_ghdl
def test_pruned_mlp_with_table_is_lint_clean(tmp_path):
    """16-64-32-32-5 with 95 % of the weights pruned, tanh output: the table's address
    reaches only its lower half (9 bits for 1,024 entries) and is zero-extended."""
    g = random_mlp([16, 64, 32, 32, 5], seed=0, sparsity=0.95, final_activation="tanh")
    info = write_rtl(g, tmp_path)
    text = (tmp_path / info["files"]["verilog"]).read_text()
    assert "out_tanh_rom[{1'b0, out_tanh_a" in text  # the narrow address this test is about
    _lint(tmp_path, info)


RELU_WRAP_SPEC = {
    "seed": 0, "image": True, "shape": (2, 2, 2),
    "input_type": FixedType(5, -1, False, Rounding.TRN, Overflow.WRAP),
    "convs": [{"filters": 2, "kernel": (2, 2), "padding": "valid", "strides": (1, 1),
               "quantizer": Quantizer(WeightKind.BINARY), "sparsity": 0.0, "reuse": 1, "pool": None,
               "activation": {"function": "relu",
                              "out_type": FixedType(4, 1, False, Rounding.RND_CONV, Overflow.WRAP)}}],
    "dense": [{"units": 1, "quantizer": Quantizer(WeightKind.FIXED, FixedType(1, 0, True, Rounding.RND_CONV,
                                                                             Overflow.SAT)),
               "sparsity": 0.0, "reuse": 1, "out_type": None, "activation": None}],
}


@needs_verilator
@needs_ghdl
def test_round_half_even_range_is_the_irs(tmp_path):
    """The largest relu value rounds half-to-even down (14.5 -> 14); the RTL range of the
    rounded value is now bounded by the rounded ends, the IR's own.  The reference
    interpreter checks every value against its range, and the outputs against golden."""
    g = build_network(RELU_WRAP_SPEC, "relu_wrap")
    nl = lower(g, name="relu_wrap")
    x = grid_inputs(g, 4000, seed=3).reshape(4000, -1)
    y = evaluate(nl, x)   # checks each value against its signal's range
    assert np.array_equal(y, run_raw(g, x.reshape(len(x), *g.input.info.shape)).reshape(len(x), -1))
    _lint(tmp_path, write_rtl(g, tmp_path, name="relu_wrap"))


REUSE_SPEC = {
    "seed": 0, "image": False, "shape": (3,), "convs": [], "input_activation": "hard_sigmoid",
    "input_type": FixedType(1, 0, False, Rounding.TRN, Overflow.WRAP),
    "dense": [{"units": 2, "quantizer": Quantizer(WeightKind.FIXED, FixedType(3, 0, True, Rounding.RND_CONV,
                                                                             Overflow.SAT)),
               "sparsity": 0.0, "reuse": 2, "out_type": None, "activation": None}],
}


@needs_verilator
@needs_ghdl
def test_reuse_partial_sum_range(tmp_path):
    """Inputs in {0, 0.5} -> hard sigmoid {0.5, 0.75} -> Dense 3->2 at reuse 2.  The IR's
    exact range of fc0 is [19, 26]; the time-multiplexed accumulator's signal also holds
    the partial sums, so the RTL range was [0, 31] and the lowering stopped with "range
    analyses disagree".  The output is now clipped to the IR's range (`conversions.settled`):
    no change on any sample, and bit-exact in every simulator."""
    from tests.properties import batch
    g = build_network(REUSE_SPEC, "reuse_range")
    x = grid_inputs(g, 16, seed=2)
    cores = batch.compile_cores([g], [x], tmp_path / "fw")
    assert cores[0].info["latency_cycles"] > 0
    results, _, timings = batch.simulate_all(cores, tmp_path / "sim")
    assert set(results) == {"verilator", "ghdl", "csim"} and not timings.get("csim_aborted")
    assert not batch.mismatches(cores, results)


HLS_ROUNDING_SPEC = {
    "seed": 1066, "image": False, "shape": (2,), "convs": [],
    "input_type": FixedType(7, 3, False, Rounding.RND_CONV, Overflow.WRAP),
    "dense": [{"units": 1, "quantizer": Quantizer(WeightKind.FIXED, FixedType(8, 0, True, Rounding.RND_CONV,
                                                                             Overflow.SAT)),
               "sparsity": 0.5, "reuse": 1, "out_type": FixedType(3, 0, True, Rounding.RND, Overflow.WRAP),
               "activation": {"function": "linear", "out_type": FixedType(6, 6, True, Rounding.RND_CONV,
                                                                           Overflow.WRAP)}},
              {"units": 1, "quantizer": Quantizer(WeightKind.BINARY), "sparsity": 0.0, "reuse": 1,
               "out_type": FixedType(2, 3, True, Rounding.RND, Overflow.SAT), "activation": None}],
}


def test_hls_csim_rounding_far_below_lsb(tmp_path):
    """fc1's accumulator is ``ap_fixed<3,0>`` (its input is the constant 0, so it holds
    the bias) and its output type ``ap_fixed<2,3,AP_RND,AP_SAT>`` has its LSB at 2: a plain
    ``y[j] = acc[j]`` rounds across 4 bits of a 3-bit source, and ap_fixed's C simulation
    aborts ("Attempting to read bit beyond MSB"; see
    tests/test_fixed_apfixed.py::header_asserts).  The IR (and the RTL) give 0, and so does
    ``nnfpga::convert``, which the HLS layers now use for every conversion."""
    from nnfpga.backends.hls import write_hls
    from nnfpga.sim.csim import run_csim
    g = build_network(HLS_ROUNDING_SPEC, "hls_round")
    write_hls(g, tmp_path, "xcvu9p", 240.0)
    x = grid_inputs(g, 12, seed=1)
    y = run_csim(tmp_path, x)
    assert np.array_equal(y.reshape(len(x), -1), run_raw(g, x).reshape(len(x), -1))
