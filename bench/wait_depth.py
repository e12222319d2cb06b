"""Measure how matching one event against pending waits grows with their number, on both databases.

Run from the repository root:

    python -m bench.wait_depth --db both --small 10 --large 10000 --repeats 3

Each database is measured in its own child process against a throwaway database. A sample loads
`depth` waiting runs, each with a pending `wait_for_event` on one event name, then times the
dispatch of events that resolve exactly one wait (rolled back afterwards, so the depth holds):

- `match`: waits made with `match="data.order_id"`, found through the partial index on
  (event name, match field, match value);
- `if`: waits made with `if_exp="event.data.order_id == async.data.order_id"`, which the engine
  turns into the same indexed match;
- `expression`: waits whose `if_exp` is no equality of one field (`async.data.total >
  event.data.floor && ...`), so every pending wait of the name is read and its CEL evaluated:
  linear by design, shown for contrast.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

KINDS = ("match", "if", "expression")
REPLY = "bench/wait.reply"
TRIGGER = "bench/wait.requested"
DISPATCHES = 20


def _wait_shape(kind: str) -> tuple[str | None, str | None]:
    """Return (match, if_exp) as a `wait_for_event` of this kind passes them."""
    if kind == "match":
        return "data.order_id", None
    if kind == "if":
        return None, "event.data.order_id == async.data.order_id"
    return None, "async.data.total > event.data.floor && async.data.order_id == event.data.mine"


def load(kind: str, depth: int) -> list[str]:
    """Store `depth` waiting runs with one pending wait each (untimed); return their order ids."""
    from django.db import connection, transaction

    from inngest_django import clock
    from inngest_django.enums import RunStatus, StepOp, StepStatus, WaitKind
    from inngest_django.ids import new_id
    from inngest_django.models import Event, FunctionRun, StepRun
    from inngest_django.waits import after_id, new_wait, save_waits

    now = clock.now()
    until = now + timedelta(hours=1)
    match, if_exp = _wait_shape(kind)
    ids = [f"order-{index:06d}" for index in range(depth)]
    events = [
        Event(
            id=new_id(),
            name=TRIGGER,
            data={"order_id": order, "mine": order, "floor": 10},
            ts=int(time.time() * 1000),
            dispatched_at=now,
        )
        for order in ids
    ]
    runs = [
        FunctionRun(
            id=new_id(),
            function_id="bench-waiter",
            event=event,
            status=RunStatus.WAITING,
            available_at=until,
            started_at=now,
        )
        for event in events
    ]
    boundary = after_id()
    waits = [
        new_wait(
            run,
            event.to_json(),
            kind=WaitKind.EVENT,
            event_name=REPLY,
            step_key="reply",
            expression=if_exp,
            match=match,
            after_event_id=boundary,
            expires_at=until,
        )
        for run, event in zip(runs, events, strict=True)
    ]
    steps = [
        StepRun(
            run=run,
            step_key="reply",
            op=StepOp.WAIT_FOR_EVENT,
            status=StepStatus.WAITING,
            wake_at=until,
        )
        for run in runs
    ]
    with transaction.atomic():
        Event.objects.bulk_create(events, batch_size=1000)
        FunctionRun.objects.bulk_create(runs, batch_size=1000)
        StepRun.objects.bulk_create(steps, batch_size=1000)
        save_waits(waits)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return ids


def _clear() -> None:
    from inngest_django.models import Event, FunctionRun, Wait, WaitKey

    Wait.objects.all().delete()
    WaitKey.objects.all().delete()
    FunctionRun.objects.all().delete()
    Event.objects.all().delete()


def dispatch_once(order: str) -> float:
    """Send and dispatch one reply for `order`, check it resolved one wait; roll back. Seconds."""
    from django.db import transaction

    import inngest_django as inngest
    from inngest_django.events import dispatch_pending
    from inngest_django.models import Wait

    with transaction.atomic():
        inngest.send({"name": REPLY, "data": {"order_id": order, "total": 50}})
        started = time.perf_counter()
        dispatch_pending()
        elapsed = time.perf_counter() - started
        resolved = Wait.objects.filter(resolved_at__isnull=False).count()
        transaction.set_rollback(True)
    if resolved != 1:
        raise RuntimeError(f"a reply for {order} resolved {resolved} waits, not 1")
    return elapsed


def sample(kind: str, depth: int, dispatches: int) -> float:
    """Load `depth` waits of `kind`; return the median ms of `dispatches` matching replies."""
    orders = load(kind, depth)
    try:
        for order in orders[:3]:  # warm-up: plans, caches
            dispatch_once(order)
        picks = [orders[(index * 7919) % len(orders)] for index in range(dispatches)]
        return harness.median(dispatch_once(order) for order in picks) * 1e3
    finally:
        _clear()


def run_child(args: argparse.Namespace) -> None:
    import json

    with tempfile.TemporaryDirectory(prefix="inngest_wait_depth_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        samples: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for kind in KINDS:
                for depth in (args.small, args.large):
                    samples.setdefault(f"{kind}/{depth}", []).append(
                        sample(kind, depth, args.dispatches)
                    )
        result = {
            "db": args.db,
            "server": harness.server_version(),
            "small": args.small,
            "large": args.large,
            "samples": samples,
        }
    Path(args.result_file).write_text(json.dumps(result))


def run_parent(args: argparse.Namespace) -> None:
    options = ["--small", str(args.small), "--large", str(args.large)]
    options += ["--repeats", str(args.repeats), "--dispatches", str(args.dispatches)]
    jobs = [(db, options) for db in harness.selected_databases(args.db)]
    results = harness.run_children("bench.wait_depth", jobs)
    for result in results:
        print(f"{result['server']}: ms to dispatch one matching reply (median of medians)")
        for kind in KINDS:
            small = harness.median(result["samples"][f"{kind}/{args.small}"])
            large = harness.median(result["samples"][f"{kind}/{args.large}"])
            print(
                f"  {kind:<10} {args.large:>7,} waits {large:8.2f}   {args.small:>5,} waits "
                f"{small:8.2f}   {large / small:6.1f}x"
            )
    harness.write_json(args.json, results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument("--small", type=harness.positive, default=10)
    parser.add_argument("--large", type=harness.positive, default=10000)
    parser.add_argument("--repeats", type=harness.positive, default=3)
    parser.add_argument("--dispatches", type=harness.positive, default=DISPATCHES)
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
