"""Bench settings: a throwaway SQLite file (WAL) or the `bench_inngest` PostgreSQL database."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-only-not-secret"
# DEBUG would record every query in connection.queries and slow both sides down.
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "inngest_django",
    "bench",
]

BENCH_DB = os.environ.get("INNGEST_DJANGO_BENCH_DB", "sqlite")
PG_NAME = os.environ.get("INNGEST_DJANGO_BENCH_PG_NAME", "bench_inngest")

if BENCH_DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": PG_NAME,
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }
elif BENCH_DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(
                "INNGEST_DJANGO_BENCH_SQLITE_NAME",
                str(Path(tempfile.gettempdir()) / "bench_inngest.sqlite3"),
            ),
            # The same OPTIONS as tests/settings.py; the app's connection hook turns on WAL.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }
else:
    raise ValueError(f"INNGEST_DJANGO_BENCH_DB must be 'sqlite' or 'postgres', not {BENCH_DB!r}")

INNGEST_DJANGO = {
    "SQLITE_WAL": True,
    # Room for --steps above the default limit of 1,000 steps per run.
    "MAX_STEPS_PER_RUN": 10000,
}
# Set for A/B runs of bench.suite (its children inherit the environment); unset: the defaults.
if os.environ.get("INNGEST_DJANGO_BENCH_GROUP_COMMIT"):
    INNGEST_DJANGO["GROUP_COMMIT_SECONDS"] = float(os.environ["INNGEST_DJANGO_BENCH_GROUP_COMMIT"])
if os.environ.get("INNGEST_DJANGO_BENCH_CHECKPOINT"):
    INNGEST_DJANGO["CHECKPOINT"] = os.environ["INNGEST_DJANGO_BENCH_CHECKPOINT"] == "1"
if os.environ.get("INNGEST_DJANGO_BENCH_WRITE_QUEUE"):
    INNGEST_DJANGO["SQLITE_WRITE_QUEUE"] = os.environ["INNGEST_DJANGO_BENCH_WRITE_QUEUE"] == "1"
if os.environ.get("INNGEST_DJANGO_BENCH_PREPARED"):
    INNGEST_DJANGO["PREPARED_STATEMENTS"] = os.environ["INNGEST_DJANGO_BENCH_PREPARED"] == "1"
