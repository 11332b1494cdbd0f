"""Cold start of `scheduler next`, and how fast hostile schedule files are refused.

    python bench/validate.py [--quick] [--repeat 5]

Cold start is a new `scheduler next` process (Python start-up and imports included),
median of --repeat runs: wall clock, and the CPU time (user + system) of the process, which
a busy machine inflates less. `python -X importtime -m scheduler next ...` shows where it
goes. The hostile files are a billion-laughs alias bomb and a 50 MB file. --quick: 2 runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._support import header, load_line  # noqa: E402
from scheduler.errors import ScheduleError  # noqa: E402
from scheduler.schedule_file import load_schedule  # noqa: E402

BOMB = "\n".join(
    ['a0: &a0 ["lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    + ["jobs: {}"]
)


def time_reject(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        load_schedule(path, known_tasks=())
    except ScheduleError as exc:
        return time.perf_counter() - started, str(exc.problems[0])
    raise SystemExit(f"{path} was accepted")


def cold_start(schedule_file: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `scheduler next` process."""
    command = [sys.executable, "-m", "scheduler", "--file", str(schedule_file), "next"]
    command += ["nightly-report", "-n", "5", "--after", "2026-03-07T00:00"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 cold starts")
    parser.add_argument("--repeat", type=int, default=None, help="default 5")
    args = parser.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    runs = [cold_start(REPO / "schedules.yaml") for _ in range(repeat)]
    wall = statistics.median(w for w, _ in runs)
    cpu = statistics.median(c for _, c in runs)
    print(header(f"scheduler next cold start (median of {repeat}); hostile schedule files"))
    print(f"{'measure':<34} {'seconds':>9}")
    print(f"{'scheduler next, cold start (wall)':<34} {wall:>9.3f}")
    print(f"{'scheduler next, cold start (CPU)':<34} {cpu:>9.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.yaml"
        bomb.write_text(BOMB)
        seconds, message = time_reject(bomb)
        print(f"{'billion laughs rejected':<34} {seconds:>9.4f}   {message}")
        big = Path(tmp) / "big.yaml"
        with big.open("wb") as out:
            out.write(b"jobs: {}\n" + b"#" * (50 * 1024 * 1024) + b"\n")
        seconds, message = time_reject(big)
        print(f"{'50 MB file rejected':<34} {seconds:>9.4f}   {message}")
    print(f"{load_line()} at the end")


if __name__ == "__main__":
    main()
