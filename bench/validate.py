"""Cold start of `scheduler next`, and how fast hostile schedule files are refused.

    python bench/validate.py [--repeat 5]

Cold start is a new `scheduler next` process (Python start-up and imports included),
median of --repeat runs. The hostile files are a billion-laughs alias bomb and a 50 MB file.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scheduler.errors import ScheduleError
from scheduler.schedule_file import load_schedule

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "scheduler",
                "--file",
                str(root / "schedules.yaml"),
                "next",
                "nightly-report",
                "-n",
                "5",
            ],
            check=True,
            capture_output=True,
        )
        runs.append(time.perf_counter() - started)
    print(f"{'measure':<34} {'seconds':>9}")
    print(f"{'scheduler next, cold start (median)':<34} {statistics.median(runs):>9.3f}")
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


if __name__ == "__main__":
    main()
