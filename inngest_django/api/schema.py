"""The OpenAPI 3 description: error answers, list parameters, the schema and docs views."""

from __future__ import annotations

import threading
from typing import Any

from django.apps import apps
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular import plumbing
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.settings import patched_settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import __version__
from ..enums import RunStatus
from .openapi import extend_schema
from .permissions import ConfiguredAccessMixin
from .serializers import URL_NAMESPACE, ErrorSerializer

SCHEMA_ROUTE = "schema/"
# Where drf-spectacular-sidecar's app keeps Swagger UI among the static files.
SIDECAR_SWAGGER_UI = "drf_spectacular_sidecar/swagger-ui-dist"
_ERROR_MEANINGS = {
    400: "A parameter or the body has a value the API cannot use.",
    401: "No credentials were given (when token authentication comes first).",
    403: (
        "Not allowed: not logged in, not a staff user (or what API_PERMISSION_CLASSES asks), or "
        "without the route's Django permission, which `detail` names."
    ),
    404: "No run, event or function has this id.",
    409: "The run is not in a state this action applies to.",
}
_SETTINGS = {
    "TITLE": "inngest-django REST API",
    "DESCRIPTION": "Functions, runs and events of inngest-django, and actions on runs.",
    "VERSION": __version__,
    # Three models have a `status`; without names the enums would get hashed ones.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "inngest_django.enums.RunStatus",
        "StepStatusEnum": "inngest_django.enums.StepStatus",
        "DeferStatusEnum": "inngest_django.enums.DeferStatus",
        "StepOpEnum": "inngest_django.enums.StepOp",
        "WaitKindEnum": "inngest_django.enums.WaitKind",
        "WaitOutcomeEnum": "inngest_django.enums.WaitOutcome",
    },
}
# drf-spectacular's settings patches are global: one generation at a time.
_generation_lock = threading.Lock()


def _forget_enum_names() -> None:
    """Drop drf-spectacular's cache of ENUM_NAME_OVERRIDES, read once per process otherwise."""
    # The cache ignores patched settings: a schema generated earlier in the process (the
    # project's own, say) would decide our enum names.
    cached = getattr(plumbing, "_load_enum_name_overrides", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Return the documented error answers for these status codes, plus 401 and 403."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=_ERROR_MEANINGS[code])
        for code in sorted({*codes, 401, 403})
    }


def _datetime_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.DATETIME, description=description)


RUN_LIST_PARAMETERS = [
    OpenApiParameter(
        "status",
        {"type": "array", "items": {"type": "string", "enum": list(RunStatus.values)}},
        explode=True,
        style="form",
        description="Only runs in one of these statuses (repeat the parameter for several).",
    ),
    OpenApiParameter("function", str, description="Only runs of this function slug."),
    _datetime_parameter("created_after", "Only runs created at or after this time (ISO 8601)."),
    _datetime_parameter("created_before", "Only runs created before this time (ISO 8601)."),
    OpenApiParameter("parent", str, description="Only runs this run deferred or invoked."),
    OpenApiParameter(
        "deferred", bool, description="Only deferred runs (true) or only other runs (false)."
    ),
    OpenApiParameter("event", str, description="Only runs this event started (batches too)."),
]
EVENT_LIST_PARAMETERS = [
    OpenApiParameter("name", str, description="Only events with this name."),
    _datetime_parameter("received_after", "Only events received at or after this time."),
    _datetime_parameter("received_before", "Only events received before this time."),
]


class _JSONErrorsMixin:
    """Answer errors as plain JSON, whatever the view renders on success."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class SchemaView(_JSONErrorsMixin, ConfiguredAccessMixin, APIView):
    """Serve the OpenAPI 3 schema of the routes in `api_patterns`, at the prefix mounted."""

    renderer_classes = [OpenApiJsonRenderer, OpenApiYamlRenderer]
    schema = AutoSchema()
    api_patterns: list[URLPattern | URLResolver] = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        """Return the schema, JSON by default (`?format=yaml` for YAML)."""
        # Paths are documented as served: the project chose the prefix, so read it off this URL.
        prefix = request.path_info.removesuffix(SCHEMA_ROUTE).lstrip("/")
        patterns = [path(prefix, include(self.api_patterns))]
        with _generation_lock, patched_settings(_SETTINGS):
            _forget_enum_names()
            try:
                generator = SchemaGenerator(patterns=patterns)
                document = generator.get_schema(request=request, public=True)
            finally:
                # Ours would otherwise leak into the project's own schemas, and theirs into ours.
                _forget_enum_names()
        return Response(document)


class SwaggerView(_JSONErrorsMixin, ConfiguredAccessMixin, SpectacularSwaggerView):
    """Swagger UI over the schema, its script and styles served from the project's static files."""

    url_name = f"{URL_NAMESPACE}:schema"
    title = _SETTINGS["TITLE"]

    # drf-spectacular reads SWAGGER_UI_DIST and SWAGGER_UI_FAVICON_HREF project-wide, and defaults
    # to a CDN (a blank page offline); these hooks choose for this view alone. Without the
    # sidecar app its files are not served, so the project's choice stays (check W002 says so).
    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        if apps.is_installed("drf_spectacular_sidecar"):
            return static(f"{SIDECAR_SWAGGER_UI}/{filename}")
        return SpectacularSwaggerView._swagger_ui_resource(filename)

    @staticmethod
    def _swagger_ui_favicon() -> str:
        if apps.is_installed("drf_spectacular_sidecar"):
            return static(f"{SIDECAR_SWAGGER_UI}/favicon-32x32.png")
        return SpectacularSwaggerView._swagger_ui_favicon()
