"""Schemathesis fuzzes each REST API operation from the served schema: no 5xx, answers as told."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun

pytestmark = pytest.mark.django_db

SCHEMA_URL = reverse("inngest_api:schema")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 15


@pytest.fixture
def runs(inngest_client, drain) -> None:
    """Completed, failed, sleeping, deferring and deferred runs, so detail pages answer 200."""

    @inngest.create_defer(inngest_client, id="fuzz-tidy")
    def tidy(ctx):
        return ctx.step.run("tidy", lambda: "tidied")

    @inngest_client.create_function(fn_id="fuzz-ok", trigger=inngest.TriggerEvent(event="fuzz/ok"))
    def ok(ctx):
        ctx.defer("tidy-up", function=tidy, data={"n": 1})
        return ctx.step.run("double", lambda: ctx.event.data.get("n", 1) * 2)

    @inngest_client.create_function(
        fn_id="fuzz-fails", trigger=inngest.TriggerEvent(event="fuzz/fails"), retries=0
    )
    def fails(ctx):
        ctx.step.run("breaks", lambda: 1 / 0)

    @inngest_client.create_function(
        fn_id="fuzz-sleeps", trigger=inngest.TriggerEvent(event="fuzz/sleeps")
    )
    def sleeps(ctx):
        ctx.step.sleep("nap", timedelta(hours=1))

    inngest_client.send(
        [inngest.Event(name=f"fuzz/{name}") for name in ("ok", "fails", "sleeps", "fails")]
    )
    drain()
    assert set(FunctionRun.objects.values_list("status", flat=True)) == {
        "COMPLETED",
        "FAILED",
        "SLEEPING",
    }


@pytest.fixture
def api_schema(runs, admin_user) -> Any:
    """The schema as served to a staff user, loaded by schemathesis."""
    browser = Client()
    browser.force_login(admin_user)
    response = browser.get(SCHEMA_URL)
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def _strategies(operation: Any) -> list[Any]:
    """Return positive and negative cases, plus positive ones for ids that exist."""
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    if "{id}" in operation.path:
        if "/events/" in operation.path:
            known = list(Event.objects.values_list("id", flat=True))
        else:
            known = list(FunctionRun.objects.values_list("id", flat=True))
        if "/functions/" in operation.path:
            known = ["test-fuzz-ok", "test-fuzz-tidy", "testapp-write-orders"]
        strategies.append(
            st.sampled_from(known).flatmap(
                lambda pk: operation.as_strategy(path_parameters={"id": pk})
            )
        )
    return strategies


def _fuzz(operation: Any, headers: dict[str, str]) -> set[int]:
    """Send EXAMPLES cases or so of each strategy; return the status codes seen."""
    seen: set[int] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(_strategies(operation)))
    def answers_as_described(case: Any) -> None:
        response = case.call(headers=headers)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    answers_as_described()
    return seen


def test_every_operation_answers_as_the_schema_says(api_schema, wsgi_app, admin_user):
    # After the schema is fetched: the test client reconnects the signals wsgi_app took off.
    api_schema.app = wsgi_app
    token = Token.objects.create(user=admin_user)
    headers = {"Authorization": f"Token {token.key}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 10
    statuses: dict[str, set[int]] = {}

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        statuses[label] = _fuzz(operation, headers)

    # Not only errors: every read found something, every action reached a real run.
    for operation, codes in statuses.items():
        assert codes & ({200} if operation.startswith("GET") else {201, 202, 409}), (
            operation,
            codes,
        )
    assert 404 in statuses["GET /api/inngest/runs/{id}/"]
