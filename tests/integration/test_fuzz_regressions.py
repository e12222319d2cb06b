"""Bugs the fuzz tests (tests/fuzz) found where the database is involved, pinned by examples."""

from __future__ import annotations

import pytest
from django.db import transaction

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.exceptions import InvalidEventError
from inngest_django.models import Event, FunctionRun
from tests.fuzz.strategies import nested

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("event", "message"),
    [
        # PostgreSQL refused these with a DataError; SQLite stored the surrogate, and the REST
        # API then answered 500 for the event (its JSON renderer cannot encode it).
        ({"name": "t/nul", "data": {"note": "a\x00b"}}, "contains a NUL character"),
        ({"name": "t/lone", "data": {"note": "\ud800"}}, "contains a lone surrogate"),
        ({"name": "t/name\x00"}, "contains a NUL character"),
        ({"name": "t/id", "id": "\udfff"}, "contains a lone surrogate"),
        # OverflowError on SQLite, DataError on PostgreSQL.
        ({"name": "t/ts", "ts": 2**70}, "does not fit in 64 bits"),
        # A DataError on PostgreSQL (varchar(255)); SQLite stored it whole.
        ({"name": "t/id", "id": "i" * 256}, "id is longer than 255 characters"),
        # RecursionError from the JSON encoder.
        ({"name": "t/deep", "data": {"deep": nested(3000)}}, "is not JSON-serializable"),
    ],
)
def test_send_refuses_what_the_database_cannot_store_and_stores_nothing(event, message):
    with pytest.raises(InvalidEventError, match=message), transaction.atomic():
        inngest.send([{"name": "t/fine", "data": {"n": 1}}, event])
    assert not Event.objects.exists()


def test_send_still_stores_astral_characters_and_long_but_legal_values():
    (event_id,) = inngest.send({"name": "t/ok", "id": "i" * 255, "data": {"s": "😀", "n": 2**70}})
    stored = Event.objects.get(pk=event_id)
    assert stored.data == {"s": "😀", "n": 2**70}


def test_a_step_output_with_nul_fails_its_run_clearly_on_every_database(inngest_client, drain):
    # SQLite stored it and PostgreSQL's jsonb refused it: the run's fate depended on the backend.
    @inngest_client.create_function(
        fn_id="nul-output", trigger=inngest.TriggerEvent(event="t/nul-output")
    )
    def nul_output(ctx):
        return ctx.step.run("make", lambda: "a\x00b")

    inngest.send({"name": "t/nul-output"})
    drain()
    run = FunctionRun.objects.get(function_id="test-nul-output")
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "NonRetriableError"
    assert "output contains a NUL character" in run.error["message"]


def test_an_error_message_with_nul_is_stored_escaped(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="nul-error", trigger=inngest.TriggerEvent(event="t/nul-error"), retries=0
    )
    def nul_error(ctx):
        raise ValueError("bad byte \x00 here")

    inngest.send({"name": "t/nul-error"})
    drain()
    run = FunctionRun.objects.get(function_id="test-nul-error")
    assert run.status == RunStatus.FAILED
    assert run.error["message"] == "bad byte \\x00 here"
