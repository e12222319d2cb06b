"""The system check for EXECUTOR="django_q" (inngest_django.E002)."""

from __future__ import annotations

from django.core import checks
from django.test import modify_settings, override_settings

from inngest_django.checks import check_executor

DJANGO_Q = {"EXECUTOR": "django_q"}


def test_django_q_executor_without_django_q_installed_is_an_error_with_a_hint():
    with (
        override_settings(INNGEST_DJANGO=DJANGO_Q),
        modify_settings(INSTALLED_APPS={"remove": ["django_q"]}),
    ):
        errors = check_executor()
        all_errors = checks.run_checks()
    assert [(e.id, e.msg) for e in errors] == [
        ("inngest_django.E002", "EXECUTOR is 'django_q' but django_q is not installed")
    ]
    assert "Add 'django_q' to INSTALLED_APPS" in errors[0].hint
    assert "inngest_django.E002" in [e.id for e in all_errors]


def test_django_q_executor_with_django_q_installed_passes():
    with override_settings(INNGEST_DJANGO=DJANGO_Q):
        assert check_executor() == []


def test_worker_executor_needs_no_django_q():
    with modify_settings(INSTALLED_APPS={"remove": ["django_q"]}):
        assert check_executor() == []


def test_an_invalid_executor_is_left_to_the_settings_check():
    with override_settings(INNGEST_DJANGO={"EXECUTOR": "celery"}):
        assert check_executor() == []
