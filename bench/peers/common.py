"""What both peer workloads share: a throwaway PostgreSQL database and the sample's result."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from datetime import datetime
from typing import Any


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


def rate(jobs: int, first: datetime, last: datetime) -> dict[str, float]:
    """Jobs per second from the first pick-up to the last finish, as the database recorded them."""
    seconds = (last - first).total_seconds()
    return {"seconds": seconds, "jobs_per_second": jobs / seconds}


def parse_args(description: str, default_database: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--jobs", type=int, default=10000, help="no-op jobs per sample")
    parser.add_argument("--repeats", type=int, default=3, help="samples (default: %(default)r)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--database", default=default_database, help="throwaway database name")
    parser.add_argument("--json", help="write the samples here as JSON")
    return parser.parse_args()


def report(
    name: str, args: argparse.Namespace, samples: list[dict[str, float]], **extra: Any
) -> None:
    """Print the samples' median, and write them all to `--json` if asked."""
    median = statistics.median(sample["jobs_per_second"] for sample in samples)
    print(f"[{name}] median {median:,.1f} jobs/s over {len(samples)} samples", flush=True)
    if args.json:
        result = {"peer": name, "jobs": args.jobs, "workers": args.workers, "samples": samples}
        with open(args.json, "w") as out:
            json.dump({**result, **extra}, out)
