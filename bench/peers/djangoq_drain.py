"""django-q2 with its ORM broker on PostgreSQL: a cluster of `--workers` drains `--jobs` no-ops.

Run with bench/.peers-venv's Python from the repository root (bench.suite does):

    bench/.peers-venv/bin/python -m bench.peers.djangoq_drain --jobs 10000 --repeats 3

Each sample enqueues every job first (untimed, `async_task`, one `OrmQ` row each), then starts
`qcluster` (django-q2's defaults: `poll` 0.2 s, `bulk` 1) and times from the first task's
start (the time the no-op returns: django-q2's own `Task.started` is the enqueue time) to the
last one's `stopped` as django-q2 saved them (`save_limit` 0 keeps every one).
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


def setup(database: str, workers: int) -> None:
    """Configure Django for django-q2 alone on `database`, once per process."""
    import django
    from django.conf import settings

    from bench.peers.common import conninfo

    if settings.configured:
        return
    info = conninfo(database)
    settings.configure(
        INSTALLED_APPS=["django_q"],
        SECRET_KEY="bench-only-not-secret",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": info["dbname"],
                "USER": info["user"],
                "PASSWORD": info["password"],
                "HOST": info["host"],
                "PORT": info["port"],
            }
        },
        Q_CLUSTER={
            "name": "bench",
            "orm": "default",
            "workers": workers,
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


def main() -> None:
    if "--cluster" in sys.argv:
        sys.argv.remove("--cluster")
        from bench.peers.common import parse_args

        args = parse_args("the qcluster of one sample", "")
        setup(args.database, args.workers)
        from django.core.management import call_command

        call_command("qcluster")
        return
    import django_q

    from bench.peers.common import parse_args, recreate_database, report

    args = parse_args(__doc__.splitlines()[0], "bench8_djangoq")
    recreate_database(args.database)
    setup(args.database, args.workers)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    samples = []
    for repeat in range(args.repeats):
        samples.append(sample(args))
        print(
            f"[django-q2] repeat {repeat + 1}/{args.repeats}: "
            f"{samples[-1]['jobs_per_second']:,.1f} jobs/s",
            flush=True,
        )
    report("django-q2", args, samples, version=".".join(map(str, django_q.VERSION)))


if __name__ == "__main__":
    main()
