"""How far ahead the beat claims and prepares ticks: longer when a burst is coming.

Pure: the clock reading and the measured cost per run are passed in.

A beat prepares the runs due within its lead (claim, plan, build the message) and sends
each at its instant. Ten seconds cover about 10,000 runs due in the same second; 50,000
jobs due at midnight would go out up to half a minute late. Counting the runs due in each
coming second tells how long preparing them will take, and so when to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

BASE_LEAD = timedelta(seconds=10)  # the default of Settings.prepare_ahead
MAX_LEAD = timedelta(minutes=5)  # a burst larger than this can prepare is sent late
SAFETY = 1.5  # the measured cost per run varies with the machine's load
EWMA_WEIGHT = 0.3  # of the newest measurement of the cost per run
MIN_SAMPLE = 50  # runs: smaller batches measure overheads, not the cost per run


@dataclass
class LeadPlanner:
    """Counts of the runs due per second, and the cost of preparing one, measured."""

    base: timedelta = BASE_LEAD  # the lead when no burst is coming
    cost_s: float = 0.001  # seconds to prepare one run, until measured
    _per_second: dict[int, int] = field(default_factory=dict)

    def add(self, due_at: datetime) -> None:
        second = int(due_at.timestamp())
        self._per_second[second] = self._per_second.get(second, 0) + 1

    def remove(self, due_at: datetime) -> None:
        second = int(due_at.timestamp())
        left = self._per_second.get(second, 0) - 1
        if left > 0:
            self._per_second[second] = left
        else:
            self._per_second.pop(second, None)

    def measured(self, runs: int, seconds: float) -> None:
        """Runs prepared in `seconds`; ignored when too few to tell."""
        if runs >= MIN_SAMPLE and seconds > 0:
            newest = seconds / runs
            self.cost_s += EWMA_WEIGHT * (newest - self.cost_s)

    def lead(self, now: datetime) -> timedelta:
        """How far past `now` to prepare, so that the runs due in each coming second are
        ready by then if preparing starts now (at least `base`, at most MAX_LEAD)."""
        start = now.timestamp()
        base, cap = self.base.total_seconds(), max(MAX_LEAD, self.base).total_seconds()
        lead = base
        counts = self._per_second
        # Runs already within BASE_LEAD are prepared anyway, but take time all the same.
        pending = sum(counts.get(s, 0) for s in range(int(start), int(start + base) + 1))
        # The dict may hold 100,000 seconds (jittered jobs): walk the window, not its keys.
        for second in range(int(start + base) + 1, int(start + cap) + 1):
            count = counts.get(second, 0)
            if not count:
                continue
            pending += count
            # Runs due by `second` take pending * cost to prepare: once starting them later
            # than `base` before `second` would be too late, they belong in the lead.
            if second - pending * self.cost_s * SAFETY <= start + base:
                lead = second + 1 - start
        return timedelta(seconds=min(lead, cap))
