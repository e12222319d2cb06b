"""A run's timeline: each step, sleep, wait, invoke and defer as a bar on the run's time axis."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from ..engine.attempts import failed_attempts
from ..enums import RunStatus, StepOp, StepStatus, WaitKind
from ..models import DeferIntent, FunctionRun, StepRun, Wait
from ..payload_access import HIDDEN_TEXT, UNREADABLE_KEY, read_payload
from .display import (
    STATUS_COLOURS,
    event_id_link_html,
    run_id_link_html,
)
from .times import clock_text, duration_text, moment_text, offset_text, ticks

# Bars drawn at most; the steps table below the timeline lists every step. Drawing is cheap, but
# a page of 10,000 bars is no help to a reader, and the list scrolls past a screenful anyway.
MAX_BARS = 500
# Rows drawn before the rest fold away under "show more"; attempts listed before theirs do.
OPEN_ROWS = 40
OPEN_ATTEMPTS = 3
# A bar narrower than this would vanish; instants (a defer call, a step of 0 ms) get this width.
_MIN_WIDTH = 0.4
# Open-ended steps and waits are drawn up to the axis end, in the colour of their status.
_KINDS = {
    StepOp.RUN: "step",
    StepOp.SLEEP: "sleep",
    StepOp.WAIT_FOR_EVENT: "wait",
    StepOp.INVOKE: "invoke",
    StepOp.SEND_EVENT: "send",
}


@dataclass
class Mark:
    """One failed attempt of a step: when it ran, when it failed, and its error."""

    attempt: int
    started: datetime
    failed: datetime
    error: str
    left: float = 0.0
    width: float = 0.0
    at: float = 0.0

    @property
    def time_text(self) -> str:
        return clock_text(self.failed)

    @property
    def title(self) -> str:
        """Return the tooltip: attempt, when it failed, how long it ran, and its error."""
        text = gettext("attempt %(n)d failed at %(moment)s after %(span)s") % {
            "n": self.attempt,
            "moment": moment_text(self.failed),
            "span": duration_text(self.started, self.failed),
        }
        return f"{text}\n{self.error}" if self.error else text


@dataclass
class Bar:
    """One row of the timeline: what it is, when it ran, how it ended, and where it leads."""

    kind: str
    label: str
    status: str
    status_label: str
    start: datetime
    end: datetime
    attempts: int = 1
    error: str = ""
    notes: list[str] = field(default_factory=list)
    links: list[SafeString] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    offset: str = ""
    left: float = 0.0
    width: float = 0.0

    @property
    def colour(self) -> str:
        return STATUS_COLOURS.get(self.status, "#6c757d")

    @property
    def open_marks(self) -> list[Mark]:
        return self.marks[-OPEN_ATTEMPTS:] if len(self.marks) > OPEN_ATTEMPTS else self.marks

    @property
    def folded_marks(self) -> list[Mark]:
        return self.marks[:-OPEN_ATTEMPTS] if len(self.marks) > OPEN_ATTEMPTS else []

    @property
    def title(self) -> str:
        """Return the tooltip: kind, label, status, times, attempts and error."""
        parts = [f"{self.kind} {self.label}: {self.status_label}"]
        parts.append(f"{moment_text(self.start)} → {moment_text(self.end)}")
        if self.offset:
            parts.append(gettext("starts at %(offset)s") % {"offset": self.offset})
        duration = duration_text(self.start, self.end)
        if duration:
            parts.append(duration)
        if self.attempts > 1:
            parts.append(ngettext("%d attempt", "%d attempts", self.attempts) % self.attempts)
        parts.extend(mark.title for mark in self.marks)
        parts.extend(self.notes)
        if self.error:
            parts.append(self.error)
        return "\n".join(parts)


@dataclass
class Timeline:
    """The bars of one run on an axis from its creation to its end (or now), with a count."""

    start: datetime
    end: datetime
    bars: list[Bar]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.bars)

    @property
    def span_text(self) -> str | None:
        return duration_text(self.start, self.end)

    @property
    def start_text(self) -> str:
        return moment_text(self.start)

    @property
    def end_text(self) -> str:
        return moment_text(self.end)

    @property
    def ticks(self) -> list[tuple[float, str]]:
        """Return (percent, "+250 ms") marks at round offsets from the run's creation."""
        return ticks(self.end - self.start)

    @property
    def open_bars(self) -> list[Bar]:
        return self.bars[:OPEN_ROWS]

    @property
    def folded_bars(self) -> list[Bar]:
        return self.bars[OPEN_ROWS:]


def error_text(error: object) -> str:
    """Return a stored error as "Name: message", or "" for none."""
    if not isinstance(error, dict):
        return "" if error is None else str(error)
    if UNREADABLE_KEY in error:
        return str(error[UNREADABLE_KEY])
    return f"{error.get('name', 'Error')}: {error.get('message', '')}"


def build_timeline(
    run: FunctionRun, *, payloads_visible: bool = True, now: datetime | None = None
) -> Timeline:
    """Return the bars of `run` (at most MAX_BARS), placed as percentages of its span.

    Without `payloads_visible`, a failed step's bar says its error is hidden instead of naming it.
    """
    now = now or timezone.now()
    axis_end = run.finished_at or now
    steps = list(StepRun.objects.filter(run=run).order_by("id")[:MAX_BARS])
    step_count = StepRun.objects.filter(run=run).count() if len(steps) == MAX_BARS else len(steps)
    # Waits by step id: the matched event, the invoked run, the outcome. Cancel rules are no step.
    waits = {
        wait.step_key: wait
        for wait in Wait.objects.filter(run=run)
        .exclude(kind=WaitKind.CANCEL)
        .only("step_key", "kind", "event_name", "event", "child_run", "outcome")
    }
    room = max(MAX_BARS - len(steps), 0)
    intents = DeferIntent.objects.filter(run=run)
    defers = list(
        intents.annotate(
            deferred_run_pk=F("deferred_run__id"),
            deferred_run_status=F("deferred_run__status"),
            deferred_run_finished_at=F("deferred_run__finished_at"),
        )
        .only("defer_id", "function_id", "status", "created_at")
        .order_by("id")[:room]
    )
    defer_count = intents.count() if len(defers) == room else len(defers)
    bars = [step_bar(step, waits.get(step.step_key), axis_end) for step in steps]
    if not payloads_visible:
        for bar in bars:
            if bar.error:
                bar.error = str(HIDDEN_TEXT)
            for mark in bar.marks:
                mark.error = str(HIDDEN_TEXT)
    bars.extend(defer_bar(intent, axis_end) for intent in defers)
    place(bars, run.created_at, axis_end)
    return Timeline(start=run.created_at, end=axis_end, bars=bars, total=step_count + defer_count)


def step_bar(step: StepRun, wait: Wait | None, axis_end: datetime) -> Bar:
    """Return the bar of one step: from its first attempt to its end, or to the axis end."""
    error = read_payload(step, "error")
    marks = attempt_marks(step, error)
    moments = (step.created_at, step.started_at, *(mark.started for mark in marks))
    start = min(moment for moment in moments if moment is not None)
    open_ended = step.status in (StepStatus.SLEEPING, StepStatus.WAITING)
    if step.op == StepOp.SLEEP:
        end = step.finished_at or min(step.wake_at or axis_end, axis_end)
    elif open_ended or step.finished_at is None:
        end = axis_end
    else:
        end = step.finished_at
    bar = Bar(
        kind=_KINDS.get(step.op, "step"),
        label=step.step_key,
        status=step.status,
        status_label=step.get_status_display(),
        start=start,
        end=max(end, start),
        attempts=step.attempts,
        # A completed step's error holds only the attempts that failed before it succeeded.
        error="" if step.status == StepStatus.COMPLETED else error_text(error),
        marks=marks,
    )
    if step.op == StepOp.SLEEP and step.wake_at is not None:
        bar.notes.append(gettext("wakes at %(moment)s") % {"moment": moment_text(step.wake_at)})
    if wait is not None:
        if wait.kind == WaitKind.EVENT:
            bar.notes.append(gettext("for %(name)s") % {"name": wait.event_name})
        if wait.outcome:
            bar.notes.append(wait.get_outcome_display())
        if wait.event_id:
            bar.links.append(
                format_html(gettext("matched event {}"), event_id_link_html(wait.event_id))
            )
        if wait.child_run_id:
            bar.links.append(
                format_html(gettext("invoked run {}"), run_id_link_html(wait.child_run_id))
            )
    return bar


def attempt_marks(step: StepRun, error: object) -> list[Mark]:
    """Return a mark per failed attempt the step's error records, oldest first."""
    marks = []
    for entry in failed_attempts(error):
        failed = parse_datetime(str(entry.get("failed_at", "")))
        if failed is None:
            continue
        started = parse_datetime(str(entry.get("started_at", ""))) or failed
        text = error_text({"name": entry.get("name"), "message": entry.get("message")})
        marks.append(Mark(int(entry.get("attempt") or 0), started, failed, text))
    failing = step.status in (StepStatus.ERRORED, StepStatus.FAILED)
    if not marks and failing and step.finished_at is not None and isinstance(error, dict):
        # A row written before attempts were kept: its error is its last failed attempt's.
        started = step.started_at or step.finished_at
        marks.append(Mark(step.attempts, started, step.finished_at, error_text(error)))
    return marks


def defer_bar(intent: DeferIntent, axis_end: datetime) -> Bar:
    """Return the bar of one defer: from the ctx.defer call to its deferred run's end."""
    run_pk = intent.deferred_run_pk  # type: ignore[attr-defined]
    finished = intent.deferred_run_finished_at  # type: ignore[attr-defined]
    end = intent.created_at
    if run_pk is not None:
        # A deferred run starts after its parent finished; its bar is cut at the axis end.
        end = finished or axis_end
    bar = Bar(
        kind="defer",
        label=intent.defer_id,
        status=intent.status,
        status_label=intent.get_status_display(),
        start=intent.created_at,
        end=max(end, intent.created_at),
        notes=[gettext("deferred function %(slug)s") % {"slug": intent.function_id}],
    )
    if run_pk is not None:
        status = RunStatus(intent.deferred_run_status).label  # type: ignore[attr-defined]
        bar.links.append(
            format_html(gettext("deferred run {} {}"), run_id_link_html(run_pk), status)
        )
        bar.notes.append(gettext("deferred run %(status)s") % {"status": status})
    return bar


def place(bars: list[Bar], start: datetime, end: datetime) -> None:
    """Set each bar's left offset and width as percentages of the axis from `start` to `end`."""
    span = max((end - start).total_seconds(), 1e-6)
    for bar in bars:
        left = (bar.start - start).total_seconds() / span * 100
        right = (bar.end - start).total_seconds() / span * 100
        left = min(max(left, 0.0), 100.0 - _MIN_WIDTH)
        right = min(max(right, left + _MIN_WIDTH), 100.0)
        bar.left, bar.width = round(left, 3), round(right - left, 3)
        bar.offset = offset_text(max((bar.start - start).total_seconds(), 0.0) * 1000)
        for mark in bar.marks:
            first = min(max((mark.started - start).total_seconds() / span * 100, 0.0), 100.0)
            last = min(max((mark.failed - start).total_seconds() / span * 100, first), 100.0)
            mark.left, mark.width, mark.at = round(first, 3), round(last - first, 3), round(last, 3)
