"""Admin searches: runs, events and defers found by id, name or key."""

from __future__ import annotations

import pytest

import inngest_django as inngest
from inngest_django.models import Event
from tests.helpers import (
    DEFERS_URL,
    EVENTS_URL,
    RUNS_URL,
    cells,
    event_url,
    listed_functions,
    run_url,
)

pytestmark = pytest.mark.django_db


def test_search_by_run_id_finds_that_run_only(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"q": runs.failed.pk.lower()}).content.decode()
    assert run_url(runs.failed) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.sleeping) not in page


def test_search_by_event_id_finds_the_runs_it_started(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"q": runs.sleeping.event_id}).content.decode()
    assert run_url(runs.sleeping) in page
    assert run_url(runs.failed) not in page


def test_run_search_finds_by_run_id_event_id_and_event_name(admin_client, mixed):
    checkout = mixed["test-checkout"]
    assert listed_functions(admin_client, {"q": checkout.pk.lower()}) == {"test-checkout"}
    assert listed_functions(admin_client, {"q": checkout.event_id}) == {"test-checkout"}
    assert listed_functions(admin_client, {"q": "shop/paid"}) == {"test-checkout"}
    assert listed_functions(admin_client, {"q": "user/"}) == {"test-signup"}
    assert listed_functions(admin_client, {"q": "nothing/like-this"}) == set()


def test_search_finds_runs_by_concurrency_key(admin_client, flow):
    found = admin_client.get(RUNS_URL, {"q": "test-per-user:b"}).content.decode()
    assert cells(found, "id") == [flow.other_user.pk]
    shared = admin_client.get(RUNS_URL, {"q": " env:exports "}).content.decode()
    assert len(cells(shared, "id")) == 3
    # Ids still work as before.
    found = admin_client.get(RUNS_URL, {"q": flow.other_user.pk.lower()}).content.decode()
    assert cells(found, "id") == [flow.other_user.pk]


def test_event_search_finds_producer_id(admin_client, runs):
    page = admin_client.get(EVENTS_URL, {"q": "order-7"}).content.decode()
    assert event_url(runs.failed.event) in page
    assert event_url(runs.completed.event) not in page


def test_event_search_finds_by_id_name_and_external_id(admin_client, inngest_client):
    inngest_client.send(
        [
            inngest.Event(name="shop/paid", id="pay-1"),
            inngest.Event(name="user/joined"),
        ]
    )
    paid = Event.objects.get(name="shop/paid")

    def names(term: str) -> list[str]:
        page = admin_client.get(EVENTS_URL, {"q": term}).content.decode()
        return cells(page, "name")

    assert names(paid.pk) == ["shop/paid"]
    assert names("pay-1") == ["shop/paid"]
    assert names("user/joined") == ["user/joined"]
    assert names("shop/") == ["shop/paid"]


def test_defer_search_finds_by_defer_id_or_run_id(admin_client, defers):
    by_defer = admin_client.get(DEFERS_URL, {"q": "refund-if-failed"}).content.decode()
    assert cells(by_defer, "run_link") == [defers.parent.pk]
    by_run = admin_client.get(DEFERS_URL, {"q": defers.parent.pk.lower()}).content.decode()
    assert sorted(cells(by_run, "defer_id")) == ["receipt", "refund-if-failed"]
