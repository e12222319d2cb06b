"""django-q2 with its ORM broker: a cluster of `--workers` drains `--jobs` no-ops.

Run with bench/.peers-venv's Python from the repository root (bench.suite does):

    bench/.peers-venv/bin/python -m bench.peers.djangoq_drain --jobs 10000 --repeats 3
    bench/.peers-venv/bin/python -m bench.peers.djangoq_drain --conn-max-age 0   # reconnect
    bench/.peers-venv/bin/python -m bench.peers.djangoq_drain --db sqlite --jobs 1000

Each sample enqueues every job first (untimed, `async_task`, one `OrmQ` row each), then starts
`qcluster` (django-q2's defaults: `poll` 0.2 s, `bulk` 1) and times from the first task's
start (the time the no-op returns: django-q2's own `Task.started` is the enqueue time) to the
last one's `stopped` as django-q2 saved them (`save_limit` 0 keeps every one).

`--conn-max-age` is the database's `CONN_MAX_AGE`: 600 (the default here) keeps each process's
connection open, as Django's docs advise for anything that is not one request per connection;
0 is Django's default, with which django-q2's `close_old_connections()` before every task and
every broker call closes the connection, so each job opens new ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def noop() -> float:
    """Do nothing but return the time: django-q2 records no pick-up time of its own.

    (`Task.started` is set by `async_task` at enqueue; the result is saved either way.)
    """
    return time.time()


def label(conn_max_age: int) -> str:
    """Return the peer's name in the suite's table, which says how it connects."""
    if conn_max_age == 0:
        return "django-q2 (reconnect per job)"
    return f"django-q2 (CONN_MAX_AGE={conn_max_age})"


def parse_args():
    """Parse the peers' common options and `--conn-max-age`."""
    from bench.peers.common import new_parser

    parser = new_parser(__doc__.splitlines()[0], "djangoq")
    parser.add_argument(
        "--conn-max-age", type=int, default=600, help="CONN_MAX_AGE (default: %(default)r)"
    )
    parser.add_argument("--cluster", action="store_true", help="run one sample's qcluster")
    return parser.parse_args()


def setup(args) -> None:
    """Configure Django for django-q2 alone on the chosen database, once per process."""
    import django
    from django.conf import settings

    from bench.peers.common import django_database

    if settings.configured:
        return
    settings.configure(
        INSTALLED_APPS=["django_q"],
        SECRET_KEY="bench-only-not-secret",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DATABASES={"default": django_database(args, args.conn_max_age)},
        Q_CLUSTER={
            "name": "bench",
            "orm": "default",
            "workers": args.workers,
            "save_limit": 0,
            "timeout": 300,
            "retry": 600,
            "max_attempts": 1,
            "catch_up": False,
            "log_level": "WARNING",
        },
    )
    django.setup()


def sample(args) -> dict[str, float]:
    from django.db.models import Max
    from django_q.models import OrmQ, Task
    from django_q.tasks import async_task

    Task.objects.all().delete()
    OrmQ.objects.all().delete()
    for _ in range(args.jobs):
        async_task("bench.peers.djangoq_drain.noop")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.peers.djangoq_drain", "--cluster"]
    command += ["--workers", str(args.workers), "--database", args.database]
    command += ["--db", args.db, "--conn-max-age", str(args.conn_max_age)]
    if args.sqlite_path:
        command += ["--sqlite-path", args.sqlite_path]
    started = time.monotonic()
    cluster = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = started + max(600.0, args.jobs / 5)
        while Task.objects.count() < args.jobs:
            if cluster.poll() is not None:
                raise RuntimeError(f"qcluster exited with {cluster.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{Task.objects.count()} of {args.jobs} tasks done at deadline")
            time.sleep(0.1)
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
    wall = time.monotonic() - started
    from bench.peers.common import rate

    failed = Task.objects.filter(success=False).count()
    if failed:
        raise RuntimeError(f"{failed} django-q2 tasks failed")
    last = Task.objects.aggregate(last=Max("stopped"))["last"]
    first = datetime.fromtimestamp(min(task.result for task in Task.objects.all()), tz=UTC)
    return {**rate(args.jobs, first, last), "wall_seconds": wall}


def measure(args) -> None:
    """Set up the database, take `--repeats` samples and report them."""
    import django_q

    from bench.peers.common import recreate_database, report

    if args.db == "postgres":
        recreate_database(args.database)
    setup(args)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    name = label(args.conn_max_age)
    samples = []
    for repeat in range(args.repeats):
        samples.append(sample(args))
        print(
            f"[{name} {args.db}] repeat {repeat + 1}/{args.repeats}: "
            f"{samples[-1]['jobs_per_second']:,.1f} jobs/s",
            flush=True,
        )
    config = {
        "broker": "ORM",
        "workers": args.workers,
        "conn_max_age": args.conn_max_age,
        "poll": 0.2,
        "bulk": 1,
    }
    version = ".".join(map(str, django_q.VERSION))
    report(name, args, samples, version=version, config=config)


def main() -> None:
    from bench.peers.common import measure_on_database

    args = parse_args()
    if args.cluster:
        setup(args)
        from django.core.management import call_command

        call_command("qcluster")
        return
    measure_on_database(args, measure, name="djangoq")


if __name__ == "__main__":
    main()
