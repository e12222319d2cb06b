"""List filters of the event, run, defer and outbox lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..enums import RunStatus
from ..functions import INVOKED_EVENT, SCHEDULED_EVENT, DeferredFunction, Function
from ..models import DeferIntent, Event, FunctionRun
from ..registry import default_registry
from .flow import concurrency_match, held_concurrency_keys

# The concurrency-key filter offers at most this many of the keys executing runs hold.
_OFFERED_KEYS = 20


class EventNamePrefixFilter(admin.SimpleListFilter):
    """Offer each event-name prefix up to its first slash ("shop/", "inngest/")."""

    title = _("name prefix")
    parameter_name = "name_prefix"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = Event.objects.order_by().values_list("name", flat=True).distinct()
        prefixes = {name.split("/", 1)[0] + "/" if "/" in name else name for name in names}
        return [(prefix, prefix) for prefix in sorted(prefixes)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(name__startswith=self.value())
        return queryset


class FieldSetFilter(admin.SimpleListFilter):
    """Split rows whose `field` is set (done) from those where it is still null (waiting)."""

    field = ""
    done_label = _("Done")
    waiting_label = _("Not yet")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", self.done_label), ("no", self.waiting_label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class DispatchedFilter(FieldSetFilter):
    """Split events the dispatcher has matched to triggers from those still waiting."""

    title = _("dispatched")
    parameter_name = "dispatched"
    field = "dispatched_at"
    done_label = _("Dispatched")
    waiting_label = _("Not dispatched yet")


class FunctionSlugFilter(admin.SimpleListFilter):
    """Offer the registered slugs `offers` accepts, plus any slug that has `model` rows stored."""

    model: type[Model]

    def offers(self, function: Function) -> bool:
        """Return True if the list offers this registered function."""
        return True

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        slugs = {function.id for function in default_registry if self.offers(function)}
        # order_by() first: the default ordering would otherwise join the DISTINCT.
        slugs.update(self.model.objects.order_by().values_list("function_id", flat=True).distinct())
        return [(slug, slug) for slug in sorted(slugs)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(function_id=self.value())
        return queryset


class FunctionFilter(FunctionSlugFilter):
    """Offer every registered function slug plus any slug that has runs in the database."""

    title = _("function")
    parameter_name = "function"
    model = FunctionRun


class StartedByFilter(admin.SimpleListFilter):
    """Split runs by what started them: a defer, an invoke, cron, or any other event."""

    title = _("started by")
    parameter_name = "started_by"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("defer", _("Defer")),
            ("invoke", _("Invoke")),
            ("cron", _("Cron")),
            ("event", _("Event")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        not_deferred = queryset.filter(defer_intent__isnull=True)
        if self.value() == "defer":
            return queryset.filter(defer_intent__isnull=False)
        if self.value() == "invoke":
            return not_deferred.filter(event__name=INVOKED_EVENT)
        if self.value() == "cron":
            return not_deferred.filter(event__name=SCHEDULED_EVENT)
        if self.value() == "event":
            return not_deferred.exclude(event__name__in=[SCHEDULED_EVENT, INVOKED_EVENT])
        return queryset


class FlowControlFilter(admin.SimpleListFilter):
    """Split runs flow control skipped from those it delayed or reordered (noted ones)."""

    title = _("flow control")
    parameter_name = "flow"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("skipped", _("Skipped by flow control")),
            ("delayed", _("Delayed by flow control")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        noted = queryset.exclude(flow_note="")
        if self.value() == "skipped":
            return noted.filter(status=RunStatus.SKIPPED)
        if self.value() == "delayed":
            return noted.exclude(status=RunStatus.SKIPPED)
        return queryset


class ConcurrencyKeyFilter(admin.SimpleListFilter):
    """Offer the concurrency keys executing runs hold; any key can be given in the URL."""

    title = _("concurrency key")
    parameter_name = "concurrency_key"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        keys = set(held_concurrency_keys()[:_OFFERED_KEYS])
        if self.value():
            keys.add(self.value())  # so a key taken from a run page stays shown as chosen
        return [(key, key) for key in sorted(keys)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(concurrency_match(self.value()))
        return queryset


class DeferTargetFilter(FunctionSlugFilter):
    """Offer every registered deferred function slug plus any slug that has defers stored."""

    title = _("deferred function")
    parameter_name = "target"
    model = DeferIntent

    def offers(self, function: Function) -> bool:
        return isinstance(function, DeferredFunction)


class RelayedFilter(FieldSetFilter):
    """Split outbox rows the relay has turned into runs from those still waiting."""

    title = _("relayed")
    parameter_name = "relayed"
    field = "relayed_at"
    done_label = _("Relayed")
    waiting_label = _("Not relayed yet")


class DeferredFilter(FieldSetFilter):
    """Split runs a ctx.defer started from all the others."""

    title = _("deferred")
    parameter_name = "deferred"
    field = "defer_intent"
    done_label = _("Started by a defer")
    waiting_label = _("Not deferred")


class CreatedWithinFilter(admin.SimpleListFilter):
    """Keep runs created within a recent window; any range can be given in the URL instead.

    `?created_at__gte=2024-05-01T10:00:00Z&created_at__lt=2024-05-01T11:00:00Z` works too: the
    admin takes lookups on the run's own fields from the query string.
    """

    title = _("created")
    parameter_name = "created"
    windows = {
        "15m": (timedelta(minutes=15), _("Last 15 minutes")),
        "1h": (timedelta(hours=1), _("Last hour")),
        "24h": (timedelta(hours=24), _("Last 24 hours")),
        "7d": (timedelta(days=7), _("Last 7 days")),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(value, label) for value, (_window, label) in self.windows.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        window = self.windows.get(self.value() or "")
        if window is None:
            return queryset
        return queryset.filter(created_at__gte=timezone.now() - window[0])
