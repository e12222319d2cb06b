"""Flow-control options are checked when a function is declared, not when its runs start."""

from __future__ import annotations

import pytest

import inngest_django as inngest


def handler(ctx):
    return None


@pytest.mark.parametrize("limits", [1, 2])
def test_singleton_cancel_takes_a_concurrency_slot_so_two_limits_are_refused(registry, limits):
    client = inngest.Inngest(app_id="test")
    concurrency = [inngest.Concurrency(limit=5, key=f"event.data.k{n}") for n in range(limits)]
    declare = client.create_function(
        fn_id="single",
        trigger=inngest.TriggerEvent(event="t/single"),
        singleton=inngest.Singleton(mode="cancel", key="event.data.user"),
        concurrency=concurrency,
    )
    if limits == 1:
        assert declare(handler).flow.concurrency == concurrency
        return
    # Before, the run silently kept only the first two of the three slots it needed.
    with pytest.raises(inngest.InvalidFunctionConfigError, match="singleton mode 'cancel'"):
        declare(handler)


def test_singleton_skip_leaves_both_concurrency_limits(registry):
    client = inngest.Inngest(app_id="test")
    function = client.create_function(
        fn_id="single-skip",
        trigger=inngest.TriggerEvent(event="t/single"),
        singleton=inngest.Singleton(mode="skip", key="event.data.user"),
        concurrency=[
            inngest.Concurrency(limit=5, key="event.data.a"),
            inngest.Concurrency(limit=2),
        ],
    )(handler)
    assert len(function.flow.concurrency) == 2
