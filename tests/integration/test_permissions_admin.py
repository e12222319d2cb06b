"""Each admin page and action asks Django's permission; payloads hide when encryption is on."""

from __future__ import annotations

import html
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

import inngest_django as inngest
from inngest_django import event_keys
from inngest_django.models import DeferIntent, Event, EventKey, FunctionRun, IdempotencyKey
from inngest_django.payload_access import HIDDEN_TEXT
from tests.helpers import (
    ADD_KEY_URL,
    DEFERS_URL,
    EVENTS_URL,
    FUNCTIONS_URL,
    KEYS_URL,
    OUTBOX_URL,
    RUNS_URL,
    SEND_URL,
    action_url,
    cells,
    change_url,
    inline,
    run_url,
    staff_client,
)

from .test_permissions_api import MARK, build_world, login_factory, turn_on_encryption

pytestmark = pytest.mark.django_db

ADMIN = reverse("admin:index")
APP_INDEX = reverse("admin:app_list", args=["inngest_django"])
IDEMPOTENCY_URL = reverse("admin:inngest_django_idempotencykey_changelist")
HIDDEN = html.escape(str(HIDDEN_TEXT))


@pytest.fixture
def world(inngest_client, drain) -> SimpleNamespace:
    return build_world(inngest_client, drain)


@pytest.fixture
def login(django_user_model) -> Callable[..., Client]:
    return login_factory(django_user_model)


@pytest.fixture
def encryption_on(settings) -> str:
    """Encryption at rest is on for the rest of the test (and for the world it builds)."""
    return turn_on_encryption(settings)


def pages(world) -> dict[str, str]:
    return {
        "runs": RUNS_URL,
        "run": run_url(world.order),
        "events": EVENTS_URL,
        "event": change_url(Event.objects.get(pk=world.event_ids[0])),
        "defers": DEFERS_URL,
        "functions": FUNCTIONS_URL,
        "send": SEND_URL,
        "keys": KEYS_URL,
        "add key": ADD_KEY_URL,
    }


RUN_PAGES = {"runs", "run", "functions"}
ALLOWED = {
    "nobody": set(),
    "viewer": RUN_PAGES | {"events", "event", "defers"},
    "sender": {"events", "event", "send"},
    "keys": {"keys", "add key"},
}
ALLOWED["operator"] = ALLOWED["payloads"] = ALLOWED["viewer"]


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_opens_only_the_pages_its_permissions_allow(world, login, role):
    browser = login(role)
    for name, url in pages(world).items():
        expected = 200 if name in ALLOWED[role] else 403
        assert browser.get(url).status_code == expected, (role, name)


def test_superusers_open_every_page(world, login):
    boss = login("boss", superuser=True)
    for name, url in pages(world).items():
        assert boss.get(url).status_code == 200, name


def test_the_app_index_links_only_the_pages_a_role_may_open(world, login):
    viewer = login("viewer").get(APP_INDEX).content.decode()
    assert FUNCTIONS_URL in viewer and SEND_URL not in viewer
    sender = login("sender")
    index = sender.get(APP_INDEX).content.decode()
    assert SEND_URL in index and FUNCTIONS_URL not in index
    keys = login("keys").get(APP_INDEX).content.decode()
    assert SEND_URL not in keys and FUNCTIONS_URL not in keys and 'id="inngest-pages"' not in keys
    # The event list offers the send page to senders only.
    assert SEND_URL not in login("payloads").get(EVENTS_URL).content.decode()
    assert SEND_URL in sender.get(EVENTS_URL).content.decode()


def test_viewers_see_a_runs_steps_but_no_way_to_steer_it(world, login):
    viewer = login("viewer")
    page = viewer.get(run_url(world.broken)).content.decode()
    assert cells(page, "step_key") == ["explode"]
    for verb in ("cancel", "rerun", "retry"):
        assert f"/{verb}/" not in page
    listing = viewer.get(RUNS_URL).content.decode()
    assert "cancel_runs" not in listing and "retry_runs" not in listing
    for verb, run in (("cancel", world.waiting), ("rerun", world.order), ("retry", world.broken)):
        assert viewer.post(action_url(verb, run)).status_code == 403, verb
        action = viewer.post(RUNS_URL, {"action": f"{verb}_runs", "_selected_action": [run.pk]})
        assert action.status_code in (200, 302), verb
    world.waiting.refresh_from_db()
    world.broken.refresh_from_db()
    assert world.waiting.cancel_requested_at is None and world.broken.status == "FAILED"
    assert not FunctionRun.objects.filter(rerun_of__isnull=False).exists()


def test_operators_get_the_buttons_and_actions_and_they_work(world, login):
    operator = login("operator")
    page = operator.get(run_url(world.broken)).content.decode()
    for verb in ("rerun", "retry"):
        assert action_url(verb, world.broken) in page
    waiting_page = operator.get(run_url(world.waiting)).content.decode()
    cancel = action_url("cancel", world.waiting)
    assert cancel in waiting_page
    assert operator.post(cancel).status_code == 302
    operator.post(RUNS_URL, {"action": "retry_runs", "_selected_action": [world.broken.pk]})
    operator.post(RUNS_URL, {"action": "rerun_runs", "_selected_action": [world.order.pk]})
    world.waiting.refresh_from_db()
    world.broken.refresh_from_db()
    assert world.waiting.cancel_requested_at is not None
    assert world.broken.status == "QUEUED"
    assert FunctionRun.objects.filter(rerun_of=world.order).count() == 1


def test_senders_send_events_and_viewers_cannot(world, login):
    assert login("viewer").post(SEND_URL, {"name": "perm/sent", "data": "{}"}).status_code == 403
    assert not Event.objects.filter(name="perm/sent").exists()
    response = login("sender").post(SEND_URL, {"name": "perm/sent", "data": '{"a": 1}'})
    assert response.status_code == 302
    assert Event.objects.get(name="perm/sent").data == {"a": 1}


def test_key_managers_issue_and_revoke_keys_and_viewers_cannot(login, django_user_model):
    assert login("viewer").post(ADD_KEY_URL, {"name": "sneaky"}).status_code == 403
    keys = login("keys")
    response = keys.post(ADD_KEY_URL, {"name": "billing", "event_prefixes": "billing/"})
    assert response.status_code == 200 and "shown only once" in response.content.decode()
    key = EventKey.objects.get(name="billing")
    assert key.event_prefixes == ["billing/"]
    keys.post(KEYS_URL, {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    # Viewing keys is not revoking them.
    other, raw_key = event_keys.issue_key("web shop")
    watcher = staff_client(django_user_model, "watcher", "view_eventkey")
    assert watcher.get(KEYS_URL).status_code == 200
    watcher.post(KEYS_URL, {"action": "revoke_keys", "_selected_action": [other.pk]})
    assert event_keys.authenticate(raw_key) == other


# -- payloads ---------------------------------------------------------------------------------


def every_page(world) -> list[str]:
    """Return the list and change pages that could show a payload, for every row of the world."""
    urls = [RUNS_URL, EVENTS_URL, DEFERS_URL, OUTBOX_URL]
    urls += [run_url(run) for run in FunctionRun.objects.all()]
    urls += [change_url(event) for event in Event.objects.all()]
    urls += [change_url(intent) for intent in DeferIntent.objects.all()]
    return urls


def test_without_encryption_viewers_see_payloads_as_before(world, login):
    viewer = login("viewer")
    assert MARK in viewer.get(run_url(world.order)).content.decode()
    assert MARK in viewer.get(change_url(Event.objects.get(pk=world.event_ids[0]))).content.decode()
    assert HIDDEN not in viewer.get(run_url(world.broken)).content.decode()


@pytest.mark.usefixtures("encryption_on")
def test_with_encryption_on_no_admin_page_shows_a_viewer_any_payload(world, login):
    viewer = login("viewer")
    for url in every_page(world):
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert MARK not in response.content.decode(), url
    order = viewer.get(run_url(world.order)).content.decode()
    # The page still says there is an output, and the steps are listed, with a note instead.
    assert HIDDEN in order
    assert cells(inline(order, "steps"), "step_key") == ["charge", "echo"]
    broken = viewer.get(run_url(world.broken)).content.decode()
    assert "timeline-error" in broken and HIDDEN in broken


@pytest.mark.usefixtures("encryption_on")
@pytest.mark.parametrize("role", ["payloads", "superuser"])
def test_with_encryption_on_the_view_payloads_permission_shows_them(world, login, role):
    browser = login(role, superuser=role == "superuser")
    shown = {url: browser.get(url).content.decode() for url in every_page(world)}
    assert not any(HIDDEN in page for page in shown.values())
    for marker, url in (
        (f"charged {MARK}-event", run_url(world.order)),
        (f"{MARK}-error", run_url(world.broken)),
        (f"{MARK}-invoke", run_url(world.echo)),
        (f"{MARK}-event", change_url(Event.objects.get(pk=world.event_ids[0]))),
        (f"{MARK}-defer", change_url(DeferIntent.objects.get())),
    ):
        assert marker in shown[url], (marker, url)
    # The wait's match value is shown too; encryption stored it as a keyed hash of the value.
    waiting = shown[run_url(world.waiting)]
    assert "data.order = " in " ".join(cells(waiting, "match"))


@pytest.fixture
def tenants(inngest_client, drain) -> FunctionRun:
    """Return a run whose concurrency and idempotency keys come from its event's data."""

    @inngest_client.create_function(
        fn_id="perm-tenant",
        trigger=inngest.TriggerEvent(event="perm/tenant"),
        concurrency=[inngest.Concurrency(limit=5, key="event.data.tenant")],
        idempotency="event.data.tenant",
    )
    def tenant(ctx):
        return "ok"

    inngest_client.send(inngest.Event(name="perm/tenant", data={"tenant": "acme-7f3a"}))
    drain()
    return FunctionRun.objects.get(function_id="test-perm-tenant")


def test_search_over_payload_derived_keys_is_off_when_encryption_is_on(
    tenants, admin_client, settings
):
    term = tenants.concurrency_key
    assert term and ":" in term
    idempotency_key = IdempotencyKey.objects.get().key

    def found() -> tuple[list[str], list[str]]:
        runs = admin_client.get(RUNS_URL, {"q": term}).content.decode()
        keys = admin_client.get(IDEMPOTENCY_URL, {"q": idempotency_key}).content.decode()
        return cells(runs, "id"), cells(keys, "key")

    assert found() == ([tenants.pk], [idempotency_key])
    turn_on_encryption(settings)
    assert found() == ([], [])
