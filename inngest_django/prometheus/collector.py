"""InngestCollector: reads FunctionRun and WorkerHeartbeat on each scrape; keeps no state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import metrics
from ..conf import app_settings
from ..enums import RunStatus
from ..models import FunctionRun, WorkerHeartbeat, WorkerState

# Rates and durations cover the last five minutes: steady enough to alert on, recent enough.
WINDOW = timedelta(minutes=5)
PREFIX = "inngest_django_"


def gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, labels=labels)


class InngestCollector(Collector):
    """Yields run rates, durations, backlog and slots per function, and worker liveness."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        yield from self.run_families(now)
        yield from self.worker_families(now)

    def run_families(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        minutes = WINDOW.total_seconds() / 60
        window = "over the last 5 minutes"
        rates = {
            name: gauge(
                f"runs_{name}_per_minute", f"Runs {name} per minute, {window}.", ["function"]
            )
            for name in ("started", "completed", "failed")
        }
        duration = gauge(
            "run_duration_seconds",
            f"Run duration (start to finish) of runs finished {window}, by quantile.",
            ["function", "quantile"],
        )
        queued = gauge("runs_queued", "Runs queued (due or not).", ["function"])
        due = gauge("runs_due", "Runs due now and not executing: the backlog.", ["function"])
        oldest = gauge(
            "oldest_due_run_age_seconds", "How long the oldest due run has waited.", ["function"]
        )
        executing = gauge("runs_executing", "Runs a worker is executing now.", ["function"])
        for slug, found in sorted(metrics.figures_by_function(now, WINDOW).items()):
            for name, family in rates.items():
                family.add_metric([slug], getattr(found, name) / minutes)
            for quantile in (0.5, 0.95):
                value = metrics.percentile(found.durations, quantile)
                if value is not None:
                    duration.add_metric([slug, str(quantile)], value)
            queued.add_metric([slug], found.queued)
            due.add_metric([slug], found.due)
            waited = 0.0 if found.oldest_due is None else (now - found.oldest_due).total_seconds()
            oldest.add_metric([slug], max(waited, 0.0))
            executing.add_metric([slug], found.running)
        yield from (*rates.values(), duration, queued, due, oldest, executing)
        yield self.slots_family(now)

    def slots_family(self, now: datetime) -> GaugeMetricFamily:
        # By function, not by key: keys come from event data, and would be unbounded labels.
        slots = gauge(
            "concurrency_slots_in_use",
            "Executing runs holding a concurrency slot (of any of their keys).",
            ["function"],
        )
        rows = (
            FunctionRun.objects.order_by()
            .filter(status=RunStatus.RUNNING, locked_until__gt=now)
            .exclude(concurrency_key="", concurrency_key_2="")
            .values_list("function_id")
            .annotate(runs=Count("id"))
        )
        for slug, count in sorted(rows):
            slots.add_metric([slug], count)
        return slots

    def worker_families(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        beats = app_settings.WORKER_STALE_AFTER_BEATS
        by_state = gauge("workers", "Workers by state (running, stale, stopped).", ["state"])
        age = gauge(
            "worker_heartbeat_age_seconds",
            "Seconds since each worker that has not stopped last beat.",
            ["worker_id", "host"],
        )
        in_hand = gauge(
            "worker_runs_in_hand", "Runs each worker held at its last beat.", ["worker_id"]
        )
        counts = dict.fromkeys(WorkerState, 0)
        for worker in WorkerHeartbeat.objects.order_by("worker_id"):
            state = worker.state(now, beats)
            counts[state] += 1
            if state != WorkerState.STOPPED:
                age.add_metric(
                    [worker.worker_id, worker.host],
                    max((now - worker.last_heartbeat).total_seconds(), 0.0),
                )
                in_hand.add_metric([worker.worker_id], worker.runs_in_hand)
        for state, count in counts.items():
            by_state.add_metric([state.value], count)
        yield from (by_state, age, in_hand)
