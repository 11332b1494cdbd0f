"""Run durations counted in log-scale buckets: the form `stats` sums them up in (rollup.py).

Bucket b holds the durations d with b <= PER_DOUBLING * log2(d) < b + 1, so a bucket's
upper edge is 2 ** (1 / PER_DOUBLING) times its lower one; a duration is shown as the
geometric middle of its bucket, within RELATIVE_ERROR of the true value. Durations of
at most FLOOR_S (and negative ones, from clocks that disagree) share the bucket ZERO,
shown as 0.

A job's counts are packed into one integer, count of bucket `low + i` times 2 ** (32 * i):
adding or subtracting two packed histograms (aligned to the same `low`) adds or subtracts
every bucket at once, in C, where summing dictionaries would cost a Python step per bucket.
Counts may be negative (a sum taken backwards from a later instant); only a difference
that counts real runs, every bucket between 0 and 2 ** 32, is unpacked.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

PER_DOUBLING = 16
FLOOR_S = 1e-6
ZERO = math.floor(math.log2(FLOOR_S) * PER_DOUBLING) - 1
RELATIVE_ERROR = 2 ** (1 / (2 * PER_DOUBLING)) - 1  # 2.19 %
_BITS = 32
_UINT32 = next(code for code in "IL" if array(code).itemsize == 4)


def bucket_of(seconds: float) -> int:
    """The bucket of a duration (the SQL in rollup.py computes the same in the database)."""
    if seconds <= FLOOR_S:
        return ZERO
    return math.floor(math.log(seconds) * (PER_DOUBLING / math.log(2)))


def bucket_value(bucket: int) -> float:
    """The duration a bucket is shown as: the geometric middle of its edges."""
    return 0.0 if bucket <= ZERO else 2 ** ((bucket + 0.5) / PER_DOUBLING)


def pack(counts: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(low, packed) of (bucket, count) pairs; (0, 0) for none."""
    pairs = [(bucket, count) for bucket, count in counts if count]
    if not pairs:
        return 0, 0
    low = min(bucket for bucket, _ in pairs)
    return low, sum(count << (_BITS * (bucket - low)) for bucket, count in pairs)


def to_bytes(packed: int) -> bytes:
    """A packed histogram as stored (little-endian, signed)."""
    return packed.to_bytes((packed.bit_length() + 8) // 8 if packed else 0, "little", signed=True)


def from_bytes(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


class Tally:
    """A job's totals being summed: runs, successes, failures, and a packed histogram."""

    __slots__ = ("failed", "low", "packed", "runs", "succeeded", "timed")

    def __init__(self) -> None:
        self.runs = self.succeeded = self.failed = self.timed = 0
        self.low: int | None = None
        self.packed = 0

    def add(
        self, runs: int, succeeded: int, failed: int, timed: int, low: int, packed: int
    ) -> None:
        """Add (or, with negative values, subtract) totals whose histogram starts at `low`."""
        self.runs += runs
        self.succeeded += succeeded
        self.failed += failed
        self.timed += timed
        if not packed:
            return
        if self.low is None:
            self.low, self.packed = low, packed
            return
        if low < self.low:
            self.packed <<= _BITS * (self.low - low)
            self.low = low
        self.packed += packed << (_BITS * (low - self.low))

    def buckets(self) -> Sequence[int]:
        """The count of every bucket from `low` up; ValueError if a count is out of range."""
        if self.packed < 0:
            raise ValueError("a bucket count is negative")
        size = (self.packed.bit_length() + _BITS - 1) // _BITS
        view = memoryview(self.packed.to_bytes(size * 4, "little"))
        return view.cast("I") if _UINT32 == "I" else view.cast("L")

    def percentiles(self, *qs: float) -> list[float | None]:
        """The durations at these quantiles, as stats.percentile ranks them (None if no runs).

        ValueError if the buckets do not add up to the runs with a duration: these totals
        are not a difference of snapshots that counts real runs.
        """
        timed = self.timed
        if not timed:
            if self.packed:
                raise ValueError("bucket counts without runs")
            return [None for _ in qs]
        cumulative = list(accumulate(self.buckets()))
        if not cumulative or cumulative[-1] != timed:
            raise ValueError("bucket counts do not add up to the runs with a duration")
        low = self.low or 0
        return [
            bucket_value(low + bisect_right(cumulative, min(timed - 1, round(q * (timed - 1)))))
            for q in qs
        ]
