"""The Event API: every status it answers, seeded ids and retries, 5,000 events, dispatch."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from ulid import ULID

import inngest_django as inngest
from inngest_django.event_keys import issue_key, revoke
from inngest_django.models import Event, EventKey, FunctionRun

pytestmark = pytest.mark.django_db

SEED_HEADER = "HTTP_X_INNGEST_EVENT_ID_SEED"
SEED_MILLIS = 1_755_820_000_000
GOOD = {"name": "shop/order.placed", "data": {"order_id": 1}}


def inngest_settings(**values: Any):
    return override_settings(INNGEST_DJANGO={**settings.INNGEST_DJANGO, **values})


@pytest.fixture
def event_key() -> tuple[EventKey, str]:
    return issue_key("billing service")


@pytest.fixture
def url(event_key) -> str:
    return reverse("inngest-event-api", kwargs={"event_key": event_key[1]})


def post(url: str, body: Any, *, raw: bool = False, client: Client | None = None, **headers: str):
    """POST a JSON body (or raw text) and return the response."""
    content = body if raw else json.dumps(body)
    return (client or Client()).post(url, content, content_type="application/json", **headers)


def seed(entropy: bytes, millis: int = SEED_MILLIS) -> str:
    return f"{millis},{base64.b64encode(entropy).decode()}"


def assert_error(response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["error"], str)
    for fragment in fragments:
        assert fragment in body["error"]
    return body["error"]


def noop(ctx: inngest.Context) -> dict:
    return ctx.event.data


# 200


def test_single_object_is_stored_and_answered_with_its_id(url):
    response = post(url, {"name": "shop/order.placed", "data": {"order_id": 42}, "id": "order-42"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200
    [event_id] = body["ids"]
    assert len(event_id) == 26
    event = Event.objects.get(pk=event_id)
    assert (event.name, event.data, event.external_id) == (
        "shop/order.placed",
        {"order_id": 42},
        "order-42",
    )
    assert event.ts > 0
    assert event.dispatched_at is None


def test_array_is_stored_with_one_id_per_event_in_request_order(url):
    events = [
        {"name": "shop/a", "data": {"n": 0}, "ts": 1_755_820_000_000, "v": "2024-01-01.1"},
        {"name": "shop/b", "user": {"email": "ignored@example.com"}},
        {"name": "shop/c", "data": None, "id": "", "ts": 0, "meta": {"unknown": "ignored"}},
    ]
    response = post(url, events)
    assert response.status_code == 200
    ids = response.json()["ids"]
    assert len(ids) == len(set(ids)) == 3
    stored = {event.pk: event for event in Event.objects.all()}
    assert [stored[i].name for i in ids] == ["shop/a", "shop/b", "shop/c"]
    assert [stored[i].data for i in ids] == [{"n": 0}, {}, {}]
    assert [stored[i].external_id for i in ids] == ["", "", ""]
    assert stored[ids[0]].ts == 1_755_820_000_000
    assert stored[ids[2]].ts > 1_755_820_000_000  # 0 means "now", as in Inngest


def test_empty_array_stores_nothing_and_answers_no_ids(url):
    response = post(url, [])
    assert response.json() == {"ids": [], "status": 200}
    assert not Event.objects.exists()


def test_engine_metadata_key_is_dropped_from_data_as_inngest_does(url):
    response = post(url, {"name": "shop/x", "data": {"_inngest": {"fn_id": "x"}, "keep": 1}})
    assert Event.objects.get(pk=response.json()["ids"][0]).data == {"keep": 1}


def test_trailing_slash_is_accepted(event_key):
    response = post(f"/e/{event_key[1]}/", GOOD)
    assert response.status_code == 200
    assert Event.objects.count() == 1


def test_accepted_request_is_logged_with_key_name_and_count(url, caplog):
    with caplog.at_level(logging.INFO, logger="inngest_django.api.event_api"):
        post(url, [GOOD, GOOD])
    [record] = [r for r in caplog.records if getattr(r, "action", "") == "events_received"]
    assert record.levelno == logging.INFO
    assert "key=billing service" in record.getMessage()
    assert record.count == 2


# 400


def test_malformed_json_is_refused(url):
    assert_error(post(url, '[{"name": "shop/x",', raw=True), 400, "not valid JSON")
    assert not Event.objects.exists()


@pytest.mark.parametrize("body", ['"shop/x"', "42", "null", "true", ""])
def test_body_that_is_not_an_object_or_array_is_refused(url, body):
    assert_error(post(url, body, raw=True), 400)
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"data": {}}, "event 2: name is required"),
        ({"name": ""}, "event 2: name is required"),
        ({"name": "   "}, "event 2: name must not be blank"),
        ({"name": 5}, "event 2: name must be a string, not number"),
        ({"name": "x" * 256}, "event 2: name is longer than 255 characters"),
        ({"name": "shop/x", "data": [1]}, "event 2: data must be a JSON object, not array"),
        ({"name": "shop/x", "data": "text"}, "event 2: data must be a JSON object, not string"),
        ({"name": "shop/x", "id": 7}, "event 2: id must be a string, not number"),
        ({"name": "shop/x", "id": "i" * 256}, "event 2: id is longer than 255 characters"),
        ({"name": "shop/x", "ts": "now"}, "event 2: ts must be an integer"),
        ({"name": "shop/x", "ts": 1.5e12}, "event 2: ts must be an integer"),
        ({"name": "shop/x", "ts": True}, "event 2: ts must be an integer"),
        ({"name": "shop/x", "v": 2}, "event 2: v must be a string"),
        ({"name": "shop/x", "user": "u-1"}, "event 2: user must be a JSON object"),
        ({"name": "shop/x", "data": {"s": "a\u0000b"}}, "event 2: data contains a NUL"),
        ({"name": "shop/x", "data": {"s": "\ud800"}}, "event 2: data contains a lone surrogate"),
        ("shop/x", "event 2: must be a JSON object, not string"),
        (None, "event 2: must be a JSON object, not null"),
    ],
)
def test_bad_event_is_refused_naming_its_index_and_field(url, event, message):
    error = assert_error(post(url, [GOOD, GOOD, event, GOOD]), 400)
    assert error.startswith(message), error
    assert not Event.objects.exists()  # all or nothing


def test_data_nested_too_deeply_is_refused(url):
    data: dict[str, Any] = {}
    for _ in range(150):
        data = {"d": data}
    assert_error(post(url, [{"name": "shop/x", "data": data}]), 400, "event 0: data is nested")


def test_reserved_name_is_refused(url):
    assert_error(
        post(url, [GOOD, {"name": "inngest/function.finished"}]),
        400,
        "event 1: name 'inngest/function.finished' is reserved",
    )
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        (315_532_799_999, "event 0: ts 315532799999 is before 1980-01-01"),
        (-1, "event 0: ts -1 is before 1980-01-01"),
        (4_102_444_800_001, "event 0: ts 4102444800001 is after 2100-01-01"),
    ],
)
def test_timestamp_outside_1980_to_2100_is_refused(url, ts, message):
    assert_error(post(url, {"name": "shop/x", "ts": ts}), 400, message)


@pytest.mark.parametrize("ts", [315_532_800_000, 4_102_444_800_000])
def test_timestamps_on_the_bounds_are_accepted(url, ts):
    response = post(url, {"name": "shop/x", "ts": ts})
    assert Event.objects.get(pk=response.json()["ids"][0]).ts == ts


# 401


@pytest.mark.parametrize("path", ["/e/", "/e"])
def test_missing_key_is_refused(path):
    response = post(path, GOOD)
    assert response.json() == {"status": 401, "error": "Event key is required"}
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_unknown_key_is_refused(event_key):
    response = post("/e/" + event_key[1][:-1] + "x", GOOD)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "error": "Event key not found"}
    assert not Event.objects.exists()


@pytest.mark.parametrize("key", ["%00abc", "abc%00"])
def test_a_key_holding_nul_is_not_found(key):
    # PostgreSQL refused the NUL in the prefix lookup: a 500 there before issue 17.
    response = post("/e/" + key, GOOD)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "error": "Event key not found"}
    assert not Event.objects.exists()


def test_revoked_key_is_not_found(url, event_key):
    assert post(url, GOOD).status_code == 200
    revoke(event_key[0].pk)
    response = post(url, GOOD)
    assert response.status_code == 401
    assert response.json()["error"] == "Event key not found"
    assert Event.objects.count() == 1


def test_staff_session_is_no_credential(admin_client):
    response = post("/e/not-a-key", GOOD, client=admin_client)
    assert_error(response, 401, "Event key not found")


# 413


def test_more_events_than_the_limit_are_refused(url):
    limit = 5000
    response = post(url, [{"name": "shop/x"}] * (limit + 1))
    assert_error(response, 413, "5001", "5000")
    assert not Event.objects.exists()


def test_event_over_max_event_bytes_is_refused(url):
    big = {"name": "shop/x", "data": {"blob": "x" * (512 * 1024)}}
    assert_error(post(url, [GOOD, big]), 413, "event 1: the event is", "MAX_EVENT_BYTES")
    assert not Event.objects.exists()


def test_body_over_max_request_bytes_is_refused(url):
    with inngest_settings(EVENT_API_MAX_REQUEST_BYTES=1000):
        response = post(url, [{"name": "shop/x", "data": {"n": n}} for n in range(100)])
        assert_error(response, 413, "EVENT_API_MAX_REQUEST_BYTES")
        assert post(url, [GOOD]).status_code == 200


# 405 and CSRF


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_refused_as_json(url, method):
    response = getattr(Client(), method)(url, HTTP_ACCEPT="text/html")
    assert_error(response, 405, method.upper())
    assert "POST" in response["Allow"]


def test_csrf_is_not_enforced(url):
    response = post(url, GOOD, client=Client(enforce_csrf_checks=True))
    assert response.status_code == 200


# Seeded ids


def test_seed_header_makes_a_retry_get_the_same_ids_and_store_and_run_once(
    url, inngest_client, drain
):
    inngest_client.create_function(
        fn_id="on-order", trigger=inngest.TriggerEvent(event="shop/order.*")
    )(noop)
    entropy = bytes(range(10))
    events = [{"name": "shop/order.placed", "data": {"n": n}} for n in range(3)]
    first = post(url, events, **{SEED_HEADER: seed(entropy)})
    retry = post(url, events, **{SEED_HEADER: seed(entropy)})
    assert first.status_code == retry.status_code == 200
    ids = first.json()["ids"]
    assert retry.json()["ids"] == ids
    # The ids are the server's, in arrival order; each row keeps the id Inngest derives from
    # the seed: the seed's time, its entropy, bytes 6..9 plus the 1-based index.
    seeds = dict(Event.objects.values_list("id", "seed_id"))
    for position, event_id in enumerate(ids):
        raw = ULID.from_str(seeds[event_id]).bytes
        assert int.from_bytes(raw[:6], "big") == SEED_MILLIS
        assert raw[6:12] == entropy[:6]
        assert int.from_bytes(raw[12:], "big") == int.from_bytes(entropy[6:], "big") + position + 1
    assert Event.objects.count() == 3
    drain()
    assert FunctionRun.objects.count() == 3
    # A retry arriving after the first copy was dispatched starts nothing either.
    assert post(url, events, **{SEED_HEADER: seed(entropy)}).json()["ids"] == ids
    drain()
    assert Event.objects.filter(name="shop/order.placed").count() == 3
    assert sorted(FunctionRun.objects.values_list("event_id", flat=True)) == sorted(ids)
    assert set(FunctionRun.objects.values_list("status", flat=True)) == {"COMPLETED"}


def test_seed_entropy_counter_wraps_like_a_uint32(url):
    response = post(url, [GOOD, GOOD], **{SEED_HEADER: seed(b"\xff" * 10)})
    seeds = dict(Event.objects.values_list("id", "seed_id"))
    tails = [ULID.from_str(seeds[i]).bytes[12:] for i in response.json()["ids"]]
    assert tails == [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01"]


def test_different_seeds_give_different_ids(url):
    one = post(url, [GOOD], **{SEED_HEADER: seed(b"a" * 10)}).json()["ids"]
    two = post(url, [GOOD], **{SEED_HEADER: seed(b"b" * 10)}).json()["ids"]
    assert one != two
    assert Event.objects.count() == 2


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "1755820000000",
        f"1755820000000,{base64.b64encode(b'short').decode()}",
        "1755820000000,not base64!",
        f"0,{base64.b64encode(b'a' * 10).decode()}",
        f"-5,{base64.b64encode(b'a' * 10).decode()}",
        f"{1 << 48},{base64.b64encode(b'a' * 10).decode()}",
        f"1755820000000,{base64.b64encode(b'a' * 10).decode()},extra",
    ],
)
def test_malformed_seed_falls_back_to_fresh_ids(url, header):
    first = post(url, [GOOD, GOOD], **{SEED_HEADER: header})
    again = post(url, [GOOD, GOOD], **{SEED_HEADER: header})
    assert first.status_code == again.status_code == 200
    assert set(first.json()["ids"]).isdisjoint(again.json()["ids"])
    assert Event.objects.count() == 4


# Volume and dispatch


def test_five_thousand_events_in_one_request_of_over_2_5_mb(url):
    events = [
        {"name": "shop/bulk", "data": {"n": n, "pad": "p" * 600}, "id": f"bulk-{n}"}
        for n in range(5000)
    ]
    body = json.dumps(events)
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    started = time.monotonic()
    response = post(url, body, raw=True)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content[:500]
    ids = response.json()["ids"]
    assert len(ids) == len(set(ids)) == 5000
    stored = dict(Event.objects.filter(name="shop/bulk").values_list("id", "external_id"))
    assert [stored[i] for i in ids] == [f"bulk-{n}" for n in range(5000)]
    assert elapsed < 20, f"5,000 events took {elapsed:.1f} s"


def test_events_start_their_runs_after_drain(url, inngest_client, drain):
    inngest_client.create_function(
        fn_id="on-order", trigger=inngest.TriggerEvent(event="shop/order.*")
    )(noop)
    response = post(
        url,
        [
            {"name": "shop/order.placed", "data": {"order_id": 1}},
            {"name": "shop/order.placed", "data": {"order_id": 2}},
            {"name": "shop/other", "data": {}},
        ],
    )
    ids = response.json()["ids"]
    assert not FunctionRun.objects.exists()
    drain()
    runs = FunctionRun.objects.order_by("event_id")
    assert [(r.event_id, r.status, r.output) for r in runs] == [
        (ids[0], "COMPLETED", {"order_id": 1}),
        (ids[1], "COMPLETED", {"order_id": 2}),
    ]


def test_producer_id_sent_twice_starts_one_run(url, inngest_client, drain):
    inngest_client.create_function(
        fn_id="on-order", trigger=inngest.TriggerEvent(event="shop/order.*")
    )(noop)
    event = {"name": "shop/order.placed", "data": {"order_id": 1}, "id": "order-1"}
    post(url, event)
    post(url, event)
    drain()
    assert Event.objects.filter(name="shop/order.placed").count() == 2
    assert FunctionRun.objects.count() == 1


def test_a_seed_from_a_slow_clock_still_orders_the_event_after_earlier_ones(url):
    # Waits and cancel rules count only events stored after their trigger, by id order.
    earlier = post(url, [GOOD]).json()["ids"][0]
    stale = post(url, [GOOD], **{SEED_HEADER: seed(b"c" * 10, millis=SEED_MILLIS - 3_600_000)})
    [late] = stale.json()["ids"]
    assert late > earlier
