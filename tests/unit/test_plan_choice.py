"""The automatic plan's rule: its table of thresholds, the hysteresis around them, and the reasons it gives."""

from __future__ import annotations

import datetime as dt

import pytest

from semsearch import plan_choice
from semsearch.plan_choice import Rule, choose_plan
from semsearch.plans import Plan


@pytest.mark.parametrize(
    ("rows", "dims", "plan"),
    [
        (0, 1536, "bit"),
        (49_999, 1536, "bit"),
        (50_000, 1536, "bit"),
        (250_000, 3072, "bit"),
        (1024, 1024, "bit"),
        (60_000, 1023, "halfvec"),
        (999_999, 256, "halfvec"),
        (1_000_000, 256, "bit"),
    ],
)
def test_the_table_by_dims_class_and_rows(rows, dims, plan):
    assert choose_plan(rows, dims).plan == plan


def test_every_rule_starts_at_zero_rows_ascends_and_names_plans_its_dims_can_have():
    assert {r.min_dims for r in plan_choice.RULES} >= {1}  # every dims has a rule
    for rule in plan_choice.RULES:
        starts = [low for low, _ in rule.steps]
        assert starts[0] == 0 and starts == sorted(set(starts)), rule
        for _, plan in rule.steps:
            Plan.parse(plan, dims=max(rule.min_dims, 8))


def test_a_collection_grows_past_a_threshold_to_switch_up_and_shrinks_below_half_to_switch_down():
    # up only past the threshold
    assert choose_plan(999_999, 256, current="halfvec").plan == "halfvec"
    up = choose_plan(1_000_000, 256, current="halfvec")
    assert up.plan == "bit"
    assert up.reason == (
        "bit: grew to 1,000,000 rows of 256 dims, past 1,000,000 (rule for < 1024 dims: bit from 1,000,000 rows);"
        " was halfvec"
    )
    # down only below half of it: between the two the plan it has stays
    for rows in (999_999, 500_000):
        kept = choose_plan(rows, 256, current="bit")
        assert kept.plan == "bit" and "kept until below 500,000 rows" in kept.reason
    down = choose_plan(499_999, 256, current="bit")
    assert down.plan == "halfvec"
    assert down.reason.startswith("halfvec: shrank to 499,999 rows of 256 dims, below 500,000")
    assert down.reason.endswith("; was bit")


def test_with_three_steps_a_shrinking_collection_stops_at_the_highest_step_it_has_not_left(monkeypatch):
    monkeypatch.setattr(plan_choice, "RULES", (Rule("any dims", 1, ((0, "none"), (100, "halfvec"), (1000, "bit"))),))
    assert choose_plan(5000, 64).plan == "bit"
    assert choose_plan(499, 64, current="bit").plan == "halfvec"  # below 500, not below 50
    assert choose_plan(49, 64, current="bit").plan == "none"
    assert choose_plan(120, 64, current="none").plan == "halfvec"
    assert choose_plan(60, 64, current="halfvec").plan == "halfvec"


def test_a_plan_the_rule_does_not_list_is_replaced_by_the_step_the_rows_reach():
    choice = choose_plan(10, 1536, current="mrl:256")
    assert choice.plan == "bit" and choice.reason.startswith("bit: 10 rows of 1536 dims (")


def test_a_plan_the_dims_cannot_have_gives_way_to_one_they_can(monkeypatch):
    monkeypatch.setattr(plan_choice, "RULES", (Rule("any dims", 1, ((0, "halfvec"),)),))
    choice = choose_plan(10, 5000)  # halfvec's hnsw stops at 4,000 dims
    assert choice.plan == "bit" and choice.reason.endswith("; halfvec cannot index 5000 dims")
    assert choose_plan(10, 1536, "halfvec").plan == "halfvec"  # halfvec storage, the same copy


def test_a_reason_is_stamped_with_the_time_of_the_decision():
    at = dt.datetime(2026, 12, 7, 21, 5, 59, tzinfo=dt.timezone.utc)
    assert plan_choice.stamped("bit: 60,000 rows", now=at) == "bit: 60,000 rows (2026-12-07 21:05 UTC)"
