"""The beat's lead: long enough that a burst of runs is prepared before its instant."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.lead import BASE_LEAD, MAX_LEAD, MIN_SAMPLE, LeadPlanner

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def planner_with(runs: dict[float, int], cost_s: float) -> LeadPlanner:
    planner = LeadPlanner(cost_s=cost_s)
    for offset, count in runs.items():
        for _ in range(count):
            planner.add(T0 + timedelta(seconds=offset))
    return planner


def test_with_nothing_due_the_lead_is_the_base_lead() -> None:
    assert LeadPlanner().lead(T0) == BASE_LEAD
    assert LeadPlanner(base=3 * SECOND).lead(T0) == 3 * SECOND  # SCHEDULER_PREPARE_AHEAD


def test_a_burst_that_fits_in_the_base_lead_changes_nothing() -> None:
    planner = planner_with({30: 1000}, cost_s=0.001)  # 1.5 s of work, 30 s away
    assert planner.lead(T0) == BASE_LEAD
    assert planner.lead(T0 + 19 * SECOND) == 12 * SECOND  # 11 s away, 1.5 s of work


def test_a_large_burst_is_taken_in_early_enough_to_be_ready() -> None:
    # 50,000 runs at 0.7 ms each (with the safety margin, 52.5 s of work) due in 60 s.
    planner = planner_with({60: 50_000}, cost_s=0.0007)
    assert planner.lead(T0 - 10 * SECOND) == BASE_LEAD  # 70 s away: not yet
    assert planner.lead(T0) == 61 * SECOND  # 60 s away: now, all of the second


def test_the_lead_is_capped() -> None:
    assert planner_with({299.5: 300}, cost_s=1.0).lead(T0) == MAX_LEAD
    # Beyond the cap a burst is not looked at: too large to prepare in time, it goes late.
    assert planner_with({400: 300}, cost_s=1.0).lead(T0) == BASE_LEAD


def test_removed_runs_no_longer_count() -> None:
    planner = planner_with({60: 50_000}, cost_s=0.0007)
    for _ in range(50_000):
        planner.remove(T0 + 60 * SECOND)
    planner.remove(T0 + 60 * SECOND)  # one more: nothing to remove, no negative count
    assert planner.lead(T0) == BASE_LEAD


def test_the_cost_per_run_follows_measurements_of_enough_runs() -> None:
    planner = LeadPlanner(cost_s=0.001)
    planner.measured(MIN_SAMPLE - 1, 10.0)  # a handful of runs: overheads, ignored
    assert planner.cost_s == 0.001
    for _ in range(30):
        planner.measured(1000, 2.0)
    assert abs(planner.cost_s - 0.002) < 1e-6


@settings(max_examples=60, deadline=None)
@given(
    bursts=st.dictionaries(
        st.floats(min_value=100, max_value=280), st.integers(1, 5_000), min_size=1, max_size=6
    ),
    cost_s=st.sampled_from([0.001, 0.004, 0.01]),
)
def test_every_run_is_prepared_before_its_instant(bursts: dict[float, int], cost_s: float) -> None:
    # Feasible bursts only: all of them together take under 90 s to prepare.
    total = sum(bursts.values())
    if total * cost_s > 90:
        return
    planner = planner_with(bursts, cost_s)
    waiting = sorted(
        T0 + timedelta(seconds=offset) for offset, n in bursts.items() for _ in range(n)
    )
    now = T0
    # The beat's loop: each tick takes in everything due within the lead and prepares it,
    # earliest first, at the true cost (here the estimated one); the next tick follows.
    while waiting:
        horizon = now + planner.lead(now)
        cut = bisect_right(waiting, horizon)
        taken, waiting = waiting[:cut], waiting[cut:]
        for due in taken:
            planner.remove(due)
            now += timedelta(seconds=cost_s)
            assert now <= due, f"a run due at {due} was ready only at {now}"
        now += SECOND
