"""RPC hit generator for an ATLAS Phase-II-style Level-0 barrel muon trigger (toy).

Facts (docs/benchmark-facts.md section 1: toy of the public MuonTriggerPhase2RPC study,
EPJC 82 (2022) 576, arXiv:2201.06288, with the Phase-II BI layers):

* 9 RPC eta-strip layers, cylinders at r = BI x3, BM1 (6.80, 6.82 m), BM2 (7.50, 7.52 m),
  BO (9.80, 9.82 m); coverage |eta| < 1.05.
* No field below r = 6.0 m, uniform 0.5 T toy field beyond, bending radius
  R = 6.6 m x pT/GeV in the r-z plane: eta strips measure the bending coordinate z.
* Strips 3 cm wide; per-layer efficiency 0.95; cluster size 1/2/3 strips with
  probability 0.70/0.25/0.05; uncorrelated noise 1e-3 per strip per event (x10 option).
* Muons of charge +-1, pT uniform in [3, 30] GeV (or flat in 1/pT), |eta| < 1.05.
* Network input: the eta view, 9 layers x 16 strips around the road.

Assumptions (everything not in docs/benchmark-facts.md; each is a parameter or a constant below):

A1  BI radii 4.90, 4.95, 5.00 m (the facts give "about 4.9-5.0 m").
A2  Tracks come from the nominal interaction point (z0 = 0); ``z0_sigma`` adds a Gaussian
    vertex spread (default 0).  eta is uniform in [-1.05, 1.05]; phi plays no role.
A3  Trajectory in the r-z plane: a straight line z = r sinh(eta) up to r = 6 m, then a
    circle of radius R = 6.6 m x pT/GeV tangent to it.  The deviation from the straight
    line at radius r is taken along z at that radius as d(r) = R - sqrt(R^2 - L^2),
    L = r - 6 m (the exact circle for a track at eta = 0; about L^2/2R).  The
    eta dependence of the bending (path length and momentum p = pT cosh eta in a
    toroidal field) is neglected, as in the toy definition R = 6.6 m x pT.  Positive
    charge bends towards +z.  No multiple scattering, no energy loss, no delta rays.
A4  Strip k of every layer covers z in [k w, (k+1) w), w = 3 cm (all layers share the same
    strip edges: no staggering); layers have no acceptance edges inside |eta| < 1.05.
A5  Hits: with probability 0.95 a layer records a cluster around the crossed strip k;
    size 1 is {k}; size 2 is {k, k+1} when the crossing point lies in the upper half of
    strip k, else {k-1, k}; size 3 is {k-1, k, k+1}.  Efficiency and cluster size are
    independent per layer.
A6  Noise: every strip of the window fires independently with probability ``noise``
    (1e-3 per strip per event; 1e-2 for the x10 HL-LHC option); a noise hit on a muon
    strip leaves it a hit (logical OR).
A7  Road and window (the centring): the road is the infinite-momentum line from the
    nominal interaction point along the muon's true direction, i.e. z_road(r) =
    r sinh(eta).  In layer l the road crosses strip k_l = floor(r_l sinh(eta) / w); the
    window holds strips k_l - 8 ... k_l + 7, so column j = k - k_l + 8 and the road is
    always in column 8 (the ninth of 16, counting from 0), at a fractional position
    uniform in [0, 1) inside it.  This is what an ideal seed gives: the BI layers lie in
    the field-free region, so BI hits measure the road directly; a real seed adds
    +-1 strip jitter and occasional mis-seeding (not modelled).  Clusters outside the
    window are lost (at pT = 3 GeV the BO deviation is about 12 strips, beyond the +-8
    window, so those muons leave the outer station's window).
A8  Noise-only events: the same window (at an eta drawn as for muons) with noise only;
    labels pT = 0, q = 0, is_muon = False.
A9  The 3 inputs of the pT-regression MLP (``station_features``): per layer, the hit
    cluster (maximal run of adjacent hit strips) nearest to the road column; per station,
    the mean of its layers' cluster centres, in strips relative to the road column
    centre (column 8.5); a station without any cluster counts as 0 (on the road).  The
    inputs are the deviations of BM1, BM2 and BO from BI: s_BM1 - s_BI, s_BM2 - s_BI,
    s_BO - s_BI (station "sagittas" with respect to the BI-defined road, in strips).

Determinism: one ``numpy.random.Generator`` seeded with ``seed`` draws everything in a
fixed order, so a (seed, arguments) pair fixes the events bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LAYER_RADII = np.array([4.90, 4.95, 5.00, 6.80, 6.82, 7.50, 7.52, 9.80, 9.82])  # m
STATIONS = {"BI": (0, 1, 2), "BM1": (3, 4), "BM2": (5, 6), "BO": (7, 8)}
N_LAYERS = len(LAYER_RADII)
N_STRIPS = 16            # window width (strips)
ROAD_COLUMN = 8          # column of the window that holds the road
STRIP_WIDTH = 0.03       # m
R_FIELD = 6.0            # m: field-free below
BEND_PER_GEV = 6.6       # m: R = 6.6 m x pT/GeV
ETA_MAX = 1.05
EFFICIENCY = 0.95
CLUSTER_SIZES = np.array([1, 2, 3])
CLUSTER_PROBS = np.array([0.70, 0.25, 0.05])
NOISE = 1e-3             # per strip per event
PT_RANGE = (3.0, 30.0)   # GeV


@dataclass
class MuonEvents:
    """A generated sample.  ``hits`` is (n, 9, 16) uint8 (layer, column)."""

    hits: np.ndarray
    pt: np.ndarray          # GeV; 0 for noise-only events
    q: np.ndarray           # +1 / -1; 0 for noise-only events
    eta: np.ndarray         # true eta (window position for noise-only events)
    is_muon: np.ndarray     # bool
    column: np.ndarray      # (n, 9) true crossing position in window columns (nan for noise)
    deviation: np.ndarray   # (n, 9) bending deviation from the road, strips (signed; 0 for noise)

    def __len__(self) -> int:
        return len(self.pt)

    def images(self) -> np.ndarray:
        """The network input: (n, 9, 16, 1) float32."""
        return self.hits[..., None].astype(np.float32)

    def flat(self) -> np.ndarray:
        """The flattened map: (n, 144) float32 (layer-major)."""
        return self.hits.reshape(len(self), -1).astype(np.float32)

    def q_over_pt(self) -> np.ndarray:
        """q/pT in 1/GeV (0 for noise-only events)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.is_muon, self.q / np.where(self.pt > 0, self.pt, 1.0), 0.0)


def bending_deviation(r: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Unsigned deviation (m) from the straight line at radius r for transverse momentum
    pt (A3): R - sqrt(R^2 - L^2) with L = r - 6 m beyond the field boundary, else 0."""
    radius = BEND_PER_GEV * np.asarray(pt, dtype=np.float64)
    lever = np.clip(np.asarray(r, dtype=np.float64) - R_FIELD, 0.0, None)
    if np.any(lever > radius):
        raise ValueError("pT too low: the track curls up before the outer layers")
    return radius - np.sqrt(radius ** 2 - lever ** 2)


def generate(n_muons: int, n_noise: int = 0, seed: int = 0, *, noise: float = NOISE,
             pt_spectrum: str = "flat", pt_range: tuple[float, float] = PT_RANGE,
             z0_sigma: float = 0.0, efficiency: float = EFFICIENCY) -> MuonEvents:
    """``n_muons`` single-muon events followed by ``n_noise`` noise-only events.

    pt_spectrum: "flat" (uniform in pT) or "inv" (uniform in 1/pT) over ``pt_range``.
    noise: per strip per event (1e-3 nominal, 1e-2 for the x10 option).
    Events are not shuffled: muons first, then noise-only events.
    """
    if pt_spectrum not in ("flat", "inv"):
        raise ValueError(f"pt_spectrum must be 'flat' or 'inv', not {pt_spectrum!r}")
    rng = np.random.default_rng(seed)
    n = n_muons + n_noise
    lo, hi = pt_range
    u = rng.random(n_muons)
    pt = lo + (hi - lo) * u if pt_spectrum == "flat" else 1.0 / (1.0 / lo + (1.0 / hi - 1.0 / lo) * u)
    q = np.where(rng.random(n_muons) < 0.5, -1, 1).astype(np.int8)
    eta = rng.uniform(-ETA_MAX, ETA_MAX, n)
    z0 = rng.normal(0.0, z0_sigma, n_muons) if z0_sigma > 0 else np.zeros(n_muons)

    # road strip per layer (A7) for every event
    road_z = LAYER_RADII[None, :] * np.sinh(eta)[:, None]                  # (n, 9)
    road_strip = np.floor(road_z / STRIP_WIDTH).astype(np.int64)

    hits = np.zeros((n, N_LAYERS, N_STRIPS), dtype=np.uint8)
    column = np.full((n, N_LAYERS), np.nan)
    deviation = np.zeros((n, N_LAYERS))
    if n_muons:
        dev = q[:, None] * bending_deviation(LAYER_RADII[None, :], pt[:, None])  # (n_mu, 9), m
        z = road_z[:n_muons] + z0[:, None] + dev
        pos = z / STRIP_WIDTH                                                 # strip units
        k = np.floor(pos).astype(np.int64)
        upper = (pos - k) >= 0.5
        col = k - road_strip[:n_muons] + ROAD_COLUMN
        column[:n_muons] = pos - road_strip[:n_muons] + ROAD_COLUMN
        deviation[:n_muons] = dev / STRIP_WIDTH
        fired = rng.random((n_muons, N_LAYERS)) < efficiency
        size = CLUSTER_SIZES[np.searchsorted(np.cumsum(CLUSTER_PROBS), rng.random((n_muons, N_LAYERS)),
                                             side="right").clip(max=len(CLUSTER_SIZES) - 1)]
        first = np.where(size == 1, col, np.where(size == 3, col - 1, np.where(upper, col, col - 1)))
        ev, layer = np.nonzero(fired)
        for offset in range(3):
            take = size[ev, layer] > offset
            c = first[ev, layer][take] + offset
            inside = (c >= 0) & (c < N_STRIPS)
            hits[ev[take][inside], layer[take][inside], c[inside]] = 1
    if noise > 0:
        hits |= (rng.random((n, N_LAYERS, N_STRIPS)) < noise).astype(np.uint8)
    full_pt = np.concatenate([pt, np.zeros(n_noise)])
    full_q = np.concatenate([q, np.zeros(n_noise, dtype=np.int8)])
    is_muon = np.arange(n) < n_muons
    return MuonEvents(hits, full_pt, full_q, eta, is_muon, column, deviation)


def layer_cluster_positions(hits: np.ndarray) -> np.ndarray:
    """(n, 9) centre (in columns, strip centre = j + 0.5) of the cluster of each layer that
    lies nearest to the road column centre (8.5); nan for a layer without hits (A9)."""
    h = hits.astype(bool)
    n, nl, ns = h.shape
    start = h & ~np.concatenate([np.zeros((n, nl, 1), bool), h[..., :-1]], axis=-1)
    label = np.cumsum(start, axis=-1) * h                 # cluster id (1, 2, ...) per strip, 0 off
    cols = np.arange(ns) + 0.5
    best = np.full((n, nl), np.nan)
    best_dist = np.full((n, nl), np.inf)
    for cid in range(1, (ns + 1) // 2 + 1):               # at most 8 clusters in 16 strips
        m = label == cid
        cnt = m.sum(-1)
        if not cnt.any():
            break
        centre = np.where(cnt > 0, (m * cols).sum(-1) / np.maximum(cnt, 1), np.nan)
        dist = np.abs(centre - (ROAD_COLUMN + 0.5))
        better = (cnt > 0) & (dist < best_dist)
        best = np.where(better, centre, best)
        best_dist = np.where(better, dist, best_dist)
    return best


def station_features(hits: np.ndarray) -> np.ndarray:
    """The 3 inputs of the pT-regression MLP (A9): (n, 3) float32, strips."""
    pos = layer_cluster_positions(hits) - (ROAD_COLUMN + 0.5)
    s = {}
    for name, layers in STATIONS.items():
        p = pos[:, list(layers)]
        cnt = np.sum(~np.isnan(p), axis=1)
        s[name] = np.where(cnt > 0, np.nansum(p, axis=1) / np.maximum(cnt, 1), 0.0)
    return np.stack([s["BM1"] - s["BI"], s["BM2"] - s["BI"], s["BO"] - s["BI"]], axis=1).astype(np.float32)
