"""Waits: register wait_for_event, invoke and cancel-rule waits, and resolve them by index."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import transaction

from . import clock
from .encryption import enabled as encryption_enabled
from .encryption import hash_if_enabled, keyed_hashes
from .enums import RunStatus, StepStatus, WaitKind, WaitOutcome
from .exceptions import DecryptionError
from .expressions import Expression, InvalidExpressionError
from .ids import new_id
from .models import Event, FunctionRun, StepRun, Wait, WaitKey
from .names import MAX_NAME_LENGTH

logger = logging.getLogger(__name__)

_MISSING = object()
# A stored match value no event can produce: the trigger lacked the field, so nothing matches.
NO_MATCH = "<missing>"
# `event.data.x == async.data.x` (either way round) is a match on data.x: indexed, not scanned.
_EQUALITY = re.compile(
    r"^\s*(event|async)\.([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*==\s*"
    r"(event|async)\.([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*$"
)


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Expression:
    return Expression(source)


def lookup(event_json: dict[str, Any], path: str) -> Any:
    """Return the value at `path` ("data.user_id") in an event, or _MISSING."""
    value: Any = event_json
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def encode_value(value: Any) -> str:
    """Return the indexed form of a match value: its JSON, hashed when long."""
    if value is _MISSING:
        return NO_MATCH
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > MAX_NAME_LENGTH:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def index_value(value: Any) -> str:
    """Return a wait's stored match value: encode_value's, a keyed hash when encryption is on."""
    encoded = encode_value(value)
    return encoded if encoded == NO_MATCH else hash_if_enabled(encoded)


def index_values(encoded: str) -> list[str]:
    """Return every form a pending wait may store `encoded` in: hashed under any key, or clear.

    Old keys and clear values match too, so waits stored before a key was added, or before
    encryption was turned on, still resolve until `inngest_reencrypt` rehashes them.
    """
    if not encoded or not encryption_enabled():
        return [encoded]
    return [*keyed_hashes(encoded), encoded]


def match_key_of(expression: str | None) -> str | None:
    """Return the field an `event.X == async.X` expression matches on, or None."""
    found = _EQUALITY.match(expression or "")
    sides = {found.group(1), found.group(3)} if found else set()
    if found and sides == {"event", "async"} and found.group(2) == found.group(4):
        return found.group(2)
    return None


def new_wait(
    run: FunctionRun,
    trigger_json: dict[str, Any],
    *,
    kind: WaitKind,
    event_name: str = "",
    step_key: str = "",
    expression: str | None = None,
    match: str | None = None,
    after_event_id: str = "",
    expires_at: datetime | None = None,
    child_run: FunctionRun | None = None,
) -> Wait:
    """Return an unsaved wait; a match's value is read from the run's trigger event now."""
    key = match or match_key_of(expression) or ""
    return Wait(
        run=run,
        kind=kind,
        step_key=step_key,
        event_name=event_name,
        match_key=key,
        match_value=index_value(lookup(trigger_json, key)) if key else "",
        expression=expression or "",
        after_event_id=after_event_id,
        expires_at=expires_at,
        child_run=child_run,
    )


def save_waits(waits: list[Wait]) -> None:
    """Store waits and the match keys incoming events look them up by."""
    Wait.objects.bulk_create(waits)
    # "" stands for waits with no match key: an event whose name has no key row skips lookups.
    keys = {(w.event_name, w.match_key) for w in waits if w.event_name}
    if keys:
        WaitKey.objects.bulk_create(
            [WaitKey(event_name=name, match_key=key) for name, key in sorted(keys)],
            ignore_conflicts=True,
        )


def cancel_rule_waits(runs: Iterable[tuple[FunctionRun, Any, Event]]) -> list[Wait]:
    """Return the cancel-rule waits of new runs, given as (run, function, trigger event)."""
    waits = []
    for run, function, trigger in runs:
        rules = getattr(function, "cancel", None) or []
        if not rules:
            continue
        trigger_json = trigger.to_json()
        for rule in rules:
            waits.append(
                new_wait(
                    run,
                    trigger_json,
                    kind=WaitKind.CANCEL,
                    event_name=rule.event,
                    expression=rule.if_exp,
                    # Only events received after the trigger count.
                    after_event_id=trigger.pk,
                    expires_at=(clock.now() + rule.timeout_delta) if rule.timeout else None,
                )
            )
    return waits


class WaitResolver:
    """Resolves the waits that a batch of new events satisfy, in the dispatch transaction."""

    def __init__(self, now: datetime, *, keys: dict[str, list[str]] | None = None) -> None:
        self.now = now
        # `keys`: the match keys of some event names, read already (see dispatch_lookups).
        self._keys: dict[str, list[str]] = dict(keys or {})

    def _keys_for(self, name: str) -> list[str]:
        if name not in self._keys:
            self._keys[name] = list(
                WaitKey.objects.filter(event_name=name).values_list("match_key", flat=True)
            )
        return self._keys[name]

    def candidates(self, event: Event, event_json: dict[str, Any]) -> list[Wait]:
        """Return the pending waits `event` may satisfy: one index lookup per match key."""
        found: list[Wait] = []
        for key in self._keys_for(event.name):
            value = "" if key == "" else encode_value(lookup(event_json, key))
            if value == NO_MATCH:
                continue
            found.extend(
                Wait.objects.pending()
                .filter(
                    event_name=event.name,
                    match_key=key,
                    match_value__in=index_values(value),
                    after_event_id__lt=event.pk,
                )
                .exclude(expires_at__lte=self.now)
                .select_related("run__event")
                .order_by()
            )
        return found

    def resolve(self, event: Event) -> int:
        """Resolve the waits and apply the cancel rules `event` satisfies; return how many."""
        event_json = event.to_json()
        resolved = 0
        for wait in self.candidates(event, event_json):
            try:
                if wait.expression and not _compiled(wait.expression).matches(
                    {"event": wait.run.event.to_json(), "async": event_json}
                ):
                    continue
            except DecryptionError as exc:
                # One unreadable wait must not stop the event resolving the others.
                logger.error(
                    "Wait skipped: %s wait_id=%s run_id=%s event_id=%s",
                    exc,
                    wait.pk,
                    wait.run_id,
                    event.pk,
                    extra={"run_id": wait.run_id, "action": "wait_unreadable"},
                )
                continue
            except InvalidExpressionError as exc:
                # wait_for_event checks its expression, so the row was edited around it; the
                # run waits on until its timeout, and no other wait or event is held up.
                logger.error(
                    "Wait skipped: its if expression is invalid run_id=%s wait_id=%s "
                    "event_id=%s: %s",
                    wait.run_id,
                    wait.pk,
                    event.pk,
                    exc,
                    extra={"run_id": wait.run_id, "action": "wait_skipped"},
                )
                continue
            outcome = WaitOutcome.EVENT
            if not Wait.resolve(wait.pk, now=self.now, outcome=outcome, event_id=event.pk):
                continue
            resolved += 1
            if wait.kind == WaitKind.CANCEL:
                FunctionRun.request_cancel(
                    wait.run_id,
                    now=self.now,
                    reason=f"cancel rule: event {event.name} ({event.pk})",
                )
                _log("Run cancelled by event", wait, event)
                continue
            StepRun.objects.filter(run_id=wait.run_id, step_key=wait.step_key).update(
                status=StepStatus.COMPLETED, output=event_json, finished_at=self.now
            )
            FunctionRun.wake(wait.run_id, now=self.now)
            _log("Wait resolved by event", wait, event)
        return resolved


def _log(message: str, wait: Wait, event: Event) -> None:
    logger.info(
        message + " run_id=%s step=%s event_id=%s",
        wait.run_id,
        wait.step_key,
        event.pk,
        extra={"run_id": wait.run_id, "event_id": event.pk, "action": "wait_resolved"},
    )


def finish_invoked(child: FunctionRun, *, status: str, output: Any, error: Any) -> None:
    """Hand an invoked run's outcome to the run waiting on it; call in the child's finalize."""
    now = clock.now()
    wait = Wait.objects.pending().filter(kind=WaitKind.INVOKE, child_run_id=child.pk).first()
    if wait is None or not Wait.resolve(wait.pk, now=now, outcome=WaitOutcome.FINISHED):
        return
    step = StepRun.objects.filter(run_id=wait.run_id, step_key=wait.step_key)
    if status == RunStatus.COMPLETED:
        step.update(status=StepStatus.COMPLETED, output=output, finished_at=now)
    else:
        reason = "was cancelled" if status == RunStatus.CANCELLED else "failed"
        message = f"invoked function {child.function_id} (run {child.pk}) {reason}"
        if error and error.get("message"):
            message += f": {error['message']}"
        step.update(status=StepStatus.FAILED, error=invoke_error(message), finished_at=now)
    FunctionRun.wake(wait.run_id, now=now)


def invoke_error(message: str) -> dict[str, Any]:
    """Return the stored error of an invoke step that failed (a NonRetriableError)."""
    return {"name": "NonRetriableError", "message": message, "stack": ""}


def expire(run_id: str, step_key: str, *, now: datetime) -> bool:
    """Time out a step's pending wait; False if an event or invoked run resolved it first."""
    wait = Wait.objects.pending().filter(run_id=run_id, step_key=step_key).first()
    if wait is None:
        return False
    if not Wait.resolve(wait.pk, now=now, outcome=WaitOutcome.TIMEOUT):
        return False
    step = StepRun.objects.filter(run_id=run_id, step_key=step_key)
    if wait.kind == WaitKind.INVOKE:
        message = f"invoke {step_key!r} timed out; the invoked run goes on"
        step.update(status=StepStatus.FAILED, error=invoke_error(message), finished_at=now)
    else:
        step.update(status=StepStatus.COMPLETED, output=None, finished_at=now)
    return True


def end_waits(run_id: str, *, now: datetime) -> int:
    """Resolve a finishing run's pending waits (cancel rules, abandoned waits)."""
    return (
        Wait.objects.pending()
        .filter(run_id=run_id)
        .update(resolved_at=now, outcome=WaitOutcome.RUN_ENDED)
    )


def after_id() -> str:
    """Return an event id boundary: events sent from now on have greater ids."""
    return new_id()


def rehash_pending(*, dry_run: bool = False) -> dict[str, int]:
    """Store pending waits' match values as keyed hashes under the first key; return counts.

    A value is recomputed from the run's trigger event, and replaced only if it is that
    event's value in some other form (clear, or hashed under an older key).
    """
    counts = {"rehashed": 0, "current": 0, "kept": 0, "unreadable": 0}
    pending = (
        Wait.objects.pending()
        .exclude(match_key="")
        .exclude(match_value=NO_MATCH)
        .select_related("run__event")
        .order_by("pk")
    )
    for wait in pending.iterator(chunk_size=500):
        try:
            value = lookup(wait.run.event.to_json(), wait.match_key)
        except DecryptionError:
            counts["unreadable"] += 1
            continue
        encoded, target = encode_value(value), index_value(value)
        if wait.match_value == target:
            counts["current"] += 1
        elif wait.match_value in index_values(encoded):
            # Compare-and-set: an event may resolve the wait meanwhile; that is fine too.
            if not dry_run:
                Wait.objects.filter(pk=wait.pk, match_value=wait.match_value).update(
                    match_value=target
                )
            counts["rehashed"] += 1
        else:
            # Computed from an event the run has since swapped (debounce): left as it is.
            counts["kept"] += 1
    return counts


def catch_up(wait: Wait, *, now: datetime) -> bool:
    """Resolve a just-stored event wait by an event sent while it was stored; True if one did.

    A wait counts events with ids after its boundary, taken before its transaction; an event
    sent in between may have been dispatched before that transaction committed, by a
    dispatch that could not see the wait yet. Looked at once more here, it is not missed.
    """
    arrived = Event.objects.filter(pk__gt=wait.after_event_id, name=wait.event_name).order_by("pk")
    for event in arrived:
        with transaction.atomic():
            WaitResolver(now).resolve(event)
        if Wait.objects.filter(pk=wait.pk, resolved_at__isnull=False).exists():
            return True
    return False


def catch_up_cancel_rules(waits: Iterable[Wait], *, now: datetime) -> int:
    """Apply just-stored cancel rules to events dispatched before they could be seen.

    A cancel rule counts events after its run's trigger. One such event may have been
    dispatched already: by another worker while the rule's transaction was open, or before
    the trigger itself (its id is taken before its send commits). Call after the rules
    commit; events dispatched later see them anyway. Returns how many rules it resolved.
    """
    boundaries: dict[str, str] = {}
    for wait in waits:
        if wait.kind == WaitKind.CANCEL and wait.event_name:
            seen = boundaries.get(wait.event_name)
            boundaries[wait.event_name] = min(seen or wait.after_event_id, wait.after_event_id)
    resolved = 0
    for name, after in sorted(boundaries.items()):
        arrived = Event.objects.filter(pk__gt=after, name=name, dispatched_at__isnull=False)
        for event in arrived.order_by("pk"):
            with transaction.atomic():
                resolved += WaitResolver(now).resolve(event)
    return resolved
