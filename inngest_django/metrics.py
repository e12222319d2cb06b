"""Metrics over FunctionRun: runs per minute, durations, backlog, concurrency slots in use."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import TruncMinute

from .enums import CLAIMABLE_STATUSES, RunStatus
from .models import FunctionRun

# Durations are taken from at most this many of the window's newest finished runs, so a page
# or a scrape costs the same whatever the throughput.
DURATION_SAMPLE = 5000


@dataclass
class Minute:
    """One minute of the chart: runs started, completed and failed, and finished runs' durations."""

    at: datetime
    started: int = 0
    completed: int = 0
    failed: int = 0
    p50: float | None = None
    p95: float | None = None


@dataclass
class SlotUse:
    """One concurrency key: slots held by executing runs, and its limit."""

    key: str
    in_use: int
    limit: int


@dataclass
class Figures:
    """Every figure of the metrics page, overall or for one function."""

    now: datetime
    since: datetime
    minutes: list[Minute]
    p50: float | None
    p95: float | None
    queued: int
    due: int
    oldest_due: datetime | None
    running: int
    slots: list[SlotUse] = field(default_factory=list)

    @property
    def started(self) -> int:
        return sum(minute.started for minute in self.minutes)

    @property
    def completed(self) -> int:
        return sum(minute.completed for minute in self.minutes)

    @property
    def failed(self) -> int:
        return sum(minute.failed for minute in self.minutes)

    @property
    def oldest_due_seconds(self) -> float | None:
        """Return how long the oldest due run has waited, in seconds."""
        if self.oldest_due is None:
            return None
        return max((self.now - self.oldest_due).total_seconds(), 0.0)


def percentile(values: list[float], fraction: float) -> float | None:
    """Return the `fraction` percentile of `values`, interpolated linearly; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def runs(function_id: str | None = None) -> QuerySet[FunctionRun]:
    """Return the runs the figures cover: all, or one function's."""
    queryset = FunctionRun.objects.order_by()
    return queryset if function_id is None else queryset.filter(function_id=function_id)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def per_minute(queryset: QuerySet[FunctionRun], since: datetime, now: datetime) -> list[Minute]:
    """Return a Minute per minute from `since` to `now`, counted in two grouped queries."""
    minutes: dict[datetime, Minute] = {}
    moment = minute_of(since)
    while moment <= now:
        minutes[moment] = Minute(at=moment)
        moment += timedelta(minutes=1)
    started = (
        queryset.filter(started_at__gte=since, started_at__lte=now)
        .annotate(minute=TruncMinute("started_at"))
        .values_list("minute")
        .annotate(runs=Count("id"))
    )
    for moment, count in started:
        if moment in minutes:
            minutes[moment].started = count
    finished = (
        queryset.filter(finished_at__gte=since, finished_at__lte=now)
        .filter(status__in=[RunStatus.COMPLETED, RunStatus.FAILED])
        .annotate(minute=TruncMinute("finished_at"))
        .values_list("minute", "status")
        .annotate(runs=Count("id"))
    )
    for moment, status, count in finished:
        if moment in minutes:
            setattr(minutes[moment], status.lower(), count)
    return list(minutes.values())


def durations(queryset: QuerySet[FunctionRun], since: datetime, now: datetime) -> list[tuple]:
    """Return (finished_at, seconds, function_id) of the window's newest finished runs."""
    rows = (
        queryset.filter(finished_at__gte=since, finished_at__lte=now, started_at__isnull=False)
        .filter(status__in=[RunStatus.COMPLETED, RunStatus.FAILED])
        .order_by("-finished_at")
        .values_list("finished_at", "started_at", "function_id")[:DURATION_SAMPLE]
    )
    return [(end, max((end - start).total_seconds(), 0.0), slug) for end, start, slug in rows]


def due_filter(now: datetime) -> Q:
    """Runs a worker would claim now: claimable and due (a RUNNING one's lease has ended)."""
    return Q(status__in=CLAIMABLE_STATUSES, available_at__lte=now)


def slots_in_use(queryset: QuerySet[FunctionRun], now: datetime) -> list[SlotUse]:
    """Return each concurrency key held by executing runs, with its slots in use and limit."""
    held: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    executing = queryset.filter(status=RunStatus.RUNNING, locked_until__gt=now)
    for key_field, limit_field in (
        ("concurrency_key", "concurrency_limit"),
        ("concurrency_key_2", "concurrency_limit_2"),
    ):
        rows = (
            executing.exclude(**{key_field: ""})
            .values_list(key_field)
            .annotate(runs=Count("id"), limit=Min(limit_field))
        )
        for key, count, limit in rows:
            held[key][0] += count
            held[key][1] = limit
    return [SlotUse(key, count, limit) for key, (count, limit) in sorted(held.items())]


def figures(now: datetime, *, minutes: int = 60, function_id: str | None = None) -> Figures:
    """Return the figures of the last `minutes` minutes up to `now`."""
    queryset = runs(function_id)
    since = minute_of(now) - timedelta(minutes=minutes - 1)
    chart = per_minute(queryset, since, now)
    sample = durations(queryset, since, now)
    by_minute: dict[datetime, list[float]] = defaultdict(list)
    for end, seconds, _ in sample:
        by_minute[minute_of(end)].append(seconds)
    for minute in chart:
        minute.p50 = percentile(by_minute.get(minute.at, []), 0.5)
        minute.p95 = percentile(by_minute.get(minute.at, []), 0.95)
    seconds = [seconds for _, seconds, _ in sample]
    backlog = queryset.filter(status__in=CLAIMABLE_STATUSES).aggregate(
        queued=Count("id", filter=Q(status=RunStatus.QUEUED)),
        due=Count("id", filter=due_filter(now)),
        oldest_due=Min("available_at", filter=due_filter(now)),
        running=Count("id", filter=Q(status=RunStatus.RUNNING, locked_until__gt=now)),
    )
    return Figures(
        now=now,
        since=since,
        minutes=chart,
        p50=percentile(seconds, 0.5),
        p95=percentile(seconds, 0.95),
        queued=backlog["queued"],
        due=backlog["due"],
        oldest_due=backlog["oldest_due"],
        running=backlog["running"],
        slots=slots_in_use(queryset, now),
    )


@dataclass
class FunctionFigures:
    """One function's figures over a short window, for the Prometheus endpoint."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)
    queued: int = 0
    due: int = 0
    oldest_due: datetime | None = None
    running: int = 0


def figures_by_function(now: datetime, window: timedelta) -> dict[str, FunctionFigures]:
    """Return each function's figures over `window` up to `now`, in one query per figure."""
    since = now - window
    found: dict[str, FunctionFigures] = defaultdict(FunctionFigures)
    queryset = runs()
    started = queryset.filter(started_at__gte=since, started_at__lte=now)
    for slug, count in started.values_list("function_id").annotate(runs=Count("id")):
        found[slug].started = count
    finished = queryset.filter(
        finished_at__gte=since,
        finished_at__lte=now,
        status__in=[RunStatus.COMPLETED, RunStatus.FAILED],
    )
    for slug, status, count in finished.values_list("function_id", "status").annotate(
        runs=Count("id")
    ):
        setattr(found[slug], status.lower(), count)
    for _, seconds, slug in durations(queryset, since, now):
        found[slug].durations.append(seconds)
    backlog = (
        queryset.filter(status__in=CLAIMABLE_STATUSES)
        .values_list("function_id")
        .annotate(
            queued=Count("id", filter=Q(status=RunStatus.QUEUED)),
            due=Count("id", filter=due_filter(now)),
            oldest_due=Min("available_at", filter=due_filter(now)),
            running=Count("id", filter=Q(status=RunStatus.RUNNING, locked_until__gt=now)),
        )
    )
    for slug, queued, due, oldest_due, running in backlog:
        figures = found[slug]
        figures.queued, figures.due, figures.oldest_due, figures.running = (
            queued,
            due,
            oldest_due,
            running,
        )
    return dict(found)
