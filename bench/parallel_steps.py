"""Measure the wall time of one run of 10 steps waiting 200 ms each: parallel and sequential.

Run from the repository root:

    python bench/parallel_steps.py --db both --count 10 --wait 0.2 --repeats 3

Each sample queues one run (sent and dispatched untimed) and times one in-process worker
(`Worker(threads=1, until_idle=True)`) executing it. Three shapes: the steps one after another
(sync), in `ctx.group.parallel` with sync callables (`time.sleep`, on PARALLEL_STEP_THREADS
threads), and in `ctx.group.parallel` of an async handler (`asyncio.sleep`, on the loop).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if not __package__:
    # `python bench/parallel_steps.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness


def wall_time(event: str, function_id: str, data: dict) -> float:
    """Queue one run, time a worker executing it, and return the seconds it took."""
    from inngest_django import send
    from inngest_django.enums import RunStatus
    from inngest_django.events import dispatch_pending
    from inngest_django.models import FunctionRun
    from inngest_django.worker import Worker

    FunctionRun.objects.all().delete()
    send({"name": event, "data": data})
    dispatch_pending()
    started = time.perf_counter()
    Worker(threads=1, worker_id="bench", until_idle=True).run()
    elapsed = time.perf_counter() - started
    status = FunctionRun.objects.values_list("status", flat=True).get(function_id=function_id)
    if status != RunStatus.COMPLETED:
        raise SystemExit(f"{function_id}: the run is {status}, not COMPLETED")
    return elapsed


def run_child(args: argparse.Namespace) -> None:
    """Time each shape `--repeats` times in this process's database."""
    with tempfile.TemporaryDirectory(prefix="inngest_bench_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        from django.db import connection

        from bench.inngest_functions import PARALLEL_EVENT

        shape = {"count": args.count, "wait_s": args.wait}
        cases = {
            "sequential": (PARALLEL_EVENT, "bench-parallel-waits", {**shape, "mode": "sequential"}),
            "parallel sync": (
                PARALLEL_EVENT,
                "bench-parallel-waits",
                {**shape, "mode": "parallel"},
            ),
            "parallel async": (f"{PARALLEL_EVENT}.async", "bench-async-parallel-waits", shape),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for repeat in range(args.repeats):
            for name, (event, function_id, data) in cases.items():
                samples[name].append(wall_time(event, function_id, data))
            line = ", ".join(f"{name} {values[-1]:.3f} s" for name, values in samples.items())
            print(f"[{args.db}] repeat {repeat + 1}/{args.repeats}: {line}", flush=True)
        result = {"db": args.db, "vendor": harness.server_version(), "samples": samples}
        result.update(count=args.count, wait=args.wait)
        connection.close()
    Path(args.result_file).write_text(json.dumps(result))


def run_parent(args: argparse.Namespace) -> None:
    """Measure each requested database in a child process and print the table."""
    options = ["--count", str(args.count), "--wait", str(args.wait)]
    options += ["--repeats", str(args.repeats)]
    databases = harness.selected_databases(args.db)
    results = harness.run_children("bench.parallel_steps", [(db, options) for db in databases])
    first = results[0]
    print()
    print(f"One run of {first['count']} steps waiting {first['wait']} s each; medians, seconds.")
    header = f"{'database':<10} {'sequential':>11} {'parallel sync':>14} {'parallel async':>15}"
    print(header)
    print("-" * len(header))
    for result in results:
        medians = {name: harness.median(values) for name, values in result["samples"].items()}
        print(
            f"{result['db']:<10} {medians['sequential']:>11.3f} "
            f"{medians['parallel sync']:>14.3f} {medians['parallel async']:>15.3f}"
        )
    harness.write_json(args.json, results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument("--count", type=harness.positive, default=10, help="steps in the run")
    parser.add_argument("--wait", type=float, default=0.2, help="seconds each step waits")
    parser.add_argument("--repeats", type=harness.positive, default=3, help="samples per shape")
    parser.add_argument("--json", help="also write the raw samples here")
    harness.add_child_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark: the parent by default, one database's child with --child."""
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
