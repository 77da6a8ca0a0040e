"""HGQ2 models (Keras 3 ``.keras``, heterogeneous per-element bitwidths): compiled with
default settings, the golden model equals HGQ2's own ``model.predict`` bit for bit; the
firmware equals the golden model in Verilator, GHDL and C-sim (slow).

HGQ2 needs Keras 3 with JAX, which cannot share the main environment: the models are
built by ``tests/hgq2/make_models.py`` run with ``.venv-peers`` (made by
``scripts/setup-peers.sh``, which ``scripts/setup.sh`` runs).  Without it these tests fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnfpga.api import compile as nnfpga_compile
from nnfpga.api import emulate
from nnfpga.compiler.frontends.keras import LAYER_OPS
from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.ops import Quantize
from nnfpga.ir.ops.base import TensorInfo
from tests.firmware_check import assert_firmware_bit_exact

ROOT = Path(__file__).resolve().parents[1]
MAKE_MODELS = ROOT / "tests" / "hgq2" / "make_models.py"
MODELS = ("dense_seq", "dense_functional", "conv")


def _peers_python() -> Path:
    """The .venv-peers interpreter of this checkout (``NNFPGA_PEERS_PYTHON``: another one)."""
    py = Path(os.environ.get("NNFPGA_PEERS_PYTHON") or ROOT / ".venv-peers" / "bin" / "python")
    if py.exists():
        return py
    pytest.fail(f"HGQ2 tests need .venv-peers (HGQ2, Keras 3, JAX; no {py}); create it with bash "
                "scripts/setup-peers.sh (scripts/setup.sh runs it)")


@pytest.fixture(scope="module")
def hgq2_models(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hgq2")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env["KERAS_BACKEND"] = "jax"
    run = subprocess.run([str(_peers_python()), str(MAKE_MODELS), str(out), *MODELS], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def _model_config(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


@pytest.mark.parametrize("name", MODELS)
def test_golden_equals_hgq2_predict(hgq2_models: Path, tmp_path: Path, name: str) -> None:
    data = np.load(hgq2_models / f"{name}.npz")
    result = nnfpga_compile(hgq2_models / f"{name}.keras", outdir=tmp_path / "fw")
    y = emulate(tmp_path / "fw", data["x"])
    assert y.shape == data["y"].shape
    assert np.array_equal(y, data["y"])
    # the outputs are not trivial: many distinct values, not all zero
    assert len(np.unique(data["y"])) > 50 and np.mean(data["y"] != 0) > 0.5
    ops = json.loads((tmp_path / "fw" / "ir.json").read_text())["nodes"]
    quantizers = [n for n in ops if n["op"] == "Quantize"]
    # every activation quantiser is a Quantize op, with heterogeneous bitwidths
    assert len(quantizers) >= 2
    for q in quantizers:
        assert len({tuple(x) for x in zip(np.ravel(q["integer"]), np.ravel(q["frac"]))}) > 1, q["name"]
    # each layer becomes only the IR ops the frontend's registry says (the README's table)
    classes = {lc["config"]["name"]: lc["class_name"] for lc in _model_config(hgq2_models / f"{name}.keras")
               ["config"]["layers"]}
    for node in ops[1:]:
        cls = classes[node["source_layer"]]
        assert node["op"] in LAYER_OPS.get(f"HGQ2 {cls}", LAYER_OPS.get(cls, ())), (node["name"], cls)
    # the report states what the test shows: no difference from HGQ2's own model
    assert result.report["accuracy"]["error_bound_vs_framework_max"] == 0.0


def test_heterogeneous_weights_are_exact_constants(hgq2_models: Path, tmp_path: Path) -> None:
    """The kernel's elements have bitwidths of their own: the constants lie on several
    grids (finest 2**-f of each element), not one."""
    nnfpga_compile(hgq2_models / "dense_seq.keras", outdir=tmp_path / "fw")
    ops = {n["name"]: n for n in json.loads((tmp_path / "fw" / "ir.json").read_text())["nodes"]}
    kq = ops["d1"]["kernel_q"]
    raw = np.asarray(kq["raw"], dtype=np.int64)
    nonzero = raw[raw != 0]
    trailing = {int((int(v) & -int(v)).bit_length() - 1) for v in nonzero}
    assert len(trailing) > 2   # values on several grids


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_firmware_bit_exact_in_simulators(hgq2_models: Path, tmp_path: Path, name: str) -> None:
    data = np.load(hgq2_models / f"{name}.npz")
    assert_firmware_bit_exact(hgq2_models / f"{name}.keras", data["x"][:128], tmp_path,
                              framework=data["y"][:128])


# ----------------------------------------------------------------------------- the Quantize op
def _reference(x: np.ndarray, k, i, f, rounding: str, overflow: str) -> np.ndarray:
    """HGQ2's fixed-point quantiser (``quantizers.fixed_point``) in float64, element by
    element: saturate (not WRAP), round at 2**-f, wrap (WRAP); width k+i+f <= 0 gives 0."""
    out = np.zeros_like(x)
    for e in np.ndindex(x.shape[1:]):
        kk, ii, ff = int(k[e]), int(i[e]), int(f[e])
        v = x[(slice(None), *e)]
        if kk + ii + ff <= 0:
            continue
        ii = max(ii, -ff)
        hi = 2.0 ** ii - 2.0 ** -ff
        lo = -hi * kk if overflow == "SAT_SYM" else -(2.0 ** ii) * kk
        if overflow != "WRAP":
            v = np.clip(v, lo, hi)
        s = v * 2.0 ** ff
        r = np.floor(s) if rounding == "TRN" else np.floor(s + 0.5) if rounding == "RND" else np.round(s)
        q = r / 2.0 ** ff
        if overflow == "WRAP":
            bias = kk * 2.0 ** (ii + kk - 1)
            q = np.mod(q + bias, 2.0 ** (ii + kk)) - bias
        out[(slice(None), *e)] = q
    return out


@pytest.mark.parametrize("rounding", ["TRN", "RND", "RND_CONV"])
@pytest.mark.parametrize("overflow", ["WRAP", "SAT", "SAT_SYM"])
def test_quantize_op_matches_hgq2_semantics(rounding: str, overflow: str) -> None:
    rng = np.random.default_rng(1)
    shape = (4, 5)
    k = rng.integers(0, 2, shape)
    i = rng.integers(-2, 4, shape)
    f = rng.integers(-1, 5, shape)
    k[0, 0], i[0, 0], f[0, 0] = 0, -2, 1            # width <= 0: the constant 0
    x_type = FixedType(14, 6, True)                  # raw at 8 fractional bits
    raw = rng.integers(x_type.min_raw, x_type.max_raw + 1, (400, *shape)).astype(np.float64)
    op = Quantize("q", ["x"], keep_negative=k, integer=i, frac=f, rounding=rounding, overflow=overflow)
    x_info = TensorInfo(shape, x_type, x_type.min_raw, x_type.max_raw)
    op.info = op.infer([x_info])
    y = op.info.type.to_float(op.emulate([raw], [x_info]))
    assert np.array_equal(y, _reference(x_type.to_float(raw), k, i, f, rounding, overflow))
    y_raw = op.emulate([raw], [x_info])
    assert y_raw.min() >= op.info.lo and y_raw.max() <= op.info.hi   # the range analysis holds


def test_quantize_range_is_tight_for_a_narrow_input() -> None:
    """An input that cannot overflow an element keeps its range through it."""
    op = Quantize("q", ["x"], keep_negative=np.array([1, 1]), integer=np.array([3, 5]), frac=np.array([2, 4]),
                  rounding="RND", overflow="WRAP")
    t = FixedType(8, 4, True, Rounding.TRN, Overflow.WRAP)
    info = op.infer([TensorInfo((2,), t, -8, 8)])   # [-0.5, 0.5]
    assert info.type.frac == 4 and (info.lo, info.hi) == (-8, 8)


# ----------------------------------------------------------------------------- refusals
def _write_keras(path: Path, layers: list[dict], weights: dict[str, list[np.ndarray]] | None = None) -> Path:
    """A hand-written .keras archive: ``weights`` maps a group path under ``layers/``
    (e.g. ``quantizer/quantizer/vars``) to its numbered variables."""
    import h5py
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "m", "layers": layers}}
    blob = path.with_suffix(".weights.h5")
    with h5py.File(blob, "w") as f:
        g = f.create_group("layers")
        for key, arrays in (weights or {}).items():
            v = g.require_group(key)
            for n, a in enumerate(arrays):
                v.create_dataset(str(n), data=a)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.write(blob, "model.weights.h5")
    return path


def test_hgq_v1_model_is_refused_by_name(tmp_path: Path) -> None:
    """An HGQ (v1) model (HQuantize -> HDense), as a minimal hand-written config."""
    import h5py
    layers = [{"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 4]}},
              {"class_name": "HQuantize", "config": {"name": "hq", "beta": 0.0}},
              {"class_name": "HDense", "config": {"name": "hd", "units": 2, "activation": "linear"}}]
    path = tmp_path / "hgq1.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "m", "layers": layers}})
        f.create_group("model_weights")
    with pytest.raises(UserError, match=r"'hq' \(HQuantize\), 'hd' \(HDense\) are HGQ \(v1\) layers; HGQ \(v1\) "
                                        r"models.*not supported.*HGQ2 models"):
        nnfpga_compile(path, outdir=tmp_path / "fw")


def _hgq2_layer(cls: str, name: str, **config) -> dict:
    return {"module": "hgq.layers", "class_name": cls, "registered_name": f"hgq>{cls}",
            "config": {"name": name, **config}}


def test_unsupported_hgq2_layer_is_refused_by_name(tmp_path: Path) -> None:
    path = _write_keras(tmp_path / "m.keras", [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}},
        _hgq2_layer("QEinsumDense", "ein", equation="ab,bc->ac")])
    with pytest.raises(UserError, match=r"layer 'ein' \(HGQ2 QEinsumDense\) is not supported; supported HGQ2 "
                                        r"layers: Quantizer, QDense, QConv2D, QMaxPooling2D"):
        nnfpga_compile(path, outdir=tmp_path / "fw")


def _quantizer_conf(**fields) -> dict:
    base = {"q_type": "kif", "place": "datalane", "scaler": None, "affine": None, "round_mode": "RND",
            "overflow_mode": "SAT", "trainable": True, "is_weight": False}
    return {"module": "hgq.quantizer.config", "class_name": "QuantizerConfig", "config": {**base, **fields}}


@pytest.mark.parametrize("fields, message", [
    ({"round_mode": "RND_ZERO"}, r"round mode 'RND_ZERO' is not supported; supported: TRN, RND, RND_CONV"),
    ({"overflow_mode": "WRAP_SM"}, r"overflow mode 'WRAP_SM' is not supported"),
    ({"q_type": "float"}, r"quantiser type 'float' is not supported"),
    ({"scaler": 2.0}, r"quantiser field 'scaler' is 2.0"),
])
def test_inexact_quantiser_settings_are_refused_by_name(tmp_path: Path, fields: dict, message: str) -> None:
    k, i, f = np.ones((1, 4)), np.full((1, 4), 2.0), np.full((1, 4), 3.0)
    path = _write_keras(tmp_path / "m.keras", [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}},
        _hgq2_layer("Quantizer", "inq", config=_quantizer_conf(**fields))],
        # a kif SAT quantiser's variables: the trainable i and f, then k
        {"quantizer/vars": [], "quantizer/quantizer/vars": [i, f, k]})
    with pytest.raises(UserError, match=r"layer 'inq' \(HGQ2 Quantizer\): quantiser 'quantizer': " + message):
        nnfpga_compile(path, outdir=tmp_path / "fw")


def test_hand_written_hgq2_quantizer_compiles(tmp_path: Path) -> None:
    """The same archive with supported settings compiles: the refusals above are about
    the field named, not the archive."""
    k, i, f = np.ones((1, 4)), np.array([[2.0, 1.0, 0.0, 3.0]]), np.array([[3.0, 1.0, 4.0, 0.0]])
    path = _write_keras(tmp_path / "m.keras", [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}},
        _hgq2_layer("Quantizer", "inq", config=_quantizer_conf()),
        _hgq2_layer("QDense", "d", units=1, use_bias=False, activation="linear", enable_iq=False,
                    kq_conf=_quantizer_conf(q_type="kbi", place="weight", overflow_mode="SAT_SYM", is_weight=True))],
        {"quantizer/vars": [], "quantizer/quantizer/vars": [i, f, k],
         "q_dense/vars": [np.array([[0.3], [-0.7], [1.1], [0.55]], dtype=np.float32)],
         # kbi SAT_SYM: the trainable b and i, then k
         "q_dense/kq/quantizer/vars": [np.full((4, 1), 4.0), np.full((4, 1), 1.0), np.ones((4, 1))]})
    nnfpga_compile(path, outdir=tmp_path / "fw")
    x = np.array([[1.0, -0.5, 0.0625, 7.0], [9.0, 0.3, -1.0, -9.0]])
    y = emulate(tmp_path / "fw", x)
    # inq: SAT, RND to 2**-3, 2**-1, 2**-4, 2**0 in [-4, 4), [-2, 2), [-1, 1), [-8, 8);
    # kernel: b=4, i=1 (f=3), SAT_SYM in [-1.875, 1.875]: 0.25, -0.75, 1.125, 0.5
    xq = np.array([[1.0, -0.5, 0.0625, 7.0], [3.875, 0.5, -1.0, -8.0]])
    assert np.array_equal(y[:, 0], xq @ np.array([0.25, -0.75, 1.125, 0.5]))


def test_float_activation_in_hgq2_layer_is_refused(hgq2_models: Path, tmp_path: Path) -> None:
    src = hgq2_models / "dense_seq.keras"
    with zipfile.ZipFile(src) as z:
        config = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    next(lc for lc in config["config"]["layers"] if lc["config"].get("name") == "d1")["config"]["activation"] = "tanh"
    path = tmp_path / "tanh.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    with pytest.raises(UserError, match=r"layer 'd1' \(HGQ2 QDense\): activation 'tanh' is not supported in an "
                                        r"HGQ2 layer; supported: linear and relu"):
        nnfpga_compile(path, outdir=tmp_path / "fw")


@pytest.mark.parametrize("rounding", ["TRN", "RND", "RND_CONV"])
@pytest.mark.parametrize("overflow", ["WRAP", "SAT", "SAT_SYM"])
def test_quantize_rtl_equals_golden(rounding: str, overflow: str) -> None:
    """Input -> Quantize -> Dense: the RTL description (netlist interpreter, which checks
    every signal's range) equals the golden model; elements of width 0, elements finer
    than the input (no bit dropped) and coarser ones (rounding) in one tensor."""
    from nnfpga.backends.rtl import evaluate, lower
    from nnfpga.compiler.passes.assign_types import assign_types
    from nnfpga.ir.emulator import run_raw
    from nnfpga.ir.graph import Graph
    from nnfpga.ir.ops import Dense, Input
    from nnfpga.ir.quant import Quantizer as WeightQuantizer
    from nnfpga.ir.quant import WeightKind
    rng = np.random.default_rng(3)
    n = 12
    k, i, f = rng.integers(0, 2, n), rng.integers(-1, 6, n), rng.integers(0, 7, n)
    k[1], i[1], f[1] = 1, 4, 6                       # holds the whole input, one bit finer: no bit dropped
    k[0], i[0], f[0] = 1, -1, 0                      # width 0
    kernel = np.eye(n)
    wq = WeightQuantizer(WeightKind.FIXED, FixedType(4, 2, True))
    graph = Graph("quantize_rtl", [
        Input("x", [], out_type=FixedType(10, 5, True), shape=(n,)),
        Quantize("q", ["x"], keep_negative=k, integer=i, frac=f, rounding=rounding, overflow=overflow),
        Dense("d", ["q"], kernel=kernel, bias=None, kernel_quantizer=wq)], ["d"])
    graph.nodes[2].kernel_q = wq.apply(kernel)
    assign_types(graph)
    x = rng.integers(-512, 512, (300, n))
    assert np.array_equal(evaluate(lower(graph), x), run_raw(graph, x))
