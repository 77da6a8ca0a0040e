"""Benchmark data and shipped benchmark models: generators, ring builder, frontend, bit-exactness.

The muon-trigger and electron-ringer generators follow docs/benchmark-facts.md; these tests
check their physics facts within binomial errors, the ring algorithm on hand-made cells,
and that every shipped model goes through nnfpga's frontend and (fully quantised ones)
equals QKeras predict bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.electron_ringer import generator as eg
from benchmarks.electron_ringer import rings as R
from benchmarks.electron_ringer import train as ringer_train
from benchmarks.muon_trigger import generator as mg
from benchmarks.muon_trigger import train as muon_train
from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate


def _within(observed: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(observed - p) <= sigmas * np.sqrt(p * (1 - p) / n)


# ----------------------------------------------------------------------------- muon generator
def test_muon_generator_is_deterministic_from_seeds():
    a = mg.generate(500, 100, seed=3)
    b = mg.generate(500, 100, seed=3)
    c = mg.generate(500, 100, seed=4)
    for f in ("hits", "pt", "q", "eta", "is_muon"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert not np.array_equal(a.hits, c.hits)


def test_muon_hit_map_shape_and_labels():
    ev = mg.generate(2000, 500, seed=5, pt_spectrum="inv")
    assert ev.hits.shape == (2500, 9, 16) and ev.hits.dtype == np.uint8
    assert set(np.unique(ev.hits)) <= {0, 1}
    assert ev.images().shape == (2500, 9, 16, 1) and ev.flat().shape == (2500, 144)
    mu = ev.is_muon
    assert mu.sum() == 2000 and not mu[2000:].any()
    assert np.all((ev.pt[mu] >= 3) & (ev.pt[mu] <= 30)) and np.all(ev.pt[~mu] == 0)
    assert set(np.unique(ev.q[mu])) == {-1, 1} and np.all(ev.q[~mu] == 0)
    assert np.all(np.abs(ev.eta) < mg.ETA_MAX)
    # flat in 1/pT: the mean of 1/pT is the mid-point of [1/30, 1/3]
    inv = 1 / ev.pt[mu]
    assert abs(inv.mean() - 0.5 * (1 / 3 + 1 / 30)) < 4 * inv.std() / np.sqrt(mu.sum())
    flat = mg.generate(4000, 0, seed=6).pt
    assert abs(flat.mean() - 16.5) < 4 * flat.std() / np.sqrt(len(flat))


def test_muon_road_column_and_straight_tracks():
    # pT -> infinity is not allowed; at 30 GeV the BM stations stay on the road column
    ev = mg.generate(3000, 0, seed=7, pt_range=(30, 30), noise=0)
    pos = mg.layer_cluster_positions(ev.hits)
    assert np.all(np.floor(ev.column[:, :3]) == mg.ROAD_COLUMN)   # BI: no field, always column 8
    assert abs(np.nanmean(pos[:, :3]) - (mg.ROAD_COLUMN + 0.5)) < 0.1


def test_muon_bending_shift_at_outer_station_is_about_four_strips():
    d = mg.bending_deviation(9.8, 10.0)
    assert 0.105 < d < 0.115                                     # L^2/2R = 3.8^2 / 132 m = 11 cm
    ev = mg.generate(4000, 0, seed=8, pt_range=(10, 10), noise=0)
    pos = mg.layer_cluster_positions(ev.hits)[:, 7:9]
    seen = ~np.isnan(pos).all(axis=1)                            # BO has a hit (99.75%)
    signed = np.nanmean(pos[seen], axis=1) - (mg.ROAD_COLUMN + 0.5)
    assert abs(np.abs(signed).mean() - d / mg.STRIP_WIDTH) < 0.1  # 3.65 strips ("about 4")
    assert np.all(np.sign(signed) == ev.q[seen])                 # positive charge bends to +z
    assert mg.bending_deviation(9.8, 40.0) / mg.STRIP_WIDTH < 1.0   # below one strip at 40 GeV


def test_muon_efficiency_and_cluster_size_statistics():
    ev = mg.generate(6000, 0, seed=9, pt_range=(25, 30), noise=0)
    n_hit = ev.hits.sum(-1)                                      # (n, 9) strips per layer
    fired = n_hit > 0
    assert _within(fired.mean(), 0.95, fired.size)
    for layer in range(9):
        assert _within(fired[:, layer].mean(), 0.95, len(fired))
    # cluster sizes away from the window edges
    inside = fired & (ev.column > 2) & (ev.column < 14)
    sizes = n_hit[inside]
    for s, p in zip((1, 2, 3), (0.70, 0.25, 0.05)):
        assert _within(np.mean(sizes == s), p, len(sizes)), (s, np.mean(sizes == s))
    assert abs(sizes.mean() - 1.35) < 0.02                       # ATLAS mean about 1.3
    # the crossed strip is always part of the cluster
    n, l = np.nonzero(inside)
    assert np.all(ev.hits[n, l, np.floor(ev.column[n, l]).astype(int)] == 1)


@pytest.mark.parametrize("noise", [1e-3, 1e-2])
def test_muon_noise_rate(noise):
    ev = mg.generate(0, 20000, seed=10, noise=noise)
    assert _within(ev.hits.mean(), noise, ev.hits.size)


def test_station_features_on_a_hand_made_map():
    hits = np.zeros((2, 9, 16), np.uint8)
    hits[0, 0:3, 8] = 1                  # BI on the road
    hits[0, 3, [8, 9]] = 1               # BM1 cluster centre 9.0 -> +0.5
    hits[0, 4, 9] = 1                    # BM1 second layer 9.5 -> +1.0
    hits[0, 5, 10] = 1                   # BM2 one layer, +2
    hits[0, 7, 12] = hits[0, 8, 12] = 1  # BO +4
    hits[0, 8, 0] = 1                    # a noise hit far from the road is ignored
    f = mg.station_features(hits)
    assert np.allclose(f[0], [0.75, 2.0, 4.0])
    assert np.allclose(f[1], [0, 0, 0])  # empty map: every station on the road


# ----------------------------------------------------------------------------- ring builder
def test_ring_index_hand_made_cases():
    em2 = R.RINGSETS[2]                  # 0.025 x pi/128
    d = np.pi / 128
    deta = np.array([0, 0.025, 0.05, 0.0, 0.025, 0.075, 0.0125 - 1e-9, 0.0125 + 1e-9, -0.05])
    dphi = np.array([0, 0.0, d, 3 * d, 2 * d, d, 0.0, 0.0, 0.0])
    assert R.ring_index(deta, dphi, em2).tolist() == [0, 1, 2, 3, 2, 3, 0, 1, 2]
    em1 = R.RINGSETS[1]                  # strips: index from eta up to 63
    assert R.ring_index(np.array([0.003125 * 63, 0.003125 * 64]), np.zeros(2), em1).tolist() == [63, 64]
    # phi wraps: cells at +pi - d/2 and -pi + d/2 are neighbours
    assert R.ring_index(np.zeros(1), np.array([2 * np.pi - np.pi / 32]), R.RINGSETS[0]).tolist() == [1]
    assert R.N_RINGS == 100 and [r.n_rings for r in R.RINGSETS] == [8, 64, 8, 8, 4, 4, 4]


def test_ringset_on_hand_made_cells():
    rs = R.RINGSETS[4]                   # HAD1: 0.1 x pi/32, 4 rings
    dp = np.pi / 32
    # a 9 x 3 grid of HAD cells around eta 0.05, phi 0.5 dp (cell centres)
    eta = np.repeat(np.arange(-4, 5) * 0.1 + 0.05, 3)
    phi = np.tile(np.array([-1, 0, 1]) * dp + dp / 2, 9)
    e = np.zeros(27)
    e[13] = 10.0                         # (eta 0.05, phi centre): inside the window
    e[12] = 3.0                          # same eta, phi - dp: ring 1
    e[22] = 2.0                          # eta 0.35: ring 3
    e[25] = 1.0                          # eta 0.45: ring 4 -> dropped
    e[16] = 50.0                         # eta 0.15: hotter but outside the 0.1 x 0.1 window
    rings = R.build_ringset(eta, phi, e, 0.04, dp / 2 + 0.01, rs)
    assert rings.shape == (1, 4)
    expected = np.zeros(4)
    expected[0] = 10 / np.cosh(0.05)
    expected[1] = 3 / np.cosh(0.05) + 50 / np.cosh(0.15)
    expected[3] = 2 / np.cosh(0.35)
    assert np.allclose(rings[0], expected, rtol=0, atol=1e-12)
    # negative (noise) energies reach the rings as they are
    e2 = e.copy()
    e2[14] = -0.5
    assert np.isclose(R.build_ringset(eta, phi, e2, 0.04, dp / 2 + 0.01, rs)[0, 1], expected[1] - 0.5 / np.cosh(0.05))
    # no cell in the window is an error, not a silent zero
    with pytest.raises(ValueError, match="no cell"):
        R.build_ringset(eta, phi, e, 3.0, 0.0, rs)


def test_norm1():
    r = np.array([[1.0, 2.0, -1.0, 0.0], [-1.0, -3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    n = R.norm1(r)
    assert np.allclose(n[0], [0.5, 1.0, -0.5, 0.0])
    assert np.allclose(n[1], [-0.25, -0.75, 0, 0])          # divided by |sum|: signs kept
    assert np.array_equal(n[2], np.zeros(4))
    assert np.allclose(np.abs(n[:2].sum(1)), 1.0)


def test_bin_assignment():
    et = np.array([14.99, 15, 19.99, 20, 30, 40, 49.9, 50, 1e4, 25, 25, 25, 25, 25, 25])
    eta = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.79, -0.8, 1.37, -1.53, 2.37, 2.5])
    b = eg.assign_bin(et, eta)
    assert b.tolist() == [-1, 0, 0, 5, 10, 15, 15, 20, 20, 5, 6, 7, 7, 9, 9]
    assert eg.assign_bin([25], [2.51]).tolist() == [-1]
    assert eg.bin_label(7) == "ET[20,30) |eta|[1.37,1.54)"


def test_calorimeter_generator_determinism_and_shapes():
    a = eg.generate("electron", 300, seed=5)
    b = eg.generate("electron", 300, seed=5)
    assert np.array_equal(a.rings, b.rings) and np.array_equal(a.et, b.et)
    assert a.rings.shape == (300, 100) and a.rings.dtype == np.float32
    assert np.all(a.bin >= 0) and np.all(np.bincount(a.bin, minlength=25) > 0)
    cells = eg.generate_cells("jet", 8, seed=1)
    assert [e.shape[1:] for e in cells.energy] == [(17, 5), (129, 5), (17, 17), (9, 17), (5, 5), (5, 5), (5, 5)]
    assert (a.rings < 0).any()                               # noise makes some rings negative


@pytest.fixture(scope="module")
def calo_events():
    """1,000 electrons and 1,000 jets (about 2 s)."""
    return eg.generate("electron", 1000, seed=6), eg.generate("jet", 1000, seed=7)


def test_shower_shapes_follow_the_documented_facts(calo_events):
    el, jet = calo_events
    s, j = el.shapes, jet.shapes
    assert 0.90 <= np.median(s["r_eta"]) <= 0.97
    assert 0.6 <= np.median(j["r_eta"]) <= 0.9 and np.median(j["r_eta"]) < np.median(s["r_eta"])
    assert 0.5 <= np.median(s["f_EM2"]) <= 0.8 and 0.1 <= np.median(s["f_EM1"]) <= 0.4
    assert 0.005 <= np.median(s["f_PS"]) <= 0.05 and 0.005 <= np.median(s["f_EM3"]) <= 0.04
    assert np.median(s["f_had"]) <= 0.03
    assert 0.02 <= np.median(j["f_had"]) <= 0.5


# ----------------------------------------------------------------------------- shipped models
MUON_MODELS = [s.path for s in muon_train.SPECS]
RINGER_MODELS = [ringer_train.model_path(f, b) for f in ringer_train.FLAVOURS for b in range(eg.N_BINS)]


def test_every_shipped_model_is_there_small_and_loads_in_the_frontend():
    for path in MUON_MODELS + RINGER_MODELS:
        assert path.exists(), path
        assert path.stat().st_size < 1_000_000, path
        graph = build_graph(path)
        assert graph.nodes[0].op_type == "Input"


@pytest.fixture(scope="module")
def qkeras_load():
    from qkeras.utils import load_qmodel
    return lambda path: load_qmodel(str(path), compile=False)


def test_muon_models_golden_equals_qkeras_bit_for_bit(qkeras_load):
    ev = mg.generate(2500, 500, seed=11, noise=1e-2)
    for spec in muon_train.SPECS:
        x = muon_train.model_inputs(spec, ev)
        ours = emulate(build_graph(spec.path), x)
        model = qkeras_load(spec.path)
        # QKeras's forward pass called directly: the computation of predict() without its
        # per-model graph tracing (seconds each); predict itself is compared once below.
        theirs = model(x, training=False).numpy()
        if spec.name == "cnn_pt10":
            assert np.array_equal(model.predict(x, batch_size=4096, verbose=0), theirs)
        assert ours.shape == theirs.shape, spec.name
        bad = np.argwhere(ours != theirs)
        assert len(bad) == 0, f"{spec.name}: {len(bad)} values differ, first {bad[:3]}"


def _layer_configs(path) -> list:
    import json

    import h5py
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
    return [(lc["class_name"], {k: v for k, v in lc["config"].items() if k != "name"})
            for lc in cfg["config"]["layers"]]


def test_ringer_qkeras_models_golden_equals_qkeras_bit_for_bit(qkeras_load, calo_events):
    x = eg.RingEvents.concatenate(list(calo_events)).normalised()
    # The 25 files share one architecture: check that on the saved configs, then run QKeras
    # with one model object and each file's weights (loading 25 models would take longer
    # than the rest of this file).
    reference = qkeras_load(ringer_train.model_path("qkeras", 0))
    first = _layer_configs(ringer_train.model_path("qkeras", 0))
    for b in range(eg.N_BINS):
        path = ringer_train.model_path("qkeras", b)
        assert _layer_configs(path) == first, path.name
        reference.load_weights(path)
        ours = emulate(build_graph(path), x)
        theirs = reference.predict(x, batch_size=4096, verbose=0)
        bad = np.argwhere(ours != theirs)
        assert len(bad) == 0, f"{path.name}: {len(bad)} values differ, first {bad[:3]}"
