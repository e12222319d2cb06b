"""The served schema and Swagger UI, whatever the project's DRF settings; each operation fuzzed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.test import Client, modify_settings, override_settings
from django.urls import path, reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import inngest_django as inngest
from inngest_django.api.openapi import extend_schema
from inngest_django.api.views import InngestAPIMixin
from inngest_django.models import Event, FunctionRun

pytestmark = pytest.mark.django_db

SCHEMA_URL = reverse("inngest_api:schema")
DOCS_URL = reverse("inngest_api:docs")
# A project as docs/rest-api.md sets one up: DRF's own DEFAULT_SCHEMA_CLASS, not drf-spectacular's.
WITHOUT_SCHEMA_CLASS = {
    key: value
    for key, value in getattr(django_settings, "REST_FRAMEWORK", {}).items()
    if key != "DEFAULT_SCHEMA_CLASS"
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 15


def test_schema_is_served_without_drf_spectacular_as_default_schema_class(admin_client):
    with override_settings(REST_FRAMEWORK=WITHOUT_SCHEMA_CLASS):
        assert not issubclass(api_settings.DEFAULT_SCHEMA_CLASS, AutoSchema)
        response = admin_client.get(SCHEMA_URL)
    assert response.status_code == 200, response.content[:500]
    document = response.json()
    validate_schema(document)
    operations = [op for ops in document["paths"].values() for op in ops if op != "parameters"]
    assert len(operations) == 13  # reads, three run actions, three function actions


def test_views_declared_under_drfs_default_schema_class_still_document_themselves():
    # extend_schema on a method is applied at import, when the project's setting is in force.
    with override_settings(REST_FRAMEWORK=WITHOUT_SCHEMA_CLASS):

        class PingView(InngestAPIMixin, APIView):
            @extend_schema(summary="Ping", responses={200: OpenApiTypes.OBJECT})
            def get(self, request: Request) -> Response:
                return Response({})

        generator = SchemaGenerator(patterns=[path("ping/", PingView.as_view())])
        document = generator.get_schema(public=True)
    assert document["paths"]["/ping/"]["get"]["summary"] == "Ping"


def test_swagger_page_is_served_without_drf_spectacular_as_default_schema_class(admin_client):
    with override_settings(REST_FRAMEWORK=WITHOUT_SCHEMA_CLASS):
        response = admin_client.get(DOCS_URL)
    assert response.status_code == 200
    assert SCHEMA_URL in response.content.decode()


def _asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


def test_swagger_page_loads_its_script_and_styles_from_static_files(admin_client):
    with override_settings(STATIC_URL="/static/"):
        page = admin_client.get(DOCS_URL).content.decode()
    # drf-spectacular's default loads from cdn.jsdelivr.net. A bare "cdn" would also match the
    # page's random CSRF token now and then (it did once in CI's full run).
    assert not re.search(r"cdn\.|jsdelivr|unpkg", page.lower())
    urls = _asset_urls(page)
    assert len(urls) == 4  # the favicon, the stylesheet and two scripts
    for url in urls:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert finders.find(url.removeprefix("/static/")), url


def test_swagger_page_without_the_sidecar_app_loads_drf_spectacular_dist(admin_client):
    with modify_settings(INSTALLED_APPS={"remove": ["drf_spectacular_sidecar"]}):
        page = admin_client.get(DOCS_URL).content.decode()
    assert "drf_spectacular_sidecar" not in page
    assert spectacular_settings.SWAGGER_UI_DIST in page


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
    if "{function_id}" in operation.path:
        known = ["test-fuzz-ok", "testapp-write-orders"]
        strategies.append(
            st.sampled_from(known).flatmap(
                lambda slug: operation.as_strategy(path_parameters={"function_id": slug})
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
    assert len(operations) == 13  # reads, three run actions, three function actions
    statuses: dict[str, set[int]] = {}

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        statuses[label] = _fuzz(operation, headers)

    # Not only errors: every read found something, every action reached a real run.
    for operation, codes in statuses.items():
        done = {200} if operation.startswith("GET") else {201, 202, 409}
        if operation.endswith(("/pause/", "/resume/")):
            done = {200}
        assert codes & done, (
            operation,
            codes,
        )
    assert 404 in statuses["GET /api/inngest/runs/{id}/"]
