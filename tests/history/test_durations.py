"""Duration buckets and packed histograms (durations.py): percentiles within the stated
bound of the exact ones, sums and differences of packed counts."""

from __future__ import annotations

import random

import pytest

from scheduler.history.durations import (
    FLOOR_S,
    RELATIVE_ERROR,
    ZERO,
    Tally,
    bucket_of,
    bucket_value,
    from_bytes,
    pack,
    to_bytes,
)
from scheduler.history.stats import percentile


def tally_of(durations: list[float]) -> Tally:
    counts: dict[int, int] = {}
    for duration in durations:
        counts[bucket_of(duration)] = counts.get(bucket_of(duration), 0) + 1
    tally = Tally()
    low, packed = pack(counts.items())
    tally.add(len(durations), 0, 0, len(durations), low, packed)
    return tally


def close_to(shown: float | None, exact: float | None) -> bool:
    if shown is None or exact is None:
        return shown is exact
    if exact <= FLOOR_S:
        return shown == 0.0
    return abs(shown - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_percentiles_are_within_the_bound_of_the_exact_ones(seed: int) -> None:
    rng = random.Random(seed)
    scale = 10 ** rng.uniform(-4, 4)
    durations = [
        scale * rng.lognormvariate(0, rng.uniform(0.1, 3)) for _ in range(rng.randrange(1, 400))
    ]
    durations += [0.0, -0.5][: rng.randrange(3)]  # clock skew: shown as 0
    exact = sorted(durations)
    shown = tally_of(durations).percentiles(0.5, 0.95)
    assert close_to(shown[0], percentile(exact, 0.5)), (shown, percentile(exact, 0.5))
    assert close_to(shown[1], percentile(exact, 0.95)), (shown, percentile(exact, 0.95))


def test_every_value_of_a_bucket_is_within_the_bound_of_what_it_shows() -> None:
    for bucket in range(-300, 400, 7):
        low, high = 2 ** (bucket / 16), 2 ** ((bucket + 1) / 16)
        shown = bucket_value(bucket)
        assert abs(shown - low) <= RELATIVE_ERROR * low * (1 + 1e-9)
        assert abs(shown - high) <= RELATIVE_ERROR * high * (1 + 1e-9)
    assert bucket_of(FLOOR_S) == bucket_of(-3.0) == ZERO and bucket_value(ZERO) == 0.0


def test_packed_histograms_add_and_subtract_every_bucket_at_once() -> None:
    early, late = [0.1, 0.1, 3.0], [0.1, 3.0, 3.0, 7200.0]
    # Sums at two instants from an origin between them: the earlier one, taken backwards,
    # is negative; their difference counts the runs between the two instants.
    at_a = Tally()
    at_a.add(-3, 0, 0, -3, *pack((bucket_of(d), -1) for d in early))
    at_b = tally_of(late)
    stored = to_bytes(at_a.packed)  # as stats_totals keeps it
    assert from_bytes(stored) == at_a.packed < 0
    window = Tally()
    window.add(at_b.runs, 0, 0, at_b.timed, at_b.low or 0, at_b.packed)
    window.add(-at_a.runs, 0, 0, -at_a.timed, at_a.low or 0, -from_bytes(stored))
    assert window.runs == 7
    assert window.percentiles(0.0, 0.5, 1.0) == [
        bucket_value(bucket_of(0.1)),
        bucket_value(bucket_of(3.0)),
        bucket_value(bucket_of(7200.0)),
    ]


def test_counts_that_are_not_runs_are_refused() -> None:
    negative = Tally()
    negative.add(0, 0, 0, -1, *pack([(5, -1)]))
    with pytest.raises(ValueError, match="negative"):
        negative.percentiles(0.5)
    short = Tally()
    short.add(2, 0, 0, 2, *pack([(5, 1)]))
    with pytest.raises(ValueError, match="add up"):
        short.percentiles(0.5)
