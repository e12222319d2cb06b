"""procrastinate on PostgreSQL: `--workers` worker processes drain `--jobs` no-op jobs.

Run with bench/.peers-venv's Python from the repository root (bench.suite does):

    bench/.peers-venv/bin/python -m bench.peers.procrastinate_drain --jobs 10000 --repeats 3

Each sample defers every job first (untimed, one `batch_defer`), then starts the workers with
`wait=False` (each exits once the queue is empty) at concurrency 1, and times from the first
`started` event to the last `succeeded` one in `procrastinate_events`.

PostgreSQL only (its queue is PL/pgSQL functions and LISTEN/NOTIFY). One process per worker,
as many as ours; each keeps its connector's connection pool open for its whole life, so it
never reconnects per job.
"""

from __future__ import annotations

import multiprocessing
import time

import procrastinate

from bench.peers.common import conninfo, parse_args, rate, recreate_database, report

DEFER_BATCH = 1000


def make_app(database: str) -> procrastinate.App:
    info = conninfo(database)
    dsn = " ".join(f"{key}={value}" for key, value in info.items())
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    def noop() -> None:
        """Do nothing, as the other systems' jobs do."""

    return app


def work(database: str, index: int) -> None:
    """One worker process: drain the queue at concurrency 1, then exit."""
    make_app(database).run_worker(wait=False, concurrency=1, name=f"bench-{index}")


def sample(args, app: procrastinate.App) -> dict[str, float]:
    import psycopg

    with psycopg.connect(**conninfo(args.database), autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_events, procrastinate_jobs CASCADE")
    noop = app.tasks["noop"]
    with app.open():
        for start in range(0, args.jobs, DEFER_BATCH):
            noop.batch_defer(*[{} for _ in range(min(DEFER_BATCH, args.jobs - start))])
    workers = [
        multiprocessing.get_context("spawn").Process(target=work, args=(args.database, index))
        for index in range(args.workers)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=max(600.0, args.jobs / 5))
        if worker.exitcode != 0:
            raise RuntimeError(f"a procrastinate worker exited with {worker.exitcode}")
    wall = time.monotonic() - started
    with psycopg.connect(**conninfo(args.database)) as conn:
        done, first, last = conn.execute(
            "SELECT count(*) FILTER (WHERE type = 'succeeded'),"
            " min(at) FILTER (WHERE type = 'started'),"
            " max(at) FILTER (WHERE type = 'succeeded') FROM procrastinate_events"
        ).fetchone()
    if done != args.jobs:
        raise RuntimeError(f"{done} jobs succeeded, expected {args.jobs}")
    return {**rate(args.jobs, first, last), "wall_seconds": wall}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], "procrastinate", databases=("postgres",))
    recreate_database(args.database)
    app = make_app(args.database)
    with app.open():
        app.schema_manager.apply_schema()
    samples = []
    for repeat in range(args.repeats):
        samples.append(sample(args, app))
        print(
            f"[procrastinate {args.db}] repeat {repeat + 1}/{args.repeats}: "
            f"{samples[-1]['jobs_per_second']:,.1f} jobs/s",
            flush=True,
        )
    config = {"connector": "PsycopgConnector", "processes": args.workers, "concurrency": 1}
    report("procrastinate", args, samples, version=procrastinate.__version__, config=config)


if __name__ == "__main__":
    main()
