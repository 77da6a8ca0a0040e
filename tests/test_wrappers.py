"""The core wrappers (`nnfpga.backends.rtl.wrappers`): the AXI4-Stream wrapper's sizing
and its lossless back-pressure, the bunch-crossing wrapper's frame assembly and fixed
latency; plans and files without a simulator, then cocotb benches
(`nnfpga.sim.cocotb_wrappers`): Verilog under Icarus (Verilator in the slow suite), VHDL
under GHDL."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from nnfpga.backends.rtl import write_rtl
from nnfpga.backends.rtl.bus import from_hex
from nnfpga.backends.rtl.wrappers import WrapperError, axis_plan, bx_plan, read_wrappers, write_wrappers
from nnfpga.backends.rtl.wrappers.axis import fifo_depth_rule
from nnfpga.backends.rtl.wrappers.bunch_crossing import words_per_crossing
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.fixed import FixedType
from nnfpga.sim.errors import SimulationError
from tests.conftest import have
from tests.irmodels import random_mlp
from tests.rtl_models import softmax_mlp
from tests.test_rtl import inputs


def _require(simulator: str) -> None:
    present = {"icarus": shutil.which("iverilog") is not None and shutil.which("vvp") is not None,
               "ghdl": have("ghdl"), "verilator": have("verilator")}[simulator]
    assert present, f"{simulator} is not installed: run `make setup` (scripts/setup.sh)"


def _info(latency: int, ii: int, in_w: int = 80, out_w: int = 55) -> dict:
    return {"top": "net", "latency_cycles": latency, "ii_cycles": ii, "in_bus_width": in_w,
            "out_bus_width": out_w, "files": {"verilog": "verilog/net.v", "vhdl": "vhdl/net.vhd"}}


def _small_mlp(reuse: int):
    """An 8-8-4 MLP (~900 lines of Verilog): Icarus runs it about twice as fast as softmax_mlp."""
    return random_mlp([8, 8, 4], reuse_factor=reuse, final_activation="relu", name="small_mlp")


def _core(tmp_path, reuse: int, n: int, seed: int = 3, small: bool = False):
    g = _small_mlp(reuse) if small else softmax_mlp(reuse=reuse)
    info = write_rtl(g, tmp_path)
    assert info["ii_cycles"] == reuse
    x = inputs(g, n, seed=seed)
    return g, info, x, run_raw(g, x)


def _outputs(res: dict, info: dict) -> np.ndarray:
    return from_hex([f"{int(v):x}" for v in res["outputs"]], info["n_outputs"], FixedType.from_json(info["out_type"]))


# --------------------------------------------------------------------------- plans, no simulator
@pytest.mark.parametrize("latency, ii, depth", [(26, 1, 32), (36, 4, 16), (29, 1, 32), (30, 1, 64),
                                                (1, 1, 4), (40, 6, 8), (5, 8, 2), (126, 1, 256)])
def test_axis_fifo_depth_rule(latency, ii, depth):
    """The smallest power of two >= ceil((L + 2) / II) + 1."""
    assert fifo_depth_rule(latency, ii) == depth
    need = -(-(latency + 2) // ii) + 1
    assert depth >= need and (depth == 2 or depth // 2 < need)
    plan = axis_plan(_info(latency, ii))
    assert plan["fifo_depth"] == depth and plan["full_rate"]
    assert plan["latency_cycles"] == latency + 2 and plan["ii_cycles"] == ii
    assert (plan["s_axis_tdata_width"], plan["m_axis_tdata_width"]) == (80, 56)
    assert plan["top"] == "net_axis" and plan["files"] == {"verilog": "verilog/net_axis.v", "vhdl": "vhdl/net_axis.vhd"}


def test_axis_fifo_depth_override():
    plan = axis_plan(_info(26, 1), fifo_depth=4)
    assert plan["fifo_depth"] == 4 and plan["fifo_depth_rule"] == 32 and not plan["full_rate"]
    for bad in (0, 1, 3, 12, 2.5, -4):
        with pytest.raises(WrapperError, match="power of two"):
            axis_plan(_info(26, 1), fifo_depth=bad)


@pytest.mark.parametrize("clock, n", [(240, 6), (320, 8), (40, 1), (160, 4), (240.474, 6), (360.0, 9)])
def test_words_per_crossing(clock, n):
    assert words_per_crossing(clock) == n


@pytest.mark.parametrize("clock", [250, 300, 20, 0, -240])
def test_words_per_crossing_refuses_other_clocks(clock):
    with pytest.raises(WrapperError, match="not a whole multiple"):
        words_per_crossing(clock)


@pytest.mark.parametrize("clock, latency, ii, cycles, bx, delay", [
    (240, 26, 1, 36, 6, 3),    # 6 + 26 + 1 = 33 -> 36
    (240, 36, 4, 48, 8, 5),    # 43 -> 48
    (240, 40, 6, 48, 8, 1),    # II = N
    (320, 26, 1, 40, 5, 5),    # 35 -> 40
    (320, 44, 8, 56, 7, 3),    # 53 -> 56, II = N
    (320, 39, 2, 48, 6, 0),    # 48: already aligned
])
def test_bx_latency(clock, latency, ii, cycles, bx, delay):
    """latency_cycles = N + L + 1 + D, D = (-(N + L + 1)) mod N; latency_bx = latency_cycles / N."""
    plan = bx_plan(_info(latency, ii), clock)
    n = plan["words_per_bx"]
    assert plan["latency_cycles"] == cycles == n + latency + 1 + delay and plan["align_delay_cycles"] == delay
    assert plan["latency_bx"] == bx == cycles // n and plan["output_phase"] == 0
    assert plan["latency_ns"] == pytest.approx(cycles * 1000 / clock)
    assert plan["word_width"] == -(-80 // n) and plan["frame_width"] == n * plan["word_width"] >= 80
    free = bx_plan(_info(latency, ii), clock, align=False)
    assert free["latency_cycles"] == n + latency + 1 and free["align_delay_cycles"] == 0
    assert free["latency_bx"] == pytest.approx((n + latency + 1) / n)


def test_bx_refuses_a_core_slower_than_the_crossing():
    with pytest.raises(WrapperError, match=r"every 8 cycles .* lasts 6 cycles.*II <= 6"):
        bx_plan(_info(44, 8), 240)
    bx_plan(_info(44, 8), 320)


def test_write_wrappers_files_and_summary(tmp_path):
    info = write_rtl(softmax_mlp(reuse=4), tmp_path)
    s = write_wrappers(tmp_path, axi_stream=True)      # the core's facts from rtl.json
    assert set(s) == {"core", "core_latency_cycles", "core_ii_cycles", "axi_stream"}
    s = write_wrappers(tmp_path, info, bx_clock_mhz=320)
    assert s == read_wrappers(tmp_path) == json.loads((tmp_path / "wrappers.json").read_text())
    # the core's latency L comes from the clock-driven schedule: FIFO depth and the
    # crossing-aligned latency (8 words per crossing at 320 MHz) follow from it
    L, ii = info["latency_cycles"], info["ii_cycles"]
    assert s["core"] == info["top"] and s["axi_stream"]["fifo_depth"] == fifo_depth_rule(L, ii) >= 2
    bx = -(-(8 + L + 1) // 8)
    assert s["bunch_crossing"]["latency_cycles"] == 8 * bx and s["bunch_crossing"]["latency_bx"] == bx
    for key in ("axi_stream", "bunch_crossing"):
        for lang, path in s[key]["files"].items():
            text = (tmp_path / path).read_text()
            assert s[key]["top"] in text and info["top"] in text, path
            assert ("Do not edit" in text) and (("entity work." + info["top"]) in text) == (lang == "vhdl")
    # a refused request writes nothing
    before = (tmp_path / "wrappers.json").read_text()
    with pytest.raises(WrapperError, match="II <= 2"):
        write_wrappers(tmp_path, info, axi_stream=True, bx_clock_mhz=80)
    assert (tmp_path / "wrappers.json").read_text() == before
    with pytest.raises(WrapperError, match="axi_stream=True"):
        write_wrappers(tmp_path, info, fifo_depth=8)


@pytest.mark.parametrize("reuse, clock", [(1, 240), (4, 320), (4, 160), (1, 40), (1, 80), (1, 120)])
def test_wrappers_lint_and_elaborate(tmp_path, reuse, clock):
    """The Verilog is clean under ``verilator --lint-only -Wall``; the VHDL elaborates in GHDL
    (every shape of the bunch-crossing wrapper: one word per crossing at 40 MHz, an alignment
    of 0, 1 and several cycles)."""
    _require("verilator")
    _require("ghdl")
    from nnfpga.sim.verilator import verilator_env
    info = write_rtl(softmax_mlp(reuse=reuse), tmp_path)
    s = write_wrappers(tmp_path, info, axi_stream=True, bx_clock_mhz=clock)
    exe, env = verilator_env()
    work = tmp_path / "ghdl"
    work.mkdir()
    core_v, core_vhd = tmp_path / info["files"]["verilog"], tmp_path / info["files"]["vhdl"]
    subprocess.run(["ghdl", "-a", "--std=08", f"--workdir={work}", core_vhd], check=True, capture_output=True)
    for key in ("axi_stream", "bunch_crossing"):
        plan = s[key]
        r = subprocess.run([exe, "--lint-only", "-Wall", str(core_v), str(tmp_path / plan["files"]["verilog"]),
                            "--top-module", plan["top"]], capture_output=True, text=True, env=env)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]
        for cmd in (["-a", str(tmp_path / plan["files"]["vhdl"])], ["-e", plan["top"]]):
            r = subprocess.run(["ghdl", *cmd[:1], "--std=08", f"--workdir={work}", *cmd[1:]], capture_output=True,
                               text=True, cwd=work)
            assert r.returncode == 0, r.stderr[-3000:]


def test_wrapper_descriptions_are_checked():
    """A structural description refuses a width mismatch, a second driver, a driven input, a
    read output and a name declared twice before anything is printed."""
    from nnfpga.backends.rtl.structural import Module, assign
    from nnfpga.backends.rtl.structural_print import print_module

    def module(*, out_from_reg=True):
        m = Module("m", [])
        clk, a = m.port("clk", "in"), m.port("a", "in", 4)
        y = m.port("y", "out", 4)
        r = m.signal("r", 4, 0)
        m.process(clk, [assign(r, a)])
        if out_from_reg:
            m.assign(y, r)
        return m, clk, a, y, r

    m, *_ = module()
    assert "r <= a;" in print_module(m, "vhdl") and "assign y = r;" in print_module(m, "verilog")
    m, clk, a, y, r = module(out_from_reg=False)
    m.assign(y, clk)
    with pytest.raises(ValueError, match="'y' .4 bits. assigned None bits"):
        m.check()
    m, clk, a, y, r = module()
    m.assign(r, a)
    with pytest.raises(ValueError, match="'r' is driven by process 0 and a continuous assignment"):
        m.check()
    m, clk, a, y, r = module()
    m.assign(a, r)
    with pytest.raises(ValueError, match="input 'a' is driven"):
        m.check()
    m, clk, a, y, r = module(out_from_reg=False)
    m.assign(y, a)
    m.process(clk, [assign(m.signal("s", 4), y)])
    with pytest.raises(ValueError, match="output 'y' is read"):
        m.check()
    m, clk, a, y, r = module()
    m.signal("R", 4)
    with pytest.raises(ValueError, match="the name 'R' is declared twice"):
        m.check()


# --------------------------------------------------------------------------- AXI4-Stream, cocotb
def _check_axis(res: dict, info: dict, plan: dict, want: np.ndarray) -> None:
    """Bit-exact, in order, none lost; the full rate and the latency L + 2 while the sink is
    always ready (the first phase); the FIFO filled while the sink stalled."""
    from nnfpga.sim.cocotb_wrappers_run import AXIS_PHASES
    got = _outputs(res, info)
    assert got.shape == want.shape and np.array_equal(got, want)
    acc, dlv = np.array(res["accepted"]), np.array(res["delivered"])
    assert len(acc) == len(dlv) == len(want)
    ii, lat = plan["ii_cycles"], plan["latency_cycles"]
    assert np.all(np.diff(acc) >= ii) and np.all(dlv - acc >= lat)
    full = AXIS_PHASES[0][0]
    first = acc < full
    assert np.array_equal(acc[first], acc[0] + ii * np.arange(first.sum()))  # never stalled at full rate
    early = acc + lat < full
    assert np.array_equal(dlv[early], acc[early] + lat)
    assert res["max_outstanding"] == plan["fifo_depth"]


def _axis(tmp_path, simulator, reuse, n, fifo_depth=None, seed=3, small=False):
    from nnfpga.sim.cocotb_wrappers_run import run_axis_cocotb
    _require(simulator)
    g, info, x, want = _core(tmp_path, reuse, n, seed, small)
    plan = write_wrappers(tmp_path, info, axi_stream=True, fifo_depth=fifo_depth)["axi_stream"]
    res = run_axis_cocotb(tmp_path, x, want, simulator=simulator, seed=seed)
    return info, plan, res, want


@pytest.mark.parametrize("reuse", [1, 4])
def test_axis_10k_samples_random_backpressure_icarus(tmp_path, reuse):
    """10,000 samples, random tvalid gaps and random tready back-pressure (with stalls long
    enough to fill the FIFO): every output bit-exact and in order, none lost (a small MLP,
    so that it takes ~6 s at reuse 1 and ~12 s at reuse 4)."""
    info, plan, res, want = _axis(tmp_path, "icarus", reuse, 10_000, small=True)
    _check_axis(res, info, plan, want)


@pytest.mark.parametrize("reuse", [1, 4])
def test_axis_vhdl_ghdl(tmp_path, reuse):
    """1,000 samples through the VHDL (softmax_mlp: 55-bit out_data, padded to 56 on m_axis)."""
    info, plan, res, want = _axis(tmp_path, "ghdl", reuse, 1_000)
    _check_axis(res, info, plan, want)


@pytest.mark.slow
@pytest.mark.parametrize("reuse", [1, 4])
def test_axis_10k_samples_verilator(tmp_path, reuse):
    info, plan, res, want = _axis(tmp_path, "verilator", reuse, 10_000)
    _check_axis(res, info, plan, want)


def test_axis_small_fifo_is_lossless(tmp_path):
    """A FIFO below the sizing rule loses nothing; it only lowers the throughput to
    DEPTH samples per L + 2 cycles."""
    info, plan, res, want = _axis(tmp_path, "icarus", 1, 400, fifo_depth=4)
    assert np.array_equal(_outputs(res, info), want) and res["max_outstanding"] == 4
    acc = np.array(res["accepted"])
    first = acc < 300
    assert first.sum() <= 4 * -(-300 // plan["latency_cycles"])


def test_axis_bench_catches_a_wrapper_without_credits(tmp_path):
    """The bench sees the loss when the credit check is taken out of the wrapper."""
    from nnfpga.sim.cocotb_wrappers_run import run_axis_cocotb
    _require("icarus")
    g, info, x, want = _core(tmp_path, 1, 600)
    plan = write_wrappers(tmp_path, info, axi_stream=True)["axi_stream"]
    path = tmp_path / plan["files"]["verilog"]
    text = path.read_text()
    assert text.count("aresetn & (credits != 6'd32)") == 1
    path.write_text(text.replace("aresetn & (credits != 6'd32)", "aresetn"))
    with pytest.raises(SimulationError, match="outstanding"):
        run_axis_cocotb(tmp_path, x, want, simulator="icarus")


# --------------------------------------------------------------------------- bunch crossing, cocotb
def _bx(tmp_path, simulator, clock, reuse, n=300, align=True, irregular=False, seed=5):
    from nnfpga.sim.cocotb_wrappers_run import run_bx_cocotb
    _require(simulator)
    g, info, x, want = _core(tmp_path, reuse, n, seed)
    plan = write_wrappers(tmp_path, info, bx_clock_mhz=clock, bx_align=align)["bunch_crossing"]
    gaps = aborts = None
    if irregular:  # mostly back to back, some empty crossings and some partial frames
        rng = np.random.default_rng(seed)
        gaps = np.where(rng.random(n) < 0.2, rng.integers(1, 4, n), 0)
        aborts = np.where(rng.random(n) < 0.05, rng.integers(1, plan["words_per_bx"], n), 0)
        gaps[:100] = aborts[:100] = 0
    res = run_bx_cocotb(tmp_path, x, want, simulator=simulator, seed=seed, gaps=gaps, aborts=aborts)
    assert np.array_equal(_outputs(res, info), want)
    starts = np.array(res["starts"])
    assert np.all(np.diff(starts[:100]) == plan["words_per_bx"])   # the first 100 frames back to back
    return plan, res


@pytest.mark.parametrize("simulator, clock, reuse, align, irregular", [
    ("icarus", 240, 4, True, False),
    ("icarus", 320, 1, True, True),
    ("icarus", 240, 1, False, True),
    ("icarus", 40, 1, True, False),   # one word per crossing
    ("ghdl", 240, 6, True, True),     # II = N
    ("ghdl", 320, 8, True, False),    # II = N
])
def test_bx_frames_at_the_documented_latency(tmp_path, simulator, clock, reuse, align, irregular):
    """Frames streamed back to back (and with empty crossings and dropped partial frames):
    each decision bit-exact, out_valid exactly latency_cycles after bx_start, checked
    cycle by cycle, out_data held between decisions."""
    plan, res = _bx(tmp_path, simulator, clock, reuse, align=align, irregular=irregular)
    n = plan["words_per_bx"]
    assert n == clock // 40
    assert plan["latency_cycles"] == n + plan["core_latency_cycles"] + 1 + plan["align_delay_cycles"]
    assert (plan["latency_cycles"] % n == 0) == (align or plan["output_phase"] == 0)


def test_bx_bench_catches_a_wrong_latency(tmp_path):
    from nnfpga.sim.cocotb_wrappers_run import run_bx_cocotb
    _require("icarus")
    g, info, x, want = _core(tmp_path, 1, 50)
    write_wrappers(tmp_path, info, bx_clock_mhz=240)
    s = read_wrappers(tmp_path)
    s["bunch_crossing"]["latency_cycles"] += 1
    (tmp_path / "wrappers.json").write_text(json.dumps(s))
    with pytest.raises(SimulationError, match="out_valid is 0, expected 1"):
        run_bx_cocotb(tmp_path, x, want, simulator="icarus")
