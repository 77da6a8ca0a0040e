"""The electron-ringer firmware benchmark on a small slice of its test sample: the banked
core's RTL simulation equals golden on every event, and the float-vs-firmware comparison
is computed from the arrays (slow: Keras predictions, two compiles, a Verilator build)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.electron_ringer import bench


def test_matched_threshold_never_exceeds_the_target_fa():
    rng = np.random.default_rng(0)
    bkg = np.round(rng.normal(0, 1, 500), 1)  # many ties
    for target in (0.0, 0.004, 0.01, 0.1, 0.5, 1.0):
        t = bench.matched_threshold(bkg, target)
        assert np.mean(bkg > t) <= target + 1e-12
        lower = bkg[bkg < t]
        if lower.size:  # the next lower candidate would exceed the target
            assert np.mean(bkg > lower.max()) > target


@pytest.mark.slow
def test_ringer_bench_small(tmp_path, verilator_installed):
    res = bench.run(reuse=4, outdir=tmp_path / "out", n_per_class=400, build_dir=tmp_path / "build")
    assert res["rtl_mismatches"] == 0 and res["rtl_bit_exact"]
    assert res["events"] == {"electrons": 400, "jets": 400, "total": 800}
    for f in ("results.json", "results.md", "roc_firmware.png", "pd_fa_bins.png"):
        assert (tmp_path / "out" / f).stat().st_size > 0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    o = saved["comparison"]["overall"]
    assert o["pd_difference"] == pytest.approx(o["firmware"]["pd"] - o["float"]["pd"])
    # the firmware is cut at no more than the float operating point's fake acceptance, per bin
    for row in saved["comparison"]["bins"]:
        assert row["firmware"]["fa"] <= row["float_trigger"]["fa"] + 1e-12
        assert row["float"]["fa"] <= row["float_trigger"]["fa"] + 1e-12
    assert set(saved["hardware"]) == {"240MHz", "320MHz"}
    assert all(h["ii_cycles"] == 4 for h in saved["hardware"].values())
