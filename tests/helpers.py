"""Helpers the test modules share: run lookups, polling, the official client, admin pages."""

from __future__ import annotations

import html
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import inngest as inngest_sdk
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.admin.times import moment_text
from inngest_django.enums import RunStatus
from inngest_django.ids import new_id
from inngest_django.models import DeferIntent, Event, FunctionRun, StepRun
from tests.testapp.models import Order

# -- runs and their steps -----------------------------------------------------------------


def runs_of(function_id: str) -> list[FunctionRun]:
    """Return a function's runs, oldest first."""
    return list(FunctionRun.objects.filter(function_id=function_id).order_by("created_at"))


def the_run(function_id: str) -> FunctionRun:
    """Return a function's only run, failing if it has none or several."""
    (run,) = runs_of(function_id)
    return run


def status_of(run_id: str) -> str:
    """Return a run's status as stored now."""
    return FunctionRun.objects.values_list("status", flat=True).get(pk=run_id)


def send_steps(count: int = 1, **data: object) -> None:
    """Send `count` events that start testapp's record-steps function."""
    inngest.send([{"name": "testapp/steps", "data": data} for _ in range(count)])


def step_starts(workers: Any, run_id: str) -> list[tuple[str, int]]:
    """Return (step, pid) for every call of the run's step callables, rolled back or not."""
    return [
        (entry["step"], entry["pid"])
        for entry in workers.journal()
        if entry["run"] == run_id and entry["phase"] == "start"
    ]


def orders_per_step(run_id: str) -> Counter[str]:
    """Return how many Order rows each step of the run committed."""
    return Counter(Order.objects.filter(reference=run_id).values_list("step_key", flat=True))


def committed_steps(run_id: str) -> list[str]:
    """Return the step ids the run has memoized, sorted."""
    return sorted(StepRun.objects.filter(run_id=run_id).values_list("step_key", flat=True))


def leased_run(function_id: str, *, token: str, until: datetime) -> FunctionRun:
    """Store a running run leased under `token` until `until`, with an event of its own."""
    event = Event.objects.create(id=new_id(), name=f"test/{function_id}", ts=0)
    return FunctionRun.objects.create(
        id=new_id(),
        function_id=function_id,
        event=event,
        status=RunStatus.RUNNING,
        lease_token=token,
        locked_until=until,
        available_at=until,
    )


@contextmanager
def counted_commits() -> Iterator[list[int]]:
    """Count the commits of the default connection inside the block."""
    commits: list[int] = []
    real_commit = connection.commit

    def commit() -> None:
        commits.append(1)
        real_commit()

    connection.commit = commit  # type: ignore[method-assign]
    try:
        yield commits
    finally:
        del connection.commit


# -- polling ------------------------------------------------------------------------------


def wait_for(
    condition: Callable[[], Any], *, what: str, timeout: float, logs: Callable[[], str]
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `logs()` at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}\n{logs()}")
        time.sleep(0.02)


def most_at_once(intervals: list[tuple[Any, Any]]) -> int:
    """Return the largest number of (start, end) intervals that overlap at any moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


# -- the official client ------------------------------------------------------------------


def sdk_client(live_server: Any, event_key: str, *, app_id: str) -> inngest_sdk.Inngest:
    """Return the official client from PyPI, pointed at the live server's Event API."""
    return inngest_sdk.Inngest(
        app_id=app_id,
        event_key=event_key,
        event_api_base_url=live_server.url,
        is_production=False,
    )


# -- admin URLs ---------------------------------------------------------------------------

RUNS_URL = reverse("admin:inngest_django_functionrun_changelist")
EVENTS_URL = reverse("admin:inngest_django_event_changelist")
DEFERS_URL = reverse("admin:inngest_django_deferintent_changelist")
OUTBOX_URL = reverse("admin:inngest_django_outboxmessage_changelist")
FLOW_STATES_URL = reverse("admin:inngest_django_flowstate_changelist")
FUNCTIONS_URL = reverse("admin:inngest_django_functionrun_functions")
SEND_URL = reverse("admin:inngest_django_event_send")
KEYS_URL = reverse("admin:inngest_django_eventkey_changelist")
ADD_KEY_URL = reverse("admin:inngest_django_eventkey_add")


def change_url(obj: Model) -> str:
    """Return the admin change page of any row."""
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def run_url(run: FunctionRun) -> str:
    return reverse("admin:inngest_django_functionrun_change", args=[run.pk])


def event_url(event: Event) -> str:
    return reverse("admin:inngest_django_event_change", args=[event.pk])


def defer_url(intent: DeferIntent) -> str:
    return reverse("admin:inngest_django_deferintent_change", args=[intent.pk])


def action_url(verb: str, run: FunctionRun) -> str:
    """Return the URL of a run-page button: "cancel", "rerun" or "retry"."""
    return reverse(f"admin:inngest_django_functionrun_{verb}", args=[run.pk])


# -- reading admin pages ------------------------------------------------------------------


def raw_cells(page: str, field: str) -> list[str]:
    """Return the HTML inside each table cell for `field` (list rows or inline rows), in order."""
    pattern = rf'<(t[dh]) class="field-{field}(?: [^"]*)?">(.*?)</\1>'
    return [cell for _, cell in re.findall(pattern, page, flags=re.S)]


def cells(page: str, field: str) -> list[str]:
    """Return the text of each table cell for `field` (list rows or inline rows), in order."""
    return [" ".join(html.unescape(strip_tags(cell)).split()) for cell in raw_cells(page, field)]


def inline(page: str, related_name: str) -> str:
    """Return the part of a change page that holds one inline's table (e.g. "waits")."""
    start = page.index(f'id="{related_name}-group"')
    end = page.find('-group"', start + len(related_name) + 10)
    return page[start : end if end != -1 else len(page)]


def readonly_value(page: str, field: str) -> str:
    """Return the text shown for a read-only field on a change page."""
    match = re.search(
        rf'<div class="form-row[^"]*\bfield-{field}\b[^"]*">.*?<div class="readonly">(.*?)</div>',
        page,
        flags=re.S,
    )
    assert match, f"no read-only field {field!r} on the page"
    return " ".join(html.unescape(strip_tags(match.group(1))).split())


def shown_messages(page: str) -> list[tuple[str, str]]:
    """Return the (level, text) of each message the admin shows on a page."""
    found = re.search(r'<ul class="messagelist">(.*?)</ul>', page, flags=re.S)
    if not found:
        return []
    items = re.findall(r'<li class="([^"]*)">(.*?)</li>', found.group(1), flags=re.S)
    return [(level, html.unescape(strip_tags(text)).strip()) for level, text in items]


def status_notes(page: str) -> dict[str, str]:
    """Return the run list's status cell text by run id."""
    return dict(zip(cells(page, "id"), cells(page, "status_badge"), strict=True))


def until_text(moment: Any) -> str:
    """Return a datetime as the admin prints it (the current time zone, to the millisecond)."""
    return moment_text(moment)


def listed_functions(admin_client: Client, params: dict) -> set[str]:
    """Return the function slugs of the runs the run list shows for these query parameters."""
    page = admin_client.get(RUNS_URL, params).content.decode()
    return set(cells(page, "function_id"))


def page_queries(admin_client: Client, url: str, params: dict | None = None) -> int:
    """Return how many queries one GET of an admin page makes."""
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(url, params or {}).status_code == 200
    return len(queries)


def staff_client(django_user_model: Any, username: str, *codenames: str) -> Client:
    """Return a client logged in as a staff user with these inngest_django permissions."""
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="inngest_django", codename__in=codenames)
    )
    logged_in = Client()
    logged_in.force_login(user)
    return logged_in
