"""Restart the PostgreSQL server the tests use, as an operator or a crash would."""

from __future__ import annotations

import glob
import os
import subprocess

from django.db import connection


def _pg_ctl() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("pg_ctl not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def data_directory() -> str:
    """Return the data directory of the server the default connection talks to."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        return cursor.fetchone()[0]


def restart_postgres(*, data_dir: str | None = None, mode: str = "fast") -> None:
    """Restart the server (dropping every connection) and wait until it accepts new ones.

    `mode` is pg_ctl's shutdown mode: "fast" rolls back open transactions, "immediate" stops
    as a crash would, with recovery at start.
    """
    data_dir = data_dir or data_directory()
    connection.close()
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # -l keeps the server's output in its log, not in a pipe that closes with this call.
    log = ["-l", f"{data_dir}/server.log"]
    subprocess.run(
        [*as_owner, _pg_ctl(), "-D", data_dir, *log, "-m", mode, "-w", "-t", "60", "restart"],
        check=True,
        capture_output=True,
        timeout=90,
    )
