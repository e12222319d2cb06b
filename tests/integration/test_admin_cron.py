"""The cron schedule and idempotency key lists."""

from __future__ import annotations

import pytest
from django.urls import reverse

import inngest_django as inngest
from inngest_django.models import CronSchedule, IdempotencyKey

pytestmark = pytest.mark.django_db


def test_cron_schedule_and_idempotency_key_lists_show_rows(
    admin_client, inngest_client, runs, drain
):
    inngest_client.create_function(
        fn_id="nightly", trigger=inngest.TriggerCron(cron="TZ=Europe/Paris 0 3 * * *")
    )(lambda ctx: None)
    drain()
    assert CronSchedule.objects.filter(function_id="test-nightly").exists()
    page = admin_client.get(reverse("admin:inngest_django_cronschedule_changelist"))
    assert "TZ=Europe/Paris 0 3 * * *" in page.content.decode()
    assert IdempotencyKey.objects.filter(key="event:order-7").exists()
    page = admin_client.get(reverse("admin:inngest_django_idempotencykey_changelist"))
    assert "event:order-7" in page.content.decode()
