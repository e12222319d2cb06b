"""Fuzz event ingestion, over HTTP (POST /e/<key>) and from Python (send): no 5xx, nothing lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import event as note_event
from hypothesis import example, given
from hypothesis import strategies as st

import inngest_django as inngest
from inngest_django.event_keys import issue_key
from inngest_django.exceptions import InvalidEventError
from inngest_django.models import Event

from .strategies import (
    fuzz_settings,
    json_equal,
    json_scalars,
    json_values,
    nested,
    storable_text,
    text,
)

pytestmark = pytest.mark.django_db

# Small limits, so generated requests reach the 413 answers too.
LIMITS = {"EVENT_API_MAX_REQUEST_BYTES": 4096, "EVENT_API_MAX_EVENTS": 6, "MAX_EVENT_BYTES": 1024}
FIELDS = ["name", "data", "id", "ts", "user", "v"]
NAMES = st.one_of(
    st.sampled_from(["shop/order.placed", "app/user.signed-up", "inngest/function.failed", " "]),
    storable_text(12),
    text(12),
    st.just("n" * 256),
)
FIELD_VALUES = {
    "name": NAMES | json_scalars(),
    "data": st.dictionaries(storable_text(8), json_values(10, storable=True), max_size=4)
    | st.dictionaries(text(8), json_values(10), max_size=3)
    | st.just({"_inngest": {"fn": "x"}, "kept": 1})
    | json_values(5),
    "id": storable_text(10) | st.just("i" * 256) | json_scalars(),
    "ts": st.integers(min_value=315_532_800_000, max_value=4_102_444_800_000)
    | st.sampled_from([0, 315_532_799_999, 4_102_444_800_001, 2**63, -1, 1.7e12, "1700000000000"])
    | json_scalars(),
    "user": st.none() | st.dictionaries(text(5), json_scalars(), max_size=2) | json_scalars(),
    "v": st.none() | text(5) | json_scalars(),
}
# Events the API must accept: what a 200 stores is checked field by field.
VALID_EVENTS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["shop/order.placed", "fuzz/ping"])
        | storable_text(12).filter(str.strip)
    },
    optional={
        "data": st.dictionaries(storable_text(8), json_values(10, storable=True), max_size=4),
        "id": storable_text(10),
        "ts": st.integers(min_value=315_532_800_000, max_value=4_102_444_800_000),
        "user": st.dictionaries(storable_text(5), json_scalars(storable=True), max_size=2),
        "v": storable_text(5),
    },
).filter(lambda event: not event["name"].startswith("inngest/"))
EVENTS = st.one_of(
    VALID_EVENTS,
    VALID_EVENTS,
    # Mostly well formed, one field possibly of any type: the paths past the first check.
    st.fixed_dictionaries(
        {"name": st.sampled_from(["shop/order.placed", "fuzz/ping"])},
        optional={field: FIELD_VALUES[field] for field in FIELDS if field != "name"},
    ),
    st.fixed_dictionaries(
        {"name": FIELD_VALUES["name"]},
        optional={field: FIELD_VALUES[field] for field in FIELDS if field != "name"},
    ),
    st.dictionaries(st.sampled_from(FIELDS) | text(5), json_values(6), max_size=6),
    json_values(4),
)
JSON_BODIES = st.one_of(
    st.lists(VALID_EVENTS, max_size=8),
    st.lists(EVENTS, max_size=8),
    EVENTS,
    st.fixed_dictionaries({"name": st.just("fuzz/deep"), "data": st.integers(95, 105).map(nested)}),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=fuzz",
        "",
    ]
)


@pytest.fixture
def limits(settings) -> None:
    settings.INNGEST_DJANGO = {**django_settings.INNGEST_DJANGO, **LIMITS}


@pytest.fixture
def url() -> str:
    _, raw_key = issue_key("fuzz")
    return reverse("inngest-event-api", kwargs={"event_key": raw_key})


@pytest.fixture
def shop_url() -> str:
    """A key limited to names starting with "shop/"."""
    _, raw_key = issue_key("fuzz shop", event_prefixes=["shop/"])
    return reverse("inngest-event-api", kwargs={"event_key": raw_key})


def post(url: str, body: bytes, content_type: str) -> Any:
    response = Client().post(url, body, content_type=content_type)
    assert response.status_code < 500, response.content
    assert response["Content-Type"] == "application/json"
    return response


def check_answer(response: Any, body: bytes | str, stored_before: int) -> None:
    """A 200 stored exactly what was sent; any other answer stored nothing."""
    answer = response.json()
    assert answer["status"] == response.status_code
    note_event(f"status {response.status_code}")
    if response.status_code != 200:
        assert response.status_code in (400, 403, 413), answer
        assert isinstance(answer["error"], str) and answer["error"]
        assert Event.objects.count() == stored_before
        return
    sent = json.loads(body)
    sent = sent if isinstance(sent, list) else [sent]
    assert len(answer["ids"]) == len(sent)
    rows = Event.objects.in_bulk(answer["ids"])
    assert len(rows) == len(sent)
    assert Event.objects.count() == stored_before + len(sent)
    for event_id, event in zip(answer["ids"], sent, strict=True):
        expected = {k: v for k, v in (event.get("data") or {}).items() if k != "_inngest"}
        row = rows[event_id]
        assert row.name == event["name"]
        assert json_equal(expected, row.data), (expected, row.data)
        assert row.external_id == (event.get("id") or "")


@fuzz_settings(150)
@given(body=JSON_BODIES, content_type=CONTENT_TYPES, limited=st.booleans())
@example(
    body={"name": "shop/order.placed", "data": {"x": 1e23, "y": 2**70}},
    content_type="",
    limited=False,
)
@example(
    body={"name": "shop/order.placed", "data": {"s": "\ud800"}},
    content_type="text/plain",
    limited=False,
)
@example(body=[{"name": "shop/a"}, {"name": "fuzz/b"}], content_type="", limited=True)
def test_json_bodies_are_stored_whole_or_refused_whole(
    url, shop_url, limits, body, content_type, limited
):
    encoded = json.dumps(body).encode()
    before = Event.objects.count()
    response = post(shop_url if limited else url, encoded, content_type)
    check_answer(response, encoded, before)
    if limited and response.status_code == 200:
        events = body if isinstance(body, list) else [body]
        assert all(event["name"].startswith("shop/") for event in events)


RAW_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b"[{}]",
            b'{"name": NaN}',
            b'[{"name": "a", "data": {"x": Infinity}}]',
            b'{"name": "a", "data": {"x": 1e400}}',
            b'{"name": "a", "ts": 1' + b"0" * 5000 + b"}",
            b'{"name": "a"',
            b"\xef\xbb\xbf" + b'{"name": "bom"}',
            '{"name": "utf16"}'.encode("utf-16"),
            b'{"name": "a\\u0000"}',
            b'{"name": "dup", "name": "dup2"}',
            b"[" * 100_000,
            b'{"name": "big", "data": {"x": "' + b"x" * 5000 + b'"}}',
            b"[" + b",".join([b'{"name": "many"}'] * 7) + b"]",
        ]
    ),
    JSON_BODIES.map(lambda body: json.dumps(body, ensure_ascii=False).encode("utf-8", "replace")),
)


@fuzz_settings(150)
@given(body=RAW_BODIES, content_type=CONTENT_TYPES)
def test_raw_bodies_never_fail_the_server(url, limits, body, content_type):
    before = Event.objects.count()
    check_answer(post(url, body, content_type), body, before)


@fuzz_settings(60)
@given(method=st.sampled_from(["get", "put", "patch", "delete", "head", "options"]))
def test_other_methods_are_answered_without_storing(url, method):
    before = Event.objects.count()
    response = getattr(Client(), method)(url)
    assert response.status_code in (200, 405)
    assert Event.objects.count() == before


SENDABLE = st.one_of(
    st.fixed_dictionaries(
        {"name": NAMES},
        optional={
            "data": FIELD_VALUES["data"]
            | st.dictionaries(text(3), st.sets(st.integers()) | st.binary(max_size=3), max_size=2)
            | st.just({"deep": nested(150)})
            | st.just({"deeper": nested(3000)}),
            "id": FIELD_VALUES["id"],
            "ts": FIELD_VALUES["ts"],
        },
    ),
    st.builds(inngest.Event, name=storable_text(10).filter(str.strip), data=st.just({"ok": 1})),
    json_scalars(),
)


@fuzz_settings(150)
@given(events=st.lists(SENDABLE, min_size=1, max_size=4))
@example(events=[{"name": "fuzz/ok"}, {"name": "fuzz/nul", "data": {"s": "a\x00"}}])
@example(events=[{"name": "fuzz/ok"}, {"name": "fuzz/lone", "data": {"s": "\ud800"}}])
@example(events=[{"name": "fuzz/ts", "ts": 2**70}])
@example(events=[{"name": "fuzz/deep", "data": {"deep": nested(3000)}}])
def test_send_stores_the_whole_batch_or_raises_invalid_event_error(events):
    before = Event.objects.count()
    try:
        # As a caller would: a database error here would leave the transaction unusable.
        with transaction.atomic():
            ids = inngest.send(events)
    except InvalidEventError as exc:
        assert str(exc).startswith("event ")
        assert Event.objects.count() == before
        return
    assert Event.objects.count() == before + len(events)
    rows = Event.objects.in_bulk(ids)
    for event_id, event in zip(ids, events, strict=True):
        event = event if isinstance(event, dict) else event.model_dump()
        row = rows[event_id]
        assert row.name == event["name"]
        assert json_equal(event.get("data") or {}, row.data)
