"""Event API keys: stored as digests, checked in constant time, revocable."""

from __future__ import annotations

import pytest

from inngest_django import event_keys
from inngest_django.models import EventKey

pytestmark = pytest.mark.django_db


def test_an_issued_key_authenticates_and_only_its_digest_is_stored():
    row, raw_key = event_keys.issue_key("billing service")
    assert len(raw_key) >= 40
    stored = EventKey.objects.get()
    assert raw_key not in (stored.digest, stored.name)
    assert stored.prefix == raw_key[:8]
    assert stored.digest == event_keys.digest_of(raw_key)
    assert stored.last_used_at is None

    assert event_keys.authenticate(raw_key) == row
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_unknown_empty_and_near_miss_keys_are_refused():
    _, raw_key = event_keys.issue_key("billing")
    assert event_keys.authenticate("") is None
    assert event_keys.authenticate("nope") is None
    # Same prefix, different tail: the digest comparison decides.
    assert event_keys.authenticate(raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")) is None


def test_a_revoked_key_is_refused_and_revoking_twice_says_so():
    row, raw_key = event_keys.issue_key("old partner")
    other, other_key = event_keys.issue_key("new partner")
    assert event_keys.revoke(row.pk) is True
    assert event_keys.revoke(row.pk) is False
    assert event_keys.revoke(999_999) is False
    assert event_keys.authenticate(raw_key) is None
    assert event_keys.authenticate(other_key) == other
    row.refresh_from_db()
    assert row.revoked_at is not None
