"""Events, runs, steps, keys, cron state and worker heartbeats, with their hot queries."""

from __future__ import annotations

from .defers import DeferIntent, OutboxMessage
from .events import Event, EventKey, EventQuerySet, IdempotencyKey, RunEvent
from .flow import FlowState
from .pauses import FunctionPause, is_paused, paused_function_ids
from .queue import FunctionRunQuerySet
from .runs import FunctionRun
from .schedules import CronSchedule
from .steps import HeldMemo, StepRun
from .waits import Wait, WaitKey, WaitQuerySet
from .workers import WorkerHeartbeat, WorkerState

__all__ = [
    "CronSchedule",
    "DeferIntent",
    "Event",
    "EventKey",
    "EventQuerySet",
    "FlowState",
    "FunctionPause",
    "FunctionRun",
    "FunctionRunQuerySet",
    "HeldMemo",
    "IdempotencyKey",
    "OutboxMessage",
    "RunEvent",
    "StepRun",
    "Wait",
    "WaitKey",
    "WaitQuerySet",
    "WorkerHeartbeat",
    "WorkerState",
    "is_paused",
    "paused_function_ids",
]
