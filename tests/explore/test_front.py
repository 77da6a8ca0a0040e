"""The presentation of an exploration (nnfpga.explore.front): objective choice, Pareto
dominance, and the written front.md / front.csv / plots / index.html (fast, no Dask)."""

from __future__ import annotations

import copy
import csv
import io
import re

import pytest

from nnfpga.explore.front import (Objective, objectives, pareto_front, write_front_outputs)


def point(index: int, latency_ns: float, lut: int, dsp: int = 10, **extra) -> dict:
    """An ok, fitting, clock-meeting record; ``extra`` overrides any field."""
    r = {"index": index, "key": f"{index:016x}", "status": "ok", "error": None,
         "params": {"reuse": index % 4 + 1, "clock": "240MHz"}, "target": "xcvu9p", "clock_mhz": 240.0,
         "latency_cycles": int(latency_ns * 0.24), "latency_ns": float(latency_ns), "ii_cycles": 1,
         "est_lut": lut, "est_ff": 2 * lut, "est_dsp": dsp, "est_bram": 0, "est_fmax_mhz": 300.0,
         "fits": True, "meets_clock": True,
         "syn_lut": None, "syn_ff": None, "syn_dsp": None, "syn_bram": None, "syn_carry8": None,
         "syn_fmax_mhz": None, "acc_max_deviation": None, "acc_mean_deviation": None,
         "acc_agreement": None, "acc_auc": None, "acc_auc_reference": None, "acc_accuracy": None,
         "acc_accuracy_reference": None, "command": f"nnfpga compile model.h5 --reuse {index % 4 + 1} -o out/{index}"}
    r.update(extra)
    return r


def failed(index: int, error: str = "compile failed") -> dict:
    r = point(index, 1.0, 1, 0)
    for k in list(r):
        if k.startswith(("est_", "syn_", "acc_", "latency", "ii_")) or k in ("fits", "meets_clock"):
            r[k] = None
    r.update(status="error", error=error)
    return r


def indices(records: list[dict]) -> list[int]:
    return [r["index"] for r in records]


# The trade-off curve latency x LUT = 10,000 (every point on it is optimal), and points
# each dominated by one of them by construction.
CURVE = [point(0, 10, 1000), point(1, 20, 500), point(2, 40, 250), point(3, 80, 125)]
DOMINATED = [point(4, 20, 600),           # by 1: same latency, more LUT
             point(5, 40, 250, dsp=11),   # by 2: one more DSP
             point(6, 90, 125),           # by 3: slower
             point(7, 100, 2000, dsp=50)]  # by everything


# ----------------------------------------------------------------------------- dominance
def test_front_of_a_known_trade_off_curve():
    records = DOMINATED[:2] + CURVE + DOMINATED[2:]
    front = pareto_front(records, objectives(records))
    assert indices(front) == [0, 1, 2, 3]   # sorted by latency, LUT, index


def test_equal_points_are_all_kept():
    twin = point(8, 40, 250)
    records = CURVE + DOMINATED + [twin]
    assert indices(pareto_front(records, objectives(records))) == [0, 1, 2, 8, 3]


def test_three_objectives_keep_a_point_better_in_only_one():
    # slower and bigger than point 1 in LUT, but the fewest DSP: on the front
    records = CURVE + [point(9, 30, 900, dsp=1)]
    assert indices(pareto_front(records, objectives(records))) == [0, 1, 9, 2, 3]


def test_failed_non_fitting_and_slow_clock_points_are_never_on_the_front():
    # each of these would dominate the whole curve if it counted
    tiny = (1.0, 1, 0)
    records = CURVE + [failed(10), point(11, *tiny, fits=False), point(12, *tiny, meets_clock=False),
                       point(13, *tiny, status="error", error="yosys crashed"),
                       point(14, *tiny, fits=None)]
    assert indices(pareto_front(records, objectives(records))) == [0, 1, 2, 3]


def test_a_point_missing_an_objective_figure_is_left_out():
    nan_latency = point(16, 1.0, 1, 0)
    nan_latency["latency_ns"] = float("nan")
    records = CURVE + [point(15, 1.0, 1, 0, est_dsp=None), nan_latency]
    assert indices(pareto_front(records, objectives(records))) == [0, 1, 2, 3]


def test_a_maximised_objective_prefers_the_higher_value():
    records = [point(0, 10, 100, acc_auc=0.90), point(1, 10, 100, acc_auc=0.95),
               point(2, 10, 90, acc_auc=0.80)]
    objs = objectives(records)
    assert objs[-1] == Objective("acc_auc", "max", "AUC")
    assert indices(pareto_front(records, objs)) == [2, 1]


def test_a_bad_sense_is_refused():
    with pytest.raises(ValueError):
        pareto_front(CURVE, [Objective("latency_ns", "smallest", "latency")])


# ----------------------------------------------------------------------------- objectives
def test_objectives_use_yosys_figures_when_any_ok_point_has_them():
    assert [o.column for o in objectives(CURVE)] == ["latency_ns", "est_lut", "est_dsp"]
    synth = copy.deepcopy(CURVE)
    synth[2].update(syn_lut=240, syn_dsp=9)
    objs = objectives(synth)
    assert [o.column for o in objs] == ["latency_ns", "syn_lut", "syn_dsp"]
    assert objs[1].label == "LUT (Yosys)" and all(o.sense == "min" for o in objs)
    # LUT and DSP are chosen independently
    only_lut = copy.deepcopy(CURVE)
    only_lut[0]["syn_lut"] = 990
    assert [o.column for o in objectives(only_lut)][1:] == ["syn_lut", "est_dsp"]
    # a failed point's figures do not count
    f = failed(20)
    f["syn_lut"] = 5
    assert objectives(CURVE + [f])[1].column == "est_lut"


def test_accuracy_objective_prefers_auc_then_accuracy_then_deviation():
    def acc(**figures):
        records = copy.deepcopy(CURVE)
        records[1].update(figures)
        objs = objectives(records)
        return (objs[3].column, objs[3].sense) if len(objs) == 4 else None

    assert acc() is None
    assert acc(acc_max_deviation=0.01) == ("acc_max_deviation", "min")
    assert acc(acc_max_deviation=0.01, acc_accuracy=0.9) == ("acc_accuracy", "max")
    assert acc(acc_max_deviation=0.01, acc_accuracy=0.9, acc_auc=0.95) == ("acc_auc", "max")
    # FF is shown, never an objective
    assert all("ff" not in o.column for o in objectives(CURVE))


# ----------------------------------------------------------------------------- outputs
def sweep() -> list[dict]:
    records = copy.deepcopy(CURVE + DOMINATED) + [failed(8), point(9, 5, 50, fits=False)]
    for i, r in enumerate(records):
        r["params"] = {"reuse": [1, 2, 4, 8][i % 4], "clock": "240MHz", "config": f"c{i % 2}.yml"}
        if r["status"] == "ok":   # the curve has the best AUC, so the front stays the curve
            r["acc_auc"] = 0.95 if i < len(CURVE) else 0.9
            r["acc_auc_reference"] = 0.96
    records[3]["params"]["pruning.sparsity"] = 0.5   # a key only some points have
    return records


def read_all(directory, files) -> dict[str, bytes]:
    return {f: (directory / f).read_bytes() for f in files}


def test_outputs_are_written_and_listed(tmp_path):
    out = write_front_outputs(tmp_path, sweep(), "muon CNN on xcvu9p")
    assert out["files"] == ["front.md", "front.csv", "plots/latency_vs_lut.png", "plots/latency_vs_dsp.png",
                            "plots/accuracy_vs_lut.png", "index.html"]
    assert indices(out["front"]) == [0, 1, 2, 3]
    assert [o.column for o in out["objectives"]] == ["latency_ns", "est_lut", "est_dsp", "acc_auc"]
    for f in out["files"]:
        assert (tmp_path / f).stat().st_size > 0
    for f in out["files"]:
        if f.endswith(".png"):
            assert (tmp_path / f).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # no temporary file is left behind
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]

    md = (tmp_path / "front.md").read_text()
    assert md.startswith("# muon CNN on xcvu9p\n")
    assert "analytic estimate" in md and "AUC" in md
    header = next(line for line in md.splitlines() if line.startswith("| "))
    assert "reuse" in header and "clock" in header and "config" in header and "pruning.sparsity" in header
    for i in (0, 1, 2, 3):
        assert f"```sh\nnnfpga compile model.h5 --reuse {i + 1} -o out/{i}\n```" in md
    assert "10 points: 9 ok, 1 failed, 1 not fitting the part or missing the clock; 4 on the front." in md

    rows = list(csv.reader(io.StringIO((tmp_path / "front.csv").read_text())))
    assert rows[0][:5] == ["index", "reuse", "clock", "config", "pruning.sparsity"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert rows[4][4] == "0.5" and rows[1][4] == ""
    assert "acc_auc" in rows[0] and "acc_auc_reference" in rows[0] and "acc_agreement" not in rows[0]

    html = (tmp_path / "index.html").read_text()
    for f in out["files"]:
        if f.endswith(".png"):
            assert f"src='{f}'" in html
    assert "base64" not in html
    assert "compile failed" in html   # failed points are in the table of all points
    rows = {m.group(2): m.group(1) for m in re.finditer(r"<tr class='(\w+)'><td>(\d+)</td>", html)}
    assert rows["8"] == "failed" and rows["9"] == "excluded" and rows["0"] == "front"


def test_objectives_sentence_says_which_figures(tmp_path):
    synth = copy.deepcopy(CURVE)
    for r in synth:
        r.update(syn_lut=r["est_lut"], syn_dsp=r["est_dsp"])
    write_front_outputs(tmp_path / "syn", synth, "t")
    assert "Resources are from Yosys synthesis" in (tmp_path / "syn" / "front.md").read_text()
    synth[0]["syn_dsp"] = None
    for r in synth[1:]:
        r["syn_dsp"] = None
    write_front_outputs(tmp_path / "mixed", synth, "t")
    md = (tmp_path / "mixed" / "front.md").read_text()
    assert "LUT from Yosys synthesis" in md and "DSP from the analytic estimate" in md


def test_no_accuracy_plot_without_accuracy(tmp_path):
    out = write_front_outputs(tmp_path, CURVE, "t")
    assert "plots/accuracy_vs_lut.png" not in out["files"]
    assert "accuracy_vs_lut" not in (tmp_path / "index.html").read_text()


def test_outputs_are_deterministic(tmp_path):
    records = sweep()
    first = write_front_outputs(tmp_path / "a", records, "t")
    again = write_front_outputs(tmp_path / "a", records, "t")   # overwrite in place
    assert first["files"] == again["files"]
    a = read_all(tmp_path / "a", first["files"])
    # another folder, the records in another order, different run-dependent fields
    shuffled = copy.deepcopy(records[::-1])
    for i, r in enumerate(shuffled):
        r.update(seconds=12.5 + i, worker=f"tcp://10.0.0.{i}:4000", finished_utc=f"2026-01-0{i % 9 + 1}T00:00:00Z")
    write_front_outputs(tmp_path / "b", shuffled, "t")
    b = read_all(tmp_path / "b", first["files"])
    for f in first["files"]:
        assert a[f] == b[f], f"{f} differs between two writes of the same records"
    for png in (v for f, v in a.items() if f.endswith(".png")):
        assert b"Software" not in png and b"matplotlib" not in png


def test_user_text_is_escaped(tmp_path):
    records = sweep()
    records[0]["params"]["clock"] = "<script>alert(1)</script>"
    records[1]["params"]["config"] = "a|b.yml"
    records[1]["params"]["evil<b>name</b>"] = "$x$"
    records[8]["error"] = "<img src=x onerror=alert(1)> failed\nsecond line"
    records[2]["command"] = "nnfpga compile '<script>.h5' -o out"
    out = write_front_outputs(tmp_path, records, "<i>title</i> $a$")
    html = (tmp_path / "index.html").read_text()
    assert "<script" not in html and "<img src=x" not in html and "<i>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt; failed\\nsecond line" in html

    md = (tmp_path / "front.md").read_text()
    assert "<script>alert" not in md and "<i>" not in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    unescaped = [len(re.findall(r"(?<!\\)\|", line)) for line in table]
    assert len(set(unescaped)) == 1, "a | in a value split a table cell"
    assert "a\\|b.yml" in md
    # commands stay verbatim in their code block, so they can be pasted
    assert "```sh\nnnfpga compile '<script>.h5' -o out\n```" in md
    # the CSV keeps the values as given (quoting is the csv module's)
    rows = list(csv.reader(io.StringIO((tmp_path / "front.csv").read_text())))
    assert "a|b.yml" in rows[2] and "<script>alert(1)</script>" in rows[1]
    assert "plots/latency_vs_lut.png" in out["files"]   # matplotlib took the $...$ title


def test_a_command_with_backticks_keeps_its_code_block_closed(tmp_path):
    records = copy.deepcopy(CURVE)
    records[0]["command"] = "nnfpga compile 'm```x.h5' -o out"
    write_front_outputs(tmp_path, records, "t")
    md = (tmp_path / "front.md").read_text()
    assert "````sh\nnnfpga compile 'm```x.h5' -o out\n````" in md


def test_an_empty_front_says_so(tmp_path):
    records = [failed(0, "out of memory"), failed(1, "parse error")]
    out = write_front_outputs(tmp_path, records, "all failed")
    assert out["front"] == []
    md = (tmp_path / "front.md").read_text()
    assert "No design point is on the front" in md
    assert "2 points: 0 ok, 2 failed" in md
    assert (tmp_path / "front.csv").read_text().count("\n") == 1   # the header only
    html = (tmp_path / "index.html").read_text()
    assert "No design point is on the front" in html and "out of memory" in html
    assert set(out["files"]) >= {"plots/latency_vs_lut.png", "plots/latency_vs_dsp.png"}

    # points that compiled but none fits: the front is empty too, the points are plotted
    big = [point(0, 10, 100, fits=False), point(1, 20, 50, meets_clock=False)]
    out = write_front_outputs(tmp_path / "none_fit", big, "none fit")
    assert out["front"] == []
    assert "2 not fitting the part or missing the clock" in (tmp_path / "none_fit" / "front.md").read_text()

    out = write_front_outputs(tmp_path / "empty", [], "no points")
    assert out["front"] == [] and "0 points" in (tmp_path / "empty" / "front.md").read_text()
