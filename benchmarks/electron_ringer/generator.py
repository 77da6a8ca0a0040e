"""Calorimeter cell generator for a NeuralRinger-style electron trigger (toy).

Facts (docs/benchmark-facts.md section 2):

* 7 sampling layers with the ATLAS-like trigger granularity (Delta-eta x Delta-phi):
  PS 0.025 x pi/32, EM1 (strips) 0.003125 x pi/32, EM2 0.025 x pi/128,
  EM3 0.05 x pi/128, HAD1-3 0.1 x pi/32.
* Electrons: longitudinal Gamma profile, most energy in EM2 (~50-80%), EM1 ~10-40%,
  PS a few %, EM3 1-4%, hadronic leakage <~ 1-3%; narrow core, R_eta = E(3x7)/E(7x7)
  in EM2 ~ 0.90-0.97.
* Jets faking electrons: pi0-rich jets, an EM-like core plus a broad halo, more EM1
  sub-structure, R_eta ~ 0.6-0.9 with a broad tail, hadronic fraction 0.02-0.5.
* Noise: Gaussian per cell, tens of MeV in EM, ~100 MeV in HAD, growing with <mu>.
* Events fall into the 25 (E_T, |eta|) bins [15, 20, 30, 40, 50, inf) GeV x
  [0, 0.8, 1.37, 1.54, 2.37, 2.5].

Assumptions (parameters to tune; the values below are the ones used; each is a module
constant so the README table is generated from the code):

B1  Kinematics: the (E_T, |eta|) bin is drawn uniformly among the 25, then E_T uniform
    inside the E_T bin (the open bin is [50, 100] GeV) and |eta| uniform inside the |eta|
    bin; the sign of eta and phi in [-pi, pi) are uniform; <mu> uniform in MU_RANGE.
    The bin of an event is that of its generated E_T and |eta| (electrons: the electron's
    E_T; jets: the summed E_T of the jet's photons, i.e. of its EM-like part; the
    hadronic part comes on top).  The cluster centre is the true impact point of the
    electron (jets: of the leading pi0).
B2  Readout window (RoI): per layer the (2h+1) x (2k+1) cells centred on the cell that
    contains the cluster centre, h = round(0.2 / cell Delta-eta), k = round(0.2 / cell
    Delta-phi): a 0.4 x 0.4 region, the size of the L2 calorimeter RoI.  Cells outside
    are not read, so outer rings of the wide sets (EM3, HAD, PS in phi) are truncated.
    Cell grids: eta edges at multiples of the cell size; phi edges at -pi + multiples.
    The same granularity at every eta (the real EM1 and PS change in the endcap, the
    real HAD3 is 0.2 in eta offline) -- a simplification.
B3  Longitudinal EM profile: dE/dt ~ Gamma(a, b) in radiation lengths t, b = 0.45,
    a = 1 + b t_max, t_max = ln(E/E_c) + C (E_c = 10 MeV; C = -0.5 electrons,
    +0.5 photons), a jittered by a Gaussian of 10% per shower.  Photons start at a depth
    drawn from an exponential of mean 9/7 X0 (conversion).  Material: X_up(|eta|)
    radiation lengths before the calorimeter (2.5 + 1.5 |eta|^2 in the barrel,
    6.5 in the crack 1.37-1.54, 3.5 in the endcap); the PS measures the energy
    deposited in the last 1.0 X0 of it, the rest is lost; then EM1 4.3, EM2 14, EM3 2 X0,
    then HAD1 14, HAD2 40 X0 and HAD3 the rest (the EM leakage).  Layer energies get a
    Gaussian sampling term of 10%/sqrt(E/GeV) (50%/sqrt(E) for hadrons).
B4  Lateral profile (in eta-phi units at the barrel radius 1.5 m; scaled by 1.5 m / r in
    the endcap, r = 3.8 m / sinh|eta|, wider by 1.3 in the crack): per layer a separable
    mixture of a Gaussian core (sigma) and a Laplace tail (scale), tail fraction w
    (jittered log-normally, 25%), see LATERAL.  This reproduces R_eta ~ 0.93 for
    electrons (measured by ``shape_variables``).
B5  Electrons: with probability 0.5 a bremsstrahlung photon takes a fraction U(0.05, 0.4)
    of the energy and lands at d_phi = q u 0.3 / (E_T/GeV) rad (u ~ U(0, 1)) from the
    electron (the electron's bending in the solenoid after the emission).
B6  Jets: a leading pi0 with a fraction U(0.3, 0.95) of the photons' energy, decaying to
    two photons with energy sharing z ~ U(0.02, 0.98) and opening angle
    m_pi0 / (E sqrt(z (1-z))) (times cosh eta in eta-phi); 1-4 further halo photons
    (Poisson mean 2.5, at least 1) sharing the rest (flat Dirichlet), spread by a
    Gaussian of 0.06 in eta and phi around the pi0; charged hadrons (1 + Poisson(1), at
    most 3, spread 0.05) carrying a fraction f_had of the jet energy, log-uniform in
    [0.02, 0.5]; a hadron deposits on average PS 1%, EM1 4%, EM2 12%, EM3 10%,
    HAD1 45%, HAD2 21%, HAD3 7% (Dirichlet, concentration 20) with the broad HADRON
    lateral profile.
B7  Noise: per cell Gaussian, sigma^2 = sigma_el^2 + (<mu>/50) sigma_pu^2, with sigma_el /
    sigma_pu (MeV, cell energy) PS 25/40, EM1 8/10, EM2 25/40, EM3 15/20, HAD 80/80:
    at <mu> = 50, 47 MeV in EM2 and 113 MeV in HAD.  Pile-up is Gaussian and
    mean-free here (real pile-up is not).  MU_RANGE = [20, 60].
B8  No magnetic-field spread of the electron beyond B5, no out-of-RoI activity, no
    cross-talk, no dead cells, no underlying event beyond the noise.

Determinism: events are made in chunks of CHUNK; chunk i uses
``numpy.random.default_rng([seed, i])``, so (seed, n) fixes every event bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, ndtr

from benchmarks.electron_ringer import rings as R

# ------------------------------------------------------------------ detector constants
LAYER_NAMES = ("PS", "EM1", "EM2", "EM3", "HAD1", "HAD2", "HAD3")
CELL_DETA = np.array([0.025, 0.003125, 0.025, 0.05, 0.1, 0.1, 0.1])
CELL_DPHI = np.array([np.pi / 32, np.pi / 32, np.pi / 128, np.pi / 128, np.pi / 32, np.pi / 32, np.pi / 32])
ROI_HALF = 0.2
HALF_ETA = np.rint(ROI_HALF / CELL_DETA).astype(int)     # cells each side of the centre cell
HALF_PHI = np.rint(ROI_HALF / CELL_DPHI).astype(int)

ET_EDGES = np.array([15.0, 20.0, 30.0, 40.0, 50.0, np.inf])
ETA_EDGES = np.array([0.0, 0.8, 1.37, 1.54, 2.37, 2.5])
ET_MAX_GEN = 100.0
MU_RANGE = (20.0, 60.0)
N_BINS = (len(ET_EDGES) - 1) * (len(ETA_EDGES) - 1)

# longitudinal (B3), radiation lengths
GAMMA_B = 0.45
CRITICAL_E = 0.010       # GeV
C_ELECTRON, C_PHOTON = -0.5, 0.5
A_JITTER = 0.10
PS_DEPTH = 1.0
EM_DEPTHS = (4.3, 14.0, 2.0)             # EM1, EM2, EM3
HAD_DEPTHS = (14.0, 40.0)                # HAD1, HAD2 (HAD3: the rest)
SAMPLING_EM, SAMPLING_HAD = 0.10, 0.50   # stochastic terms, sqrt(GeV)

# lateral (B4): per layer (core sigma, tail scale, tail fraction) in eta-phi units
LATERAL = {
    "em": np.array([[0.012, 0.035, 0.35], [0.006, 0.020, 0.30], [0.008, 0.022, 0.30],
                    [0.015, 0.040, 0.40], [0.030, 0.060, 0.40], [0.040, 0.080, 0.40], [0.050, 0.090, 0.40]]),
    "hadron": np.array([[0.030, 0.070, 0.50], [0.030, 0.070, 0.50], [0.035, 0.075, 0.50],
                        [0.040, 0.080, 0.50], [0.050, 0.090, 0.50], [0.060, 0.100, 0.50], [0.070, 0.110, 0.50]]),
}
TAIL_JITTER = 0.25

# electrons (B5) and jets (B6)
BREM_PROB, BREM_FRAC = 0.5, (0.05, 0.40)
BREM_DPHI = 0.3            # rad GeV
PI0_MASS = 0.135
LEAD_FRAC = (0.30, 0.95)
HALO_MEAN, HALO_MAX, HALO_SPREAD = 2.5, 4, 0.06
HAD_FRAC = (0.02, 0.50)
HAD_MAX, HAD_SPREAD = 3, 0.05
HAD_LONG = np.array([0.01, 0.04, 0.12, 0.10, 0.45, 0.21, 0.07])
HAD_CONCENTRATION = 20.0

# noise (B7), MeV
NOISE_EL = np.array([25.0, 8.0, 25.0, 15.0, 80.0, 80.0, 80.0])
NOISE_PU = np.array([40.0, 10.0, 40.0, 20.0, 80.0, 80.0, 80.0])

CHUNK = 2048


# ------------------------------------------------------------------ data holders
@dataclass
class CellEvents:
    """Cells of n events: per layer eta (n, ce), phi (n, cp) centres and energy (n, ce, cp) GeV."""

    eta: list
    phi: list
    energy: list
    eta_c: np.ndarray
    phi_c: np.ndarray
    et: np.ndarray
    eta_true: np.ndarray
    mu: np.ndarray
    is_electron: np.ndarray

    def layer_cells(self, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flattened (n, cells) eta, phi, energy of layer l (for rings.build_rings)."""
        n, ne, npx = self.energy[l].shape
        eta = np.broadcast_to(self.eta[l][:, :, None], (n, ne, npx)).reshape(n, -1)
        phi = np.broadcast_to(self.phi[l][:, None, :], (n, ne, npx)).reshape(n, -1)
        return eta, phi, self.energy[l].reshape(n, -1)

    def rings(self) -> np.ndarray:
        return R.build_rings([self.layer_cells(l) for l in range(len(LAYER_NAMES))], self.eta_c, self.phi_c)


@dataclass
class RingEvents:
    rings: np.ndarray         # (n, 100) float32, E_T in GeV (not normalised)
    et: np.ndarray            # GeV (B1)
    eta: np.ndarray           # signed
    mu: np.ndarray
    is_electron: np.ndarray   # bool
    shapes: dict              # shape variables per event (R_eta, fractions), see shape_variables

    def __len__(self) -> int:
        return len(self.et)

    def normalised(self) -> np.ndarray:
        return R.norm1(self.rings).astype(np.float32)

    @property
    def bin(self) -> np.ndarray:
        return assign_bin(self.et, self.eta)

    def take(self, sel) -> "RingEvents":
        return RingEvents(self.rings[sel], self.et[sel], self.eta[sel], self.mu[sel], self.is_electron[sel],
                          {k: v[sel] for k, v in self.shapes.items()})

    @staticmethod
    def concatenate(parts: list["RingEvents"]) -> "RingEvents":
        return RingEvents(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                            ("rings", "et", "eta", "mu", "is_electron")),
                          {k: np.concatenate([p.shapes[k] for p in parts]) for k in parts[0].shapes})


def assign_bin(et, eta) -> np.ndarray:
    """Flat bin index et_bin * 5 + eta_bin in 0..24 for E_T (GeV) >= 15 and |eta| <= 2.5;
    -1 outside.  Bins are closed on the left: [15, 20), ..., [50, inf) x [0, 0.8), ...,
    [2.37, 2.5] (|eta| = 2.5 belongs to the last bin)."""
    et = np.asarray(et, dtype=np.float64)
    aeta = np.abs(np.asarray(eta, dtype=np.float64))
    ie = np.searchsorted(ET_EDGES, et, side="right") - 1
    ia = np.searchsorted(ETA_EDGES, aeta, side="right") - 1
    ia = np.where(aeta == ETA_EDGES[-1], len(ETA_EDGES) - 2, ia)
    ok = (ie >= 0) & (ie < len(ET_EDGES) - 1) & (ia >= 0) & (ia < len(ETA_EDGES) - 1)
    return np.where(ok, ie * (len(ETA_EDGES) - 1) + ia, -1)


def bin_label(b: int) -> str:
    ie, ia = divmod(int(b), len(ETA_EDGES) - 1)
    hi = "inf" if np.isinf(ET_EDGES[ie + 1]) else f"{ET_EDGES[ie + 1]:g}"
    return f"ET[{ET_EDGES[ie]:g},{hi}) |eta|[{ETA_EDGES[ia]:g},{ETA_EDGES[ia + 1]:g})"


# ------------------------------------------------------------------ physics pieces
def upstream_x0(aeta: np.ndarray) -> np.ndarray:
    return np.where(aeta < 1.37, 2.5 + 1.5 * aeta ** 2, np.where(aeta < 1.54, 6.5, 3.5))


def width_scale(aeta: np.ndarray) -> np.ndarray:
    endcap = 1.5 / (3.8 / np.sinh(np.maximum(aeta, 1e-3)))
    return np.where(aeta < 1.37, 1.0, np.where(aeta < 1.54, 1.3, np.maximum(endcap, 1.0)))


def em_fractions(energy: np.ndarray, aeta: np.ndarray, c: float, start: np.ndarray,
                 a_jit: np.ndarray) -> np.ndarray:
    """Fractions of an EM shower's energy per layer (..., 7) (B3); the rest is lost upstream."""
    tmax = np.log(np.maximum(energy, 0.05) / CRITICAL_E) + c
    a = np.maximum((1 + GAMMA_B * tmax) * (1 + A_JITTER * a_jit), 1.2)
    up = upstream_x0(aeta)
    bounds = [up - PS_DEPTH, up]
    for d in EM_DEPTHS + HAD_DEPTHS:
        bounds.append(bounds[-1] + d)
    cdf = [gammainc(a, GAMMA_B * np.maximum(t - start, 0.0)) for t in bounds]
    fr = [cdf[i + 1] - cdf[i] for i in range(len(cdf) - 1)] + [1 - cdf[-1]]
    return np.stack(fr, axis=-1)


def _cdf_diff_gauss(lo, hi, s):
    return ndtr(hi / s) - ndtr(lo / s)


def _laplace_cdf(x, b):
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / b), 1 - 0.5 * np.exp(-np.maximum(x, 0) / b))


def _cdf_diff_laplace(lo, hi, b):
    return _laplace_cdf(hi, b) - _laplace_cdf(lo, b)


def _grid(centre: np.ndarray, cell: float, half: int, phi: bool) -> np.ndarray:
    """Centres (n, 2 half + 1) of the window cells around the cell containing `centre`."""
    off = -np.pi if phi else 0.0
    i0 = np.floor((centre - off) / cell).astype(np.int64)
    idx = i0[:, None] + np.arange(-half, half + 1)[None, :]
    c = off + (idx + 0.5) * cell
    return R.wrap_phi(c) if phi else c


def deposit(eta_grid, phi_grid, cell_eta, cell_phi, comp_eta, comp_phi, comp_e, sigma, tail, w) -> np.ndarray:
    """Energy (n, ne, np) of K separable core+tail components: comp_* (n, K); sigma, tail,
    w (n, K)."""
    de = eta_grid[:, None, :] - comp_eta[:, :, None]                   # (n, K, ne)
    dp = R.wrap_phi(phi_grid[:, None, :] - comp_phi[:, :, None])        # (n, K, np)
    he, hp = cell_eta / 2, cell_phi / 2
    s, b = sigma[:, :, None], tail[:, :, None]
    core = np.einsum("nk,nki,nkj->nij", comp_e * (1 - w), _cdf_diff_gauss(de - he, de + he, s),
                     _cdf_diff_gauss(dp - hp, dp + hp, s))
    halo = np.einsum("nk,nki,nkj->nij", comp_e * w, _cdf_diff_laplace(de - he, de + he, b),
                     _cdf_diff_laplace(dp - hp, dp + hp, b))
    return core + halo


# ------------------------------------------------------------------ generation
def _kinematics(rng, n):
    b = rng.integers(0, N_BINS, n)
    ie, ia = np.divmod(b, len(ETA_EDGES) - 1)
    et_hi = np.minimum(ET_EDGES[ie + 1], ET_MAX_GEN)
    et = ET_EDGES[ie] + (et_hi - ET_EDGES[ie]) * rng.random(n)
    aeta = ETA_EDGES[ia] + (ETA_EDGES[ia + 1] - ETA_EDGES[ia]) * rng.random(n)
    eta = np.where(rng.random(n) < 0.5, -aeta, aeta)
    phi = rng.uniform(-np.pi, np.pi, n)
    mu = rng.uniform(*MU_RANGE, n)
    return et, eta, phi, mu


def _components(rng, kind, et, eta, phi):
    """Per event K components: eta, phi, energy (GeV), kind code (0 electron, 1 photon,
    2 hadron); unused components have zero energy."""
    n = len(et)
    ch = np.cosh(eta)
    if kind == "electron":
        q = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        brem = rng.random(n) < BREM_PROB
        y = np.where(brem, rng.uniform(*BREM_FRAC, n), 0.0)
        dphi = q * rng.random(n) * BREM_DPHI / et
        e = et * ch
        ceta = np.stack([eta, eta], 1)
        cphi = np.stack([phi, R.wrap_phi(phi + dphi)], 1)
        ce = np.stack([e * (1 - y), e * y], 1)
        code = np.array([0, 1])[None, :].repeat(n, 0)
        return ceta, cphi, ce, code
    # jets
    e_gamma = et * ch                                         # photons' energy (B1)
    lead = rng.uniform(*LEAD_FRAC, n)
    z = rng.uniform(0.02, 0.98, n)
    e_pi0 = e_gamma * lead
    open_angle = PI0_MASS / (e_pi0 * np.sqrt(z * (1 - z))) * ch
    psi = rng.uniform(0, 2 * np.pi, n)
    g1 = (eta + (1 - z) * open_angle * np.cos(psi), phi + (1 - z) * open_angle * np.sin(psi))
    g2 = (eta - z * open_angle * np.cos(psi), phi - z * open_angle * np.sin(psi))
    n_halo = np.clip(rng.poisson(HALO_MEAN, n), 1, HALO_MAX)
    share = rng.dirichlet(np.ones(HALO_MAX), n) * (np.arange(HALO_MAX)[None, :] < n_halo[:, None])
    share = share / share.sum(1, keepdims=True)
    h_eta = eta[:, None] + rng.normal(0, HALO_SPREAD, (n, HALO_MAX))
    h_phi = phi[:, None] + rng.normal(0, HALO_SPREAD, (n, HALO_MAX))
    h_e = (e_gamma * (1 - lead))[:, None] * share
    f_had = np.exp(rng.uniform(np.log(HAD_FRAC[0]), np.log(HAD_FRAC[1]), n))
    e_had = e_gamma * f_had / (1 - f_had)
    n_h = np.clip(1 + rng.poisson(1.0, n), 1, HAD_MAX)
    hshare = rng.dirichlet(np.ones(HAD_MAX), n) * (np.arange(HAD_MAX)[None, :] < n_h[:, None])
    hshare = hshare / hshare.sum(1, keepdims=True)
    ha_eta = eta[:, None] + rng.normal(0, HAD_SPREAD, (n, HAD_MAX))
    ha_phi = phi[:, None] + rng.normal(0, HAD_SPREAD, (n, HAD_MAX))
    ceta = np.concatenate([g1[0][:, None], g2[0][:, None], h_eta, ha_eta], 1)
    cphi = R.wrap_phi(np.concatenate([g1[1][:, None], g2[1][:, None], h_phi, ha_phi], 1))
    ce = np.concatenate([(e_pi0 * z)[:, None], (e_pi0 * (1 - z))[:, None], h_e, e_had[:, None] * hshare], 1)
    code = np.array([1, 1] + [1] * HALO_MAX + [2] * HAD_MAX)[None, :].repeat(n, 0)
    return ceta, cphi, ce, code


def _chunk(kind: str, n: int, rng) -> CellEvents:
    et, eta, phi, mu = _kinematics(rng, n)
    ceta, cphi, ce, code = _components(rng, kind, et, eta, phi)
    aeta = np.abs(eta)
    K = ce.shape[1]
    # longitudinal fractions per component
    start = np.where(code == 1, rng.exponential(9.0 / 7.0, (n, K)), 0.0)
    a_jit = rng.normal(0, 1, (n, K))
    c = np.where(code == 0, C_ELECTRON, C_PHOTON)
    frac_em = em_fractions(ce, aeta[:, None], c, start, a_jit)                     # (n, K, 7)
    frac_had = np.stack([rng.dirichlet(HAD_LONG * HAD_CONCENTRATION, n) for _ in range(K)], 1)
    frac = np.where((code == 2)[..., None], frac_had, frac_em)
    e_layer = ce[..., None] * frac
    stoch = np.where((code == 2)[..., None], SAMPLING_HAD, SAMPLING_EM)
    e_layer = e_layer * (1 + stoch / np.sqrt(np.maximum(e_layer, 1e-3)) * rng.normal(0, 1, e_layer.shape))
    e_layer = np.maximum(e_layer, 0.0)
    scale = width_scale(aeta)[:, None]
    tail_jit = np.exp(TAIL_JITTER * rng.normal(0, 1, (n, K)))
    etas, phis, energies = [], [], []
    for l in range(len(LAYER_NAMES)):
        eg = _grid(eta, CELL_DETA[l], HALF_ETA[l], phi=False)
        pg = _grid(phi, CELL_DPHI[l], HALF_PHI[l], phi=True)
        lat = np.where((code == 2)[..., None], LATERAL["hadron"][l], LATERAL["em"][l])  # (n, K, 3)
        w = np.clip(lat[..., 2] * tail_jit, 0.0, 0.9)
        e = deposit(eg, pg, CELL_DETA[l], CELL_DPHI[l], ceta, cphi, e_layer[..., l],
                    lat[..., 0] * scale, lat[..., 1] * scale, w)
        sigma = 1e-3 * np.sqrt(NOISE_EL[l] ** 2 + (mu / 50.0) * NOISE_PU[l] ** 2)     # GeV
        e = e + sigma[:, None, None] * rng.normal(0, 1, e.shape)
        etas.append(eg)
        phis.append(pg)
        energies.append(e)
    return CellEvents(etas, phis, energies, eta, phi, et, eta, mu, np.full(n, kind == "electron"))


def generate_cells(kind: str, n: int, seed: int) -> CellEvents:
    """n events of one kind ("electron" or "jet") with all their cells (n <= CHUNK)."""
    if kind not in ("electron", "jet"):
        raise ValueError(f"kind must be 'electron' or 'jet', not {kind!r}")
    if n > CHUNK:
        raise ValueError(f"generate_cells makes at most {CHUNK} events; use generate()")
    return _chunk(kind, n, np.random.default_rng([seed, 0]))


def shape_variables(cells: CellEvents) -> dict:
    """R_eta in EM2 (E(3x7)/E(7x7) around the hottest EM2 cell), layer fractions of the
    summed cell energy, and the hadronic fraction."""
    e2 = cells.energy[2]
    n, ne, npx = e2.shape
    ci, cj = HALF_ETA[2], HALF_PHI[2]
    win = e2[:, ci - 2:ci + 3, cj - 2:cj + 3].reshape(n, -1)     # hottest within +-2 cells
    k = np.argmax(win, 1)
    hi, hj = ci - 2 + k // 5, cj - 2 + k % 5
    rows = np.arange(n)

    def box(de, dp):
        tot = np.zeros(n)
        for a in range(-de, de + 1):
            for b in range(-dp, dp + 1):
                tot += e2[rows, np.clip(hi + a, 0, ne - 1), np.clip(hj + b, 0, npx - 1)]
        return tot
    e37, e77 = box(1, 3), box(3, 3)
    layer_e = np.stack([e.reshape(n, -1).sum(1) for e in cells.energy], 1)
    tot = layer_e.sum(1)
    out = {"r_eta": e37 / np.where(e77 != 0, e77, 1.0)}
    for l, name in enumerate(LAYER_NAMES):
        out[f"f_{name}"] = layer_e[:, l] / np.where(tot != 0, tot, 1.0)
    out["f_had"] = layer_e[:, 4:].sum(1) / np.where(tot != 0, tot, 1.0)
    return out


def generate(kind: str, n: int, seed: int) -> RingEvents:
    """n events of one kind as rings (not normalised) plus labels and shape variables."""
    if kind not in ("electron", "jet"):
        raise ValueError(f"kind must be 'electron' or 'jet', not {kind!r}")
    parts = []
    for i, start in enumerate(range(0, n, CHUNK)):
        cells = _chunk(kind, min(CHUNK, n - start), np.random.default_rng([seed, i]))
        shapes = {k: v.astype(np.float32) for k, v in shape_variables(cells).items()}
        parts.append(RingEvents(cells.rings().astype(np.float32), cells.et, cells.eta_true, cells.mu,
                                cells.is_electron, shapes))
    return RingEvents.concatenate(parts)
