"""Banked ensembles: identically shaped networks merged into one core whose weights are
selected per sample by a bank index (the NeuralRinger's 25 MLPs as one datapath).

Fast: the merge (bit-exact against every member), its refusals, the IR round trip, the
RTL description (multiplier count, cycle-accurate interpreter at reuse 1 and 3), the bus
field, the user-facing errors.  Slow: Verilator, GHDL and the HLS C-sim of the shipped
ringer ensemble at reuse 1 and 4, bit for bit against the golden emulator.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import nnfpga
from nnfpga.backends.rtl import lower
from nnfpga.backends.rtl.bus import check_input, pack, pack_input
from nnfpga.backends.rtl.netlist import Mul
from nnfpga.backends.rtl.netlist_sim import evaluate, simulate
from nnfpga.compiler.banked import merge_banks
from nnfpga.compiler.cli import main
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import quantize_input, run_raw
from nnfpga.ir.graph import Graph
from tests.irmodels import random_inputs, random_mlp
from tests.rtl_models import set_reuse

RINGER = Path(__file__).resolve().parents[1] / "benchmarks" / "electron_ringer" / "models" / "qkeras"


def ringer_models(n: int = 25) -> list[Path]:
    return [RINGER / f"et{b // 5}_eta{b % 5}.h5" for b in range(n)]


def _members(n: int = 3, reuse: int = 1, **kw) -> list[Graph]:
    return [random_mlp([12, 8, 6, 3], seed=s, reuse_factor=reuse, name=f"m{s}", **kw) for s in range(n)]


def _banked(n: int = 3, reuse: int = 1) -> tuple[Graph, list[Graph]]:
    members = _members(n, reuse)
    return merge_banks(members), members


def _rows(graph: Graph, n: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Raw input integers (spanning the input type, some saturated) and bank indices."""
    x = quantize_input(graph, random_inputs(graph, n, seed)).astype(np.int64)
    bank = np.random.default_rng(seed).integers(0, graph.banks, n)
    return x, bank


def test_banked_graph_equals_each_member_bit_for_bit():
    banked, members = _banked(4)
    assert banked.banks == 4 and [n.op_type for n in banked.nodes].count("BankedDense") == 3
    x, bank = _rows(banked, 2000)
    got = run_raw(banked, x, bank)
    for b, m in enumerate(members):
        rows = bank == b
        assert rows.any()
        np.testing.assert_array_equal(got[rows], run_raw(m, x[rows]))


def test_shipped_ringer_ensemble_equals_each_qkeras_member():
    graphs = [build_graph(p) for p in ringer_models()]
    banked = merge_banks(graphs)
    assert banked.banks == 25 and banked.bank_bits == 5
    t = banked.input.info.type
    rng = np.random.default_rng(0)
    x = rng.integers(t.min_raw, t.max_raw + 1, (5000, 100))
    bank = rng.integers(0, 25, 5000)
    got = run_raw(banked, x, bank)
    for b, g in enumerate(graphs):
        np.testing.assert_array_equal(got[bank == b], run_raw(g, x[bank == b]))


def test_accumulator_range_holds_every_bank():
    banked, members = _banked(3)
    for node, *mems in zip(banked.nodes, *(m.nodes for m in members)):
        for m in mems:
            assert node.info.lo <= m.info.lo and m.info.hi <= node.info.hi, node.name


def test_ir_json_round_trip_keeps_the_banks():
    banked, _ = _banked(3)
    again = Graph.from_json(banked.to_json())
    assert again.banks == 3
    x, bank = _rows(banked, 300)
    np.testing.assert_array_equal(run_raw(again, x, bank), run_raw(banked, x, bank))


def test_merge_refuses_networks_that_differ_beyond_weights():
    a = random_mlp([12, 8, 3], seed=0)
    deeper = random_mlp([12, 8, 6, 3], seed=1)
    with pytest.raises(ValueError, match="has 5 layers, network 0 has 3|layer"):
        merge_banks([a, deeper])
    other_act = random_mlp([12, 8, 3], seed=1, act_bits=6)
    with pytest.raises(ValueError, match="differs from network 0"):
        merge_banks([a, other_act])
    with pytest.raises(ValueError, match="at least two"):
        merge_banks([a])


def test_emulator_demands_valid_bank_indices():
    banked, _ = _banked(3)
    x, bank = _rows(banked, 10)
    with pytest.raises(ValueError, match="needs a bank index"):
        run_raw(banked, x)
    with pytest.raises(ValueError, match=r"banks 0\.\.2"):
        run_raw(banked, x, np.full(10, 3))
    with pytest.raises(ValueError, match="10 samples"):
        run_raw(banked, x, bank[:5])
    with pytest.raises(ValueError, match="no weight banks"):
        run_raw(random_mlp([12, 8, 3]), x, bank)


@pytest.mark.parametrize("reuse", [1, 3])
def test_rtl_description_is_bit_exact_cycle_by_cycle(reuse):
    banked, _ = _banked(3, reuse)
    nl = lower(banked)
    assert nl.ii == reuse and nl.banks == 3 and nl.bank_bits == 2
    assert nl.in_bus_width == 12 * banked.input.info.type.width + 2
    x, bank = _rows(banked, 400)
    rows = np.concatenate([x.reshape(len(x), -1), bank[:, None]], axis=1)
    want = run_raw(banked, x, bank)
    if reuse == 1:
        np.testing.assert_array_equal(evaluate(nl, rows), want)
    np.testing.assert_array_equal(simulate(nl, rows, lanes=64), want)


@pytest.mark.parametrize("reuse", [1, 4])
def test_multiplier_units_cover_every_weight_position_that_varies(reuse):
    banked, _ = _banked(3, reuse)
    nl = lower(banked)
    for info, node in zip([i for i in nl.layers if i.kind == "bankeddense"],
                          [n for n in banked.nodes if n.op_type == "BankedDense"]):
        raw = node.kernel_q.raw
        varies = np.any(raw != raw[:1], axis=0)
        mag = np.abs(raw[0])
        const_mult = (~varies) & (mag != 0) & ((mag & (mag - 1)) != 0)
        n = int(varies.sum() + const_mult.sum())
        assert info.multipliers == math.ceil(n / reuse), info.name
    if reuse > 1:
        assert all(op.out.layer for op in nl.primitive_ops() if isinstance(op, Mul))


def test_bus_carries_the_bank_index_above_the_data():
    banked, _ = _banked(3)
    nl = lower(banked)
    info = {"in_type": nl.in_type.to_json(), "n_inputs": nl.n_in, "in_width": nl.in_type.width,
            "banks": 3, "bank_bits": 2, "in_bus_width": nl.in_bus_width}
    x, bank = _rows(banked, 5)
    rows = check_input(np.concatenate([x.reshape(5, -1), bank[:, None]], axis=1), info)
    words = pack_input(rows, info)
    # the same bits as the data alone, with the bank's two bits right above them
    data_bits = nl.n_in * nl.in_type.width
    as_int = [sum(int(w) << (32 * k) for k, w in enumerate(row)) for row in words]
    data_only = [sum(int(w) << (32 * k) for k, w in enumerate(row)) for row in pack(rows[:, :-1], nl.in_type.width)]
    assert [v >> data_bits for v in as_int] == bank.tolist()
    assert [v & ((1 << data_bits) - 1) for v in as_int] == data_only
    with pytest.raises(ValueError, match=r"banks 0\.\.2"):
        check_input(np.concatenate([x.reshape(5, -1), np.full((5, 1), 3)], axis=1), info)


def test_compile_several_models_and_emulate_with_bank(tmp_path):
    models = ringer_models(3)
    out = tmp_path / "fw"
    result = nnfpga.compile(models, outdir=out, name="ringer3")
    assert result.graph.banks == 3
    rtl = (out / "rtl.json").read_text()
    assert '"banks": 3' in rtl
    x = np.random.default_rng(1).normal(0, 0.05, (50, 100))
    bank = np.arange(50) % 3
    y = nnfpga.emulate(out, x, bank)
    for b, path in enumerate(models):
        from nnfpga.ir.emulator import emulate
        np.testing.assert_array_equal(y[bank == b], emulate(build_graph(path), x[bank == b]))
    with pytest.raises(UserError, match="bank index"):
        nnfpga.emulate(out, x)


def test_cli_banked_compile_and_missing_bank_error(tmp_path, capsys):
    models = [str(p) for p in ringer_models(2)]
    out = tmp_path / "fw"
    assert main(["compile", *models, "-o", str(out)]) == 0
    x = np.random.default_rng(2).normal(0, 0.05, (20, 100))
    np.savez(tmp_path / "ev.npz", x=x, bank=np.arange(20) % 2)
    np.save(tmp_path / "x.npy", x)
    assert main(["emulate", str(out), "--input", str(tmp_path / "ev.npz"), "--output", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (20, 1)
    capsys.readouterr()
    assert main(["emulate", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y2.npy")]) == 2
    err = capsys.readouterr().err
    assert "banked ensemble of 2 networks" in err and "'bank'" in err


def test_cli_refuses_models_that_cannot_be_banked(tmp_path, capsys):
    root = Path(__file__).resolve().parents[1] / "examples" / "models"
    out = tmp_path / "fw"
    assert main(["compile", str(root / "qmlp.h5"), str(root / "ternary_mlp.h5"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "banked ensemble of 2 models" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("reuse", [1, 4])
def test_ringer_ensemble_simulations_are_bit_exact(tmp_path, reuse, verilator_installed, ghdl_installed):
    out = tmp_path / "fw"
    nnfpga.compile(ringer_models(), outdir=out, reuse=reuse, name="ringer")
    rng = np.random.default_rng(reuse)
    n = 20_000
    x = rng.normal(0, 0.1, (n, 100))
    bank = rng.integers(0, 25, n)
    summary = nnfpga.verify(out, x, ["verilator"], bank=bank)
    assert summary["results"]["verilator"]["mismatches"] == 0 and summary["samples"] == n
    summary = nnfpga.verify(out, x[:2000], ["ghdl", "csim"], bank=bank[:2000])
    assert summary["bit_exact"], summary["results"]
