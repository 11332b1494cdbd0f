"""Time to compute the next tick of N random cron jobs: ours, croniter, Celery's crontab.

    python bench/next_ticks.py [--jobs 100000] [--seed 1]

Prints one table. The same random expressions and zones go to all three; croniter and
Celery get naive/aware datetimes as their APIs want. Parsing and the next-tick computation
are timed separately. Figures are wall-clock seconds on this machine, best of --repeat runs.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from scheduler.timeengine.cron import parse_cron
from scheduler.timeengine.ticks import CronSchedule, next_ticks

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


def best_of(repeat: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    exprs = [(random_expr(rng), rng.choice(ZONES)) for _ in range(args.jobs)]
    after = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    rows: list[tuple[str, float, float]] = []

    schedules: list[CronSchedule] = []

    def ours_parse() -> None:
        schedules.clear()
        schedules.extend(
            CronSchedule(parse_cron(text, f"job-{i}"), ZoneInfo(zone))
            for i, (text, zone) in enumerate(exprs)
        )

    parse_s = best_of(args.repeat, ours_parse)
    next_s = best_of(args.repeat, lambda: [next_ticks(s, after, 1) for s in schedules])
    rows.append(("scheduler (ours)", parse_s, next_s))

    try:
        from croniter import croniter

        iters: list[croniter] = []

        def croniter_parse() -> None:
            iters.clear()
            iters.extend(croniter(text, after.astimezone(ZoneInfo(zone))) for text, zone in exprs)

        parse_c = best_of(args.repeat, croniter_parse)
        # get_next advances the iterator; rebuild each repeat so every run does the same work.
        next_c = (
            best_of(
                args.repeat,
                lambda: [
                    croniter(text, after.astimezone(ZoneInfo(zone))).get_next(datetime)
                    for text, zone in exprs
                ],
            )
            - parse_c
        )
        rows.append(("croniter", parse_c, max(next_c, 0.0)))
    except ImportError:
        pass

    from celery.schedules import crontab

    tabs: list[crontab] = []

    def celery_parse() -> None:
        tabs.clear()
        for text, _zone in exprs:
            minute, hour, dom, month, dow = text.split()
            tabs.append(crontab(minute, hour, dow, dom, month))

    parse_k = best_of(args.repeat, celery_parse)
    next_k = best_of(args.repeat, lambda: [tab.remaining_estimate(after) for tab in tabs])
    rows.append(("celery crontab", parse_k, next_k))

    print(f"next tick of {args.jobs:,} random cron jobs (best of {args.repeat})")
    print(f"{'engine':<18} {'parse s':>9} {'next tick s':>12} {'us/job':>8}")
    for name, parse_time, next_time in rows:
        per_job = next_time / args.jobs * 1e6
        print(f"{name:<18} {parse_time:>9.3f} {next_time:>12.3f} {per_job:>8.1f}")


if __name__ == "__main__":
    main()
