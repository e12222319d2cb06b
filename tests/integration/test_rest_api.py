"""The REST API lists and shows real functions, runs and events, acts on runs, and guards access."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse
from django.utils import timezone
from pydantic import BaseModel
from rest_framework.authtoken.models import Token

import inngest_django as inngest
from inngest_django.api import urls as api_urls
from inngest_django.models import Event, FunctionRun
from inngest_django.testing import isolated_registry

pytestmark = pytest.mark.django_db

PREFIX = reverse("inngest_api:schema").removesuffix("schema/")
RUNS = f"{PREFIX}runs/"
EVENTS = f"{PREFIX}events/"
FUNCTIONS = f"{PREFIX}functions/"
JSON = "application/json"

# Step calls of the "api-flaky" function, in order, and whether its step "b" fails.
CALLS: list[str] = []
FAIL_B = {"on": True}


class Tidy(BaseModel):
    n: int


def _record(name: str) -> str:
    CALLS.append(name)
    if name == "b" and FAIL_B["on"]:
        raise RuntimeError("b broke")
    return name


@pytest.fixture
def world(inngest_client, drain) -> SimpleNamespace:
    """Runs that completed, failed, deferred, invoked, slept and were batched, plus their events."""
    CALLS.clear()
    FAIL_B["on"] = True

    @inngest.create_defer(inngest_client, id="api-tidy", schema=Tidy)
    def tidy(ctx):
        return ctx.step.run("tidy", lambda: "tidied")

    @inngest_client.create_function(fn_id="api-ok", trigger=inngest.TriggerEvent(event="api/ok"))
    def ok(ctx):
        return {"doubled": ctx.step.run("double", lambda: ctx.event.data["n"] * 2)}

    @inngest_client.create_function(
        fn_id="api-flaky", trigger=inngest.TriggerEvent(event="api/flaky"), retries=0
    )
    def flaky(ctx):
        ctx.step.run("a", _record, "a")
        ctx.step.run("b", _record, "b")
        return "done"

    @inngest_client.create_function(
        fn_id="api-defers", trigger=inngest.TriggerEvent(event="api/defers")
    )
    def defers(ctx):
        ctx.defer("tidy-up", function=tidy, data={"n": 1})
        return "deferred"

    @inngest_client.create_function(
        fn_id="api-invokes", trigger=inngest.TriggerEvent(event="api/invokes")
    )
    def invokes(ctx):
        return ctx.step.invoke("call-ok", function=ok, data={"n": 21})

    @inngest_client.create_function(
        fn_id="api-sleeps", trigger=inngest.TriggerEvent(event="api/sleeps")
    )
    def sleeps(ctx):
        ctx.step.sleep("nap", timedelta(hours=1))
        return "woke"

    @inngest_client.create_function(
        fn_id="api-batched",
        trigger=inngest.TriggerEvent(event="api/batched"),
        batch_events=inngest.Batch(max_size=2, timeout="1s"),
    )
    def batched(ctx):
        return len(ctx.events)

    ids = inngest_client.send(
        [
            inngest.Event(name="api/ok", data={"n": 1}),
            inngest.Event(name="api/flaky"),
            inngest.Event(name="api/defers"),
            inngest.Event(name="api/invokes"),
            inngest.Event(name="api/sleeps"),
            inngest.Event(name="api/batched", data={"n": 1}),
            inngest.Event(name="api/batched", data={"n": 2}),
        ]
    )
    drain()

    def run_of(fn_id: str, **filters: Any) -> FunctionRun:
        return FunctionRun.objects.get(function_id=f"test-{fn_id}", **filters)

    invoker = run_of("api-invokes")
    deferring = run_of("api-defers")
    world = SimpleNamespace(
        ok=run_of("api-ok", event_id=ids[0]),
        failed=run_of("api-flaky"),
        deferring=deferring,
        deferred=run_of("api-tidy"),
        invoker=invoker,
        invoked=run_of("api-ok", parent_run=invoker),
        sleeping=run_of("api-sleeps"),
        batched=run_of("api-batched"),
        event_ids=ids,
    )
    assert [world.ok.status, world.failed.status, world.sleeping.status] == [
        "COMPLETED",
        "FAILED",
        "SLEEPING",
    ]
    assert world.deferred.parent_run_id == deferring.pk and world.deferred.status == "COMPLETED"
    assert world.batched.batch_size == 2
    return world


@pytest.fixture
def staff(admin_user) -> Client:
    """A staff user logged in by session."""
    browser = Client()
    browser.force_login(admin_user)
    return browser


@pytest.fixture
def viewer(django_user_model) -> Client:
    """A logged-in user who is not staff."""
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("viewer", password="viewer"))
    return browser


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def list_runs(staff: Client, **params: Any) -> list[str]:
    return ids_of(staff.get(RUNS, params))


# -- functions ----------------------------------------------------------------------------------


def test_functions_list_shows_triggers_options_and_kinds(inngest_client, staff):
    def on_failure(ctx):
        return None

    @inngest_client.create_function(
        fn_id="api-described",
        name="Described",
        trigger=[
            inngest.TriggerEvent(event="api/described", expression="event.data.n > 1"),
            inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * 1"),
        ],
        retries=2,
        on_failure=on_failure,
        concurrency=[inngest.Concurrency(limit=3, key="event.data.user")],
        throttle=inngest.Throttle(limit=5, period=timedelta(minutes=1)),
        cancel=[inngest.Cancel(event="api/stop", if_exp="event.data.n == async.data.n")],
        timeouts=inngest.Timeouts(finish="1h"),
        singleton=inngest.Singleton(mode="skip"),
    )
    def described(ctx):
        return None

    @inngest.create_defer(inngest_client, id="api-typed", schema=Tidy)
    def typed(ctx):
        return None

    response = staff.get(FUNCTIONS)
    assert response.status_code == 200
    by_id = {row["id"]: row for row in response.json()}
    row = by_id["test-api-described"]
    assert (row["name"], row["kind"], row["fn_id"], row["app_id"]) == (
        "Described",
        "function",
        "api-described",
        "test",
    )
    assert row["triggers"] == [
        {"event": "api/described", "expression": "event.data.n > 1", "cron": None},
        {"event": None, "expression": None, "cron": "TZ=Europe/Paris 0 9 * * 1"},
    ]
    options = row["options"]
    assert options["retries"] == 2
    assert options["concurrency"] == [{"limit": 3, "key": "event.data.user"}]
    assert options["throttle"]["limit"] == 5 and options["throttle"]["period"] == "PT1M"
    assert options["cancel"] == [{"event": "api/stop", "if_exp": "event.data.n == async.data.n"}]
    assert options["timeouts"] == {"finish": "1h"}
    assert options["singleton"] == {"mode": "skip"}
    assert options["rate_limit"] is None and options["batch_events"] is None
    assert row["on_failure"] == "test-api-described-failure"
    assert by_id["test-api-described-failure"]["kind"] == "function"
    typed_row = by_id["test-api-typed"]
    assert typed_row["kind"] == "deferred" and typed_row["triggers"] == []
    assert typed_row["data_schema"]["properties"] == {"n": {"title": "N", "type": "integer"}}
    # The testapp's functions are registered too, sorted by slug with the rest.
    assert "testapp-write-orders" in by_id
    assert list(by_id) == sorted(by_id)

    detail = staff.get(f"{FUNCTIONS}test-api-described/")
    assert detail.status_code == 200 and detail.json() == row
    missing = staff.get(f"{FUNCTIONS}test-no-such-function/")
    assert missing.status_code == 404 and "test-no-such-function" in missing.json()["detail"]


# -- runs: list and filters ---------------------------------------------------------------------


def test_runs_list_is_newest_first_and_lean(world, staff):
    response = staff.get(RUNS)
    assert response.status_code == 200
    rows = response.json()["results"]
    expected = FunctionRun.objects.order_by("-created_at", "-id").values_list("id", flat=True)
    assert [row["id"] for row in rows] == list(expected)
    row = next(row for row in rows if row["id"] == world.failed.pk)
    assert row["status"] == "FAILED" and row["function_id"] == "test-api-flaky"
    assert row["event"] == world.event_ids[1] and row["deferred"] is False
    assert row["url"] == f"http://testserver{RUNS}{world.failed.pk}/"
    assert "output" not in row and "steps" not in row


def test_runs_filter_by_status_function_parent_deferred_and_event(world, staff):
    assert set(list_runs(staff, status=["FAILED", "SLEEPING"])) == {
        world.failed.pk,
        world.sleeping.pk,
    }
    assert list_runs(staff, function="test-api-ok") == [world.invoked.pk, world.ok.pk]
    assert list_runs(staff, parent=world.invoker.pk) == [world.invoked.pk]
    assert list_runs(staff, parent=world.deferring.pk) == [world.deferred.pk]
    assert list_runs(staff, deferred="true") == [world.deferred.pk]
    assert world.deferred.pk not in list_runs(staff, deferred="false")
    assert len(list_runs(staff, deferred="false")) == FunctionRun.objects.count() - 1
    assert list_runs(staff, event=world.event_ids[1]) == [world.failed.pk]
    # The second event of a batch started the batched run too, though its `event` is the first.
    assert list_runs(staff, event=world.event_ids[6]) == [world.batched.pk]
    assert list_runs(staff, function="test-api-ok", status="FAILED") == []


def test_runs_filter_by_creation_time(world, staff):
    world.failed.refresh_from_db()
    at = world.failed.created_at
    FunctionRun.objects.filter(pk=world.failed.pk).update(created_at=at - timedelta(days=2))
    cutoff = (at - timedelta(days=1)).isoformat()
    assert list_runs(staff, created_before=cutoff) == [world.failed.pk]
    assert world.failed.pk not in list_runs(staff, created_after=cutoff)
    assert len(list_runs(staff, created_after=cutoff)) == FunctionRun.objects.count() - 1
    # A naive time is read as UTC; "Z" works too.
    naive = (at - timedelta(days=1)).astimezone(UTC).replace(tzinfo=None).isoformat()
    assert list_runs(staff, created_before=naive) == [world.failed.pk]
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert list_runs(staff, created_after=future) == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2025-13-45T00:00:00"}, "created_before"),
        ({"created_after": "0001-01-01T00:00:00+05:00"}, "created_after"),
        ({"status": "DONE"}, "status"),
        ({"deferred": "maybe"}, "deferred"),
        ({"function": "bad\x00name"}, "function"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "cD1ub3QtYS1kYXRl"}, "cursor"),  # p=not-a-date
    ],
)
def test_runs_list_refuses_bad_parameters_with_a_400_naming_them(world, staff, params, named):
    response = staff.get(RUNS, params)
    assert response.status_code == 400, response.content
    assert named in response.json()["detail"]


def test_runs_list_pages_with_cursors(world, staff):
    seen, url = [], f"{RUNS}?{urlencode({'page_size': 2})}"
    while url:
        page = staff.get(url).json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == list(
        FunctionRun.objects.order_by("-created_at", "-id").values_list("id", flat=True)
    )
    assert len(seen) == len(set(seen)) == 8


# -- runs: detail -------------------------------------------------------------------------------


def test_run_detail_shows_steps_and_output(world, staff):
    response = staff.get(f"{RUNS}{world.ok.pk}/")
    assert response.status_code == 200
    run = response.json()
    assert (run["status"], run["output"], run["error"]) == ("COMPLETED", {"doubled": 2}, None)
    assert run["event"] == world.event_ids[0] and run["parent"] is None
    assert [(s["step_key"], s["op"], s["status"], s["attempts"]) for s in run["steps"]] == [
        ("double", "RUN", "COMPLETED", 1)
    ]
    assert run["steps"][0]["output"] == 2 and run["steps"][0]["finished_at"]
    assert run["created_at"] and run["started_at"] and run["finished_at"]


def test_run_detail_shows_the_failed_step_and_error(world, staff):
    run = staff.get(f"{RUNS}{world.failed.pk}/").json()
    assert run["status"] == "FAILED" and run["error"]["message"]
    steps = {step["step_key"]: step for step in run["steps"]}
    assert steps["a"]["status"] == "COMPLETED"
    assert steps["b"]["status"] == "FAILED" and "b broke" in steps["b"]["error"]["message"]


def test_run_detail_links_defers_and_the_deferred_run_to_its_parent(world, staff):
    parent = staff.get(f"{RUNS}{world.deferring.pk}/").json()
    (defer,) = parent["defers"]
    assert (defer["defer_id"], defer["function_id"], defer["status"]) == (
        "tidy-up",
        "test-api-tidy",
        "SCHEDULED",
    )
    assert defer["payload"] == {"n": 1}
    assert defer["deferred_run"]["id"] == world.deferred.pk
    assert [(c["id"], c["kind"]) for c in parent["children"]] == [(world.deferred.pk, "deferred")]
    child = staff.get(f"{RUNS}{world.deferred.pk}/").json()
    assert child["parent"]["id"] == world.deferring.pk and child["deferred"] is True
    assert child["parent"]["url"].endswith(f"{RUNS}{world.deferring.pk}/")


def test_run_detail_shows_the_invoke_wait_and_the_invoked_child(world, staff):
    parent = staff.get(f"{RUNS}{world.invoker.pk}/").json()
    assert parent["output"] == {"doubled": 42}
    (wait,) = parent["waits"]
    assert (wait["kind"], wait["child_run"], wait["outcome"]) == (
        "INVOKE",
        world.invoked.pk,
        "FINISHED",
    )
    assert [(c["id"], c["kind"]) for c in parent["children"]] == [(world.invoked.pk, "invoked")]
    assert parent["steps"][0]["op"] == "INVOKE"


def test_run_detail_lists_a_batched_runs_events(world, staff):
    run = staff.get(f"{RUNS}{world.batched.pk}/").json()
    assert run["batch_events"] == world.event_ids[5:7] and run["output"] == 2


def test_run_detail_of_an_unknown_run_is_404(world, staff):
    for run_id in ("01NOSUCHRUN0000000000000000"[:26], "x" * 300, "a\x00b"):
        response = staff.get(f"{RUNS}{run_id}/")
        assert response.status_code == 404
        assert response.json()["detail"] == "No run has this id."


# -- runs: actions ------------------------------------------------------------------------------


def test_cancel_stops_a_sleeping_run_with_the_given_reason(world, staff, drain):
    url = f"{RUNS}{world.sleeping.pk}/cancel/"
    response = staff.post(url, {"reason": "incident 42"}, content_type=JSON)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["action"] == "cancel" and body["run"]["id"] == world.sleeping.pk
    assert body["run"]["cancel_reason"] == "incident 42"
    assert "stops before its next step" in body["detail"]
    again = staff.post(url, content_type=JSON)
    assert again.status_code == 202 and "already requested" in again.json()["detail"]
    drain()
    world.sleeping.refresh_from_db()
    assert (world.sleeping.status, world.sleeping.cancel_reason) == ("CANCELLED", "incident 42")
    assert "nap" not in [s.step_key for s in world.sleeping.steps.filter(status="COMPLETED")]


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}])
def test_cancel_without_a_reason_records_who_cancelled(world, staff, body):
    url = f"{RUNS}{world.sleeping.pk}/cancel/"
    response = staff.post(url, body, content_type=JSON)
    assert response.status_code == 202
    assert response.json()["run"]["cancel_reason"] == "Cancelled through the REST API by admin"


def test_cancel_refuses_finished_runs_bad_bodies_and_unknown_ids(world, staff):
    finished = staff.post(f"{RUNS}{world.ok.pk}/cancel/", content_type=JSON)
    assert finished.status_code == 409
    assert "already finished with status COMPLETED" in finished.json()["detail"]
    url = f"{RUNS}{world.sleeping.pk}/cancel/"
    for body in ({"reason": ["x"]}, {"reason": "r" * 256}, ["reason"]):
        response = staff.post(url, body, content_type=JSON)
        assert response.status_code == 400, body
        assert response.json()["detail"]
    broken = staff.post(url, "{not json", content_type=JSON)
    assert broken.status_code == 400 and "JSON" in broken.json()["detail"]
    assert staff.post(f"{RUNS}NOSUCHRUN/cancel/", content_type=JSON).status_code == 404
    world.sleeping.refresh_from_db()
    assert world.sleeping.cancel_requested_at is None


def test_rerun_starts_the_function_again_with_the_same_event(world, staff, drain):
    response = staff.post(f"{RUNS}{world.ok.pk}/rerun/")
    assert response.status_code == 201, response.content
    body = response.json()
    new_id = body["run"]["id"]
    assert response["Location"] == f"http://testserver{RUNS}{new_id}/" == body["run"]["url"]
    assert (body["action"], body["run"]["status"], body["run"]["rerun_of"]) == (
        "rerun",
        "QUEUED",
        world.ok.pk,
    )
    rerun = FunctionRun.objects.get(pk=new_id)
    assert rerun.event_id == world.ok.event_id and rerun.rerun_of_id == world.ok.pk
    drain()
    rerun.refresh_from_db()
    assert (rerun.status, rerun.output) == ("COMPLETED", {"doubled": 2})
    original = staff.get(f"{RUNS}{world.ok.pk}/").json()
    assert [r["id"] for r in original["reruns"]] == [new_id]
    assert staff.get(f"{RUNS}{new_id}/").json()["rerun_of"] == world.ok.pk


def test_rerun_of_a_function_no_longer_registered_is_409(inngest_client, staff, drain):
    with isolated_registry():

        @inngest_client.create_function(
            fn_id="api-gone", trigger=inngest.TriggerEvent(event="api/gone")
        )
        def gone(ctx):
            return "here"

        inngest_client.send(inngest.Event(name="api/gone"))
        drain()
    run = FunctionRun.objects.get(function_id="test-api-gone")
    response = staff.post(f"{RUNS}{run.pk}/rerun/")
    assert response.status_code == 409
    assert "no longer registered" in response.json()["detail"]
    assert staff.post(f"{RUNS}NOSUCHRUN/rerun/").status_code == 404
    assert FunctionRun.objects.count() == 1


def test_retry_resumes_a_failed_run_from_its_failed_step(world, staff, drain):
    assert CALLS == ["a", "b"]
    FAIL_B["on"] = False
    response = staff.post(f"{RUNS}{world.failed.pk}/retry/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["action"], body["run"]["id"], body["run"]["status"]) == (
        "retry",
        world.failed.pk,
        "QUEUED",
    )
    drain()
    world.failed.refresh_from_db()
    assert (world.failed.status, world.failed.output) == ("COMPLETED", "done")
    # Step "a" kept its memo: only the failed step ran again.
    assert CALLS == ["a", "b", "b"]


def test_retry_refuses_runs_that_have_not_failed(world, staff):
    response = staff.post(f"{RUNS}{world.ok.pk}/retry/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Run {world.ok.pk} is COMPLETED; only a FAILED run can be retried."
    )
    assert staff.post(f"{RUNS}NOSUCHRUN/retry/").status_code == 404


# -- events -------------------------------------------------------------------------------------


def test_events_list_filters_by_name_and_time(world, staff):
    everything = ids_of(staff.get(EVENTS))
    assert everything == list(
        Event.objects.order_by("-received_at", "-id").values_list("id", flat=True)
    )
    assert set(world.event_ids) <= set(everything)
    assert ids_of(staff.get(EVENTS, {"name": "api/batched"})) == world.event_ids[6:4:-1]
    first = Event.objects.get(pk=world.event_ids[0])
    Event.objects.filter(pk=first.pk).update(received_at=first.received_at - timedelta(days=2))
    cutoff = (first.received_at - timedelta(days=1)).isoformat()
    assert ids_of(staff.get(EVENTS, {"received_before": cutoff})) == [first.pk]
    assert first.pk not in ids_of(staff.get(EVENTS, {"received_after": cutoff}))
    row = staff.get(EVENTS, {"name": "api/ok"}).json()["results"][0]
    assert (row["name"], row["producer_id"]) == ("api/ok", "") and "data" not in row
    bad = staff.get(EVENTS, {"received_after": "soon"})
    assert bad.status_code == 400 and "received_after" in bad.json()["detail"]


def test_event_detail_shows_data_and_the_runs_it_started(world, staff):
    event = staff.get(f"{EVENTS}{world.event_ids[0]}/").json()
    assert (event["name"], event["data"]) == ("api/ok", {"n": 1})
    assert [run["id"] for run in event["runs"]] == [world.ok.pk]
    # Both events of a batch list the batched run.
    for event_id in world.event_ids[5:7]:
        runs = staff.get(f"{EVENTS}{event_id}/").json()["runs"]
        assert [run["id"] for run in runs] == [world.batched.pk]
    assert staff.get(f"{EVENTS}NOSUCHEVENT/").status_code == 404


# -- efficiency ---------------------------------------------------------------------------------


def _queries(browser: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert browser.get(url).status_code == 200
    return len(queries)


def test_lists_and_details_take_a_fixed_number_of_queries(world, staff, inngest_client, drain):
    lists = [RUNS, EVENTS, f"{RUNS}{world.invoker.pk}/", f"{RUNS}{world.deferring.pk}/"]
    lists.append(f"{EVENTS}{world.event_ids[5]}/")
    before = [_queries(staff, url) for url in lists]
    inngest_client.send([inngest.Event(name="api/ok", data={"n": n}) for n in range(20)])
    inngest_client.send([inngest.Event(name="api/defers") for _ in range(5)])
    drain()
    for url in (f"{RUNS}{world.invoker.pk}/rerun/", f"{RUNS}{world.deferring.pk}/rerun/"):
        staff.post(url)
    drain()
    after = [_queries(staff, url) for url in lists]
    assert after == before
    # A session and its user, then one query for a list page, one for a run and one per
    # relation (steps, defers, waits, children, reruns, batch), one for an event and its runs.
    assert before == [3, 3, 9, 9, 4]


# -- access -------------------------------------------------------------------------------------


def _api_paths() -> list[str]:
    """Return one concrete path per REST API URL pattern, so new routes are covered too."""
    paths = []
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern).lstrip("^").rstrip("$")
        route = re.sub(r"\(\?P<\w+>[^)]*\)", "01NOSUCHID", route).replace(".+/", "elsewhere/")
        paths.append(PREFIX + route)
    return paths


API_PATHS = _api_paths()


def test_every_route_is_covered_by_the_access_tests():
    expected = {PREFIX, f"{RUNS}01NOSUCHID/retry/", f"{PREFIX}schema/", f"{PREFIX}docs/"}
    assert expected | {f"{PREFIX}elsewhere/"} <= set(API_PATHS)
    assert len(API_PATHS) == len(api_urls.urlpatterns) >= 13


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_requests_are_refused_everywhere(path, method):
    response = getattr(Client(), method)(path)
    assert response.status_code in (401, 403), response.content
    assert response["Content-Type"] == "application/json"
    assert "credentials" in response.json()["detail"]


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_users_who_are_not_staff_are_refused_everywhere(viewer, path, method):
    response = getattr(viewer, method)(path)
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/json"
    assert "permission" in response.json()["detail"]


def test_staff_may_use_session_or_token_auth(world, staff, admin_user):
    for path in (RUNS, EVENTS, FUNCTIONS, f"{PREFIX}schema/", f"{RUNS}{world.ok.pk}/"):
        assert staff.get(path).status_code == 200, path
    token = Token.objects.create(user=admin_user)
    bearer = Client(headers={"Authorization": f"Token {token.key}"})
    for path in (RUNS, EVENTS, FUNCTIONS, f"{PREFIX}schema/", f"{RUNS}{world.ok.pk}/"):
        assert bearer.get(path).status_code == 200, path
    # Token requests skip CSRF, so actions work from scripts.
    assert bearer.post(f"{RUNS}{world.failed.pk}/retry/").status_code == 202
    assert Client().get(RUNS, headers={"Authorization": "Token wrong"}).status_code in (401, 403)
    unknown = staff.get(f"{PREFIX}no/such/route/")
    assert unknown.status_code == 404 and unknown.json()["detail"]
    root = staff.get(PREFIX)
    assert root.status_code == 200
    assert root.json() == {
        name: f"http://testserver{PREFIX}{name}/"
        for name in ("functions", "runs", "events", "schema", "docs")
    }
    # Django's APPEND_SLASH still sends a path without its slash to the route.
    assert staff.get(RUNS.rstrip("/")).headers["Location"] == RUNS


def test_swagger_ui_is_served_to_staff(staff):
    response = staff.get(f"{PREFIX}docs/")
    assert response.status_code == 200
    assert f"{PREFIX}schema/" in response.content.decode()


def _with_api(**keys: Any) -> dict[str, Any]:
    return {**settings.INNGEST_DJANGO, **keys}


def test_permission_classes_come_from_settings(world, viewer):
    allow_any = _with_api(API_PERMISSION_CLASSES=("rest_framework.permissions.AllowAny",))
    with override_settings(INNGEST_DJANGO=allow_any):
        assert Client().get(PREFIX).status_code == 200
        assert Client().get(f"{PREFIX}schema/").status_code == 200
        # Reading runs still needs Django's view permission (docs/permissions.md).
        assert Client().get(RUNS).status_code in (401, 403)
    authenticated = _with_api(
        API_PERMISSION_CLASSES=("rest_framework.permissions.IsAuthenticated",)
    )
    with override_settings(INNGEST_DJANGO=authenticated):
        assert viewer.get(PREFIX).status_code == 200
        assert viewer.get(RUNS).status_code == 403
        assert Client().get(RUNS).status_code in (401, 403)
    assert viewer.get(PREFIX).status_code == 403


def test_authentication_classes_come_from_settings(admin_user, staff):
    token = Token.objects.create(user=admin_user)
    only_tokens = _with_api(
        API_AUTHENTICATION_CLASSES=("rest_framework.authentication.TokenAuthentication",)
    )
    with override_settings(INNGEST_DJANGO=only_tokens):
        # Token auth comes first now, so a missing credential is a 401 with a challenge.
        anonymous = Client().get(RUNS)
        assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
        assert staff.get(RUNS).status_code == 401
        bearer = Client(headers={"Authorization": f"Token {token.key}"})
        assert bearer.get(RUNS).status_code == 200


# -- schema -------------------------------------------------------------------------------------


def test_schema_is_served_valid_and_describes_every_route_and_error(staff):
    from drf_spectacular.validation import validate_schema

    response = staff.get(f"{PREFIX}schema/")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) == {
        PREFIX,
        f"{PREFIX}functions/",
        f"{PREFIX}functions/{{id}}/",
        f"{PREFIX}functions/{{function_id}}/pause/",
        f"{PREFIX}functions/{{function_id}}/resume/",
        f"{PREFIX}functions/{{function_id}}/invoke/",
        f"{PREFIX}runs/",
        f"{PREFIX}runs/{{id}}/",
        f"{PREFIX}runs/{{id}}/cancel/",
        f"{PREFIX}runs/{{id}}/rerun/",
        f"{PREFIX}runs/{{id}}/retry/",
        f"{PREFIX}events/",
        f"{PREFIX}events/{{id}}/",
    }
    assert set(paths[f"{PREFIX}runs/"]["get"]["responses"]) == {"200", "400", "401", "403"}
    assert set(paths[f"{PREFIX}runs/{{id}}/retry/"]["post"]["responses"]) == {
        "202",
        "401",
        "403",
        "404",
        "409",
    }
    params = {p["name"] for p in paths[f"{PREFIX}runs/"]["get"]["parameters"]}
    assert params >= {"status", "function", "created_after", "created_before", "parent"}
    assert params >= {"deferred", "event", "cursor", "page_size"}
    assert {"RunStatusEnum", "StepStatusEnum", "DeferStatusEnum"} <= set(
        schema["components"]["schemas"]
    )
    yaml = staff.get(f"{PREFIX}schema/", {"format": "yaml"})
    assert yaml.status_code == 200 and b"openapi: 3" in yaml.content
