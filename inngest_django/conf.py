"""`app_settings`: INNGEST_DJANGO validated on first access, cached, reset on setting_changed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from pydantic import ValidationError

from .schemas.settings import AppSettingsModel

SETTING_NAME = "INNGEST_DJANGO"


class AppSettings:
    """Attribute access to INNGEST_DJANGO keys with defaults; unknown keys are an error."""

    def __init__(self) -> None:
        self._cached: AppSettingsModel | None = None

    def _load(self) -> AppSettingsModel:
        raw = getattr(settings, SETTING_NAME, {}) or {}
        if not isinstance(raw, dict):
            raise ImproperlyConfigured(f"{SETTING_NAME} must be a dict, not {type(raw).__name__}")
        valid = sorted(AppSettingsModel.model_fields)
        unknown = sorted(set(raw) - set(valid))
        if unknown:
            raise ImproperlyConfigured(
                f"{SETTING_NAME} has unknown key(s) {', '.join(unknown)}; "
                f"valid keys are {', '.join(valid)}"
            )
        try:
            return AppSettingsModel(**raw)
        except ValidationError as exc:
            raise ImproperlyConfigured(f"{SETTING_NAME} is invalid: {exc}") from exc

    def __getattr__(self, name: str) -> Any:
        if not name.isupper():
            raise AttributeError(name)
        if self._cached is None:
            self._cached = self._load()
        return getattr(self._cached, name)

    def reload(self) -> None:
        """Forget the cached values so the next access re-reads settings."""
        self._cached = None


app_settings = AppSettings()


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        app_settings.reload()


setting_changed.connect(_reload_on_change)
