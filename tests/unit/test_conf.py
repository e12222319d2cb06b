"""The INNGEST_DJANGO settings dict."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from inngest_django.checks import check_settings
from inngest_django.conf import app_settings


def test_defaults_apply_for_missing_keys():
    with override_settings(INNGEST_DJANGO={}):
        assert app_settings.DEFAULT_RETRIES == 4
        assert app_settings.LEASE_SECONDS == 60
        assert app_settings.MAX_STEPS_PER_RUN == 1000


def test_unknown_key_lists_the_valid_keys():
    with (
        override_settings(INNGEST_DJANGO={"LEASE_SECS": 5}),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        _ = app_settings.LEASE_SECONDS
    assert "LEASE_SECS" in str(info.value)
    assert "LEASE_SECONDS" in str(info.value)


def test_invalid_value_is_a_configuration_error_and_a_system_check_error():
    with override_settings(INNGEST_DJANGO={"DEFAULT_RETRIES": 50}):
        with pytest.raises(ImproperlyConfigured, match="DEFAULT_RETRIES"):
            _ = app_settings.DEFAULT_RETRIES
        errors = check_settings()
    assert [e.id for e in errors] == ["inngest_django.E001"]


def test_settings_reload_when_changed():
    with override_settings(INNGEST_DJANGO={"LEASE_SECONDS": 5}):
        assert app_settings.LEASE_SECONDS == 5
    assert app_settings.LEASE_SECONDS != 5


def test_sqlite_without_immediate_transactions_is_warned_about():
    from inngest_django.checks import sqlite_transaction_warnings

    sqlite = "django.db.backends.sqlite3"
    databases = {
        "plain": {"ENGINE": sqlite, "NAME": "a"},
        "immediate": {"ENGINE": sqlite, "OPTIONS": {"transaction_mode": "IMMEDIATE"}},
        "pg": {"ENGINE": "django.db.backends.postgresql"},
    }
    warnings = sqlite_transaction_warnings(databases)
    assert [(w.id, "'plain'" in w.msg) for w in warnings] == [("inngest_django.W001", True)]
