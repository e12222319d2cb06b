"""compare-supplier-prices, an async function, under run_function and drain."""

from __future__ import annotations

import pytest

import inngest_django as inngest
from demo_site.shop.async_examples import SUPPLIERS, compare_supplier_prices
from inngest_django.models import FunctionRun
from inngest_django.testing import drain, run_function


def test_the_cheapest_supplier_wins_with_stubbed_quotes():
    result = run_function(
        compare_supplier_prices,
        data={"sku": "MUG", "quantity": 2},
        step_stubs={
            "quote-acme": {"supplier": "acme", "unit_cents": 1000, "total_cents": 2000},
            "quote-globex": {"supplier": "globex", "unit_cents": 950, "total_cents": 1900},
            "quote-initech": {"supplier": "initech", "unit_cents": 1100, "total_cents": 2200},
        },
    )
    assert result.status == "COMPLETED", result.error
    assert result.output["best"]["supplier"] == "globex"


@pytest.mark.django_db
def test_the_worker_awaits_every_supplier_and_keeps_the_cheapest():
    inngest.send({"name": "shop/prices.compare", "data": {"sku": "MUG", "quantity": 3}})
    drain()
    run = FunctionRun.objects.get(function_id=compare_supplier_prices.id)
    assert run.status == "COMPLETED", run.error
    quotes = run.output["quotes"]
    assert [q["supplier"] for q in quotes] == list(SUPPLIERS)
    assert run.output["best"] == min(quotes, key=lambda q: q["total_cents"])
