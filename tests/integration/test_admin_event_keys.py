"""Event keys in the admin: issued by name and shown once, listed without secrets, revoked."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from inngest_django import event_keys
from inngest_django.models import EventKey
from tests.helpers import ADD_KEY_URL, KEYS_URL, cells, change_url, shown_messages, staff_client

pytestmark = pytest.mark.django_db


def test_add_form_asks_only_for_a_name(admin_client):
    page = admin_client.get(ADD_KEY_URL).content.decode()
    assert 'name="name"' in page
    for field in ("prefix", "digest", "revoked_at", "last_used_at"):
        assert f'name="{field}"' not in page


def test_adding_a_key_shows_it_once_and_it_authenticates(admin_client):
    response = admin_client.post(ADD_KEY_URL, {"name": "billing service"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    raw_key = re.search(r'<input id="event-key" type="text" readonly value="([^"]+)"', page)[1]
    assert "shown only once" in page
    assert f"POST /e/{raw_key}" in page

    key = EventKey.objects.get()
    assert key.name == "billing service" and raw_key.startswith(key.prefix)
    assert event_keys.authenticate(raw_key) == key
    # Never again: not on the list, not on the key's page, not in a message.
    for url in (KEYS_URL, change_url(key)):
        later = admin_client.get(url).content.decode()
        assert raw_key not in later and key.digest not in later
        assert shown_messages(later) == []


def test_key_list_shows_name_prefix_dates_and_state(admin_client):
    live, _ = event_keys.issue_key("web shop")
    gone, _ = event_keys.issue_key("old cron")
    event_keys.revoke(gone.pk)
    page = admin_client.get(KEYS_URL).content.decode()
    assert cells(page, "name") == ["old cron", "web shop"]
    assert cells(page, "prefix_text") == [f"{gone.prefix}…", f"{live.prefix}…"]
    assert cells(page, "state") == ["Revoked", "Active"]
    assert live.digest not in page and gone.digest not in page
    assert len(cells(page, "revoked_at")) == 2 and len(cells(page, "last_used_at")) == 2


def test_key_page_is_read_only(admin_client):
    key, _ = event_keys.issue_key("web shop")
    page = admin_client.get(change_url(key)).content.decode()
    assert 'name="_save"' not in page and 'name="name"' not in page
    response = admin_client.post(change_url(key), {"name": "renamed", "prefix": "x"})
    assert response.status_code == 403
    key.refresh_from_db()
    assert key.name == "web shop"
    delete = reverse("admin:inngest_django_eventkey_delete", args=[key.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_revoke_action_refuses_the_key_afterwards_and_reports(admin_client):
    key, raw_key = event_keys.issue_key("web shop")
    other, _ = event_keys.issue_key("warehouse")
    event_keys.revoke(other.pk)
    response = admin_client.post(
        KEYS_URL, {"action": "revoke_keys", "_selected_action": [key.pk, other.pk]}, follow=True
    )
    assert shown_messages(response.content.decode()) == [
        ("success", "1 key was revoked; requests using it are refused with 401."),
        ("warning", "1 key was already revoked."),
    ]
    assert event_keys.authenticate(raw_key) is None
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_revoking_needs_the_change_permission(django_user_model):
    key, raw_key = event_keys.issue_key("web shop")
    viewer = staff_client(django_user_model, "viewer", "view_eventkey")
    assert "revoke_keys" not in viewer.get(KEYS_URL).content.decode()
    viewer.post(KEYS_URL, {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert event_keys.authenticate(raw_key) == key
    assert viewer.post(ADD_KEY_URL, {"name": "sneaky"}).status_code == 403

    keeper = staff_client(django_user_model, "keeper", "view_eventkey", "change_eventkey")
    keeper.post(KEYS_URL, {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert event_keys.authenticate(raw_key) is None


def test_key_pages_refuse_anonymous_and_non_staff_users(client, non_staff_client):
    key, _ = event_keys.issue_key("web shop")
    for browser in (client, non_staff_client):
        for url in (KEYS_URL, ADD_KEY_URL, change_url(key)):
            response = browser.post(url, {"name": "x"})
            assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    assert EventKey.objects.count() == 1
