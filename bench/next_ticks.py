"""Time to parse N random cron expressions and to compute their next tick: ours, croniter,
Celery's crontab.

    python bench/next_ticks.py [--quick] [--jobs 100000] [--seed 1] [--repeat 3]

Prints one table. The same random expressions and zones go to all three; croniter and
Celery get aware/naive datetimes as their APIs want (Celery's crontab has no per-job zone).
Parsing and the next tick are timed separately, wall clock, best of --repeat runs:

- parse: ours is `parse_cron` + `CronSchedule` with every cache of the time engine emptied
  first (a cold start: only what the N expressions share with each other helps);
  croniter is constructing `croniter(expr, after)`; Celery is constructing `crontab(...)`.
- next tick: the first `next_ticks(schedule, after, 1)` of each parsed schedule (ours),
  `get_next()` on each freshly built croniter, `remaining_estimate(after)` (Celery).

--quick: 10,000 jobs, one run.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._support import header, load_line  # noqa: E402
from scheduler.timeengine.cron import clear_caches, parse_cron  # noqa: E402
from scheduler.timeengine.ticks import CronSchedule, next_ticks  # noqa: E402

ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Europe/Berlin",
    "Pacific/Auckland",
]


def random_expr(rng: random.Random) -> str:
    def field(lo: int, hi: int) -> str:
        kind = rng.random()
        if kind < 0.35:
            return "*"
        if kind < 0.55:
            return str(rng.randint(lo, hi))
        if kind < 0.7:
            return f"*/{rng.randint(2, max(2, (hi - lo) // 2))}"
        if kind < 0.85:
            a = rng.randint(lo, hi)
            return f"{a}-{rng.randint(a, hi)}"
        return ",".join(str(v) for v in sorted(rng.sample(range(lo, hi + 1), 3)))

    return " ".join((field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)))


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def measure(
    repeat: int,
    parse: Callable[[], object],
    next_tick: Callable[[], object],
    reset: Callable[[], object],
) -> tuple[float, float]:
    """Best parse and best next-tick seconds; each run parses afresh, then computes."""
    parse_s, next_s = float("inf"), float("inf")
    for _ in range(repeat):
        # Untimed: free the previous run's objects and collect, so that no run (and no
        # engine) pays for the garbage of another. Collections during a run are timed.
        reset()
        gc.collect()
        parse_s = min(parse_s, timed(parse))
        gc.collect()
        next_s = min(next_s, timed(next_tick))
    reset()
    return parse_s, next_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 jobs, one run")
    parser.add_argument("--jobs", type=int, default=None, help="default 100,000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=None, help="default 3")
    args = parser.parse_args()
    jobs = args.jobs or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    rng = random.Random(args.seed)
    exprs = [(random_expr(rng), rng.choice(ZONES)) for _ in range(jobs)]
    after = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    rows: list[tuple[str, float, float]] = []

    schedules: list[CronSchedule] = []

    def ours_reset() -> None:
        schedules.clear()
        clear_caches()

    def ours_parse() -> None:
        schedules[:] = [
            CronSchedule(parse_cron(text, f"job-{i}"), ZoneInfo(zone))
            for i, (text, zone) in enumerate(exprs)
        ]

    def ours_next() -> None:
        for schedule in schedules:
            next_ticks(schedule, after, 1)

    rows.append(("scheduler (ours)", *measure(repeat, ours_parse, ours_next, ours_reset)))

    try:
        from croniter import croniter
    except ImportError:
        print("croniter is not installed: its row is left out", file=sys.stderr)
    else:
        iters: list[croniter] = []

        def croniter_parse() -> None:
            iters[:] = [croniter(text, after.astimezone(ZoneInfo(zone))) for text, zone in exprs]

        def croniter_next() -> None:
            # get_next() advances the iterator: croniter_parse() builds fresh ones every run.
            for it in iters:
                it.get_next(datetime)

        rows.append(("croniter", *measure(repeat, croniter_parse, croniter_next, iters.clear)))

    from celery.schedules import crontab

    tabs: list[crontab] = []

    def celery_parse() -> None:
        for text, _zone in exprs:
            minute, hour, dom, month, dow = text.split()
            tabs.append(crontab(minute, hour, dow, dom, month))

    def celery_next() -> None:
        for tab in tabs:
            tab.remaining_estimate(after)

    rows.append(("celery crontab", *measure(repeat, celery_parse, celery_next, tabs.clear)))

    print(header(f"parse and next tick of {jobs:,} random cron jobs (best of {repeat})"))
    print(f"{'engine':<18} {'parse s':>9} {'us/expr':>8} {'next tick s':>12} {'us/job':>8}")
    for name, parse_time, next_time in rows:
        print(
            f"{name:<18} {parse_time:>9.3f} {parse_time / jobs * 1e6:>8.1f}"
            f" {next_time:>12.3f} {next_time / jobs * 1e6:>8.1f}"
        )
    print(f"{load_line()} at the end")


if __name__ == "__main__":
    main()
