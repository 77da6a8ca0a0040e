"""The NeuralRinger ring builder (docs/benchmark-facts.md section 2), exactly:

100 rings in 7 sets, in this order (Delta-eta, Delta-phi of the set):

    PS 8 (0.025, pi/32), EM1 64 (0.003125, pi/32), EM2 8 (0.025, pi/128),
    EM3 8 (0.050, pi/128), HAD1 4, HAD2 4, HAD3 4 (0.1, pi/32).

Per set (each set reads the cells of its own layer):

1. the hottest cell: the cell of largest energy among the cells whose centre lies within
   the 0.1 x 0.1 window of the cluster centre, |eta_cell - eta_c| <= 0.05 and
   |phi_cell - phi_c| <= 0.05 (phi differences wrapped into [-pi, pi)); on a tie the first
   cell in the given order wins;
2. every cell's ring index is round(max(|d_eta| / Delta-eta_set, |d_phi| / Delta-phi_set))
   with d_eta, d_phi the distances of the cell centre from the hottest cell's centre
   (square annuli, Chebyshev distance; round = half away from zero; all quotients are
   integers for cells on the set's own grid);
3. ring i accumulates E_cell / cosh(eta_cell) (the cell's transverse energy, eta_cell the
   cell centre's eta) when i < N_rings of the set; cells further out are not used.

Cell energies include noise, so rings can be negative.  Input normalisation (Norm1):
every ring divided by |sum of the 100 rings| (events whose sum is exactly 0 stay 0).

Cells come as arrays ``eta``, ``phi`` (cell centres) and ``energy`` of shape
(events, cells) or (cells,) (broadcast over events); energies in any unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

HOT_WINDOW = 0.05      # half-width of the hottest-cell search window (eta and phi)


@dataclass(frozen=True)
class RingSet:
    name: str
    n_rings: int
    deta: float
    dphi: float


RINGSETS = (
    RingSet("PS", 8, 0.025, np.pi / 32),
    RingSet("EM1", 64, 0.003125, np.pi / 32),
    RingSet("EM2", 8, 0.025, np.pi / 128),
    RingSet("EM3", 8, 0.050, np.pi / 128),
    RingSet("HAD1", 4, 0.1, np.pi / 32),
    RingSet("HAD2", 4, 0.1, np.pi / 32),
    RingSet("HAD3", 4, 0.1, np.pi / 32),
)
N_RINGS = sum(r.n_rings for r in RINGSETS)   # 100
RING_OFFSETS = np.cumsum([0] + [r.n_rings for r in RINGSETS])


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angle differences into [-pi, pi)."""
    return (np.asarray(dphi, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def ring_index(deta: np.ndarray, dphi: np.ndarray, rs: RingSet) -> np.ndarray:
    """round(max(|d_eta|/Delta-eta, |d_phi|/Delta-phi)), half away from zero (int64)."""
    x = np.maximum(np.abs(deta) / rs.deta, np.abs(wrap_phi(dphi)) / rs.dphi)
    return np.floor(x + 0.5).astype(np.int64)


def _events(a: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.broadcast_to(a, (n, a.shape[-1])) if a.ndim == 1 else a


def hottest_cell(eta, phi, energy, eta_c, phi_c) -> np.ndarray:
    """Index (per event) of the hottest cell within the 0.1 x 0.1 window; -1 if the window
    holds no cell."""
    energy = np.atleast_2d(np.asarray(energy, dtype=np.float64))
    n = energy.shape[0]
    eta, phi = _events(eta, n), _events(phi, n)
    eta_c = np.broadcast_to(np.asarray(eta_c, dtype=np.float64), (n,))[:, None]
    phi_c = np.broadcast_to(np.asarray(phi_c, dtype=np.float64), (n,))[:, None]
    inside = (np.abs(eta - eta_c) <= HOT_WINDOW + 1e-12) & (np.abs(wrap_phi(phi - phi_c)) <= HOT_WINDOW + 1e-12)
    masked = np.where(inside, energy, -np.inf)
    idx = np.argmax(masked, axis=1)
    return np.where(inside.any(axis=1), idx, -1)


def build_ringset(eta, phi, energy, eta_c, phi_c, rs: RingSet) -> np.ndarray:
    """The rings of one set: (events, rs.n_rings)."""
    energy = np.atleast_2d(np.asarray(energy, dtype=np.float64))
    n = energy.shape[0]
    eta, phi = _events(eta, n), _events(phi, n)
    hot = hottest_cell(eta, phi, energy, eta_c, phi_c)
    if np.any(hot < 0):
        raise ValueError(f"{rs.name}: no cell within the hottest-cell window of the cluster centre")
    rows = np.arange(n)
    idx = ring_index(eta - eta[rows, hot][:, None], phi - phi[rows, hot][:, None], rs)
    et = energy / np.cosh(eta)
    use = idx < rs.n_rings
    flat = (rows[:, None] * rs.n_rings + idx)[use]
    return np.bincount(flat, weights=et[use], minlength=n * rs.n_rings).reshape(n, rs.n_rings)


def build_rings(layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], eta_c, phi_c) -> np.ndarray:
    """All 100 rings from the 7 layers' (eta, phi, energy) cells, in RINGSETS order."""
    if len(layers) != len(RINGSETS):
        raise ValueError(f"need {len(RINGSETS)} layers, got {len(layers)}")
    return np.concatenate([build_ringset(e, p, en, eta_c, phi_c, rs) for (e, p, en), rs in zip(layers, RINGSETS)],
                          axis=1)


def norm1(rings: np.ndarray) -> np.ndarray:
    """Divide every ring by |sum of the rings| of its event (a zero sum leaves zeros)."""
    rings = np.asarray(rings, dtype=np.float64)
    s = np.abs(rings.sum(axis=-1, keepdims=True))
    return np.divide(rings, s, out=np.zeros_like(rings), where=s > 0)
