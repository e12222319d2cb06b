"""Bench scaffolding: throwaway databases, child processes, medians and shared flags."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgres")


# -- the child: a fresh database, set up in this process -------------------------------------


def setup_django(db: str, workdir: Path) -> None:
    """Point bench.settings at a fresh database of kind `db`, then set Django up and migrate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["INNGEST_DJANGO_BENCH_DB"] = db
    os.environ["INNGEST_DJANGO_BENCH_SQLITE_NAME"] = str(workdir / "bench_inngest.sqlite3")
    if db == "postgres":
        from bench.peers.common import recreate_database

        recreate_database(os.environ.get("INNGEST_DJANGO_BENCH_PG_NAME", "bench_inngest"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def server_version() -> str:
    """Return the database server's name and version, as the tables print it."""
    from django.db import connection

    if connection.vendor == "postgresql":
        major, minor = divmod(connection.pg_version, 10000)
        return f"PostgreSQL {major}.{minor}"
    return f"SQLite {connection.Database.sqlite_version}"


# -- the parent: one child process per configuration -----------------------------------------


def selected_databases(choice: str) -> tuple[str, ...]:
    """Return the databases that `--db` names: one, or both."""
    return DATABASES if choice == "both" else (choice,)


def run_children(module: str, jobs: Iterable[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """Run `python -m module --child --db DB OPTIONS` per (DB, OPTIONS) job; return the results."""
    results = []
    with tempfile.TemporaryDirectory(prefix="inngest_bench_results_") as tmp:
        for number, (db, options) in enumerate(jobs):
            result_file = Path(tmp) / f"{number}-{db}.json"
            command = [sys.executable, "-m", module, "--child", "--db", db, *options]
            command += ["--result-file", str(result_file)]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            subprocess.run(command, cwd=ROOT, env=env, check=True)
            results.append(json.loads(result_file.read_text()))
    return results


def write_json(path: str | None, results: Any) -> None:
    """Write the raw results to `path`, when `--json` gave one."""
    if path:
        Path(path).write_text(json.dumps(results, indent=2))


def run_main(
    args: argparse.Namespace,
    run_child: Callable[[argparse.Namespace], None],
    run_parent: Callable[[argparse.Namespace], None],
) -> None:
    """Run the parent by default, or one database's child with --child."""
    if args.child:
        if args.db == "both" or not args.result_file:
            raise SystemExit("--child needs --db sqlite|postgres and --result-file")
        sys.path.insert(0, str(ROOT))
        run_child(args)
    else:
        run_parent(args)


# -- statistics and flags --------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """Return the median of `values`."""
    return statistics.median(values)


def percentile(values: Iterable[float], fraction: float) -> float:
    """Return the nearest-rank `fraction` percentile of `values` (1.0: the largest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def positive(value: str) -> int:
    """Parse a whole number of 1 or more."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    """Return a parser described by the first line of the script's docstring."""
    return argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--db sqlite|postgres|both`, both by default."""
    parser.add_argument(
        "--db",
        choices=[*DATABASES, "both"],
        default="both",
        help="database to measure (default: %(default)r)",
    )


def add_child_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the hidden flags a parent passes to its children."""
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
