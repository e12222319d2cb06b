"""On PostgreSQL the claim lists due runs oldest due first, whatever plan it picks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from inngest_django.ids import new_id
from inngest_django.models import Event, FunctionRun

pytestmark = pytest.mark.django_db


def test_claimed_ids_come_back_in_due_order_even_from_a_hash_join():
    now = timezone.now()
    event = Event.objects.create(id=new_id(), name="shop/tick", ts=0)
    # Ids rise while due times fall: table order and due order disagree.
    runs = [
        FunctionRun(
            id=new_id(),
            function_id="tick",
            event=event,
            available_at=now - timedelta(seconds=index),
        )
        for index in range(60)
    ]
    FunctionRun.objects.bulk_create(runs)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Force the plan whose RETURNING follows table order rather than the CTE's order.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_nestloop = off")
                cursor.execute("SET LOCAL enable_mergejoin = off")
        claimed = FunctionRun.objects.claim(
            worker_id="w", lease_token="t", limit=60, now=now, lease_until=now
        )
    oldest_due_first = [run.pk for run in reversed(runs)]
    if connection.vendor == "postgresql":
        assert claimed == oldest_due_first
    else:
        # SQLite's RETURNING cannot see the old due times; it lists rows in table order.
        assert sorted(claimed) == sorted(oldest_due_first)
