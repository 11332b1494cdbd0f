"""`scheduler.app` with the schedule file's YAML node limit raised, for bench/dispatch.py.

    PYTHONPATH=<repo> celery -A bench.ours_app beat

scheduler/yamlsafe.py refuses a schedule file of more than MAX_NODES (10,000) YAML nodes,
which caps a file at about 1,600 jobs. `dispatch.py --lift-node-cap` runs our beat through
this module to measure dispatch of more jobs than that; everything else is `scheduler.app`
(the same Beat class, the same recorder). BENCH_MAX_NODES sets the limit (default 10^7).
"""

from __future__ import annotations

import os

import scheduler.yamlsafe

scheduler.yamlsafe.MAX_NODES = int(os.environ.get("BENCH_MAX_NODES", "10000000"))

from scheduler.celery_app import app  # noqa: E402

__all__ = ["app"]
