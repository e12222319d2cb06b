"""Function declaration: slugs, triggers, options, and configuration errors at import."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from pydantic import ValidationError

import inngest_django as inngest
from inngest_django.registry import get_function


def handler(ctx):
    return None


def test_slug_is_app_id_dash_fn_id_and_function_is_registered(inngest_client):
    function = inngest_client.create_function(
        fn_id="process-order", trigger=inngest.TriggerEvent(event="o/p")
    )(handler)
    assert function.id == "test-process-order"
    assert function.local_id == "process-order"
    assert function.name == "process-order"
    assert function.retries == 4
    assert get_function("test-process-order") is function


def test_on_failure_registers_a_second_function(inngest_client):
    def failed(ctx):
        return None

    function = inngest_client.create_function(
        fn_id="charge", trigger=inngest.TriggerEvent(event="o/p"), on_failure=failed, name="Charge"
    )(handler)
    failure = get_function("test-charge-failure")
    assert function.on_failure_fn is failure
    assert failure.retries == 0
    assert failure.name == "Charge (failure)"
    assert failure.event_triggers[0].event == "inngest/function.failed"
    assert failure.matches(
        {"name": "inngest/function.failed", "data": {"function_id": "test-charge"}}
    )
    assert not failure.matches(
        {"name": "inngest/function.failed", "data": {"function_id": "test-other"}}
    )


def test_unknown_function_id_raises_naming_it(registry):
    with pytest.raises(inngest.FunctionNotFoundError, match="'nope'"):
        get_function("nope")


def test_duplicate_slug_names_both_functions(inngest_client):
    inngest_client.create_function(fn_id="dup", trigger=inngest.TriggerEvent(event="x"))(handler)

    def other(ctx):
        return None

    with pytest.raises(inngest.InvalidFunctionConfigError) as info:
        inngest_client.create_function(fn_id="dup", trigger=inngest.TriggerEvent(event="x"))(other)
    message = str(info.value)
    assert "'test-dup'" in message
    assert "test_functions.handler" in message
    assert "test_functions.test_duplicate_slug_names_both_functions.<locals>.other" in message
    assert issubclass(inngest.InvalidFunctionConfigError, ImproperlyConfigured)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: inngest.TriggerCron(cron="every day"), "must have 5 fields"),
        (lambda: inngest.TriggerCron(cron="61 * * * *"), "not a valid cron"),
        (lambda: inngest.TriggerCron(cron="TZ=Mars/Olympus 0 9 * * *"), "unknown time zone"),
        (lambda: inngest.TriggerEvent(event=""), "must not be empty"),
        (lambda: inngest.TriggerEvent(event="shop/*/x"), "wildcard"),
        (lambda: inngest.TriggerEvent(event="x", expression="event.data.x >"), "invalid CEL"),
    ],
)
def test_bad_triggers_fail_with_a_message_naming_them(make, message):
    with pytest.raises(ValidationError, match=message):
        make()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trigger": []}, "trigger must be"),
        ({"trigger": "order/placed"}, "trigger must be"),
        ({"trigger": [inngest.TriggerEvent(event=f"e{i}") for i in range(11)]}, "limit is 10"),
        (
            {"trigger": [inngest.TriggerCron(cron="* * * * *")] * 2},
            "same cron trigger twice",
        ),
        ({"trigger": inngest.TriggerEvent(event="x"), "retries": 21}, "retries must be"),
        ({"trigger": inngest.TriggerEvent(event="x"), "retries": -1}, "retries must be"),
        ({"trigger": inngest.TriggerEvent(event="x"), "retriez": 1}, "unknown option"),
        (
            {
                "trigger": inngest.TriggerEvent(event="x"),
                "throttle": inngest.Throttle(limit=1, period=500),
            },
            "throttle.period must be from 1s",
        ),
    ],
)
def test_bad_function_configuration_fails_at_declaration(inngest_client, options, message):
    with pytest.raises(inngest.InvalidFunctionConfigError, match=message) as info:
        inngest_client.create_function(fn_id="bad", **options)(handler)
    assert "'bad'" in str(info.value) or "test-bad" in str(info.value)


def test_cron_and_event_triggers_may_be_mixed(inngest_client):
    function = inngest_client.create_function(
        fn_id="mixed",
        trigger=[
            inngest.TriggerEvent(event="a"),
            inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * 1"),
        ],
    )(handler)
    assert [t.event for t in function.event_triggers] == ["a"]
    assert [t.cron for t in function.cron_triggers] == ["TZ=Europe/Paris 0 9 * * 1"]


def test_fn_id_with_quotes_is_refused(inngest_client):
    with pytest.raises(inngest.InvalidFunctionConfigError, match="quotes"):
        inngest_client.create_function(fn_id="it's", trigger=inngest.TriggerEvent(event="x"))(
            handler
        )
