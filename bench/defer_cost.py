"""Measure what a defer costs: the parent's finalize, the relay, and the deferred runs' drain.

Run from the repository root:

    python bench/defer_cost.py --db both --repeats 5

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if not __package__:
    # `python bench/defer_cost.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

PLACEMENTS = ("after", "before")
# The library's default MAX_DEFERS_PER_RUN, which bench.settings keeps.
MAX_DEFERS = 20


# -- the child: one database, measured in this process --------------------------------------


def _series(counts: list[int], placements: list[str]) -> list[tuple[int, str]]:
    """Return the (defers, placement) pairs to sample; 0 defers has no placement."""
    pairs = [(count, placement) for count in counts for placement in placements if count]
    return ([(0, "-")] if 0 in counts else []) + pairs


def _key(defers: int, placement: str) -> str:
    return f"{defers}/{placement}"


def _queue_parents(runs: int, defers: int, placement: str) -> list[str]:
    """Send `runs` events for `defer-parent` and dispatch them; return the queued run ids."""
    from bench.inngest_functions import DEFERS_EVENT
    from inngest_django import send
    from inngest_django.events import dispatch_pending
    from inngest_django.models import FunctionRun

    data = {"defers": defers, "placement": "after" if placement == "-" else placement}
    event_ids = send([{"name": DEFERS_EVENT, "data": data} for _ in range(runs)])
    while dispatch_pending():
        pass
    run_ids = list(FunctionRun.objects.filter(event_id__in=event_ids).values_list("pk", flat=True))
    if len(run_ids) != runs:
        raise RuntimeError(f"{runs} events dispatched into {len(run_ids)} runs")
    return run_ids


def _claim_and_execute_all() -> None:
    """Claim and execute queued runs in this thread, as the worker does, but never relay."""
    from inngest_django.worker import Worker

    worker = Worker(threads=0, worker_id="bench")
    # run_once() would also relay the parents' outbox rows and run the deferred runs, which
    # this part must leave alone: the relay is measured on its own.
    while worker._claim_and_execute():
        pass


def _check_parents(run_ids: list[str], defers: int) -> None:
    """Fail unless every parent completed with `defers` scheduled intents and outbox rows."""
    from inngest_django.enums import DeferStatus, RunStatus
    from inngest_django.models import DeferIntent, FunctionRun, OutboxMessage

    completed = FunctionRun.objects.filter(pk__in=run_ids, status=RunStatus.COMPLETED).count()
    scheduled = DeferIntent.objects.filter(run_id__in=run_ids, status=DeferStatus.SCHEDULED).count()
    outbox = OutboxMessage.objects.filter(intent__run_id__in=run_ids).count()
    expected = len(run_ids) * defers
    if completed != len(run_ids) or scheduled != expected or outbox != expected:
        raise RuntimeError(
            f"{completed} of {len(run_ids)} parents completed, with {scheduled} scheduled "
            f"intents and {outbox} outbox rows of {expected}"
        )


@contextmanager
def _pass_timers(function_id: str) -> Iterator[dict[str, list[float]]]:
    """Record the seconds of each run pass and each finalize of `function_id`, while open."""
    from inngest_django.engine import RunPass

    spent: dict[str, list[float]] = {"pass": [], "finalize": []}

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: RunPass, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                if self.run.function_id == function_id:
                    spent[name].append(time.perf_counter() - started)

        return wrapper

    execute, finish = RunPass.execute, RunPass._finish
    # The library has no hook around a pass or its finalize, so the class is patched a while.
    RunPass.execute = timed("pass", execute)  # type: ignore[method-assign]
    RunPass._finish = timed("finalize", finish)  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        RunPass.execute, RunPass._finish = execute, finish  # type: ignore[method-assign]


def _delete_parents(run_ids: list[str]) -> None:
    """Delete finished parents with their steps, intents and outbox rows, never relayed."""
    from inngest_django.models import FunctionRun

    FunctionRun.objects.filter(pk__in=run_ids).delete()


def finalize_sample(runs: int, defers: int, placement: str) -> dict[str, float]:
    """Run `runs` parents of `defers` defers each; return ms per pass and per finalize."""
    from bench.inngest_functions import defer_parent

    run_ids = _queue_parents(runs, defers, placement)
    with _pass_timers(defer_parent.id) as spent:
        _claim_and_execute_all()
    if len(spent["pass"]) != runs or len(spent["finalize"]) != runs:
        raise RuntimeError(
            f"{runs} parents took {len(spent['pass'])} passes and "
            f"{len(spent['finalize'])} finalizes, not one each"
        )
    _check_parents(run_ids, defers)
    _delete_parents(run_ids)
    return {
        "pass": sum(spent["pass"]) / runs * 1e3,
        "finalize": sum(spent["finalize"]) / runs * 1e3,
    }


def _unrelayed() -> int:
    from inngest_django.models import OutboxMessage

    return OutboxMessage.objects.filter(relayed_at__isnull=True).count()


def _check_one_run_per_intent() -> None:
    from inngest_django.enums import DeferStatus
    from inngest_django.models import DeferIntent, FunctionRun

    runs = FunctionRun.objects.filter(defer_intent__isnull=False).count()
    intents = DeferIntent.objects.filter(status=DeferStatus.SCHEDULED).count()
    if runs != intents:
        raise RuntimeError(f"{runs} deferred runs for {intents} scheduled intents")


def _drain() -> None:
    """Run the worker's own loop in this thread until it finds no work."""
    from inngest_django.worker import Worker

    worker = Worker(threads=0, worker_id="bench")
    while worker.run_once():
        pass


def _prepare_outbox(parents: int, defers: int) -> list[str]:
    """Finish `parents` parents of `defers` defers each (untimed); check the outbox rows."""
    run_ids = _queue_parents(parents, defers, "after")
    _claim_and_execute_all()
    _check_parents(run_ids, defers)
    waiting = _unrelayed()
    if waiting != parents * defers:
        raise RuntimeError(f"{waiting} outbox rows wait, not {parents * defers}")
    return run_ids


def _relay_all() -> tuple[int, int]:
    """Call relay_pending() until it relays nothing; return the rows and the calls."""
    from inngest_django.outbox import relay_pending

    rows = calls = 0
    while relayed := relay_pending():
        rows += relayed
        calls += 1
    return rows, calls


def _check_drained(parent_ids: list[str], expected: int) -> None:
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun

    deferred = FunctionRun.objects.filter(parent_run_id__in=parent_ids, defer_intent__isnull=False)
    completed = deferred.filter(status=RunStatus.COMPLETED).count()
    if completed != expected:
        raise RuntimeError(f"{completed} of {expected} deferred runs completed")


def relay_sample(parents: int, defers: int) -> dict[str, float]:
    """Relay the outbox rows of `parents` finished parents, then drain their deferred runs."""
    parent_ids = _prepare_outbox(parents, defers)
    expected = parents * defers
    started = time.perf_counter()
    rows, calls = _relay_all()
    relay_seconds = time.perf_counter() - started
    if rows != expected or _unrelayed():
        raise RuntimeError(f"relayed {rows} of {expected} rows; {_unrelayed()} still wait")
    _check_one_run_per_intent()
    started = time.perf_counter()
    _drain()
    drain_seconds = time.perf_counter() - started
    _check_drained(parent_ids, expected)
    return {
        "relay": rows / relay_seconds,
        "drain": rows / drain_seconds,
        "end_to_end": rows / (relay_seconds + drain_seconds),
        "relay_calls": calls,
    }


def _kinds(queries: list[dict[str, Any]]) -> dict[str, int]:
    from bench.step_throughput import _statement_kind

    return dict(Counter(_statement_kind(query["sql"]) for query in queries).most_common())


def finalize_statements(defers: int, placement: str) -> dict[str, Any]:
    """Capture the statements of one parent's pass, and of its finalize (untimed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inngest_django.engine import RunPass

    run_ids = _queue_parents(1, defers, placement)
    connection.queries_log.clear()
    finish = RunPass._finish
    bounds: list[int] = []

    def marked(self: RunPass, *args: Any, **kwargs: Any) -> Any:
        bounds.append(len(captured))
        try:
            return finish(self, *args, **kwargs)
        finally:
            bounds.append(len(captured))

    RunPass._finish = marked  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as captured:
            _claim_and_execute_all()
    finally:
        RunPass._finish = finish  # type: ignore[method-assign]
    _check_parents(run_ids, defers)
    _delete_parents(run_ids)
    start, end = bounds
    if len(connection.queries_log) >= connection.queries_limit:
        raise RuntimeError(f"more than {connection.queries_limit} statements captured")
    return {
        "total": len(captured),
        "finalize": end - start,
        "finalize_kinds": _kinds(captured.captured_queries[start:end]),
    }


def finalize_breakdown(runs: int, defers: int, placement: str) -> dict[str, float]:
    """Split microseconds per finalize into execute, commit and the rest (one extra sample)."""
    from bench.inngest_functions import defer_parent
    from bench.step_throughput import _db_timers
    from inngest_django.engine import RunPass

    run_ids = _queue_parents(runs, defers, placement)
    finish = RunPass._finish
    totals = {"total": 0.0, "execute": 0.0, "commit": 0.0}

    def measured(self: RunPass, *args: Any, **kwargs: Any) -> Any:
        # Only this method's own statements and commit are counted, not the whole pass's.
        with _db_timers() as spent:
            started = time.perf_counter()
            try:
                return finish(self, *args, **kwargs)
            finally:
                if self.run.function_id == defer_parent.id:
                    totals["total"] += time.perf_counter() - started
                    totals["execute"] += spent["execute"]
                    totals["commit"] += spent["commit"]

    RunPass._finish = measured  # type: ignore[method-assign]
    try:
        _claim_and_execute_all()
    finally:
        RunPass._finish = finish  # type: ignore[method-assign]
    _check_parents(run_ids, defers)
    _delete_parents(run_ids)
    python = totals["total"] - totals["execute"] - totals["commit"]
    return {
        "total": totals["total"] / runs * 1e6,
        "execute": totals["execute"] / runs * 1e6,
        "commit": totals["commit"] / runs * 1e6,
        "python": python / runs * 1e6,
    }


def _captured_kinds(captured: Any) -> dict[str, int]:
    """Return the statement kinds of a finished capture; read at once, before the log moves on."""
    from django.db import connection

    if len(connection.queries_log) >= connection.queries_limit:
        # The log is a bounded deque: a longer capture would count and slice the wrong rows.
        raise RuntimeError(f"more than {connection.queries_limit} statements captured")
    return _kinds(captured.captured_queries)


def relay_statements(defers: int) -> dict[str, Any]:
    """Capture the statements of relaying one batch, and of draining its runs (untimed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inngest_django.conf import app_settings

    # One relay batch: its drain must fit in the connection's bounded log of statements.
    parents = max(1, app_settings.RELAY_BATCH_SIZE // defers)
    parent_ids = _prepare_outbox(parents, defers)
    rows = parents * defers
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as relay:
        relayed, calls = _relay_all()
    relay_kinds = _captured_kinds(relay)
    if relayed != rows:
        raise RuntimeError(f"relayed {relayed} of {rows} rows")
    _check_one_run_per_intent()
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as drain:
        _drain()
    drain_kinds = _captured_kinds(drain)
    _check_drained(parent_ids, rows)
    return {
        "rows": rows,
        "relay_calls": calls,
        "relay": len(relay),
        "relay_kinds": relay_kinds,
        "drain_per_run": len(drain) / rows,
        "drain_kinds": {kind: count / rows for kind, count in drain_kinds.items()},
    }


def profile(args: argparse.Namespace, *, limit: int) -> None:
    """cProfile one finalize sample at the most defers, then one relay and drain."""
    import cProfile
    import pstats

    most, placement = max(args.counts), args.placements[0]
    for label, call in (
        (
            f"{args.runs} parents with {most} defers {placement} the step",
            lambda: finalize_sample(args.runs, most, placement if most else "-"),
        ),
        (
            f"relay and drain of {args.parents * args.defers} rows",
            lambda: relay_sample(args.parents, args.defers),
        ),
    ):
        profiler = cProfile.Profile()
        profiler.enable()
        call()
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
        print(f"\n-- cProfile of {label}: by own time --")
        stats.sort_stats("tottime").print_stats(limit)
        print(f"-- cProfile of {label}: by cumulative time --")
        stats.sort_stats("cumulative").print_stats(limit)


def run_child(args: argparse.Namespace) -> None:
    """Measure one database and write the samples as JSON to `--result-file`."""
    series = _series(args.counts, args.placements)
    with tempfile.TemporaryDirectory(prefix="inngest_bench_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        from django.db import connection

        # Warm up the connection, caches and code paths before any sample is taken.
        for defers, placement in series:
            finalize_sample(min(args.runs, 5), defers, placement)
        relay_sample(min(args.parents, 5), args.defers)
        samples: dict[str, list[Any]] = {_key(*pair): [] for pair in series}
        samples["relay"] = []
        # Interleaved, so drift (checkpoints, caches, noisy neighbours) hits every series alike.
        for repeat in range(args.repeats):
            for defers, placement in series:
                samples[_key(defers, placement)].append(
                    finalize_sample(args.runs, defers, placement)
                )
            samples["relay"].append(relay_sample(args.parents, args.defers))
            line = ", ".join(
                f"{key} {samples[key][-1]['finalize']:.2f} ms" for key in samples if key != "relay"
            )
            relay = samples["relay"][-1]
            print(
                f"[{args.db}] repeat {repeat + 1}/{args.repeats}: finalize {line}; "
                f"relay {relay['relay']:,.0f} rows/s, drain {relay['drain']:,.0f} runs/s",
                flush=True,
            )
        statements = {_key(*pair): finalize_statements(*pair) for pair in series}
        breakdown = {_key(*pair): finalize_breakdown(args.runs, *pair) for pair in series}
        relay_queries = relay_statements(args.defers)
        if args.profile:
            profile(args, limit=args.profile_limit)
        result = {
            "db": args.db,
            "vendor": harness.server_version(),
            "runs": args.runs,
            "parents": args.parents,
            "defers": args.defers,
            "series": [_key(*pair) for pair in series],
            "samples": samples,
            "statements": statements,
            "breakdown": breakdown,
            "relay_statements": relay_queries,
        }
        connection.close()
    Path(args.result_file).write_text(json.dumps(result))


# -- the parent: one child per database, then the tables ------------------------------------


def print_tables(results: list[dict[str, Any]]) -> None:
    """Print the medians: ms per pass and finalize by defers, then relay and drain rates."""
    first = results[0]
    repeats = len(first["samples"]["relay"])
    print()
    print(
        f"Medians of {repeats} repeats; {first['runs']} parents per finalize sample, "
        f"{first['parents']} parents x {first['defers']} defers per relay sample."
    )
    print("placement: defers made after the parent's one step (finalize writes the intents)")
    print("or before it (the step's transaction writes them; finalize only the outbox rows).")
    header = (
        f"{'database':<10} {'defers':>6} {'placement':<9} {'pass ms':>8} {'+pass':>7} "
        f"{'finalize ms':>11} {'+final':>7} {'stmts':>5}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        samples = result["samples"]
        base = result["series"][0] if result["series"][0].startswith("0/") else None
        for key in result["series"]:
            defers, placement = key.split("/")
            pass_ms = harness.median([s["pass"] for s in samples[key]])
            final_ms = harness.median([s["finalize"] for s in samples[key]])
            if base is None:
                extra = ("", "")
            else:
                extra = (
                    f"{pass_ms - harness.median([s['pass'] for s in samples[base]]):+.2f}",
                    f"{final_ms - harness.median([s['finalize'] for s in samples[base]]):+.2f}",
                )
            print(
                f"{result['db']:<10} {defers:>6} {placement:<9} {pass_ms:>8.2f} {extra[0]:>7} "
                f"{final_ms:>11.2f} {extra[1]:>7} {result['statements'][key]['finalize']:>5}"
            )
    print()
    print("Microseconds per finalize, from one extra sample (not in the medians):")
    print(
        f"{'database':<10} {'defers':>6} {'placement':<9} {'total':>7} {'execute':>8} "
        f"{'commit':>7} {'python':>7}"
    )
    for result in results:
        for key, parts in result["breakdown"].items():
            defers, placement = key.split("/")
            print(
                f"{result['db']:<10} {defers:>6} {placement:<9} {parts['total']:>7.0f} "
                f"{parts['execute']:>8.0f} {parts['commit']:>7.0f} {parts['python']:>7.0f}"
            )
    print()
    header = (
        f"{'database':<10} {'relay rows/s':>12} {'drain runs/s':>12} {'end to end/s':>12} "
        f"{'relay range':>13}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        relay = result["samples"]["relay"]
        rates = [s["relay"] for s in relay]
        print(
            f"{result['db']:<10} {harness.median(rates):>12,.0f} "
            f"{harness.median([s['drain'] for s in relay]):>12,.0f} "
            f"{harness.median([s['end_to_end'] for s in relay]):>12,.0f} "
            f"{f'{min(rates):,.0f}-{max(rates):,.0f}':>13}"
        )
    print()
    for result in results:
        print(f"{result['db']} ({result['vendor']}):")
        for key, captured in result["statements"].items():
            kinds = ", ".join(f"{kind} x{n}" for kind, n in captured["finalize_kinds"].items())
            print(
                f"  {key}: {captured['total']} statements in the pass, "
                f"{captured['finalize']} in finalize: {kinds}"
            )
        relay = result["relay_statements"]
        kinds = ", ".join(f"{kind} x{n}" for kind, n in relay["relay_kinds"].items())
        print(
            f"  relay of {relay['rows']} rows: {relay['relay']} statements in "
            f"{relay['relay_calls']} relay_pending() calls: {kinds}"
        )
        kinds = ", ".join(f"{kind} x{n:g}" for kind, n in relay["drain_kinds"].items())
        print(f"  drain: {relay['drain_per_run']:.1f} statements per deferred run: {kinds}")


def run_parent(args: argparse.Namespace) -> None:
    """Measure each requested database in a child process and print the tables."""
    options = ["--counts", ",".join(str(count) for count in args.counts)]
    options += ["--placement", args.placement, "--runs", str(args.runs)]
    options += ["--parents", str(args.parents), "--defers", str(args.defers)]
    options += ["--repeats", str(args.repeats), "--profile-limit", str(args.profile_limit)]
    if args.profile:
        options.append("--profile")
    databases = harness.selected_databases(args.db)
    results = harness.run_children("bench.defer_cost", [(db, options) for db in databases])
    print_tables(results)
    harness.write_json(args.json, results)


def _defer_count(value: str) -> int:
    number = harness.positive(value)
    if number > MAX_DEFERS:
        raise argparse.ArgumentTypeError(f"must be {MAX_DEFERS} or fewer (MAX_DEFERS_PER_RUN)")
    return number


def _counts(value: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("must be integers separated by commas") from None
    if not counts or counts[0] < 0 or counts[-1] > MAX_DEFERS:
        raise argparse.ArgumentTypeError(f"each count must be 0 to {MAX_DEFERS}")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument(
        "--counts",
        type=_counts,
        default=[0, 1, 20],
        help="defers per parent in the finalize series, comma-separated (default: 0,1,20)",
    )
    parser.add_argument(
        "--placement",
        choices=[*PLACEMENTS, "both"],
        default="both",
        help="defers after or before the parent's step (default: %(default)r)",
    )
    parser.add_argument(
        "--runs",
        type=harness.positive,
        default=50,
        help="parents per finalize sample (default: %(default)r)",
    )
    parser.add_argument(
        "--parents",
        type=harness.positive,
        default=50,
        help="parents per relay sample (default: %(default)r)",
    )
    parser.add_argument(
        "--defers",
        type=_defer_count,
        default=MAX_DEFERS,
        help="defers per parent in the relay sample (default: %(default)r)",
    )
    parser.add_argument(
        "--repeats",
        type=harness.positive,
        default=5,
        help="samples of each kind (default: %(default)r)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one extra sample (default: %(default)r)"
    )
    parser.add_argument(
        "--profile-limit",
        type=harness.positive,
        default=30,
        help="functions listed per profile table (default: %(default)r)",
    )
    parser.add_argument("--json", help="also write the raw samples here (default: %(default)r)")
    harness.add_child_arguments(parser)
    args = parser.parse_args(argv)
    args.placements = list(PLACEMENTS) if args.placement == "both" else [args.placement]
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark: the parent by default, one database's child with --child."""
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
