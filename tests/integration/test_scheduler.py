"""Cron ticks fired by the worker loop, in-process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

import inngest_django as inngest
from inngest_django.models import CronSchedule, Event, FunctionRun
from inngest_django.scheduler import CronScheduler

pytestmark = pytest.mark.django_db


@pytest.fixture
def hourly(inngest_client):
    @inngest_client.create_function(fn_id="hourly", trigger=inngest.TriggerCron(cron="0 * * * *"))
    def hourly(ctx):
        return ctx.event.data

    return hourly


def test_first_sight_schedules_the_next_future_tick_without_firing(hourly):
    assert CronScheduler().fire_due() == 0
    schedule = CronSchedule.objects.get()
    assert schedule.key == "test-hourly|0 * * * *"
    assert schedule.next_tick_at > timezone.now()
    assert schedule.next_tick_at.minute == 0
    assert not FunctionRun.objects.exists()


def test_due_tick_fires_once_and_the_run_gets_the_timer_event(hourly, drain):
    CronScheduler().fire_due()
    CronSchedule.objects.update(next_tick_at=timezone.now() - timedelta(seconds=1))
    assert CronScheduler().fire_due() == 1
    assert CronScheduler().fire_due() == 0
    drain()
    run = FunctionRun.objects.select_related("event").get()
    assert run.status == "COMPLETED"
    assert run.event.name == "inngest/scheduled.timer"
    assert run.output == {"cron": "0 * * * *"}
    assert CronSchedule.objects.get().next_tick_at > timezone.now()


def test_missed_ticks_fire_once_not_once_each(hourly):
    CronScheduler().fire_due()
    CronSchedule.objects.update(next_tick_at=timezone.now() - timedelta(days=2))
    assert CronScheduler().fire_due() == 1
    assert FunctionRun.objects.count() == 1
    assert CronScheduler().fire_due() == 0


def test_two_schedulers_on_one_due_tick_fire_it_once(hourly):
    CronScheduler().fire_due()
    CronSchedule.objects.update(next_tick_at=timezone.now() - timedelta(seconds=1))
    first, second = CronScheduler(), CronScheduler()
    assert first.fire_due() + second.fire_due() == 1
    assert Event.objects.filter(name="inngest/scheduled.timer").count() == 1


def test_advancing_a_tick_is_a_compare_and_set(hourly):
    CronScheduler().fire_due()
    schedule = CronSchedule.objects.get()
    later = schedule.next_tick_at + timedelta(hours=1)
    assert CronSchedule.advance(schedule.key, expected_tick=schedule.next_tick_at, next_tick=later)
    assert not CronSchedule.advance(
        schedule.key, expected_tick=schedule.next_tick_at, next_tick=later
    )


def test_unimportable_function_module_fails_at_startup_naming_it():
    with (
        override_settings(INNGEST_DJANGO={"FUNCTION_MODULES": ["no_such_pkg.functions"]}),
        pytest.raises(ImproperlyConfigured, match=r"'no_such_pkg\.functions'"),
    ):
        apps.get_app_config("inngest_django").ready()
