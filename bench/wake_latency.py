"""Send-to-first-step latency of one idle worker: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.

Run from the repository root:

    python bench/wake_latency.py --db both --samples 200

Each configuration is measured in its own child process against a throwaway database, with one
`run_inngest_worker` process started from a settings module written for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:
    # `python bench/wake_latency.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.latency_floor import Floor

# -- the child: one configuration, measured from this process ---------------------------------


def _write_settings(workdir: Path, *, poll_seconds: float, conn_max_age: int | None) -> str:
    """Write the worker's settings module: bench.settings with this run's knobs; return its name."""
    name = "wake_latency_settings"
    (workdir / f"{name}.py").write_text(
        "from bench.settings import *  # noqa: F403\n"
        f"DATABASES['default']['CONN_MAX_AGE'] = {conn_max_age!r}  # noqa: F405\n"
        f"INNGEST_DJANGO = {{**INNGEST_DJANGO, 'POLL_INTERVAL_SECONDS': {poll_seconds!r}}}"
        "  # noqa: F405\n"
    )
    return name


def _start_worker(workdir: Path, settings_module: str, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": os.pathsep.join([str(harness.ROOT), str(workdir)]),
    }
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, str(harness.ROOT / "manage.py"), "run_inngest_worker"],
        cwd=harness.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_for_log(process: subprocess.Popen, log_path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker never logged {text!r}:\n{log_path.read_text()}")
        time.sleep(0.05)


def _first_step_started_at(event_id: str, timeout: float) -> Any:
    """Return the `started_at` of the first step of the run of `event_id`, polling for it."""
    from inngest_django.models import StepRun

    deadline = time.monotonic() + timeout
    while True:
        started = (
            StepRun.objects.filter(run__event_id=event_id)
            .values_list("started_at", flat=True)
            .first()
        )
        if started is not None:
            return started
        if time.monotonic() > deadline:
            raise SystemExit(f"no step started within {timeout} s for event {event_id}")
        time.sleep(0.005)


def _floor_params() -> dict[str, Any]:
    """Return psycopg connect() arguments for the bench database, for the floor's processes."""
    from django.db import connection

    settings = connection.settings_dict
    return {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "dbname": settings["NAME"],
    }


def _floor_figures(latencies: list[float]) -> dict[str, Any]:
    """Return the floor's p50 and p99 (None without samples: SQLite has no floor run)."""
    if not latencies:
        return {"floor_p50_ms": None, "floor_p99_ms": None}
    return {
        "floor_p50_ms": harness.median(latencies),
        "floor_p99_ms": harness.percentile(latencies, 0.99),
    }


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Send `args.samples` events to an idle worker, one at a time; return the latencies."""
    from django.db import connection
    from django.utils import timezone

    import inngest_django as inngest
    from bench.inngest_functions import STEPS_EVENT

    settings_module = _write_settings(
        workdir, poll_seconds=args.poll_seconds, conn_max_age=args.conn_max_age
    )
    log_path = workdir / "worker.log"
    worker = _start_worker(workdir, settings_module, log_path)
    try:
        _wait_for_log(worker, log_path, "Worker started", timeout=30)
        listening = connection.vendor == "postgresql"
        if listening:
            _wait_for_log(worker, log_path, "Listening for wake-ups", timeout=30)
        # PostgreSQL: the bare path beside ours, sample for sample, as the machine drifts.
        floor = Floor(_floor_params()) if listening else None
        latencies, floor_latencies = [], []
        # With the floor between our samples each idle wait is halved, so every process (our
        # worker, the floor's listener) still waits `idle_seconds` and more between its turns.
        idle = args.idle_seconds / 2 if floor is not None else args.idle_seconds
        for _ in range(args.samples):
            # The worker is idle again, in whatever wait its idle loop has reached; the jitter
            # keeps samples from lining up with the polling worker's wake-ups.
            time.sleep(idle + random.uniform(0, idle / 2))
            sent_at = timezone.now()
            (event_id,) = inngest.send({"name": STEPS_EVENT, "data": {"steps": 1}})
            started = _first_step_started_at(event_id, timeout=args.poll_seconds * 10 + 10)
            latencies.append((started - sent_at).total_seconds() * 1000)
            if floor is not None:
                time.sleep(idle + random.uniform(0, idle / 2))
                floor_latencies.append(floor.sample())
        if floor is not None:
            floor.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    latencies.sort()
    return {
        **_floor_figures(floor_latencies),
        "db": args.db,
        "wake": "LISTEN/NOTIFY" if listening else "polling",
        "conn_max_age": args.conn_max_age,
        "poll_seconds": args.poll_seconds,
        "samples": len(latencies),
        "p50_ms": harness.median(latencies),
        "p99_ms": harness.percentile(latencies, 0.99),
        "max_ms": latencies[-1],
        "latencies_ms": latencies,
    }


def run_child(args: argparse.Namespace) -> None:
    """Measure one database and configuration in this process; write the result as JSON."""
    with tempfile.TemporaryDirectory(prefix="inngest_bench_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        result = measure(args, Path(workdir))
    result["server"] = harness.server_version()
    Path(args.result_file).write_text(json.dumps(result))


# -- the parent: one child per configuration, then the table ----------------------------------


def _configurations(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    """Return (database, CONN_MAX_AGE) pairs: PostgreSQL with and without persistent connections."""
    pairs: list[tuple[str, int | None]] = []
    for db in harness.selected_databases(args.db):
        pairs.append((db, 0))
        if db == "postgres":
            pairs.append((db, None))
    return pairs


def print_table(results: list[dict[str, Any]]) -> None:
    """Print one row per configuration."""
    print()
    print(
        "| database   | wake-up       | CONN_MAX_AGE | samples | p50 ms | p99 ms | max ms "
        "| floor p50 / p99 ms |"
    )
    print(
        "|------------|---------------|-------------:|--------:|-------:|-------:|-------:"
        "|-------------------:|"
    )
    for r in results:
        name = "PostgreSQL" if r["db"] == "postgres" else "SQLite"
        age = "None" if r["conn_max_age"] is None else str(r["conn_max_age"])
        print(
            f"| {name:<10} | {r['wake']:<13} | {age:>12} | {r['samples']:>7} "
            f"| {r['p50_ms']:>6.1f} | {r['p99_ms']:>6.1f} | {r['max_ms']:>6.1f} "
            f"| {floor_cell(r):>18} |"
        )
    print()
    poll = results[0]["poll_seconds"] if results else None
    print(f"POLL_INTERVAL_SECONDS = {poll}; servers: {sorted({r['server'] for r in results})}")


def floor_cell(result: dict[str, Any]) -> str:
    """Return the floor's p50 / p99 for a table cell, or "-" where none was measured."""
    if result.get("floor_p50_ms") is None:
        return "-"
    return f"{result['floor_p50_ms']:.1f} / {result['floor_p99_ms']:.1f}"


def run_parent(args: argparse.Namespace) -> None:
    """Measure each configuration in a child process and print the table."""
    options = ["--samples", str(args.samples), "--idle-seconds", str(args.idle_seconds)]
    options += ["--poll-seconds", str(args.poll_seconds)]
    jobs = [
        (db, [*options, "--conn-max-age", "none" if age is None else str(age)])
        for db, age in _configurations(args)
    ]
    results = harness.run_children("bench.wake_latency", jobs)
    print_table(results)
    harness.write_json(args.json, results)


def _seconds(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def _conn_max_age(value: str) -> int | None:
    return None if value.lower() == "none" else int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument(
        "--samples", type=harness.positive, default=200, help="events sent (default: %(default)r)"
    )
    parser.add_argument(
        "--idle-seconds",
        type=_seconds,
        default=1.0,
        help="idle time before each send, plus up to half again (default: %(default)r)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=_seconds,
        default=1.0,
        help="the worker's POLL_INTERVAL_SECONDS (default: %(default)r)",
    )
    parser.add_argument("--json", default=None, help="also write the raw samples here")
    harness.add_child_arguments(parser)
    parser.add_argument("--conn-max-age", type=_conn_max_age, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark: the parent by default, one configuration's child with --child."""
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
