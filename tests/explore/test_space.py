"""The design space: sweep syntax and checks, the grid's order, the search's choices and
the configuration of a point."""

from __future__ import annotations

import pytest
import yaml

from nnfpga.core.errors import UserError
from nnfpga.explore import space


def test_values_split_at_commas_outside_angle_brackets():
    assert space.split_values("1, 2,4") == ["1", "2", "4"]
    assert space.split_values("fixed<8,3,RND,SAT>,fixed<6,2>") == ["fixed<8,3,RND,SAT>", "fixed<6,2>"]


def test_option_sweeps_are_checked_like_the_compile_options():
    assert space.parse_sweep("reuse=1,2,4").values == (1, 2, 4)
    assert space.parse_sweep("clock=240MHz,4ns").values == ("240MHz", "4ns")
    for text, words in (("reuse=0,2", "from 1"), ("reuse=two", "whole number"), ("clock=5GHz", "clock"),
                        ("target=xc9000", "unknown part"), ("config=/no/such.yml", "no such configuration"),
                        ("reuse", "KEY=V1,V2"), ("reuse=1,,2", "empty value"), ("reuse=2,2", "twice"),
                        ("speed=1,2", "unknown setting"), ("pruning.nonsense=1", "has no key"),
                        ("layers.fc1=1", "unknown setting")):
        with pytest.raises(UserError, match=words):
            space.parse_sweep(text)


def test_config_key_values_are_yaml_scalars_and_types_stay_whole():
    assert space.parse_sweep("pruning.sparsity=0,0.5").values == (0, 0.5)
    assert space.parse_sweep("defaults.weight=fixed<8,3>,fixed<6,2>").values == ("fixed<8,3>", "fixed<6,2>")


def test_grid_order_first_sweep_slowest():
    sweeps = [space.parse_sweep("reuse=1,2"), space.parse_sweep("clock=240MHz,320MHz,400MHz")]
    pts = space.grid(sweeps)
    assert [p.index for p in pts] == list(range(6))
    assert [(p.params["reuse"], p.params["clock"]) for p in pts[:4]] == \
        [(1, "240MHz"), (1, "320MHz"), (1, "400MHz"), (2, "240MHz")]
    with pytest.raises(UserError, match="given twice"):
        space.check_sweeps([sweeps[0], sweeps[0]])


def test_search_refines_next_to_the_front_then_fills_at_random():
    sweeps = [space.parse_sweep("reuse=1,2,4,8"), space.parse_sweep("clock=200MHz,240MHz,320MHz")]
    pts = space.grid(sweeps)
    first = space.initial_sample(pts, 6, seed=3)
    assert len(first) == 3 and first == space.initial_sample(pts, 6, seed=3)
    centre = pts[4]                                   # reuse 2, 240MHz
    nxt = space.refinement([centre], {4}, sweeps, pts, room=10)
    assert sorted((p.params["reuse"], p.params["clock"]) for p in nxt) == \
        sorted([(1, "240MHz"), (4, "240MHz"), (2, "200MHz"), (2, "320MHz")])
    assert len(space.refinement([centre], {4}, sweeps, pts, room=2)) == 2
    done = {p.index for p in pts} - {0, 11}
    assert sorted(p.index for p in space.fill_random(pts, done, 5, seed=0)) == [0, 11]


def test_point_configuration_sets_the_swept_keys_and_is_checked(tmp_path):
    base = "version: 1\npruning:\n  sparsity: 0.25\n"
    p = space.Point(0, {"pruning.sparsity": 0.5, "defaults.weight_frac": 6})
    merged = yaml.safe_load(space.point_config_text(p, "base.yml", base))
    assert merged == {"version": 1, "pruning": {"sparsity": 0.5}, "defaults": {"weight_frac": 6}}
    assert space.point_config_text(space.Point(0, {"reuse": 2}), None, None) is None
    assert space.point_config_text(space.Point(0, {"reuse": 2}), "base.yml", base) == base
    with pytest.raises(UserError, match="pruning.sparsity=1.5"):
        space.point_config_text(space.Point(0, {"pruning.sparsity": 1.5}), None, None)
    f = tmp_path / "a.yml"
    f.write_text("pruning:\n  sparsity: 0.1\n")
    assert yaml.safe_load(space.point_config_text(space.Point(0, {"config": str(f)}), None, base)) == \
        {"pruning": {"sparsity": 0.1}}
