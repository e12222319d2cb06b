"""Model fields whose values are stored encrypted when ENCRYPTION_KEYS is set."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.db.models.query_utils import DeferredAttribute

from . import encryption
from .exceptions import DecryptionError


class Unreadable:
    """What a sealed column loads as when no configured key decrypts it."""

    __slots__ = ("error",)

    def __init__(self, error: DecryptionError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return "<unreadable sealed value>"


class SealedAttribute(DeferredAttribute):
    """The field's attribute: reading a value that could not be decrypted raises."""

    # A data descriptor (it has __set__), so every read goes through __get__.
    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Unreadable):
            # Rows load whole; only code that needs the payload fails, with the row named.
            raise DecryptionError(value.error.where, pk=instance.pk)
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


def _where(field: models.Field) -> str:
    return f"{field.model._meta.db_table}.{field.column}"


def _plain(value: Any) -> bool:
    """Return True for a value to seal: not SQL NULL, not an expression such as F()."""
    return value is not None and not hasattr(value, "resolve_expression")


class SealedJSONField(models.JSONField):
    """A JSONField stored as {"$sealed": "<Fernet token>"} while encryption is on.

    The column stays a JSON column; rows written in clear (before encryption was turned on)
    read back as they are, so turning encryption on needs no migration of data. A clear value
    that is itself {"$sealed": "<text>"} is stored escaped and reads back as written. Lookups
    into the JSON (data__key=...) cannot see inside sealed values.
    """

    descriptor_class = SealedAttribute

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        stored = super().from_db_value(value, expression, connection)
        if not encryption.is_sealed(stored):
            return stored
        try:
            return encryption.unseal(stored, where=_where(self), decoder=self.decoder)
        except DecryptionError as exc:
            return Unreadable(exc)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if _plain(value):
            value = encryption.to_stored(value, encoder=self.encoder)
        return super().get_db_prep_save(value, connection)


class SealedTextField(models.TextField):
    """A TextField stored as "$sealed:<Fernet token>" while encryption is on; "" stays ""."""

    descriptor_class = SealedAttribute

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if not isinstance(value, str) or not value.startswith(encryption.SEALED_PREFIX):
            return value
        try:
            return encryption.unseal_text(value, where=_where(self))
        except DecryptionError as exc:
            return Unreadable(exc)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if _plain(value):
            value = encryption.text_to_stored(str(value))
        return super().get_db_prep_save(value, connection)


@dataclass
class ResealCounts:
    """What re-sealing one column found."""

    resealed: int = 0
    current: int = 0
    unreadable: int = 0
    unreadable_pks: list[Any] = field(default_factory=list)


def sealed_columns() -> list[tuple[type[models.Model], models.Field]]:
    """Return every (model, field) of this app whose values are sealed."""
    from django.apps import apps

    found = []
    for model in apps.get_app_config("inngest_django").get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, SealedJSONField | SealedTextField):
                found.append((model, model_field))
    return found


def _stored_token(model_field: models.Field, raw: Any) -> tuple[str | None, bool]:
    """Return (token, is_clear) for a raw column value: the Fernet token, if sealed."""
    if isinstance(model_field, SealedTextField):
        sealed = raw.startswith(encryption.SEALED_PREFIX)
        token = raw[len(encryption.SEALED_PREFIX) :] if sealed else None
        present = raw != ""
    else:
        stored = json.loads(raw) if isinstance(raw, str | bytes) else raw
        token = stored[encryption.SEALED_KEY] if encryption.is_sealed(stored) else None
        present = stored is not None
    # An escaped value is a clear one in the sealed shape: it is sealed like any clear value.
    if token is None or token.startswith(encryption.ESCAPE_MARK):
        return None, present
    return token, False


def reseal_column(
    model: type[models.Model],
    model_field: models.Field,
    *,
    batch_size: int,
    dry_run: bool = False,
) -> ResealCounts:
    """Seal every value of one column with the first key, `batch_size` rows per transaction.

    Values sealed with an older key, or written in clear, are rewritten; values already
    sealed with the first key are left alone, so an interrupted run can simply be repeated.
    """
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(model_field.column)
    pk_column = quote(model._meta.pk.column)
    # Locked while being rewritten, so a run finishing meanwhile never loses its new value.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    counts, last = ResealCounts(), None
    while True:
        after = "" if last is None else f" AND {pk_column} > %s"
        sql = (
            f"SELECT {pk_column}, {column} FROM {table} WHERE {column} IS NOT NULL{after} "
            f"ORDER BY {pk_column} LIMIT %s{lock}"
        )
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [batch_size] if last is None else [last, batch_size])
                rows = cursor.fetchall()
            for pk, raw in rows:
                token, clear = _stored_token(model_field, raw)
                if token is None and not clear:
                    continue
                if token is not None and encryption.is_current(token):
                    counts.current += 1
                    continue
                try:
                    value = model_field.from_db_value(raw, None, connection)
                except DecryptionError:  # pragma: no cover - from_db_value returns Unreadable
                    value = None
                if isinstance(value, Unreadable):
                    counts.unreadable += 1
                    counts.unreadable_pks.append(pk)
                    continue
                counts.resealed += 1
                if not dry_run:
                    # The field seals the value again, with the first key.
                    model._base_manager.filter(pk=pk).update(**{model_field.name: value})
        if len(rows) < batch_size:
            return counts
        last = rows[-1][0]
