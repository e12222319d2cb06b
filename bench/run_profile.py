"""Where a one-step run's time goes: statements per run and a cProfile of one worker's loop.

Run from the repository root (database `bench8_profile`, or a temporary SQLite file):

    python -m bench.run_profile --db postgres --runs 1000

Sends `--runs` events of `noop-steps` with `data.steps` 1 (untimed), then times
`Worker(threads=0).run_once()` until it finds no work: the same loop a `run_inngest_worker`
process runs, in this process, dispatch of the events included. Prints runs/s, the CPU time
per run of this process and (on PostgreSQL) of its server backend, the statements per run by
kind (one more pass under `CaptureQueriesContext`) and the hottest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
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


def _backend_cpu_seconds(connection) -> float | None:
    """Return the CPU time the server process behind `connection` has used, if it can be read."""
    if connection.vendor != "postgresql":
        return None  # SQLite runs in this process: its time is in process_time already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a server on another machine or in a container
        return None
    # utime and stime, fields 14 and 15 of proc(5), counted after the ")" that ends the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_run(runs: int, samples: int) -> str:
    """Time `samples` drains of `runs` runs by CPU, not wall clock: steadier on a shared VM."""
    from django.db import connection

    worker_ms, server_ms = [], []
    for _ in range(samples):
        _send(runs)
        server_before, started = _backend_cpu_seconds(connection), time.process_time()
        _drain()
        worker_ms.append((time.process_time() - started) * 1000 / runs)
        server_after = _backend_cpu_seconds(connection)
        if server_before is not None and server_after is not None:
            server_ms.append((server_after - server_before) * 1000 / runs)
    line = f"CPU ms per run, median of {samples}: worker {statistics.median(worker_ms):.3f}"
    if server_ms:
        line += f", server backend {statistics.median(server_ms):.3f}"
        together = [sum(pair) for pair in zip(worker_ms, server_ms, strict=True)]
        line += f", together {statistics.median(together):.3f}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=25, help="functions shown")
    parser.add_argument("--cpu-samples", type=int, default=5, help="drains timed by CPU")
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
        print(_cpu_per_run(args.runs, args.cpu_samples))

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
