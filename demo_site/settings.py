"""Demo project settings: SQLite (or PostgreSQL), the admin, the shop app and inngest_django."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's script and styles, served locally
    "inngest_django",
    "demo_site.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # DEMO_DB_PATH lets tests (and you) point the demo at another SQLite file.
        "NAME": os.environ.get("DEMO_DB_PATH") or BASE_DIR / "demo.sqlite3",
        # IMMEDIATE: each transaction takes SQLite's write lock up front, so the web server and
        # the worker queue for it instead of failing with "database is locked".
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }
}

# DEMO_DB=postgres runs the demo on an existing PostgreSQL database instead (DEMO_PG_NAME).
if os.environ.get("DEMO_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DEMO_PG_NAME", "inngest_demo"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }

# The worker prints the emails (signups, order confirmations) instead of sending them.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "shop@example.com"

# The demo's own timings, short so that both outcomes show within minutes: how long onboarding
# waits for app/user.activated before it nudges, and how long cart-reminder sleeps before it
# emails. Durations as the step tools take them ("90s", "2m", "1h30m").
SHOP_ACTIVATION_TIMEOUT = os.environ.get("DEMO_ACTIVATION_TIMEOUT", "2m")
SHOP_CART_REMINDER_DELAY = os.environ.get("DEMO_CART_REMINDER_DELAY", "1m")
# How long reindex-product waits for a burst of edits to stop (read when functions are declared).
SHOP_DEBOUNCE_PERIOD = os.environ.get("DEMO_DEBOUNCE_PERIOD", "5s")
# The Event API key scripts/demo.sh registers, shown on the home page. Local use only: in a real
# project keys are made with `manage.py inngest_event_key create` or in the admin.
SHOP_EVENT_KEY = os.environ.get("DEMO_EVENT_KEY", "demo-event-key-for-local-testing-only")

# Every key is optional; see the settings table in the README.
INNGEST_DJANGO = {
    # "DEFAULT_RETRIES": 4,
    # "LEASE_SECONDS": 60,
    "POLL_INTERVAL_SECONDS": 0.5,
    # Execute runs in a django-q2 cluster (`manage.py qcluster`) instead of the worker's threads;
    # needs "django_q" in INSTALLED_APPS and the Q_CLUSTER below. See docs/django-q.md.
    # "EXECUTOR": "django_q",
}

# Q_CLUSTER = {
#     "name": "inngest",
#     "orm": "default",  # or "redis": {"host": "127.0.0.1", "port": 6379, "db": 0}
#     "workers": 4,
#     "timeout": 600,  # longer than the longest step
#     "retry": 660,  # longer than timeout
# }

# Django's own logging, plus the filter that writes `/e/[redacted]` instead of the Event API key
# in runserver's access log and in django.request's warnings (docs/security.md).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_event_keys": {"()": "inngest_django.logging.RedactEventKeys"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_event_keys"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_event_keys"],
        },
    },
    "loggers": {
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
