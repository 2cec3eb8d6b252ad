"""How --engine auto ranks engines from interleaved rounds (a pure function of the figures) and
when its adaptive loop stops. No speed is asserted: the ranking tests give the figures, the
loop tests check why and when the rounds ended."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from ppinfer.engines.auto_timing import Policy, decided, rank, time_rounds, warm_up

from .test_bench import TINY_SHAPE, export_tiny, tiny_checkpoint  # noqa: F401  (a fixture)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

PREFERENCE = ["analysis", "onnxruntime", "openvino"]


def test_a_clear_leader_is_chosen_with_its_margin():
    rounds = {"analysis": [36.0, 35.0, 37.0, 35.5],
              "onnxruntime": [28.0, 28.3, 27.9, 28.1],
              "openvino": [31.0, 31.5, 31.2, 30.8]}
    r = rank(rounds, PREFERENCE)
    assert r.order == ["onnxruntime", "openvino", "analysis"]
    assert r.chosen == "onnxruntime" and not r.near_tie and r.tied_with_choice == []
    assert r.closest == "openvino" and 0.09 < r.margin < 0.13 and r.noise < 0.03
    assert decided(r, 4, Policy())


def test_a_tie_goes_to_the_first_engine_of_the_preference_order_whichever_measured_faster():
    base = [28.0, 28.4, 27.8, 28.2, 28.1]
    for change in (-0.005, +0.005):  # openvino 0.5% faster, then 0.5% slower
        rounds = {"onnxruntime": base, "openvino": [t * (1 + change) for t in base]}
        for names in itertools.permutations(rounds):
            r = rank({n: rounds[n] for n in names}, PREFERENCE)
            assert r.chosen == "onnxruntime" and r.near_tie
            assert r.tied_with_choice == ["openvino"] and r.closest == "openvino"
            assert r.order[0] == ("openvino" if change < 0 else "onnxruntime")
            assert r.margin == pytest.approx(change, rel=0.01)  # < 0: the slower one chosen
    with_reference = rank({"analysis": [28.3, 28.6, 28.0, 28.5],
                           "onnxruntime": [28.0, 28.4, 27.8, 28.2]}, PREFERENCE)
    assert with_reference.chosen == "analysis"  # the reference wins a tie
    assert with_reference.tied_with_choice == ["onnxruntime"]


def test_an_engine_within_the_noise_makes_a_near_tie_but_the_fastest_keeps_the_choice():
    rounds = {"onnxruntime": [27.0, 33.0, 26.0, 35.0, 27.5],
              "analysis": [30.0, 29.0, 31.0, 30.0, 29.5]}  # first in the preference order
    r = rank(rounds, PREFERENCE)
    assert r.order[0] == "onnxruntime" and r.unsure == ["analysis"] and r.tied == []
    assert r.chosen == "onnxruntime" and r.near_tie and r.tied_with_choice == ["analysis"]
    assert r.margin > 0 and r.noise > r.margin
    assert not decided(r, 5, Policy())


def test_nothing_is_decided_before_three_rounds():
    r = rank({"analysis": [40.0, 41.0], "openvino": [20.0, 20.5]}, PREFERENCE)
    assert r.chosen == "openvino" and r.unsure == ["analysis"]
    assert not decided(r, 2, Policy())
    assert not decided(rank({"analysis": [40.0] * 3, "openvino": [20.0] * 3}, PREFERENCE),
                       2, Policy())


def test_rounds_pair_the_engines_so_a_burst_of_load_does_not_reorder_them():
    calm = {"onnxruntime": [28.0, 28.2, 28.1], "openvino": [30.0, 30.1, 30.2]}
    busy = {name: [t * (3.0 if j == 1 else 1.0) for j, t in enumerate(figures)]
            for name, figures in calm.items()}  # round 1 slowed 3x for both
    for rounds in (calm, busy):
        r = rank(rounds, PREFERENCE)
        assert r.chosen == "onnxruntime" and not r.near_tie and 0.06 < r.margin < 0.08


def test_a_single_engine_is_chosen_without_a_margin():
    r = rank({"analysis": [12.0]}, PREFERENCE)
    assert r.chosen == "analysis" and r.margin is None and not r.near_tie


# -- the loop, on real engines --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(tiny_checkpoint, tmp_path_factory):  # noqa: F811
    from functools import partial

    import numpy as np

    from ppinfer.config import RunConfig
    from ppinfer.engines import create_engine
    from ppinfer.modelfiles.source import resolve_source

    model = export_tiny(tiny_checkpoint, tmp_path_factory.mktemp("timing") / "model", "legacy")
    source = resolve_source(model=str(model), prefer="legacy")
    config = RunConfig(device="cpu", cpu_threads=1).resolve()
    batch = np.random.default_rng(0).random((1, *TINY_SHAPE), dtype=np.float32)
    runs = {}
    for name in ("analysis", "onnxruntime"):
        engine = create_engine(name, source, config)
        engine.ensure_built()
        runs[name] = partial(engine.execute, batch)
    return runs


def test_the_adaptive_loop_stops_at_its_budget(tiny_runs):
    never_sure = Policy(budget_s=0.25, slice_s=0.01, confidence=math.inf, max_rounds=10**6)
    timing = time_rounds(tiny_runs, PREFERENCE, never_sure)
    assert timing.stop == "budget" and timing.ranking.near_tie
    assert 3 <= timing.rounds < 10**6
    # the rounds stop before one more of their average length would overrun the budget
    assert timing.seconds * (timing.rounds + 1) / timing.rounds > 0.25
    tiny_budget = time_rounds(tiny_runs, PREFERENCE, replace(never_sure, budget_s=0.0))
    assert tiny_budget.stop == "budget" and tiny_budget.rounds == 3  # the minimum still runs
    assert all(len(v) == timing.rounds for v in timing.round_ms.values())
    assert timing.ranking.chosen in tiny_runs


def test_the_loop_stops_at_max_rounds_and_once_decided(tiny_runs):
    capped = time_rounds(tiny_runs, PREFERENCE, Policy(slice_s=0.005, max_rounds=2))
    assert capped.stop == "max_rounds" and capped.rounds == 2
    # Every engine within a factor of 10,000 is a tie: on this tiny model Paddle's per-run cost
    # alone can make analysis 10-20x slower than ONNX Runtime, more on a loaded machine.
    sure = Policy(slice_s=0.005, budget_s=60.0, tie_margin=1e4, max_rounds=50)
    timing = time_rounds(tiny_runs, PREFERENCE, sure)
    assert timing.stop == "decided" and timing.rounds == 3
    assert timing.ranking.chosen == "analysis" and timing.ranking.tied


def test_an_engine_that_fails_mid_way_drops_out_and_the_rest_are_ranked(tiny_runs):
    calls = itertools.count()

    def breaks_on_third_call():
        if next(calls) == 1:  # its second round
            raise RuntimeError("device lost")
        return tiny_runs["analysis"]()

    runs = {"onnxruntime": tiny_runs["onnxruntime"], "openvino": breaks_on_third_call}
    timing = time_rounds(runs, PREFERENCE, Policy(slice_s=0.0, settle_runs=0, max_rounds=4))
    assert list(timing.failed) == ["openvino"] and "device lost" in str(timing.failed["openvino"])
    assert timing.stop == "single" and timing.ranking.chosen == "onnxruntime"
    assert list(timing.round_ms) == ["onnxruntime"]


def test_warm_up_runs_within_its_bounds(tiny_runs):
    runs = warm_up(tiny_runs["analysis"])
    assert 2 <= runs <= 20
