"""Keys, sealing and keyed hashes of encryption.py and sealed_fields.py; no database."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from inngest_django import encryption
from inngest_django.checks import check_settings
from inngest_django.conf import app_settings
from inngest_django.exceptions import DecryptionError
from inngest_django.models import DeferIntent, Event, FunctionRun
from inngest_django.sealed_fields import Unreadable

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
NOT_A_KEY = "SECRETISH-not-base64-at-all"


def keys(*values: object) -> override_settings:
    return override_settings(INNGEST_DJANGO={"ENCRYPTION_KEYS": values})


def test_a_bad_key_is_named_by_position_and_never_shown():
    with keys(KEY_A, NOT_A_KEY), pytest.raises(ImproperlyConfigured) as raised:
        _ = app_settings.ENCRYPTION_KEYS
    message = str(raised.value)
    assert "INNGEST_DJANGO['ENCRYPTION_KEYS'][1] is not a Fernet key" in message
    assert NOT_A_KEY not in message
    assert KEY_A not in message


def test_a_single_string_instead_of_a_list_is_refused_without_showing_it():
    refused = pytest.raises(ImproperlyConfigured, match="must be a list or tuple")
    with override_settings(INNGEST_DJANGO={"ENCRYPTION_KEYS": KEY_A}), refused as raised:
        _ = app_settings.ENCRYPTION_KEYS
    assert KEY_A not in str(raised.value)


def test_the_settings_check_reports_a_bad_key_as_e001_without_the_key():
    with keys(NOT_A_KEY):
        errors = check_settings()
    assert [error.id for error in errors] == ["inngest_django.E001"]
    assert "[0] is not a Fernet key" in errors[0].msg
    assert NOT_A_KEY not in errors[0].msg


def test_keys_without_the_cryptography_package_are_a_clear_configuration_error(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cryptography" else find_spec(name, *a),
    )
    with keys(KEY_A), pytest.raises(ImproperlyConfigured, match="cryptography package"):
        _ = app_settings.ENCRYPTION_KEYS


def test_first_key_seals_and_every_key_unseals():
    with keys(KEY_A):
        sealed = encryption.seal({"card": "4111"})
    assert set(sealed) == {"$sealed"} and "4111" not in json.dumps(sealed)
    with keys(KEY_B, KEY_A):
        assert encryption.unseal(sealed, where="t.c") == {"card": "4111"}
        assert not encryption.is_current(sealed["$sealed"])
        assert encryption.is_current(encryption.seal(1)["$sealed"])


def test_a_value_no_key_opens_raises_a_clear_error_without_token_or_key():
    with keys(KEY_A):
        sealed = encryption.seal({"card": "4111"})
    with keys(KEY_B), pytest.raises(DecryptionError) as raised:
        encryption.unseal(sealed, where="inngest_django_event.data")
    message = str(raised.value)
    assert message.startswith("cannot decrypt inngest_django_event.data: none of the configured")
    for secret in (sealed["$sealed"], KEY_A, KEY_B, "4111"):
        assert secret not in message
    with keys(), pytest.raises(DecryptionError, match="encryption is off"):
        encryption.unseal(sealed, where="inngest_django_event.data")


def test_keyed_hashes_are_stable_per_key_and_differ_between_keys():
    with keys(KEY_A):
        first = encryption.keyed_hash('"acct-1"')
        assert encryption.keyed_hash('"acct-1"') == first
        assert encryption.hash_if_enabled("") == ""
    with keys(KEY_B, KEY_A):
        assert encryption.keyed_hashes('"acct-1"')[1] == first
        assert encryption.keyed_hash('"acct-1"') != first
    assert first.startswith("hmac-sha256:") and "acct-1" not in first
    with keys():
        assert encryption.hash_if_enabled('"acct-1"') == '"acct-1"'


def test_sealed_field_seals_only_while_encryption_is_on_and_reads_clear_values():
    field = Event._meta.get_field("data")
    with keys():
        assert field.get_db_prep_save({"a": 1}, connection) is not None
        stored_clear = json.dumps({"a": 1})
        assert field.from_db_value(stored_clear, None, connection) == {"a": 1}
    with keys(KEY_A):
        prepared = field.get_db_prep_save({"a": "secret"}, connection)
        assert "secret" not in str(getattr(prepared, "obj", prepared))
        assert field.from_db_value(stored_clear, None, connection) == {"a": 1}
        sealed = json.dumps(encryption.seal({"a": "secret"}))
        assert field.from_db_value(sealed, None, connection) == {"a": "secret"}
        assert field.get_db_prep_save(None, connection) is None
    with keys(KEY_B):
        assert isinstance(field.from_db_value(sealed, None, connection), Unreadable)


def stored_and_read(field: Any, value: Any) -> tuple[str, Any]:
    """Return what a sealed field stores for a JSON object or a text, and what it reads back."""
    prepared = field.get_db_prep_save(value, connection)
    prepared = getattr(prepared, "obj", prepared)  # psycopg's Jsonb holds the object
    text = prepared if isinstance(prepared, str) else json.dumps(prepared)
    return text, field.from_db_value(text, None, connection)


@pytest.mark.parametrize("configured", [(), (KEY_A,)], ids=["encryption-off", "encryption-on"])
def test_values_in_the_sealed_shape_read_back_as_written(configured):
    data, reason = Event._meta.get_field("data"), DeferIntent._meta.get_field("reason")
    with keys(*configured):
        for value in ({"$sealed": "x"}, {"$sealed": ":x"}, {"$sealed": "gAAAAAB"}, {"a": 1}):
            assert stored_and_read(data, value)[1] == value
        for text in ("$sealed:x", "$sealed::x", "$sealed", "plain", ""):
            assert stored_and_read(reason, text)[1] == text


def test_a_clear_value_in_the_sealed_shape_is_stored_escaped_and_only_then():
    data, reason = Event._meta.get_field("data"), DeferIntent._meta.get_field("reason")
    with keys():
        assert json.loads(stored_and_read(data, {"$sealed": "x"})[0]) == {
            "$sealed": ':{"$sealed":"x"}'
        }
        assert stored_and_read(reason, "$sealed:x")[0] == "$sealed::$sealed:x"
        # Other values keep their clear form, so queries over them see what was written.
        assert json.loads(stored_and_read(data, {"$sealed": 1, "b": 2})[0]) == {
            "$sealed": 1,
            "b": 2,
        }
        assert stored_and_read(reason, "plain $sealed:x")[0] == "plain $sealed:x"


def test_reading_an_unreadable_attribute_names_the_column_and_row():
    run = FunctionRun(id="01RUN")
    run.output = Unreadable(DecryptionError("inngest_django_functionrun.output"))
    with pytest.raises(DecryptionError, match=r"functionrun\.output \(row 01RUN\)"):
        _ = run.output
    run.output = {"fine": True}
    assert run.output == {"fine": True}
