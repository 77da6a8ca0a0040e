"""The muon-trigger firmware benchmark on small samples: the RTL equals golden on every
event and the float-vs-firmware differences are computed from the two sets of figures
(slow: QKeras predictions, compiles at two clocks, Verilator builds)."""

from __future__ import annotations

import json

import pytest

from benchmarks.muon_trigger import bench


@pytest.mark.slow
def test_muon_bench_small(tmp_path, verilator_installed):
    res = bench.run(["dense_pt10", "mlp3_qpt"], tmp_path / "out", n_muons=1500, n_noise=1500,
                    build_dir=tmp_path / "build")
    assert res["rtl_bit_exact"] and res["rtl_events"] == 2 * 4 * 1500
    for f in ("results.json", "results.md", "turn_on_pt10.png", "turn_on_pt20.png", "pt_resolution.png"):
        assert (tmp_path / "out" / f).stat().st_size > 0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [m["model"] for m in saved["models"]] == ["dense_pt10", "mlp3_qpt"]
    for m in saved["models"]:
        for key, diffs in m["differences"].items():
            fl, fw = m["float"][key], m["firmware"][key]
            assert diffs["plateau efficiency"] == pytest.approx(
                fw["turn_on"]["plateau_efficiency"] - fl["turn_on"]["plateau_efficiency"])
            assert diffs["fake rate"] == pytest.approx(fw["fake_rate"]["rate"] - fl["fake_rate"]["rate"])
        assert set(m["hardware"]) == {"240MHz", "320MHz"}
        assert m["hardware"]["240MHz"]["latency_ns"] == pytest.approx(m["hardware"]["240MHz"]["latency_cycles"] / 0.24,
                                                                       abs=1e-3)
    assert "resolution" in saved["models"][1]["firmware"]


def test_differences_are_firmware_minus_float():
    def figures(eff, rate):
        return {"pt10": {"turn_on": {"plateau_efficiency": eff}, "turn_on_noise_x10": {"plateau_efficiency": eff},
                         "fake_rate": {"rate": rate}, "fake_rate_noise_x10": {"rate": rate}}}
    d = bench.differences(figures(0.99, 0.001), figures(0.98, 0.003))["pt10"]
    assert d["plateau efficiency"] == pytest.approx(-0.01) and d["fake rate, noise x10"] == pytest.approx(0.002)
