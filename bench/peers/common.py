"""What the peer workloads share: a throwaway database, its Django settings and the result."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

# Other people's suites share the server: every database the bench creates carries this prefix.
DB_PREFIX_ENV = "INNGEST_DJANGO_BENCH_DB_PREFIX"
DEFAULT_DB_PREFIX = "bench8_"
# As bench.settings opens SQLite for our workers, so both sides wait on locks alike.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    # WAL lets readers run beside the one writer, as the app's connection hook does for ours.
    "init_command": "PRAGMA journal_mode=WAL",
}


def database_name(suffix: str) -> str:
    """Return the PostgreSQL database name for `suffix`, under the bench's prefix."""
    return os.environ.get(DB_PREFIX_ENV, DEFAULT_DB_PREFIX) + suffix


def conninfo(dbname: str) -> dict[str, str]:
    """Return psycopg keyword arguments for `dbname` on the bench's PostgreSQL server."""
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD", "postgres"),
        "dbname": dbname,
    }


def recreate_database(name: str) -> None:
    """Drop and create `name`, so every peer run starts from an empty database."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(**conninfo("postgres"), autocommit=True) as conn:
        database = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(database))


def django_database(args: argparse.Namespace, conn_max_age: int) -> dict[str, Any]:
    """Return the Django `DATABASES["default"]` of `--db` (PostgreSQL or the SQLite file)."""
    if args.db == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": args.sqlite_path,
            "CONN_MAX_AGE": conn_max_age,
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    info = conninfo(args.database)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": info["dbname"],
        "USER": info["user"],
        "PASSWORD": info["password"],
        "HOST": info["host"],
        "PORT": info["port"],
        "CONN_MAX_AGE": conn_max_age,
    }


def rate(jobs: int, first: datetime, last: datetime) -> dict[str, float]:
    """Jobs per second from the first pick-up to the last finish, as the database recorded them."""
    seconds = (last - first).total_seconds()
    return {"seconds": seconds, "jobs_per_second": jobs / seconds}


def new_parser(
    description: str, default_suffix: str, databases: tuple[str, ...] = ("postgres", "sqlite")
) -> argparse.ArgumentParser:
    """Return the options every peer script takes; a script may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--jobs", type=int, default=10000, help="no-op jobs per sample")
    parser.add_argument("--repeats", type=int, default=3, help="samples (default: %(default)r)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--db", choices=databases, default=databases[0], help="database kind")
    parser.add_argument(
        "--database",
        default=database_name(default_suffix),
        help="throwaway PostgreSQL database (default: %(default)r)",
    )
    parser.add_argument("--json", help="write the samples here as JSON")
    # Set by a script for its own worker processes: the SQLite file of the running sample.
    parser.add_argument("--sqlite-path", help=argparse.SUPPRESS)
    return parser


def parse_args(
    description: str, default_suffix: str, databases: tuple[str, ...] = ("postgres", "sqlite")
) -> argparse.Namespace:
    """Parse the options every peer script takes."""
    return new_parser(description, default_suffix, databases).parse_args()


def report(
    name: str, args: argparse.Namespace, samples: list[dict[str, float]], **extra: Any
) -> None:
    """Print the samples' median, and write them all to `--json` if asked."""
    median = statistics.median(sample["jobs_per_second"] for sample in samples)
    print(f"[{name} {args.db}] median {median:,.1f} jobs/s over {len(samples)} samples", flush=True)
    if args.json:
        result = {
            "peer": name,
            "db": args.db,
            "jobs": args.jobs,
            "workers": args.workers,
            "samples": samples,
        }
        with open(args.json, "w") as out:
            json.dump({**result, **extra}, out)


def measure_on_database(
    args: argparse.Namespace, measure: Callable[[argparse.Namespace], None], *, name: str
) -> None:
    """Call `measure(args)`; for `--db sqlite`, on a fresh file in a temporary folder."""
    if args.db != "sqlite":
        measure(args)
        return
    with tempfile.TemporaryDirectory(prefix=f"peers_{name}_") as workdir:
        args.sqlite_path = str(Path(workdir) / f"{name}.sqlite3")
        measure(args)
