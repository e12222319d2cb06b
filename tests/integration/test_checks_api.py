"""The system check for the REST API's Swagger UI assets (inngest_django.W002)."""

from __future__ import annotations

from django.core import checks
from django.test import modify_settings, override_settings
from django.urls import URLPattern

from inngest_django.checks import check_swagger_ui_assets

WITHOUT_SIDECAR = {"remove": ["drf_spectacular_sidecar"]}
# ROOT_URLCONF of a project that mounts the Event API and not the REST API.
urlpatterns: list[URLPattern] = []


def test_rest_api_without_the_sidecar_app_is_a_warning_with_a_hint():
    with modify_settings(INSTALLED_APPS=WITHOUT_SIDECAR):
        warnings = check_swagger_ui_assets()
        all_messages = checks.run_checks()
    assert [w.id for w in warnings] == ["inngest_django.W002"]
    assert "drf_spectacular_sidecar is not installed" in warnings[0].msg
    assert "add 'drf_spectacular_sidecar' to INSTALLED_APPS" in warnings[0].hint
    assert "inngest_django.W002" in [m.id for m in all_messages]


def test_rest_api_with_the_sidecar_app_passes():
    assert check_swagger_ui_assets() == []


def test_a_project_without_the_rest_api_needs_no_sidecar_app():
    with (
        override_settings(ROOT_URLCONF=__name__),
        modify_settings(INSTALLED_APPS=WITHOUT_SIDECAR),
    ):
        assert check_swagger_ui_assets() == []


def test_a_worker_only_project_without_root_urlconf_passes_the_check(monkeypatch):
    from django.conf import settings

    # Before, reverse() raised AttributeError here: `manage.py run_inngest_worker` crashed in
    # its system checks in a project with no URLs at all.
    with modify_settings(INSTALLED_APPS=WITHOUT_SIDECAR):
        monkeypatch.delattr(settings, "ROOT_URLCONF")
        assert check_swagger_ui_assets() == []
