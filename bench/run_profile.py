"""Where a one-step run's time goes: statements per run and a cProfile of one worker's loop.

Run from the repository root (database `bench8_profile`, or a temporary SQLite file):

    python -m bench.run_profile --db postgres --runs 1000

Sends `--runs` events of `noop-steps` with `data.steps` 1 (untimed), then times
`Worker(threads=0).run_once()` until it finds no work: the same loop a `run_inngest_worker`
process runs, in this process, dispatch of the events included. Prints runs/s, the statements
per run by kind (one more pass under `CaptureQueriesContext`) and the hottest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _send(runs: int) -> None:
    from bench.fleet_throughput import clear
    from bench.inngest_functions import STEPS_EVENT
    from inngest_django import send

    clear()
    for start in range(0, runs, 500):
        batch = min(500, runs - start)
        send([{"name": STEPS_EVENT, "data": {"steps": 1}} for _ in range(batch)])


def _drain() -> int:
    from inngest_django.worker import Worker

    worker = Worker(threads=0, worker_id="profile")
    loops = 1
    while worker.run_once():
        loops += 1
    return loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=25, help="functions shown")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("INNGEST_DJANGO_BENCH_PG_NAME", "bench8_profile")
    from bench.harness import setup_django
    from bench.step_throughput import _statement_kind

    with tempfile.TemporaryDirectory(prefix="inngest_profile_") as workdir:
        setup_django(args.db, Path(workdir))
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        _send(100)
        _drain()  # warm-up
        _send(args.runs)
        started = time.perf_counter()
        loops = _drain()
        seconds = time.perf_counter() - started
        print(f"{args.db}: {args.runs / seconds:,.1f} runs/s in one process ({loops} loops)")

        _send(100)
        with CaptureQueriesContext(connection) as captured:
            _drain()
        kinds = Counter(_statement_kind(query["sql"]) for query in captured.captured_queries)
        per_run = ", ".join(f"{kind} {count / 100:g}" for kind, count in kinds.most_common())
        print(f"{len(captured.captured_queries) / 100:g} statements per run: {per_run}")

        _send(args.runs)
        profiler = cProfile.Profile()
        profiler.enable()
        _drain()
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.limit)
        stats.sort_stats("cumulative").print_stats(args.limit)
        connection.close()


if __name__ == "__main__":
    main()
