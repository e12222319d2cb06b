"""The REST API asks Django's permission for each action and hides payloads under encryption."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun
from inngest_django.payload_access import can_view_payloads

pytestmark = pytest.mark.django_db

PREFIX = reverse("inngest_api:root")
RUNS = f"{PREFIX}runs/"
EVENTS = f"{PREFIX}events/"
FUNCTIONS = f"{PREFIX}functions/"
JSON = "application/json"
# Every payload of the world below carries this; no page or answer may show it to whoever
# lacks the view_payloads permission while encryption is on.
MARK = "zq-payload-7f3a"

VIEW = ("view_functionrun", "view_event", "view_deferintent", "view_outboxmessage")
ROLES: dict[str, tuple[str, ...]] = {
    "nobody": (),
    "viewer": VIEW,
    "operator": (*VIEW, "cancel_functionrun", "rerun_functionrun", "retry_functionrun"),
    "sender": ("view_event", "add_event"),
    "keys": ("view_eventkey", "add_eventkey", "change_eventkey"),
    "payloads": (*VIEW, "view_payloads"),
}


@pytest.fixture
def world(inngest_client, drain) -> SimpleNamespace:
    return build_world(inngest_client, drain)


def build_world(client: inngest.Inngest, drain: Callable[[], None]) -> SimpleNamespace:
    """Return runs whose event data, outputs, errors, defer, invoke and wait all carry MARK."""

    @inngest.create_defer(client, id="perm-audit")
    def audit(ctx):
        return "audited"

    @client.create_function(fn_id="perm-echo", trigger=inngest.TriggerEvent(event="perm/echo"))
    def echo(ctx):
        return {"echo": ctx.event.data["n"]}

    @client.create_function(fn_id="perm-order", trigger=inngest.TriggerEvent(event="perm/order"))
    def order(ctx):
        card = ctx.step.run("charge", lambda: f"charged {ctx.event.data['card']}")
        ctx.defer("audit-it", function=audit, data={"note": f"{MARK}-defer"})
        echoed = ctx.step.invoke("echo", function=echo, data={"n": f"{MARK}-invoke"})
        return {"receipt": card, "echoed": echoed}

    @client.create_function(
        fn_id="perm-broken", trigger=inngest.TriggerEvent(event="perm/broken"), retries=0
    )
    def broken(ctx):
        ctx.step.run("explode", _explode)

    @client.create_function(fn_id="perm-waits", trigger=inngest.TriggerEvent(event="perm/waits"))
    def waits(ctx):
        return ctx.step.wait_for_event(
            "confirm",
            event="perm/confirmed",
            if_exp="event.data.order == async.data.order",
            timeout=timedelta(hours=1),
        )

    ids = client.send(
        [
            inngest.Event(name="perm/order", data={"card": f"{MARK}-event"}),
            inngest.Event(name="perm/broken", data={}),
            inngest.Event(name="perm/waits", data={"order": f"{MARK}-wait"}),
        ]
    )
    drain()
    order_run = FunctionRun.objects.get(function_id="test-perm-order")
    world = SimpleNamespace(
        order=order_run,
        broken=FunctionRun.objects.get(function_id="test-perm-broken"),
        waiting=FunctionRun.objects.get(function_id="test-perm-waits"),
        echo=FunctionRun.objects.get(function_id="test-perm-echo"),
        audit=FunctionRun.objects.get(function_id="test-perm-audit"),
        event_ids=ids,
    )
    assert (world.order.status, world.broken.status, world.waiting.status) == (
        "COMPLETED",
        "FAILED",
        "WAITING",
    )
    assert MARK in json.dumps(world.order.output) and MARK in json.dumps(world.broken.error)
    assert world.echo.parent_run_id == order_run.pk and world.audit.status == "COMPLETED"
    return world


def _explode() -> None:
    raise RuntimeError(f"{MARK}-error")


def turn_on_encryption(settings: Any) -> str:
    """Turn encryption at rest on with a fresh Fernet key, through pytest-django's settings."""
    key = Fernet.generate_key().decode()
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "ENCRYPTION_KEYS": (key,)}
    return key


@pytest.fixture
def encryption_on(settings) -> str:
    """Encryption at rest is on for the rest of the test."""
    return turn_on_encryption(settings)


@pytest.fixture
def login(django_user_model) -> Callable[..., Client]:
    return login_factory(django_user_model)


def login_factory(django_user_model: Any) -> Callable[..., Client]:
    """Return a factory of clients logged in as staff with a role's permissions."""

    def log_in(role: str, *, superuser: bool = False) -> Client:
        if superuser:
            user = django_user_model.objects.create_superuser(role, password="pw")
        else:
            user = django_user_model.objects.create_user(role, password="pw", is_staff=True)
            codenames = ROLES[role]
            user.user_permissions.set(
                Permission.objects.filter(
                    content_type__app_label="inngest_django", codename__in=codenames
                )
            )
            assert user.user_permissions.count() == len(codenames)
        browser = Client()
        browser.force_login(user)
        return browser

    return log_in


def _reads(world: SimpleNamespace) -> dict[str, str]:
    return {
        "run list": RUNS,
        "run detail": f"{RUNS}{world.order.pk}/",
        "function list": FUNCTIONS,
        "function detail": f"{FUNCTIONS}test-perm-order/",
        "event list": EVENTS,
        "event detail": f"{EVENTS}{world.event_ids[0]}/",
    }


# Role -> reads that answer 200; every other read is a 403.
READS_ALLOWED = {
    "nobody": set(),
    "viewer": {
        "run list",
        "run detail",
        "function list",
        "function detail",
        "event list",
        "event detail",
    },
    "sender": {"event list", "event detail"},
    "keys": set(),
}
READS_ALLOWED["operator"] = READS_ALLOWED["payloads"] = READS_ALLOWED["viewer"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_reads_only_what_its_view_permissions_allow(world, login, role):
    browser = login(role)
    for name, path in _reads(world).items():
        response = browser.get(path)
        if name in READS_ALLOWED[role]:
            assert response.status_code == 200, (role, name, response.content)
        else:
            assert response.status_code == 403, (role, name, response.content)
            detail = response.json()["detail"]
            codename = "view_event" if name.startswith("event") else "view_functionrun"
            assert f"'inngest_django.{codename}' permission" in detail, detail
    # The front page, schema and docs need only the outer gate (staff).
    for path in (PREFIX, f"{PREFIX}schema/", f"{PREFIX}docs/"):
        assert browser.get(path).status_code == 200, (role, path)


def test_superusers_may_read_and_act_on_everything(world, login, drain):
    boss = login("boss", superuser=True)
    for name, path in _reads(world).items():
        assert boss.get(path).status_code == 200, name
    assert boss.post(f"{RUNS}{world.waiting.pk}/cancel/", content_type=JSON).status_code == 202
    assert boss.post(f"{RUNS}{world.order.pk}/rerun/", content_type=JSON).status_code == 201
    assert boss.post(f"{RUNS}{world.broken.pk}/retry/", content_type=JSON).status_code == 202


@pytest.mark.parametrize("role", ["nobody", "viewer", "sender", "keys", "payloads"])
def test_roles_without_the_action_permissions_cannot_cancel_rerun_or_retry(world, login, role):
    browser = login(role)
    runs_before = FunctionRun.objects.count()
    for verb, run, doing in (
        ("cancel", world.waiting, "cancel function runs"),
        ("rerun", world.order, "rerun function runs"),
        ("retry", world.broken, "retry failed function runs"),
    ):
        response = browser.post(f"{RUNS}{run.pk}/{verb}/", content_type=JSON)
        assert response.status_code == 403, (verb, response.content)
        detail = response.json()["detail"]
        assert doing in detail and f"'inngest_django.{verb}_functionrun'" in detail
    world.waiting.refresh_from_db()
    world.broken.refresh_from_db()
    assert world.waiting.cancel_requested_at is None and world.broken.status == "FAILED"
    assert FunctionRun.objects.count() == runs_before


def test_each_action_needs_its_own_permission(world, django_user_model):
    actions = (
        ("cancel", world.waiting, 202),
        ("rerun", world.order, 201),
        ("retry", world.broken, 202),
    )
    for codename in ("cancel_functionrun", "rerun_functionrun", "retry_functionrun"):
        user = django_user_model.objects.create_user(codename, password="pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename=codename))
        token = Token.objects.create(user=user)
        bearer = Client(headers={"Authorization": f"Token {token.key}"})
        for verb, run, success in actions:
            response = bearer.post(f"{RUNS}{run.pk}/{verb}/", content_type=JSON)
            expected = success if codename == f"{verb}_functionrun" else 403
            assert response.status_code == expected, (codename, verb, response.content)
        # Acting is not reading: the run itself still needs view_functionrun.
        assert bearer.get(f"{RUNS}{world.order.pk}/").status_code == 403
    world.waiting.refresh_from_db()
    assert world.waiting.cancel_requested_at is not None
    assert FunctionRun.objects.filter(rerun_of=world.order).count() == 1


def test_the_operator_role_cancels_reruns_and_retries(world, login, drain):
    operator = login("operator")
    assert operator.post(f"{RUNS}{world.waiting.pk}/cancel/", content_type=JSON).status_code == 202
    rerun = operator.post(f"{RUNS}{world.order.pk}/rerun/", content_type=JSON)
    assert rerun.status_code == 201 and rerun.json()["action"] == "rerun"
    assert operator.post(f"{RUNS}{world.broken.pk}/retry/", content_type=JSON).status_code == 202
    drain()
    world.waiting.refresh_from_db()
    assert world.waiting.status == "CANCELLED"


def test_anonymous_and_non_staff_users_are_still_refused_by_the_outer_gate(
    world, django_user_model
):
    plain = django_user_model.objects.create_user("plain", password="pw", is_staff=False)
    plain.user_permissions.set(Permission.objects.filter(codename__in=ROLES["payloads"]))
    browser = Client()
    browser.force_login(plain)
    for path in _reads(world).values():
        assert browser.get(path).status_code == 403, path
        assert Client().get(path).status_code in (401, 403), path


# -- payloads ---------------------------------------------------------------------------------


def _payload_answers(browser: Client, world: SimpleNamespace) -> dict[str, dict[str, Any]]:
    """Return the JSON of every run and event detail of the world, by path."""
    paths = [f"{RUNS}{run.pk}/" for run in FunctionRun.objects.all()]
    paths += [f"{EVENTS}{event.pk}/" for event in Event.objects.all()]
    answers = {}
    for path in paths:
        response = browser.get(path)
        assert response.status_code == 200, (path, response.content)
        answers[path] = response.json()
    return answers


def test_without_encryption_whoever_may_view_sees_payloads(world, login):
    answers = _payload_answers(login("viewer"), world)
    assert MARK in json.dumps(answers)
    order = answers[f"{RUNS}{world.order.pk}/"]
    assert order["payloads_hidden"] is False
    assert order["output"]["receipt"] == f"charged {MARK}-event"
    [defer] = order["defers"]
    assert defer["payload"] == {"note": f"{MARK}-defer"}
    event = answers[f"{EVENTS}{world.event_ids[0]}/"]
    assert event["payloads_hidden"] is False and event["data"] == {"card": f"{MARK}-event"}


@pytest.mark.usefixtures("encryption_on")
def test_with_encryption_on_a_viewer_gets_null_payloads_and_the_flag(world, login):
    viewer = login("viewer")
    answers = _payload_answers(viewer, world)
    text = json.dumps(answers)
    assert MARK not in text
    order = answers[f"{RUNS}{world.order.pk}/"]
    assert order["payloads_hidden"] is True
    assert order["output"] is None and order["error"] is None
    assert [step["step_key"] for step in order["steps"]] == ["charge", "echo"]
    assert all(step["output"] is None and step["error"] is None for step in order["steps"])
    assert [defer["payload"] for defer in order["defers"]] == [None]
    broken = answers[f"{RUNS}{world.broken.pk}/"]
    assert broken["status"] == "FAILED" and broken["error"] is None
    waiting = answers[f"{RUNS}{world.waiting.pk}/"]
    [wait] = [wait for wait in waiting["waits"] if wait["kind"] == "EVENT"]
    assert wait["match_key"] and wait["match_value"] is None
    for event_id in world.event_ids:
        event = answers[f"{EVENTS}{event_id}/"]
        assert event["payloads_hidden"] is True and event["data"] is None
        assert event["name"].startswith("perm/")
    # Lists carry no payloads, so they stay as they were.
    assert len(viewer.get(RUNS).json()["results"]) == FunctionRun.objects.count()


@pytest.mark.usefixtures("encryption_on")
@pytest.mark.parametrize("role", ["payloads", "superuser"])
def test_with_encryption_on_the_view_payloads_permission_shows_them(world, login, role):
    browser = login(role, superuser=role == "superuser")
    answers = _payload_answers(browser, world)
    assert all(answer["payloads_hidden"] is False for answer in answers.values())
    order = answers[f"{RUNS}{world.order.pk}/"]
    assert order["output"]["receipt"] == f"charged {MARK}-event"
    assert order["defers"][0]["payload"] == {"note": f"{MARK}-defer"}
    echo = answers[f"{RUNS}{world.echo.pk}/"]
    assert echo["output"] == {"echo": f"{MARK}-invoke"}
    broken = answers[f"{RUNS}{world.broken.pk}/"]
    assert f"{MARK}-error" in broken["error"]["message"]
    assert answers[f"{EVENTS}{world.event_ids[0]}/"]["data"] == {"card": f"{MARK}-event"}


def test_can_view_payloads_follows_the_encryption_setting(settings, django_user_model):
    viewer = django_user_model.objects.create_user("v", password="pw", is_staff=True)
    holder = django_user_model.objects.create_user("h", password="pw", is_staff=True)
    holder.user_permissions.set(Permission.objects.filter(codename="view_payloads"))
    boss = django_user_model.objects.create_superuser("boss", password="pw")
    assert can_view_payloads(viewer) and can_view_payloads(holder)
    turn_on_encryption(settings)
    holder = django_user_model.objects.get(pk=holder.pk)  # a fresh permission cache
    assert not can_view_payloads(viewer)
    assert can_view_payloads(holder) and can_view_payloads(boss)
    boss.is_active = False
    assert not can_view_payloads(boss)
