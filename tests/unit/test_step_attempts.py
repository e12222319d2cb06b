"""A step's failed attempts in its error JSON: appended per failure, kept past a success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inngest_django.engine.attempts import KEPT_ATTEMPTS, failed_attempts, with_failed_attempts

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def fail(previous, attempt):
    error = {"name": "ValueError", "message": f"try {attempt}", "stack": "..."}
    started = T0 + timedelta(seconds=attempt)
    return with_failed_attempts(
        previous,
        error,
        status="ERRORED",
        attempt=attempt,
        started_at=started,
        now=started + timedelta(milliseconds=5),
    )


def test_each_failure_appends_an_attempt_without_its_stack():
    first = fail(None, 1)
    second = fail(first, 2)
    assert second["message"] == "try 2" and second["stack"] == "..."
    assert failed_attempts(second) == [
        {
            "attempt": n,
            "started_at": (T0 + timedelta(seconds=n)).isoformat(),
            "failed_at": (T0 + timedelta(seconds=n, milliseconds=5)).isoformat(),
            "name": "ValueError",
            "message": f"try {n}",
        }
        for n in (1, 2)
    ]


def test_a_success_keeps_the_attempts_and_nothing_else():
    errored = fail(fail(None, 1), 2)
    done = with_failed_attempts(errored, None, status="COMPLETED", attempt=3, started_at=T0, now=T0)
    assert list(done) == ["failed_attempts"] and len(done["failed_attempts"]) == 2
    # A step that never failed stores no error at all.
    assert (
        with_failed_attempts(None, None, status="COMPLETED", attempt=1, started_at=T0, now=T0)
        is None
    )


def test_only_the_latest_attempts_are_kept():
    error = None
    for attempt in range(1, KEPT_ATTEMPTS + 6):
        error = fail(error, attempt)
    kept = failed_attempts(error)
    assert len(kept) == KEPT_ATTEMPTS
    assert kept[0]["attempt"] == 6 and kept[-1]["attempt"] == KEPT_ATTEMPTS + 5


def test_other_error_shapes_hold_no_attempts():
    assert failed_attempts(None) == []
    assert failed_attempts({"$unreadable": "no key"}) == []
    assert failed_attempts({"failed_attempts": ["junk", {"attempt": 1}]}) == [{"attempt": 1}]
