"""Compare steps/s of one 1,000-step run with the raw ORM commit rate, on SQLite and PostgreSQL.

Run from the repository root:

    python bench/step_throughput.py --db both --steps 1000 --repeats 5

Each database is measured in its own child process (Django settings are per process), against
a throwaway database: a temporary SQLite file, or a freshly created `bench_inngest` database.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if not __package__:
    # `python bench/step_throughput.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

# bench/settings.py raises MAX_STEPS_PER_RUN to this, its upper bound.
MAX_STEPS = 10000


# -- the child: one database, measured in this process --------------------------------------


def orm_commits_per_second(commits: int, *, atomic: bool) -> float:
    """Insert `commits` rows, one commit each, and return the rate."""
    from django.db import transaction

    from bench.models import BenchRow

    label = "atomic" if atomic else "autocommit"
    started = time.perf_counter()
    if atomic:
        for number in range(commits):
            with transaction.atomic():
                BenchRow.objects.create(number=number, label=label)
    else:
        for number in range(commits):
            BenchRow.objects.create(number=number, label=label)
    return commits / (time.perf_counter() - started)


def _queued_run(steps: int) -> str:
    """Send the bench event and dispatch it; return the queued run's id (untimed)."""
    from bench.inngest_functions import STEPS_EVENT
    from inngest_django import send
    from inngest_django.events import dispatch_pending
    from inngest_django.models import FunctionRun

    [event_id] = send({"name": STEPS_EVENT, "data": {"steps": steps}})
    dispatch_pending()
    return FunctionRun.objects.values_list("pk", flat=True).get(event_id=event_id)


def _execute_queued_runs() -> None:
    """Claim and execute with the worker's own loop, in this thread, until nothing is left."""
    from inngest_django.worker import Worker

    worker = Worker(threads=0, worker_id="bench")
    while worker.run_once():
        pass


def _check_completed(run_id: str, steps: int) -> None:
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun, StepRun

    status = FunctionRun.objects.values_list("status", flat=True).get(pk=run_id)
    stored = StepRun.objects.filter(run_id=run_id).count()
    if status != RunStatus.COMPLETED or stored != steps:
        raise RuntimeError(f"run {run_id} ended {status} with {stored} of {steps} steps stored")


def steps_per_second(steps: int) -> float:
    """Run one function of `steps` no-op steps; time only its execution, after dispatch."""
    run_id = _queued_run(steps)
    started = time.perf_counter()
    _execute_queued_runs()
    elapsed = time.perf_counter() - started
    _check_completed(run_id, steps)
    return steps / elapsed


def _statement_kind(sql_text: str) -> str:
    words = sql_text.split(None, 2)
    kind = words[0].upper() if words else "?"
    if kind in {"UPDATE", "INSERT", "SELECT", "DELETE"} and len(words) > 1:
        target = sql_text.split('"', 2)[1] if '"' in sql_text else ""
        return f"{kind} {target}".strip()
    return kind


def queries_per_step(steps: int) -> dict[str, Any]:
    """Capture the statements of one run (untimed) and break them down per step."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run_id = _queued_run(steps)
    with CaptureQueriesContext(connection) as captured:
        _execute_queued_runs()
    _check_completed(run_id, steps)
    kinds = Counter(_statement_kind(query["sql"]) for query in captured.captured_queries)
    return {
        "total": len(captured),
        "per_step": len(captured) / steps,
        "kinds": dict(kinds.most_common()),
    }


@contextmanager
def _db_timers() -> Iterator[dict[str, float]]:
    """Add up the seconds spent executing statements and committing, while the block runs."""
    from django.db import connection

    spent = {"execute": 0.0, "commit": 0.0}

    def timed_execute(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["execute"] += time.perf_counter() - started

    commit = connection._commit

    def timed_commit() -> Any:
        started = time.perf_counter()
        try:
            return commit()
        finally:
            spent["commit"] += time.perf_counter() - started

    # Django's commit path has no hook, so the connection's own method is wrapped for a while.
    connection._commit = timed_commit
    try:
        with connection.execute_wrapper(timed_execute):
            yield spent
    finally:
        del connection._commit


def time_breakdown(steps: int, commits: int) -> dict[str, dict[str, float]]:
    """Split microseconds per ORM commit and per step into execute, commit and the rest."""
    result = {}
    for kind, count in (("orm", commits), ("step", steps)):
        run_id = _queued_run(steps) if kind == "step" else ""
        with _db_timers() as spent:
            started = time.perf_counter()
            if kind == "orm":
                orm_commits_per_second(commits, atomic=True)
            else:
                _execute_queued_runs()
            total = time.perf_counter() - started
        if run_id:
            _check_completed(run_id, steps)
        rest = total - spent["execute"] - spent["commit"]
        result[kind] = {
            "total": total / count * 1e6,
            "execute": spent["execute"] / count * 1e6,
            "commit": spent["commit"] / count * 1e6,
            "python": rest / count * 1e6,
        }
    return result


def profile_run(steps: int, *, limit: int) -> None:
    """Profile one run with cProfile and print the hottest functions."""
    import cProfile
    import pstats

    run_id = _queued_run(steps)
    profiler = cProfile.Profile()
    profiler.enable()
    _execute_queued_runs()
    profiler.disable()
    _check_completed(run_id, steps)
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    print(f"\n-- cProfile of one {steps}-step run: by own time --")
    stats.sort_stats("tottime").print_stats(limit)
    print(f"-- cProfile of one {steps}-step run: by cumulative time --")
    stats.sort_stats("cumulative").print_stats(limit)


def run_child(args: argparse.Namespace) -> None:
    """Measure one database and write the samples as JSON to `--result-file`."""
    with tempfile.TemporaryDirectory(prefix="inngest_bench_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        from django.db import connection

        # Warm up the connection, caches and code paths before any sample is taken.
        orm_commits_per_second(min(args.commits, 100), atomic=True)
        steps_per_second(min(args.steps, 100))
        samples: dict[str, list[float]] = {"atomic": [], "autocommit": [], "steps": []}
        # Interleaved, so drift (checkpoints, caches, noisy neighbours) hits every series alike.
        for repeat in range(args.repeats):
            samples["atomic"].append(orm_commits_per_second(args.commits, atomic=True))
            samples["autocommit"].append(orm_commits_per_second(args.commits, atomic=False))
            samples["steps"].append(steps_per_second(args.steps))
            print(
                f"[{args.db}] repeat {repeat + 1}/{args.repeats}: "
                f"atomic {samples['atomic'][-1]:,.0f}/s, "
                f"autocommit {samples['autocommit'][-1]:,.0f}/s, "
                f"steps {samples['steps'][-1]:,.0f}/s",
                flush=True,
            )
        queries = queries_per_step(args.steps)
        breakdown = time_breakdown(args.steps, args.commits)
        if args.profile:
            profile_run(args.steps, limit=args.profile_limit)
        result = {
            "db": args.db,
            "vendor": harness.server_version(),
            "steps": args.steps,
            "commits": args.commits,
            "samples": samples,
            "queries": queries,
            "breakdown": breakdown,
        }
        connection.close()
    Path(args.result_file).write_text(json.dumps(result))


# -- the parent: one child per database, then the table -------------------------------------


def print_table(results: list[dict[str, Any]]) -> None:
    """Print the medians: ORM commit rates, steps/s and their ratio, then queries per step."""
    header = (
        f"{'database':<10} {'ORM commits/s':>14} {'autocommit/s':>13} "
        f"{'steps/s':>9} {'ratio':>6}  {'steps/s range':>15}"
    )
    print()
    print(
        f"Medians of {len(results[0]['samples']['steps'])} repeats; "
        f"{results[0]['commits']} commits and one {results[0]['steps']}-step run per repeat."
    )
    print("ORM commits/s is one insert per transaction.atomic(); ratio = steps/s / that.")
    print(header)
    print("-" * len(header))
    for result in results:
        samples = result["samples"]
        atomic, steps = harness.median(samples["atomic"]), harness.median(samples["steps"])
        spread = f"{min(samples['steps']):,.0f}-{max(samples['steps']):,.0f}"
        print(
            f"{result['db']:<10} {atomic:>14,.0f} {harness.median(samples['autocommit']):>13,.0f} "
            f"{steps:>9,.0f} {steps / atomic:>6.2f}  {spread:>15}"
        )
    print()
    for result in results:
        queries = result["queries"]
        kinds = ", ".join(f"{kind} x{count}" for kind, count in queries["kinds"].items())
        print(
            f"{result['db']} ({result['vendor']}): {queries['per_step']:.3f} captured statements "
            f"per step ({queries['total']} for the run): {kinds}"
        )
    print()
    print("Microseconds per ORM commit / per step, from one extra sample (not in the medians):")
    print(f"{'database':<10} {'kind':<6} {'total':>7} {'execute':>8} {'commit':>7} {'python':>7}")
    for result in results:
        for kind, parts in result["breakdown"].items():
            print(
                f"{result['db']:<10} {kind:<6} {parts['total']:>7.0f} {parts['execute']:>8.0f} "
                f"{parts['commit']:>7.0f} {parts['python']:>7.0f}"
            )


def run_parent(args: argparse.Namespace) -> None:
    """Measure each requested database in a child process and print the table."""
    options = ["--steps", str(args.steps), "--commits", str(args.commits)]
    options += ["--repeats", str(args.repeats), "--profile-limit", str(args.profile_limit)]
    if args.profile:
        options.append("--profile")
    databases = harness.selected_databases(args.db)
    results = harness.run_children("bench.step_throughput", [(db, options) for db in databases])
    print_table(results)
    harness.write_json(args.json, results)


def _step_count(value: str) -> int:
    number = harness.positive(value)
    if number > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be {MAX_STEPS} or fewer (MAX_STEPS_PER_RUN)")
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument(
        "--steps", type=_step_count, default=1000, help="steps in the run (default: %(default)r)"
    )
    parser.add_argument(
        "--commits",
        type=harness.positive,
        default=1000,
        help="ORM inserts per sample (default: %(default)r)",
    )
    parser.add_argument(
        "--repeats",
        type=harness.positive,
        default=5,
        help="samples of each kind (default: %(default)r)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one extra run (default: %(default)r)"
    )
    parser.add_argument(
        "--profile-limit",
        type=harness.positive,
        default=30,
        help="functions listed per profile table (default: %(default)r)",
    )
    parser.add_argument("--json", help="also write the raw samples here (default: %(default)r)")
    harness.add_child_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark: the parent by default, one database's child with --child."""
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
