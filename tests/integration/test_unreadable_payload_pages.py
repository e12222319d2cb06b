"""Payloads no configured key opens: the admin and the API show a note, never a server error."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from inngest_django.models import DeferIntent, Event
from tests.helpers import change_url

from .test_permissions_admin import ALLOWED, pages
from .test_permissions_api import _reads, build_world, login_factory, turn_on_encryption

pytestmark = pytest.mark.django_db(transaction=True)

UNREADABLE = "cannot decrypt"


@pytest.fixture
def sealed_world(inngest_client, drain, settings):
    """A world written under one key, then read with only another key configured."""
    turn_on_encryption(settings)
    world = build_world(inngest_client, drain)
    other = Fernet.generate_key().decode()
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "ENCRYPTION_KEYS": (other,)}
    return world


@pytest.mark.parametrize("superuser", [True, False])
def test_admin_pages_show_unreadable_payloads_as_a_note(sealed_world, django_user_model, superuser):
    browser = login_factory(django_user_model)("payloads", superuser=superuser)
    urls = pages(sealed_world)
    if not superuser:
        urls = {name: url for name, url in urls.items() if name in ALLOWED["payloads"]}
    urls["broken run"] = change_url(sealed_world.broken)
    urls["defer"] = change_url(DeferIntent.objects.first())
    urls["event of the broken run"] = change_url(Event.objects.get(pk=sealed_world.event_ids[1]))
    for name, url in urls.items():
        response = browser.get(url)
        assert response.status_code == 200, (name, response.status_code)
    for name in ("run", "event", "broken run"):
        assert UNREADABLE in browser.get(urls[name]).content.decode(), name


def test_api_reads_answer_unreadable_payloads_with_a_note(sealed_world, django_user_model):
    browser = login_factory(django_user_model)("payloads")
    for name, url in _reads(sealed_world).items():
        response = browser.get(url)
        assert response.status_code == 200, (name, response.status_code)
    run = browser.get(_reads(sealed_world)["run detail"]).json()
    assert UNREADABLE in str(run["output"])
    event = browser.get(_reads(sealed_world)["event detail"]).json()
    assert UNREADABLE in str(event["data"])
