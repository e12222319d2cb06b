"""Fuzz the REST API's reads over rows holding arbitrary JSON, and its list filters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from inngest_django.enums import RunStatus, StepOp, StepStatus
from inngest_django.ids import new_id
from inngest_django.models import Event, FunctionRun, StepRun

from .strategies import fuzz_settings, json_equal, json_scalars, json_values, storable_text

pytestmark = pytest.mark.django_db

# Any storable JSON, objects or not: rows written around the API (raw SQL, old data) included.
PAYLOADS = json_values(15, storable=True)
ROWS = st.fixed_dictionaries(
    {
        "name": storable_text(30).filter(str.strip),
        "external_id": storable_text(30),
        "ts": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "data": PAYLOADS.filter(lambda value: value is not None),
        "status": st.sampled_from(RunStatus.values),
        "output": PAYLOADS,
        "error": st.none()
        | PAYLOADS
        | st.fixed_dictionaries({"name": storable_text(), "message": storable_text()}),
        "step_key": storable_text(30).filter(str.strip),
        "step_output": PAYLOADS,
        "flow_note": storable_text(40),
        "cancel_reason": storable_text(40),
    }
)


@pytest.fixture
def browser(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def get_json(browser: Client, url: str, **params: Any) -> Any:
    response = browser.get(url, params)
    assert response.status_code == 200, response.content[:2000]
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


@fuzz_settings(80)
@given(row=ROWS)
def test_lists_and_details_answer_200_with_the_stored_json(browser, row):
    with transaction.atomic():
        event = Event.objects.create(
            id=new_id(),
            name=row["name"],
            external_id=row["external_id"],
            ts=row["ts"],
            data=row["data"],
        )
        run = FunctionRun.objects.create(
            id=new_id(),
            function_id=row["name"][:100],
            event=event,
            status=row["status"],
            available_at=timezone.now(),
            output=row["output"],
            error=row["error"],
            flow_note=row["flow_note"][:255],
            cancel_reason=row["cancel_reason"][:255],
        )
        StepRun.objects.create(
            run=run,
            step_key=row["step_key"],
            op=StepOp.RUN,
            status=StepStatus.COMPLETED,
            output=row["step_output"],
        )

    detail = get_json(browser, reverse("inngest_api:event-detail", args=[event.pk]))
    assert (detail["name"], detail["producer_id"], detail["ts"]) == (
        row["name"],
        row["external_id"],
        row["ts"],
    )
    assert json_equal(row["data"], detail["data"])
    assert [found["id"] for found in detail["runs"]] == [run.pk]

    detail = get_json(browser, reverse("inngest_api:run-detail", args=[run.pk]))
    assert json_equal(row["output"], detail["output"])
    assert json_equal(row["error"], detail["error"])
    (step,) = detail["steps"]
    assert step["step_key"] == row["step_key"]
    assert json_equal(row["step_output"], step["output"])

    events = get_json(browser, reverse("inngest_api:event-list"), name=row["name"])
    assert event.pk in [found["id"] for found in events["results"]]
    runs = get_json(browser, reverse("inngest_api:run-list"), event=event.pk)
    assert [found["id"] for found in runs["results"]] == [run.pk]


# Query text: NUL included (PostgreSQL refuses it in a query), lone surrogates not (no URL has one).
QUERY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30) | st.sampled_from(
    ["\x00", "2026-01-01T00:00:00Z", "2026-02-30", "9" * 40, "true", "QUEUED", "-1", "%", "_"]
)
RUN_FILTERS = [
    "status",
    "function",
    "created_after",
    "created_before",
    "parent",
    "deferred",
    "event",
]
EVENT_FILTERS = ["name", "received_after", "received_before"]
PAGING = ["cursor", "page_size", "ordering", "limit", "offset", "format"]


@fuzz_settings(120)
@given(
    which=st.sampled_from(["run-list", "event-list"]),
    params=st.dictionaries(
        st.sampled_from(RUN_FILTERS + EVENT_FILTERS + PAGING), QUERY_TEXT, max_size=4
    ),
)
def test_list_filters_answer_200_or_400_never_a_server_error(browser, which, params):
    response = browser.get(reverse(f"inngest_api:{which}"), params)
    assert response.status_code in (200, 400, 404), (
        params,
        response.status_code,
        response.content[:500],
    )
    body = json.loads(response.content)
    if response.status_code == 200:
        assert isinstance(body["results"], list)
    else:
        assert isinstance(body["detail"], str)


@fuzz_settings(60)
@given(
    run_id=QUERY_TEXT.filter(lambda text: "/" not in text),
    action=st.sampled_from(["cancel", "rerun", "retry"]),
    body=json_values(6) | st.fixed_dictionaries({"reason": json_scalars()}),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded"]
    ),
)
def test_run_actions_on_any_id_with_any_body_never_fail_the_server(
    browser, run_id, action, body, content_type
):
    try:
        payload = json.dumps(body)
    except ValueError:
        payload = "{"
    response = browser.post(
        reverse(f"inngest_api:run-{action}", args=[run_id or "x"]),
        payload,
        content_type=content_type,
    )
    assert response.status_code < 500, response.content[:500]
    assert isinstance(json.loads(response.content)["detail"], str)


PATH_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="/?#"), min_size=1, max_size=20
)


@fuzz_settings(80)
@given(
    segments=st.lists(
        st.sampled_from(["runs", "events", "functions", "schema", "docs", "cancel"]) | PATH_TEXT,
        min_size=1,
        max_size=3,
    ),
    method=st.sampled_from(["get", "post", "put", "patch", "delete", "options", "head"]),
    slash=st.booleans(),
)
def test_any_path_under_the_api_is_answered_without_a_server_error(
    browser, segments, method, slash
):
    path = reverse("inngest_api:root") + "/".join(segments) + ("/" if slash else "")
    response = getattr(browser, method)(path)
    assert response.status_code < 500, (path, response.status_code)
