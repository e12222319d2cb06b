"""Retention settings and periods, without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from inngest_django.checks import check_settings
from inngest_django.conf import app_settings
from inngest_django.retention import (
    PRUNED_MODELS,
    PruneReport,
    configured_older_than,
    parse_older_than,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("1w", timedelta(weeks=1)),
        ("12h30m", timedelta(hours=12, minutes=30)),
        (" 2D ", timedelta(days=2)),
        (timedelta(days=3), timedelta(days=3)),
    ],
)
def test_parse_older_than_reads_durations(value, expected):
    assert parse_older_than(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0d", r"older_than must be longer than 0, got '0d'"),
        ("30", r"older_than '30' is not a duration"),
        ("-1d", r"older_than '-1d' is not a duration"),
        ("", r"older_than is an empty string"),
        (timedelta(0), r"older_than must be longer than 0"),
    ],
)
def test_parse_older_than_rejects_what_is_not_a_positive_duration(value, message):
    with pytest.raises(ValueError, match=message):
        parse_older_than(value)


def test_the_worker_never_prunes_without_the_setting():
    with override_settings(INNGEST_DJANGO={}):
        assert app_settings.PRUNE_OLDER_THAN is None
        assert configured_older_than() is None


def test_the_setting_is_read_as_a_duration():
    with override_settings(INNGEST_DJANGO={"PRUNE_OLDER_THAN": "90d"}):
        assert configured_older_than() == timedelta(days=90)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a month", r"INNGEST_DJANGO\['PRUNE_OLDER_THAN'\] 'a month' is not a duration"),
        ("0s", r"INNGEST_DJANGO\['PRUNE_OLDER_THAN'\] must be longer than 0, got '0s'"),
        ("", r"INNGEST_DJANGO\['PRUNE_OLDER_THAN'\] is an empty string"),
        (30, r"PRUNE_OLDER_THAN\n  Input should be a valid string"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_the_key(value, message):
    with override_settings(INNGEST_DJANGO={"PRUNE_OLDER_THAN": value}):
        with pytest.raises(ImproperlyConfigured, match=message):
            _ = app_settings.PRUNE_OLDER_THAN
        assert [error.id for error in check_settings()] == ["inngest_django.E001"]


@pytest.mark.parametrize(
    "settings", [{"PRUNE_INTERVAL_SECONDS": 0}, {"PRUNE_BATCH_SIZE": 0}], ids=["interval", "batch"]
)
def test_interval_and_batch_size_must_be_positive(settings):
    key = next(iter(settings))
    with (
        override_settings(INNGEST_DJANGO=settings),
        pytest.raises(ImproperlyConfigured, match=key),
    ):
        _ = app_settings.PRUNE_BATCH_SIZE


def test_a_report_adds_batches_per_model():
    report = PruneReport(cutoff=None)  # type: ignore[arg-type]
    assert list(report.counts) == [model.__name__ for model in PRUNED_MODELS]
    report.add({"FunctionRun": 2, "StepRun": 6})
    report.add({"FunctionRun": 1, "StepRun": 3, "Event": 4})
    assert (report.counts["FunctionRun"], report.counts["StepRun"], report.counts["Event"]) == (
        3,
        9,
        4,
    )
    assert (report.total, report.batches) == (16, 2)
