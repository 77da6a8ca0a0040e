"""The part database: the trigger devices with their vendor totals, DSP primitives,
packages and speed grades, the default full part number the build scripts get, and the
errors for unknown parts and impossible part numbers."""

from __future__ import annotations

import json

import pytest

from nnfpga.backends.rtl.dsp import dsp_shape, multiplier_dsp
from nnfpga.compiler.cli import main
from nnfpga.core.errors import UserError
from nnfpga.core.parts import find_part, known_parts, synth_family, yosys_family
from tests.conftest import MODELS

# LUT, FF, DSP, BRAM36, URAM from the product tables (DS923, DS922, DS890, DS891, DS180, DS950)
TOTALS = {
    "xcvu9p": (1182240, 2364480, 6840, 2160, 960),
    "xcvu11p": (1296000, 2592000, 9216, 2016, 960),
    "xcvu13p": (1728000, 3456000, 12288, 2688, 1280),
    "xcvu19p": (4085760, 8171520, 3840, 2160, 320),
    "xcku15p": (522720, 1045440, 1968, 984, 128),
    "xcku115": (663360, 1326720, 5520, 2160, 0),
    "xczu9eg": (274080, 548160, 2520, 912, 0),
    "xczu19eg": (522720, 1045440, 1968, 984, 128),
    "xc7vx690t": (433200, 866400, 3600, 1470, 0),
    "xcvc1902": (899840, 1799680, 1968, 967, 463),
}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_trigger_devices_have_the_vendor_totals(name):
    p = find_part(name)
    assert (p.lut, p.ff, p.dsp, p.bram36, p.uram) == TOTALS[name]


def test_dsp_primitive_and_yosys_family_follow_the_family():
    dsp = {n: find_part(n).dsp_type for n in known_parts()}
    assert {n for n, d in dsp.items() if d == "DSP48E1"} == {"xc7vx690t", "xc7z020"}
    assert {n for n, d in dsp.items() if d == "DSP58"} == {"xcvc1902"}
    assert {yosys_family(find_part(n)) for n in ("xcvu19p", "xcku15p", "xczu19eg")} == {"xcup"}
    assert yosys_family(find_part("xc7vx690t")) == "xc7" and yosys_family(find_part("xcku115")) == "xcu"
    assert synth_family(find_part("xcvc1902")) is None
    with pytest.raises(UserError, match="xcvc1902: Yosys synth_xilinx has no versal family"):
        yosys_family(find_part("xcvc1902"))


def test_dsp58_multiplies_27_by_24_in_one_slice():
    assert (dsp_shape("DSP58").a_max, dsp_shape("DSP58").b_max) == (27, 24)
    # a signed 27 x 22 product: one DSP58, more than one DSP48E2 (18-bit B port)
    assert multiplier_dsp(27, 22, 48, True, "DSP58") == 1
    assert multiplier_dsp(27, 22, 48, True, "DSP48E2") > 1


def test_every_device_has_a_default_full_part_that_checks_against_its_own_lists():
    for name in known_parts():
        p = find_part(name)
        assert p.vivado_part.lower().startswith(name) and p.vivado_part != name, name
        assert find_part(p.vivado_part).vivado_part == p.vivado_part, name
    assert find_part("xcvu9p").vivado_part == "xcvu9p-flga2104-2L-e"
    assert find_part("xc7vx690t").vivado_part == "xc7vx690tffg1761-2"


@pytest.mark.parametrize("given, vivado", [
    ("xcvu13p-flga2577-1-e", "xcvu13p-flga2577-1-e"),
    ("XCVU9P-FLGA2104-2L-E", "xcvu9p-flga2104-2L-e"),        # Vivado's spelling, whatever the case
    ("xc7z020-clg400-1", "xc7z020clg400-1"),                  # 7 series: with or without the dash
    ("xc7vx690tffg1927-3", "xc7vx690tffg1927-3"),
    ("xcvc1902-vsva2197-2MP-e-S", "xcvc1902-vsva2197-2MP-e-S"),
])
def test_full_part_numbers_are_kept_in_vivado_spelling(given, vivado):
    p = find_part(given)
    assert p.vivado_part == vivado and p.name == given


@pytest.mark.parametrize("given, words", [
    ("xcvu9p-ffvb1156-2-e", ["xcvu9p has no package 'ffvb1156'", "flga2104, flgb2104", "xcvu9p-flga2104-2L-e"]),
    ("xcvu9p-flga2104-4-e", ["xcvu9p has no speed grade '4-e'", "1-e, 1-i, 2-e, 2-i, 2L-e, 3-e"]),
    ("xcvu9p-flga2104", ["no speed grade given", "2L-e"]),
    ("xc7vx690tffg9999-2", ["xc7vx690t has no package 'ffg9999'", "ffg1761"]),
])
def test_impossible_full_part_numbers_list_what_the_device_has(given, words):
    with pytest.raises(UserError) as e:
        find_part(given)
    for w in words:
        assert w in str(e.value)


def test_unknown_parts_suggest_close_matches():
    with pytest.raises(UserError, match=r"unknown part 'xcvu9' \(did you mean xcvu9p"):
        find_part("xcvu9")
    with pytest.raises(UserError, match=r"unknown part 'xcku15' \(did you mean xcku15p"):
        find_part("xcku15")
    with pytest.raises(UserError) as e:
        find_part("xc9999")
    assert "did you mean" not in str(e.value) and "known parts: xc7vx690t" in str(e.value)


def test_compile_with_a_bare_device_gives_the_build_scripts_a_full_part(tmp_path, capsys):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--target", "xcku15p", "-o", str(out)]) == 0
    hls = (out / "hls" / "build_prj.tcl").read_text()
    synth = (out / "vivado" / "synth.tcl").read_text()
    assert "set_part {xcku15p-ffva1760-2-e}" in hls
    assert "set nnfpga_part {xcku15p-ffva1760-2-e}" in synth and "not a full part number" not in synth
    report = json.loads((out / "report.json").read_text())
    assert report["part"] == "xcku15p" and report["resources"]["available"]["uram"] == 128


def test_versal_compiles_with_an_estimate_and_report_synth_says_why_not(tmp_path, capsys):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--target", "xcvc1902", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["synth_family"] is None and report["part_family"] == "versal"
    assert report["resources"]["available"]["dsp"] == 1968
    assert "set_part {xcvc1902-vsva2197-2MP-e-S}" in (out / "hls" / "build_prj.tcl").read_text()
    capsys.readouterr()
    assert main(["report", str(out), "--synth"]) == 2
    err = capsys.readouterr().err
    assert "Yosys synth_xilinx has no versal family" in err and "vivado/synth.tcl" in err
    assert "Traceback" not in err
