"""`manage.py inngest_event_key`: created keys authenticate, revoked ones fail, lists hide keys."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from inngest_django.event_keys import authenticate
from inngest_django.models import Event, EventKey

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[str, str]:
    """Run the command; return its stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command("inngest_event_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def create(name: str) -> tuple[EventKey, str]:
    out, err = run("create", name)
    [raw_key] = out.split()
    row = EventKey.objects.get(name=name)
    assert f"Created event key {row.pk} {name!r}" in err
    return row, raw_key


def test_create_prints_a_key_that_authenticates_once_on_stdout():
    row, raw_key = create("billing service")
    assert authenticate(raw_key) == row
    assert row.prefix == raw_key[:8]
    assert raw_key not in row.digest
    response = Client().post(
        f"/e/{raw_key}", json.dumps({"name": "shop/x"}), content_type="application/json"
    )
    assert response.status_code == 200
    assert Event.objects.filter(pk=response.json()["ids"][0]).exists()


def test_each_create_prints_a_new_key():
    _, first = create("one")
    _, second = create("two")
    assert first != second
    assert EventKey.objects.count() == 2


def test_revoke_makes_the_key_fail():
    row, raw_key = create("billing service")
    out, _ = run("revoke", str(row.pk))
    assert f"Revoked event key {row.pk}." in out
    assert authenticate(raw_key) is None
    response = Client().post(
        f"/e/{raw_key}", json.dumps({"name": "shop/x"}), content_type="application/json"
    )
    assert response.json() == {"status": 401, "error": "Event key not found"}
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_revoking_an_unknown_or_revoked_key_is_an_error():
    row, _ = create("billing service")
    run("revoke", str(row.pk))
    with pytest.raises(CommandError, match=f"No live event key has id {row.pk}"):
        run("revoke", str(row.pk))
    with pytest.raises(CommandError, match="No live event key has id 999"):
        run("revoke", "999")


def test_list_shows_prefix_name_and_status_but_never_the_key():
    live, live_key = create("billing service")
    revoked, revoked_key = create("old webhook")
    run("revoke", str(revoked.pk))
    authenticate(live_key)
    out, _ = run("list")
    assert live_key not in out and revoked_key not in out
    assert live.digest not in out
    lines = out.splitlines()
    assert "PREFIX" in lines[0]
    [live_line] = [line for line in lines if line.endswith("billing service")]
    [revoked_line] = [line for line in lines if line.endswith("old webhook")]
    assert live_key[:8] in live_line and "live" in live_line and "UTC" in live_line
    assert revoked_key[:8] in revoked_line and "revoked" in revoked_line


def test_list_without_keys_says_so():
    assert run("list")[0].strip() == "No event keys."


def test_blank_name_is_refused():
    with pytest.raises(CommandError, match="must not be blank"):
        run("create", "  ")
    assert not EventKey.objects.exists()


def test_command_line_requires_an_action():
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "inngest_event_key"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": ""},
        check=False,
    )
    assert result.returncode != 0
    assert "create" in result.stderr and "revoke" in result.stderr


def test_create_with_a_given_key_registers_it():
    given = "deploy-secret-" + "x" * 30
    out, _ = run("create", "from vault", "--key", given)
    assert out.split() == [given]
    assert authenticate(given) == EventKey.objects.get(name="from vault")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("short", "at least 32 characters"),
        ("has spaces and slashes/" + "x" * 30, "a letter, digit"),
    ],
)
def test_create_refuses_a_weak_or_unsafe_given_key(given, problem):
    with pytest.raises(CommandError, match=problem):
        run("create", "weak", "--key", given)
    assert not EventKey.objects.exists()


def test_create_refuses_a_given_key_registered_already():
    given = "k" * 40
    run("create", "first", "--key", given)
    with pytest.raises(CommandError, match="registered already"):
        run("create", "second", "--key", given)
    assert EventKey.objects.count() == 1
