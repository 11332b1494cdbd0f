"""Run every benchmark of bench/, one after the other, and say which ones failed.

    python bench/run_all.py [--quick] [--soak] [--only NAME ...] [--skip NAME ...]

Each benchmark runs as its own process (`python bench/NAME.py`, from the repository root),
with its output streamed as it comes, in this order: dispatch, idle, worker_throughput,
history_queries, next_ticks, validate, and soak only with --soak (it SIGKILLs beats for
minutes). A script that is not there yet is listed as missing, not as failed. --quick is
passed to the scripts that take it (the others run at their default size, with a note). At
the end a summary prints each benchmark's status and wall time, and the total; the exit
status is 1 if any failed. Ctrl-C (or SIGTERM) stops the running benchmark cleanly and
prints the summary.

Benchmarks run one at a time on purpose: they time processes on a 2-CPU machine, and two at
once would measure each other. With --quick, dispatch takes about 4 minutes (it waits for
three minute boundaries) and history_queries, next_ticks and validate under a minute
together; the whole run takes what idle.py --quick and worker_throughput.py --quick add.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# The order of the benchmarks (issue 5: dispatch, idle, history cost, queries, time
# engine); validate.py's cold start and hostile files belong with the time engine.
ORDER = (
    "dispatch",
    "idle",
    "worker_throughput",
    "history_queries",
    "next_ticks",
    "validate",
)


@dataclass
class Outcome:
    name: str
    status: str  # "ok", "failed (exit N)", "missing", "interrupted", "not run"
    seconds: float = 0.0


def takes_quick(script: Path) -> bool:
    """Whether the script declares a --quick option (read from its source, not run)."""
    return '"--quick"' in script.read_text(encoding="utf-8")


def command(name: str, quick: bool) -> list[str] | None:
    """The command line for bench/NAME.py, or None if there is no such script."""
    script = BENCH / f"{name}.py"
    if not script.exists():
        return None
    args = [sys.executable, str(script)]
    if quick:
        if takes_quick(script):
            args.append("--quick")
        else:
            print(f"note: bench/{name}.py takes no --quick; running its default size", flush=True)
    return args


def run(name: str, args: list[str]) -> Outcome:
    """Run one benchmark with its output going straight to ours; SIGINT stops it cleanly."""
    print(f"\n===== {name}: {' '.join(args[1:])}", flush=True)
    started = time.monotonic()
    # Its own session, so Ctrl-C here is passed on as SIGTERM, which the benchmarks turn
    # into a clean exit (their processes stopped, their Redis DB and database dropped).
    proc = subprocess.Popen(args, cwd=REPO, start_new_session=True)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return Outcome(name, "interrupted", time.monotonic() - started)
    status = "ok" if code == 0 else f"failed (exit {code})"
    return Outcome(name, status, time.monotonic() - started)


def summary(outcomes: list[Outcome], total: float) -> str:
    width = max(len("benchmark"), *(len(o.name) for o in outcomes))
    lines = [f"{'benchmark'.ljust(width)}  {'status':<20}  {'wall s':>7}"]
    for o in outcomes:
        wall = f"{o.seconds:7.0f}" if o.status not in ("missing", "not run") else f"{'-':>7}"
        lines.append(f"{o.name.ljust(width)}  {o.status:<20}  {wall}")
    failed = [o.name for o in outcomes if o.status not in ("ok", "missing", "not run")]
    lines.append(f"total wall time {total / 60:.1f} min")
    lines.append(f"failed: {', '.join(failed)}" if failed else "no benchmark failed")
    return "\n".join(lines)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="each benchmark's quick size")
    parser.add_argument("--soak", action="store_true", help="also run soak.py (minutes)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="skip these")
    args = parser.parse_args()
    # SIGTERM as Ctrl-C: the running benchmark is stopped cleanly and the summary printed.
    signal.signal(signal.SIGTERM, _interrupt)
    names = [*ORDER, "soak"] if args.soak else list(ORDER)
    unknown = {*(args.only or []), *args.skip} - {*ORDER, "soak"}
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    if args.only:
        names = [n for n in (*ORDER, "soak") if n in args.only]
    names = [n for n in names if n not in args.skip]
    # A benchmark that reads the SCHEDULER_* environment would measure another setup.
    env_vars = sorted(k for k in os.environ if k.startswith("SCHEDULER_"))
    if env_vars:
        print(f"note: set in the environment: {', '.join(env_vars)}", flush=True)

    started = time.monotonic()
    outcomes: list[Outcome] = []
    for index, name in enumerate(names):
        if outcomes and outcomes[-1].status == "interrupted":
            outcomes += [Outcome(rest, "not run") for rest in names[index:]]
            break
        args_for = command(name, args.quick)
        if args_for is None:
            print(f"\n===== {name}: bench/{name}.py is not there; skipped", flush=True)
            outcomes.append(Outcome(name, "missing"))
            continue
        outcomes.append(run(name, args_for))
    print("\n===== summary")
    print(summary(outcomes, time.monotonic() - started), flush=True)
    sys.exit(0 if all(o.status in ("ok", "missing") for o in outcomes) else 1)


if __name__ == "__main__":
    main()
