"""Beats killed with SIGKILL at random moments while ticks are due: every tick still runs
exactly once. Bounded in time; kills only the beats it started."""

from __future__ import annotations

import random
import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from tests.e2e.harness import system, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

RUN_FOR = 25.0  # seconds of killing and restarting
# Beats claim ticks this far ahead, and send a dead beat's claims this long after they were
# due (SCHEDULER_PREPARE_AHEAD, SCHEDULER_UNSENT_AFTER): short, so that the claims the last
# killed beat left are recovered within seconds. Several ticks are still claimed ahead.
AHEAD = 3.0
UNSENT_AFTER = 2.0


def _tick(row: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(row["tick_at"]))


@pytest.mark.parametrize("beat_count", [1, 2, 3])
def test_beats_killed_at_random_lose_and_double_no_tick(beat_count: int, tmp_path: Path) -> None:
    rng = random.Random(20261126 + beat_count)
    with system("redis", "postgresql", tmp_path) as s:
        s.env["SCHEDULER_PREPARE_AHEAD"] = str(AHEAD)
        s.env["SCHEDULER_UNSENT_AFTER"] = str(UNSENT_AFTER)
        s.write_schedule(
            "jobs:\n"
            "  every-second: {task: jobs.demo.noop, every: 1s, overlap: allow}\n"
            "  every-2s: {task: jobs.demo.noop, every: 2s, overlap: allow}\n"
        )
        s.worker(concurrency=2)
        beats = [s.beat(f"beat-{i}") for i in range(beat_count)]
        wait_for(lambda: len(s.history(job="every-second")) >= 2, 60, "the first ticks", s)
        started = time.monotonic()
        kills = 0
        while time.monotonic() - started < RUN_FOR:
            time.sleep(rng.uniform(1.0, 4.0))
            victim = rng.randrange(len(beats))
            s.stop(beats[victim], signal.SIGKILL)
            kills += 1
            last_kill = datetime.now(UTC)
            time.sleep(rng.uniform(0.0, 2.0))
            beats[victim] = s.beat(f"beat-{victim}-{kills}")

        # A killed beat leaves the ticks it claimed ahead (due up to AHEAD after its death)
        # to the others, which send them UNSENT_AFTER after they were due (recovery runs
        # every UNSENT_AFTER / 2). Wait until every tick due before `late` was sent, `late`
        # is past the last claim a killed beat can have left, and a beat is up and sending
        # on time (one just restarted may still be catching up).
        def recovered() -> bool:
            now = datetime.now(UTC)
            late = now - timedelta(seconds=UNSENT_AFTER + 2)
            rows = s.history()
            sent = [_tick(r) for r in rows if r["enqueued_at"]]
            return (
                late > last_kill + timedelta(seconds=AHEAD)
                and max(sent) > now - timedelta(seconds=2)
                and not [r for r in rows if not r["enqueued_at"] and _tick(r) < late]
            )

        wait_for(recovered, 90, "the ticks the killed beats claimed to be sent", s)
        # Celery beat ends where SIGTERM lands; half a second after a tick the beats are
        # idle, not between claiming a tick and holding it to send (as bench/soak.py does).
        time.sleep(1.5 - time.time() % 1)
        s.stop_together(beats)  # warm stop: sends what it claimed ahead, each at its instant

        def settled() -> list[dict[str, object]] | None:
            rows = s.history(job="every-second")
            return rows if all(r["status"] == "succeeded" for r in rows) else None

        rows = wait_for(settled, 60, "every run to finish", s)
        ticks = sorted(_tick(r) for r in rows)
        assert len(ticks) >= RUN_FOR
        assert {b - a for a, b in pairwise(ticks)} == {timedelta(seconds=1)}, "a tick is missing"
        assert all(r["attempts"] == 1 for r in rows)
        executed = Counter(re.findall(r"Task jobs\.demo\.noop\[([0-9a-f-]+)\] succeeded", s.logs()))
        assert executed and max(executed.values()) == 1, "a run was executed twice"
        assert kills >= 5
