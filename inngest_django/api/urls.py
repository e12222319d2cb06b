"""REST API URLs, to mount under a prefix the project chooses, such as `api/inngest/`."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path
from rest_framework.routers import SimpleRouter

from .function_control import function_control_urls
from .schema import SCHEMA_ROUTE, SchemaView, SwaggerView
from .serializers import URL_NAMESPACE
from .views import EventViewSet, FunctionViewSet, NotFoundView, RootView, RunViewSet

app_name = URL_NAMESPACE

router = SimpleRouter()
router.register("functions", FunctionViewSet, basename="function")
router.register("runs", RunViewSet, basename="run")
router.register("events", EventViewSet, basename="event")

# The routes the OpenAPI schema describes.
api_urlpatterns: list[URLPattern | URLResolver] = [
    path("", RootView.as_view(), name="root"),
    # Before the router's: its function detail route takes any path as a function id.
    *function_control_urls(),
    *router.urls,
]

urlpatterns: list[URLPattern | URLResolver] = [
    *api_urlpatterns,
    path(SCHEMA_ROUTE, SchemaView.as_view(api_patterns=api_urlpatterns), name="schema"),
    path("docs/", SwaggerView.as_view(), name="docs"),
    # Last: any other path under the prefix is a JSON 404 for those allowed in, 401/403 otherwise.
    # Only paths ending in a slash, so APPEND_SLASH still redirects `runs` to `runs/`.
    re_path(r"^.+/$", NotFoundView.as_view(), name="not-found"),
]
