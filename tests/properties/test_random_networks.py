"""Random networks: golden == Verilator == GHDL == C-sim, bit for bit, and lint-clean HDL.

Hypothesis draws a batch of small networks (`strategies.network_specs`: Dense, Conv2D,
MaxPool, Flatten, ScaleShift (an unfolded BatchNorm), relu / quantized relu / leaky / hard
sigmoid / tanh / sigmoid tables,
widths 1-8, fixed / ternary / binary / po2 weights, sparsity, reuse factors 1-4) per
example; `batch` simulates the whole batch in one build per simulator on raw inputs on
the input grid (minimum, maximum, zero, mixed extremes, uniform).  The Verilator build
runs with -Wall on every core (a warning stops it) and GHDL's analysis must print nothing:
that is the lint of the generated HDL.

Profiles: the fast one (default suite) checks one small batch; the slow one
(``-m slow``) at least 1,000 networks.  Both are derandomised and use no example
database, so a run is reproducible.  Failures are not shrunk (each step would rebuild a
batch): the message carries the failing networks' specs instead.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import needs_ghdl, needs_verilator
from tests.properties import batch
from tests.properties.strategies import build_network, grid_inputs, network_specs

@dataclass(frozen=True)
class Profile:
    batches: int
    per_batch: int
    samples: int
    min_networks: int


FAST = Profile(batches=1, per_batch=6, samples=12, min_networks=5)
# (80 networks per batch: Hypothesis's buffer holds 80 specs with ScaleShifts; at 110
# most batches overrun it and are dropped, so too few networks would be checked)
SLOW = Profile(batches=13, per_batch=80, samples=12, min_networks=1000)


def run_profile(profile: Profile) -> dict:
    """Check ``profile.batches`` Hypothesis batches; returns the counts and timings."""
    tally = {"networks": 0, "refused": 0, "samples": 0, "seconds": {}}

    @settings(max_examples=profile.batches, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(st.lists(network_specs(), min_size=profile.per_batch, max_size=profile.per_batch))
    def check(specs):
        graphs, inputs, by_name = [], [], {}
        for spec in specs:
            name = f"net{tally['networks'] + len(graphs)}"
            try:
                g = build_network(spec, name)
            except ValueError:  # the IR refuses it (e.g. a hard sigmoid of an integer)
                tally["refused"] += 1
                continue
            graphs.append(g)
            inputs.append(grid_inputs(g, profile.samples, len(graphs)))
            by_name[name] = spec
        with tempfile.TemporaryDirectory(prefix="nnfpga-prop-") as tmp:
            cores = []
            for g, x in zip(graphs, inputs):
                try:
                    cores += batch.compile_cores([g], [x], Path(tmp) / "fw")
                except AssertionError as e:
                    raise AssertionError(f"{g.name}: {e}\nspec: {by_name[g.name]!r}") from e
            t0 = time.perf_counter()
            results, warnings, stats = batch.simulate_all(cores, Path(tmp) / "sim")
            aborted = stats.pop("csim_aborted")
            assert not aborted, f"C-sim aborted: {aborted}\nspecs: {[by_name[k] for k in aborted]!r}"
            for k, v in stats.items():
                tally["seconds"][k] = tally["seconds"].get(k, 0.0) + v
            tally["seconds"]["simulate_wall"] = tally["seconds"].get("simulate_wall", 0.0) + time.perf_counter() - t0
            assert not warnings, "GHDL warnings on generated VHDL:\n" + "\n".join(warnings[:20])
            bad = batch.mismatches(cores, results)
            assert not bad, "\n".join(bad[:10]) + "\nspecs:\n" + "\n".join(
                repr(by_name[line.split(": ")[1].split(" ")[0]]) for line in bad[:3])
            tally["networks"] += len(cores)
            tally["samples"] += sum(len(c.x_raw) for c in cores)
            print(f"random networks: {tally['networks']} checked", flush=True)

    t0 = time.perf_counter()
    check()
    tally["seconds"]["total"] = time.perf_counter() - t0
    print(f"\nrandom networks: {tally['networks']} checked bit for bit in Verilator, GHDL and C-sim "
          f"({tally['samples']} samples), {tally['refused']} refused by the IR; seconds: "
          + ", ".join(f"{k} {v:.1f}" for k, v in tally["seconds"].items()))
    return tally


@needs_verilator
@needs_ghdl
def test_random_networks_fast():
    tally = run_profile(FAST)
    assert tally["networks"] >= FAST.min_networks


@pytest.mark.slow
@needs_verilator
@needs_ghdl
def test_random_networks_slow():
    tally = run_profile(SLOW)
    assert tally["networks"] >= SLOW.min_networks
