"""django-tasks with the django-tasks-db backend: `--workers` `db_worker` processes drain no-ops.

Run with bench/.peers-venv's Python from the repository root (bench.suite does):

    bench/.peers-venv/bin/python -m bench.peers.django_tasks_db_drain --jobs 10000 --repeats 3
    bench/.peers-venv/bin/python -m bench.peers.django_tasks_db_drain --db sqlite --jobs 1000

Each sample enqueues every job first (untimed: `noop.enqueue()`, one `DBTaskResult` row each),
then starts `--workers` processes of the backend's own `db_worker` command and times from the
first task's `started_at` (stamped as a worker claims it) to the last one's `finished_at`, as
the backend stored them. Every row must end `SUCCESSFUL`, or the sample fails.

The workers run as the backend's README describes for production: `db_worker` without
`--reload`, on a database with `CONN_MAX_AGE` 600 (the worker calls `close_old_connections()`
around every task, which keeps a connection younger than that), at the default `--interval`
(1 s, slept only when a look finds nothing). Two flags differ from a bare `db_worker`, neither
of which touches its loop while jobs are queued: `--batch` (exit once the queue is empty, so
the sample ends when the workers do) and `--no-startup-delay` (the random sleep of up to 1 s
that spreads a fleet's first polls would otherwise count against it in a drain timed from the
first start). `--verbosity 0` keeps the two INFO lines per task out, as django-q2 runs at
`log_level` WARNING; failures are read from the rows instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CONN_MAX_AGE = 600
ENQUEUE_BATCH = 1000


def parse_args():
    """Parse the peers' common options and the hidden ones of a worker process."""
    import argparse

    from bench.peers.common import new_parser

    parser = new_parser(__doc__.splitlines()[0], "django_tasks_db")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def setup(args) -> None:
    """Configure Django for django-tasks and its database backend alone, once per process."""
    import django
    from django.conf import settings

    from bench.peers.common import django_database

    if settings.configured:
        return
    settings.configure(
        INSTALLED_APPS=["django_tasks", "django_tasks_db"],
        SECRET_KEY="bench-only-not-secret",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DATABASES={"default": django_database(args, CONN_MAX_AGE)},
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}},
    )
    django.setup()


def work(args) -> None:
    """One worker process: the backend's `db_worker`, until the queue is empty."""
    setup(args)
    from django.core.management import call_command

    call_command(
        "db_worker",
        "--batch",
        "--no-startup-delay",
        "--worker-id",
        f"bench-{args.worker}",
        "--verbosity",
        "0",
    )


def _worker_command(args, index: int) -> list[str]:
    command = [sys.executable, "-m", "bench.peers.django_tasks_db_drain", "--worker", str(index)]
    command += ["--db", args.db, "--database", args.database]
    if args.sqlite_path:
        command += ["--sqlite-path", args.sqlite_path]
    return command


def sample(args) -> dict[str, float]:
    from django.db import transaction
    from django.db.models import Max, Min
    from django_tasks_db.models import DBTaskResult

    from bench.peers.common import rate
    from bench.peers.django_tasks_noop import noop

    DBTaskResult.objects.all().delete()
    for start in range(0, args.jobs, ENQUEUE_BATCH):
        # One commit per batch only to enqueue faster; the clock starts after the last one.
        with transaction.atomic():
            for _ in range(min(ENQUEUE_BATCH, args.jobs - start)):
                noop.enqueue()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    workers = [
        subprocess.Popen(_worker_command(args, index), cwd=ROOT, env=env)
        for index in range(args.workers)
    ]
    try:
        deadline = started + max(600.0, args.jobs / 5)
        for worker in workers:
            worker.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    wall = time.monotonic() - started
    codes = [worker.returncode for worker in workers]
    if any(codes):
        raise RuntimeError(f"db_worker exit codes {codes}")
    done = DBTaskResult.objects.successful()
    if done.count() != args.jobs:
        failed = DBTaskResult.objects.failed().first()
        detail = f"; first failure:\n{failed.traceback}" if failed else ""
        raise RuntimeError(f"{done.count()} of {args.jobs} tasks succeeded{detail}")
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    return {**rate(args.jobs, span["first"], span["last"]), "wall_seconds": wall}


def measure(args) -> None:
    """Set up the database, take `--repeats` samples and report them."""
    from bench.peers.common import recreate_database, report

    if args.db == "postgres":
        recreate_database(args.database)
    setup(args)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    samples = []
    for repeat in range(args.repeats):
        samples.append(sample(args))
        print(
            f"[django-tasks-db {args.db}] repeat {repeat + 1}/{args.repeats}: "
            f"{samples[-1]['jobs_per_second']:,.1f} jobs/s",
            flush=True,
        )
    config = {
        "command": "db_worker --batch --no-startup-delay --verbosity 0",
        "workers": args.workers,
        "conn_max_age": CONN_MAX_AGE,
        "interval": 1,
    }
    report(
        "django-tasks-db",
        args,
        samples,
        version=version("django-tasks-db"),
        django_tasks_version=version("django-tasks"),
        config=config,
    )


def main() -> None:
    from bench.peers.common import measure_on_database

    args = parse_args()
    if args.worker is not None:
        work(args)
    else:
        measure_on_database(args, measure, name="tasksdb")


if __name__ == "__main__":
    main()
