"""The Event API key in a header at `/e/` (kept out of access logs), and the redaction filter."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from inngest_django.event_keys import issue_key
from inngest_django.logging import RedactEventKeys
from inngest_django.models import Event

pytestmark = pytest.mark.django_db

GOOD = {"name": "shop/order.placed", "data": {"order_id": 1}}


def post(path: str, **headers: str):
    return Client().post(path, json.dumps(GOOD), content_type="application/json", **headers)


@pytest.mark.parametrize("path", ["/e/", "/e"])
@pytest.mark.parametrize(
    "header", ["HTTP_X_INNGEST_EVENT_KEY", "HTTP_AUTHORIZATION"], ids=["x-inngest", "bearer"]
)
def test_the_key_may_come_in_a_header_at_the_keyless_path(path, header):
    _, secret = issue_key("svc")
    value = f"Bearer {secret}" if header == "HTTP_AUTHORIZATION" else secret
    answer = post(path, **{header: value})
    assert answer.status_code == 200, answer.content
    [event_id] = answer.json()["ids"]
    assert Event.objects.filter(pk=event_id, name=GOOD["name"]).exists()


def test_a_wrong_or_missing_header_key_is_refused():
    issue_key("svc")
    assert post("/e/", HTTP_X_INNGEST_EVENT_KEY="nope").json()["error"] == "Event key not found"
    assert post("/e/").json()["error"] == "Event key is required"
    assert post("/e/", HTTP_AUTHORIZATION="Basic abc").status_code == 401
    assert not Event.objects.exists()


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("django.server", logging.INFO, __file__, 1, msg, args, None)


def test_the_filter_redacts_keys_in_access_log_lines_and_request_warnings():
    redact = RedactEventKeys()
    line = record('"%s" %s %s', "POST /e/s3cr3t-KEY_1 HTTP/1.1", "200", "40")
    assert redact.filter(line) is True
    assert line.getMessage() == '"POST /e/[redacted] HTTP/1.1" 200 40'
    warning = record("Unauthorized: %s", "/e/s3cr3t?x=1")
    redact.filter(warning)
    assert warning.getMessage() == "Unauthorized: /e/[redacted]?x=1"
    inline = record("GET /e/abc/ and /admin/e/")
    redact.filter(inline)
    assert inline.getMessage() == "GET /e/[redacted]/ and /admin/e/"
    untouched = record("%d runs at /api/inngest/runs/", 3)
    redact.filter(untouched)
    assert untouched.getMessage() == "3 runs at /api/inngest/runs/"
    mounted = RedactEventKeys(path_prefix="/hooks/e/")
    other = record("POST /hooks/e/k1 /e/k2")
    mounted.filter(other)
    assert other.getMessage() == "POST /hooks/e/[redacted] /e/k2"


def test_a_configured_django_request_logger_writes_no_key(caplog):
    logger = logging.getLogger("django.request")
    redact = RedactEventKeys()
    logger.addFilter(redact)
    try:
        with caplog.at_level(logging.WARNING, logger="django.request"):
            post("/e/not-a-real-key-123")
    finally:
        logger.removeFilter(redact)
    assert "Unauthorized: /e/[redacted]" in caplog.text
    assert "not-a-real-key-123" not in caplog.text


def test_the_demo_site_puts_the_filter_on_both_request_log_handlers():
    from django.utils.module_loading import import_string

    from demo_site import settings as demo

    config = demo.LOGGING
    assert import_string(config["filters"]["redact_event_keys"]["()"]) is RedactEventKeys
    for logger in ("django.server", "django.request"):
        for handler in config["loggers"][logger]["handlers"]:
            assert "redact_event_keys" in config["handlers"][handler]["filters"]
