"""Schemathesis fuzzes the Event API from its own OpenAPI description: no 5xx, answers as told."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inngest_django.api import event_urls
from inngest_django.event_keys import issue_key
from inngest_django.models import Event

from .strategies import fuzz_settings

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def operation(wsgi_app) -> Any:
    """The one documented operation, POST /e/{event_key}, loaded by schemathesis."""
    document = SchemaGenerator(patterns=event_urls.urlpatterns).get_schema(public=True)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = wsgi_app
    (found,) = [result.ok() for result in schema.get_all_operations()]
    assert (found.method.upper(), found.path) == ("POST", "/e/{event_key}")
    return found


def test_the_event_api_answers_as_its_schema_says(operation):
    _, raw_key = issue_key("schemathesis")
    seen: set[int] = set()
    # Both modes with a real key reach validation; without one they stop at the 401.
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    strategies += [
        operation.as_strategy(mode, path_parameters={"event_key": raw_key})
        for mode in GenerationMode
    ]

    @fuzz_settings(80)
    @given(case=st.one_of(strategies))
    def answers_as_described(case: Any) -> None:
        before = Event.objects.count()
        response = case.call()
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS)
        if response.status_code != 200:
            assert Event.objects.count() == before
        else:
            assert Event.objects.count() == before + len(response.json()["ids"])

    answers_as_described()
    # Not only refusals: generated events were stored, and bad ones and bad keys refused.
    assert {200, 400, 401} <= seen, seen
