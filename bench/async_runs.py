"""Measure runs/s of async runs on one worker's event loop beside sync runs on its threads.

Run from the repository root:

    python bench/async_runs.py --db both --runs 200 --wait 0.1

Two workloads, each timed as one in-process worker (`Worker(until_idle=True)`) claiming and
executing `--runs` queued runs (sent and dispatched untimed):

- "no wait": 3 steps that do nothing: what the async path costs over the sync one.
- "wait": 1 step waiting `--wait` seconds, as an HTTP call does: `time.sleep` in a sync step on
  `--threads` threads, or `asyncio.sleep` in an async step on the worker's loop (ASYNC_RUNS).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:
    # `python bench/async_runs.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

SEND_BATCH = 500


def queue_runs(event: str, runs: int, data: dict[str, Any]) -> None:
    """Send `runs` events and dispatch them into queued runs (untimed)."""
    from inngest_django import send
    from inngest_django.events import dispatch_pending

    for start in range(0, runs, SEND_BATCH):
        send([{"name": event, "data": data} for _ in range(min(SEND_BATCH, runs - start))])
    while dispatch_pending():
        pass


def runs_per_second(event: str, function_id: str, runs: int, data: dict, threads: int) -> float:
    """Queue `runs` runs, then time one worker executing them all; return runs/s."""
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun
    from inngest_django.worker import Worker

    FunctionRun.objects.all().delete()
    queue_runs(event, runs, data)
    started = time.perf_counter()
    Worker(threads=threads, worker_id="bench", until_idle=True).run()
    elapsed = time.perf_counter() - started
    done = FunctionRun.objects.filter(function_id=function_id, status=RunStatus.COMPLETED)
    if done.count() != runs:
        raise SystemExit(f"{function_id}: {done.count()} of {runs} runs completed")
    return runs / elapsed


def run_child(args: argparse.Namespace) -> None:
    """Measure each workload, sync and async, in this process's database."""
    with tempfile.TemporaryDirectory(prefix="inngest_bench_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        from django.db import connection

        from bench.inngest_functions import STEPS_EVENT, WAITS_EVENT

        no_wait = {"steps": 3}
        wait = {"steps": 1, "wait_s": args.wait}
        cases = [
            ("no wait", "sync", STEPS_EVENT, "bench-noop-steps", no_wait, 1),
            ("no wait", "async", f"{WAITS_EVENT}.async", "bench-async-wait-steps",
             {"steps": 3, "wait_s": 0}, 1),
            ("wait", "sync", WAITS_EVENT, "bench-wait-steps", wait, args.threads),
            ("wait", "async", f"{WAITS_EVENT}.async", "bench-async-wait-steps", wait, 1),
        ]  # fmt: skip
        rows = []
        for workload, kind, event, function_id, data, threads in cases:
            rate = runs_per_second(event, function_id, args.runs, data, threads)
            rows.append(
                {"workload": workload, "kind": kind, "threads": threads, "runs_per_s": rate}
            )
            print(
                f"[{args.db}] {workload} {kind} threads={threads}: {rate:,.1f} runs/s", flush=True
            )
        result = {"db": args.db, "vendor": harness.server_version(), "rows": rows}
        result.update(runs=args.runs, wait=args.wait)
        connection.close()
    Path(args.result_file).write_text(json.dumps(result))


def run_parent(args: argparse.Namespace) -> None:
    """Measure each requested database in a child process and print the table."""
    options = ["--runs", str(args.runs), "--wait", str(args.wait), "--threads", str(args.threads)]
    databases = harness.selected_databases(args.db)
    results = harness.run_children("bench.async_runs", [(db, options) for db in databases])
    print()
    print(f"{results[0]['runs']} runs per sample; 'wait' steps wait {results[0]['wait']} s.")
    header = f"{'database':<10} {'workload':<8} {'kind':<6} {'threads':>7} {'runs/s':>8}"
    print(header)
    print("-" * len(header))
    for result in results:
        for row in result["rows"]:
            print(
                f"{result['db']:<10} {row['workload']:<8} {row['kind']:<6} "
                f"{row['threads']:>7} {row['runs_per_s']:>8,.1f}"
            )
    harness.write_json(args.json, results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument("--runs", type=harness.positive, default=200, help="runs per sample")
    parser.add_argument("--wait", type=float, default=0.1, help="seconds each 'wait' step waits")
    parser.add_argument("--threads", type=harness.positive, default=4, help="sync threads")
    parser.add_argument("--json", help="also write the raw results here")
    harness.add_child_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark: the parent by default, one database's child with --child."""
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
