"""Test settings: a SQLite file shared by worker subprocesses, or PostgreSQL on demand."""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "inngest_django",
    "tests.testapp",
]
if django.VERSION < (6,):
    # Django 6 has django.tasks; on 5.2 the django-tasks package brings it (its checks, logs).
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Worker subprocesses started by tests point at the test database through this variable.
_DB_NAME = os.environ.get("INNGEST_DJANGO_TEST_DB_NAME")

if os.environ.get("INNGEST_DJANGO_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _DB_NAME or os.environ.get("PGDATABASE", "inngest_django"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": os.environ.get("INNGEST_DJANGO_TEST_PG_NAME", "test_inngest_django")},
        }
    }
else:
    _sqlite_test = os.environ.get(
        "INNGEST_DJANGO_TEST_SQLITE_NAME", str(BASE_DIR / "test_inngest_django.sqlite3")
    )
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _DB_NAME or str(BASE_DIR / "inngest_django.sqlite3"),
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
            # A file, not :memory:, so worker threads and subprocesses share it.
            "TEST": {"NAME": _sqlite_test},
        }
    }

INNGEST_DJANGO = {
    # Worker and qcluster subprocesses of the django_q executor tests set "django_q".
    "EXECUTOR": os.environ.get("INNGEST_DJANGO_TEST_EXECUTOR", "worker"),
    # Retries wait 15 s, 30 s, ... in production; a thousandth of that here.
    "RETRY_BACKOFF_SCALE": 0.001,
    "POLL_INTERVAL_SECONDS": float(os.environ.get("INNGEST_DJANGO_TEST_POLL_SECONDS", "0.1")),
    "LEASE_SECONDS": float(os.environ.get("INNGEST_DJANGO_TEST_LEASE_SECONDS", "30")),
    # Worker subprocesses of tests/integration/test_prune.py prune with these; unset: never.
    "PRUNE_OLDER_THAN": os.environ.get("INNGEST_DJANGO_TEST_PRUNE_OLDER_THAN"),
    "PRUNE_INTERVAL_SECONDS": float(
        os.environ.get("INNGEST_DJANGO_TEST_PRUNE_INTERVAL_SECONDS", "3600")
    ),
    # "1" or "0" for worker subprocesses of tests that need checkpointing on or off; unset:
    # the library's default (on).
    "CHECKPOINT": {"1": True, "0": False}.get(os.environ.get("INNGEST_DJANGO_TEST_CHECKPOINT", "")),
    # Worker subprocesses of tests/integration/test_heartbeats.py beat faster than 10 s.
    "WORKER_HEARTBEAT_SECONDS": float(
        os.environ.get("INNGEST_DJANGO_TEST_HEARTBEAT_SECONDS", "10")
    ),
}

# Worker subprocesses of tests/integration/test_group_commit.py set their group window.
if os.environ.get("INNGEST_DJANGO_TEST_GROUP_COMMIT_SECONDS"):
    INNGEST_DJANGO["GROUP_COMMIT_SECONDS"] = float(
        os.environ["INNGEST_DJANGO_TEST_GROUP_COMMIT_SECONDS"]
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# django-q2 with its ORM broker on the test database, for the django_q executor's tests.
Q_CLUSTER = {
    "name": "inngest-tests",
    "orm": "default",
    "workers": 2,
    "timeout": 60,
    "retry": 120,
    "poll": 0.05,
    "catch_up": False,
    "sync": False,
}

# The django.tasks backend's tests (tests/integration/test_tasks*.py) use these backends with
# override_settings; their worker subprocesses set INNGEST_DJANGO_TEST_TASKS=1 to load them too.
# Left unset otherwise: with them, every worker would have a function source.
TEST_TASKS = {
    "default": {
        "BACKEND": "inngest_django.backends.tasks.InngestTaskBackend",
        "QUEUES": ["default", "emails", "reports"],
        "OPTIONS": {"RETRIES": 2, "QUEUE_CONCURRENCY": {"reports": 1}},
    },
}
if os.environ.get("INNGEST_DJANGO_TEST_TASKS"):
    TASKS = TEST_TASKS
