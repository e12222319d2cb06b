"""Measure how the time to claim the next run grows with the depth of the queue, on both databases.

Run from the repository root:

    python bench/claim_depth.py --db both --repeats 5
    python bench/claim_depth.py --shapes    # also time other shapes of the candidate query

Each database is measured in its own child process (Django settings are per process), against
a throwaway database: a temporary SQLite file, or a freshly created `bench_inngest` database.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if not __package__:
    # `python bench/claim_depth.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

# plain: `claim` over runs without keys; keyed: `claim_limited` with every key free;
# saturated: `claim_limited` with every key full but one, whose only queued run is the newest.
KINDS = ("plain", "keyed", "saturated")
LIMITS = (1, 4)
# The trigger events the queued runs point at, each with its own `data.k`.
EVENTS = 8
# The lease of the runs that fill the saturated keys: far beyond any sample.
BUSY_LEASE = timedelta(hours=1)


@dataclass
class Dataset:
    """The queued runs of one kind and depth, as loaded: what every claim must return."""

    kind: str
    depth: int
    keys: int
    order: list[str]  # queued run ids, oldest due first (the claim's order)
    due: dict[str, datetime]  # each queued run's available_at, restored on release
    running: int  # RUNNING runs holding a slot under a live lease

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.depth}"

    def expected(self, limit: int) -> list[str]:
        """Return the ids a claim of `limit` must take: the oldest due, or the one free run."""
        return self.order[-1:] if self.kind == "saturated" else self.order[:limit]


# -- the child: one database, measured in this process --------------------------------------


def _on_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def _table() -> str:
    from django.db import connection

    from inngest_django.models import FunctionRun

    return connection.ops.quote_name(FunctionRun._meta.db_table)


def _key(number: int) -> str:
    """Return the concurrency key admit() stores for a run whose event has `data.k` = number."""
    from bench.inngest_functions import claim_keyed

    return f"{claim_keyed.id}:k{number:04d}"


def _create_events() -> list[Any]:
    """Store the few trigger events the queued runs point at (untimed, once per database)."""
    from bench.inngest_functions import CLAIM_EVENT
    from inngest_django.ids import new_id
    from inngest_django.models import Event

    events = [
        Event(id=new_id(), name=CLAIM_EVENT, data={"k": f"k{n:04d}"}, ts=int(time.time() * 1000))
        for n in range(EVENTS)
    ]
    return Event.objects.bulk_create(events)


def _check_keys_match_admit(events: list[Any]) -> None:
    """Fail unless admit() gives a run the key and limit the bulk load writes."""
    from bench.inngest_functions import CLAIM_CONCURRENCY_LIMIT, claim_keyed, claim_registry
    from inngest_django import clock
    from inngest_django.flow_control import admit
    from inngest_django.ids import new_id
    from inngest_django.models import FunctionRun

    now = clock.now()
    run = FunctionRun(id=new_id(), function_id=claim_keyed.id, event=events[3], available_at=now)
    [admitted] = admit([run], claim_registry, now)
    stored = (admitted.concurrency_key, admitted.concurrency_limit)
    if stored != (_key(3), CLAIM_CONCURRENCY_LIMIT):
        raise RuntimeError(f"admit() stores {stored}, the bench loads {_key(3)!r}")


def _clear() -> None:
    """Delete every run, so the next dataset is the only work in the queue."""
    from django.db import connection

    statement = (
        f"TRUNCATE TABLE {_table()} CASCADE" if _on_postgres() else f"DELETE FROM {_table()}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement)


def load(kind: str, depth: int, per_key: int, events: list[Any]) -> Dataset:
    """Bulk-insert `depth` queued runs of `kind` (untimed), with keys and limits as admit() sets."""
    from django.db import connection, transaction

    from bench.inngest_functions import CLAIM_CONCURRENCY_LIMIT, claim_keyed, claim_plain
    from inngest_django import clock
    from inngest_django.enums import RunStatus
    from inngest_django.ids import new_id, new_token
    from inngest_django.models import FunctionRun

    limit = CLAIM_CONCURRENCY_LIMIT
    keys = 0 if kind == "plain" else depth // per_key
    function_id = claim_plain.id if kind == "plain" else claim_keyed.id
    now = clock.now()
    base = now - timedelta(hours=1)
    rows, order, due = [], [], {}
    for index in range(depth):
        if kind == "plain":
            key = ""
        elif kind == "keyed":
            key = _key(index % keys)
        else:
            # The free key (the last) has one queued run, the newest: the claim must pass over
            # every run of the full keys before it reaches it.
            key = _key(keys - 1) if index == depth - 1 else _key(index % (keys - 1))
        run_id = new_id()
        at = base + timedelta(microseconds=10 * index)
        rows.append(
            FunctionRun(
                id=run_id,
                function_id=function_id,
                event=events[index % len(events)],
                status=RunStatus.QUEUED,
                available_at=at,
                concurrency_key=key,
                concurrency_limit=limit if key else 0,
            )
        )
        order.append(run_id)
        due[run_id] = at
    running = 0
    if kind == "saturated":
        until, token = now + BUSY_LEASE, new_token()
        for number in range(keys - 1):
            for _ in range(limit):
                rows.append(
                    FunctionRun(
                        id=new_id(),
                        function_id=function_id,
                        event=events[number % len(events)],
                        status=RunStatus.RUNNING,
                        locked_by="bench-busy",
                        lease_token=token,
                        locked_until=until,
                        available_at=until,
                        started_at=now,
                        concurrency_key=_key(number),
                        concurrency_limit=limit,
                    )
                )
                running += 1
    with transaction.atomic():
        FunctionRun.objects.bulk_create(rows, batch_size=1000)
    if _on_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_table()}")
    dataset = Dataset(kind, depth, keys, order, due, running)
    _check_depth(dataset)
    return dataset


def _check_depth(dataset: Dataset) -> None:
    """Fail unless exactly the dataset's runs are queued and its busy runs still hold slots."""
    from inngest_django import clock
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun

    queued = FunctionRun.objects.filter(status=RunStatus.QUEUED).count()
    running = FunctionRun.objects.filter(
        status=RunStatus.RUNNING, locked_until__gt=clock.now()
    ).count()
    if queued != dataset.depth or running != dataset.running:
        raise RuntimeError(
            f"{dataset.label}: {queued} queued and {running} running runs, "
            f"not {dataset.depth} and {dataset.running}"
        )


@contextmanager
def _statements() -> Iterator[list[tuple[str, Any, float]]]:
    """Record each statement's SQL, parameters and seconds while the block runs."""
    from django.db import connection

    seen: list[tuple[str, Any, float]] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            seen.append((sql, params, time.perf_counter() - started))

    with connection.execute_wrapper(timed):
        yield seen


def _scan(seen: list[tuple[str, Any, float]]) -> tuple[str, Any, float]:
    """Return the claim's first real statement: the candidate SELECT, or plain claim's UPDATE."""
    for sql, params, seconds in seen:
        if sql.split(None, 1)[0].upper() in {"SELECT", "WITH", "UPDATE"}:
            return sql, params, seconds
    raise RuntimeError("the claim ran no statement")


def _claim_method(kind: str) -> Callable[..., list[str]]:
    from inngest_django.models import FunctionRun

    return FunctionRun.objects.claim if kind == "plain" else FunctionRun.objects.claim_limited


def claim_once(dataset: Dataset, limit: int) -> dict[str, Any]:
    """Claim `limit` runs inside atomic() (timed), check them, then release them (untimed)."""
    from django.db import transaction

    from inngest_django import clock
    from inngest_django.conf import app_settings
    from inngest_django.ids import new_token

    claim, token = _claim_method(dataset.kind), new_token()
    with _statements() as seen:
        started = time.perf_counter()
        with transaction.atomic():
            now = clock.now()
            ids = claim(
                worker_id="bench",
                lease_token=token,
                limit=limit,
                now=now,
                lease_until=now + timedelta(seconds=app_settings.LEASE_SECONDS),
            )
        elapsed = time.perf_counter() - started
    expected = dataset.expected(limit)
    if sorted(ids) != sorted(expected):
        raise RuntimeError(f"{dataset.label} limit {limit}: claimed {ids}, expected {expected}")
    _release(dataset, ids, token)
    sql, params, scan = _scan(seen)
    return {
        "total": elapsed,
        "scan": scan,
        "statements": len(seen),
        # The right runs, but not oldest due first as the claim's docstring promises.
        "unordered": ids != expected,
        "sql": sql,
        "params": params,
    }


def _release(dataset: Dataset, ids: list[str], token: str) -> None:
    """Put claimed runs back to QUEUED at their old place in the queue, so the depth holds."""
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun

    for run_id in ids:
        released = FunctionRun.objects.filter(
            pk=run_id, lease_token=token, status=RunStatus.RUNNING
        ).update(
            status=RunStatus.QUEUED,
            locked_by="",
            lease_token="",
            locked_until=None,
            started_at=None,
            available_at=dataset.due[run_id],
        )
        if released != 1:
            raise RuntimeError(f"run {run_id} was not held by the claim's lease")


def sample(dataset: Dataset, claims: int) -> dict[int, dict[str, float]]:
    """Claim `claims` times per limit, the limits alternating; return ms per claim per limit."""
    spent: dict[int, list[dict[str, Any]]] = {limit: [] for limit in LIMITS}
    for _ in range(claims):
        for limit in LIMITS:
            spent[limit].append(claim_once(dataset, limit))
    _check_depth(dataset)
    return {
        limit: {
            "total": sum(c["total"] for c in done) / len(done) * 1e3,
            "scan": sum(c["scan"] for c in done) / len(done) * 1e3,
            "statements": done[-1]["statements"],
            "unordered": sum(c["unordered"] for c in done),
        }
        for limit, done in spent.items()
    }


def _series(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [(kind, depth) for kind in KINDS for depth in (args.small, args.large)]


def _warm(dataset: Dataset, claims: int) -> None:
    """Claim a few times untimed: caches, hint bits and plans settle on the fresh rows."""
    for _ in range(claims):
        for limit in LIMITS:
            claim_once(dataset, limit)


def explain(dataset: Dataset, limit: int) -> list[str]:
    """Return the plan of the claim's scan statement on this dataset (ANALYZE on PostgreSQL)."""
    from django.db import connection, transaction

    # The statement and parameters of a real claim (since released), run once more.
    captured = claim_once(dataset, limit)
    sql, params = captured["sql"], captured["params"]
    with transaction.atomic(), connection.cursor() as cursor:
        if _on_postgres():
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            lines = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            lines = _sqlite_tree(cursor.fetchall())
        # EXPLAIN ANALYZE runs the statement; plain claim's UPDATE must not stay claimed.
        transaction.set_rollback(True)
    _check_depth(dataset)
    return [f"-- {sql}", *lines]


def _sqlite_tree(rows: list[tuple[int, int, int, str]]) -> list[str]:
    """Indent SQLite's EXPLAIN QUERY PLAN rows (id, parent, -, detail) as the shell does."""
    depth = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


# -- --shapes: the candidate query in other shapes, timed alone ----------------------------


# A partial index the keys-first shape walks; created only for --shapes, dropped after.
KEY_INDEX = "bench_claimable_key"


def _claimable_sql() -> str:
    from inngest_django.enums import CLAIMABLE_STATUSES

    return ", ".join(f"'{status.value}'" for status in CLAIMABLE_STATUSES)


def _indexed(name: str) -> str:
    """Pin SQLite to an index (it errors if it cannot use it); PostgreSQL plans on its own."""
    return "" if _on_postgres() else f" INDEXED BY {name}"


def _busy_keys() -> str:
    """Return a query of the keys whose live runs fill their limit (two `now` parameters)."""
    table, running = _table(), "status = 'RUNNING' AND locked_until > %s"
    # Reads only the executing runs, through the concurrency indexes: bounded by the
    # workers' capacity, whatever the queue's depth.
    return (
        f"SELECT k FROM (SELECT concurrency_key AS k, concurrency_limit AS cap FROM {table}"
        f"{_indexed('inngest_run_concurrency')} WHERE NOT (concurrency_key = '') AND {running} "
        f"UNION ALL SELECT concurrency_key_2, concurrency_limit_2 FROM {table}"
        f"{_indexed('inngest_run_concurrency_2')} WHERE NOT (concurrency_key_2 = '') "
        f"AND {running}) held GROUP BY k HAVING COUNT(*) >= MIN(cap)"
    )


def _plain_select(sql: str, params: list[Any]) -> tuple[str, list[Any]]:
    """Return the SELECT inside `claim`'s statement, with its `now` and limit parameters."""
    if _on_postgres():
        # WITH picked AS (SELECT ... FOR UPDATE SKIP LOCKED) UPDATE ...
        inner = sql.split("WITH picked AS (", 1)[-1].split(" FOR UPDATE SKIP LOCKED)", 1)[0]
        # The claim also returns each row's old due time, to list runs oldest first; the scan
        # is the same, and the alternative shapes are built on `SELECT id FROM`.
        inner = inner.replace("SELECT id, available_at FROM", "SELECT id FROM", 1)
        return inner, params[:2]
    # UPDATE ... WHERE id IN (SELECT ...) RETURNING id
    inner = sql.split(" WHERE id IN (", 1)[-1].rsplit(") RETURNING id", 1)[0]
    return inner, params[-2:]


# How the library pins SQLite to the claim index; the shapes add or remove it.
PIN = "INDEXED BY inngest_run_claimable "


def _shapes(dataset: Dataset, limit: int) -> dict[str, tuple[str, list[Any]]]:
    """Return the scan statements to time on this dataset: the library's, then alternatives."""
    from django.db import connection

    from inngest_django import clock

    table, claimable = _table(), _claimable_sql()
    captured = claim_once(dataset, limit)
    sql, params = captured["sql"], list(captured["params"])
    now, batch = connection.ops.adapt_datetimefield_value(clock.now()), limit * 4
    if dataset.kind == "plain":
        sql, params = _plain_select(sql, params)
        if not sql.startswith("SELECT id FROM"):
            raise RuntimeError(f"cannot find the SELECT in claim's statement: {sql}")
    sql = sql.replace(" FOR UPDATE OF c SKIP LOCKED", "")
    shapes = {"library": (sql, params)}
    if not _on_postgres():
        # The same statement with the index pin and without it, whichever the library uses.
        alias = "" if dataset.kind == "plain" else " c"
        unpinned = sql.replace(PIN, "")
        pinned = unpinned.replace(
            f"FROM {table}{alias} WHERE", f"FROM {table}{alias} {PIN}WHERE", 1
        )
        for name, variant in (("pinned index", pinned), ("unpinned", unpinned)):
            if variant != sql:
                shapes[name] = (variant, params)
    if dataset.kind == "plain":
        return shapes
    shapes["busy keys skipped"] = (
        f"WITH busy(k) AS ({_busy_keys()}) SELECT c.id FROM {table} c"
        f"{_indexed('inngest_run_claimable')} WHERE c.status IN ({claimable}) "
        "AND c.available_at <= %s AND c.concurrency_key NOT IN (SELECT k FROM busy) "
        "AND c.concurrency_key_2 NOT IN (SELECT k FROM busy) ORDER BY c.available_at, c.id "
        "LIMIT %s",
        [now, now, now, batch],
    )
    by_key = _indexed(KEY_INDEX)
    shapes["keys first"] = (
        # A loose index scan: one probe per distinct key of claimable runs, never per run.
        f"WITH RECURSIVE keys(k) AS (SELECT MIN(concurrency_key) FROM {table}{by_key} "
        f"WHERE status IN ({claimable}) UNION ALL SELECT (SELECT MIN(concurrency_key) "
        f"FROM {table}{by_key} WHERE status IN ({claimable}) AND concurrency_key > keys.k) "
        f"FROM keys WHERE keys.k IS NOT NULL), busy(k) AS ({_busy_keys()}) "
        f"SELECT c.id FROM keys JOIN {table} c ON c.id = (SELECT h.id FROM {table} h{by_key} "
        f"WHERE h.concurrency_key = keys.k AND h.status IN ({claimable}) "
        "AND h.available_at <= %s ORDER BY h.available_at, h.id LIMIT 1) "
        "WHERE keys.k IS NOT NULL AND keys.k NOT IN (SELECT k FROM busy) "
        "AND c.concurrency_key_2 NOT IN (SELECT k FROM busy) "
        "ORDER BY c.available_at, c.id LIMIT %s",
        [now, now, now, batch],
    )
    return shapes


def _create_key_index(drop: bool = False) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if drop:
            cursor.execute(f"DROP INDEX IF EXISTS {KEY_INDEX}")
            return
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {KEY_INDEX} ON {_table()} "
            f"(concurrency_key, available_at, id) WHERE status IN ({_claimable_sql()})"
        )
        if _on_postgres():
            cursor.execute(f"ANALYZE {_table()}")


def time_shapes(
    dataset: Dataset, limit: int, rounds: int, *, suffix: str = "", only: tuple[str, ...] = ()
) -> dict[str, float]:
    """Time each shape's statement `rounds` times, the shapes alternating; return median ms."""
    from django.db import connection

    shapes = {
        f"{name}{suffix}": shape
        for name, shape in _shapes(dataset, limit).items()
        if not only or name in only
    }
    spent: dict[str, list[float]] = {name: [] for name in shapes}
    first = dataset.expected(limit)[0]
    with connection.cursor() as cursor:
        for round_ in range(rounds + 1):
            for name, (sql, params) in shapes.items():
                started = time.perf_counter()
                cursor.execute(sql, params)
                rows = cursor.fetchall()
                elapsed = time.perf_counter() - started
                if not rows or rows[0][0] != first:
                    raise RuntimeError(f"{dataset.label} {name}: first row {rows[:1]}, not {first}")
                if round_:  # the first round is a warm-up
                    spent[name].append(elapsed * 1e3)
    _check_depth(dataset)
    return {name: harness.median(times) for name, times in spent.items()}


def _park_blocked(dataset: Dataset) -> None:
    """Move the full keys' queued runs past now (untimed), as a park-and-wake design would."""
    from django.db import connection

    from inngest_django import clock
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun

    free = dataset.expected(1)[0]
    parked = (
        FunctionRun.objects.filter(status=RunStatus.QUEUED)
        .exclude(pk=free)
        .update(available_at=clock.now() + BUSY_LEASE)
    )
    if parked != dataset.depth - 1:
        raise RuntimeError(f"parked {parked} of {dataset.depth - 1} blocked runs")
    if _on_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_table()}")


def shapes_phase(args: argparse.Namespace, events: list[Any]) -> dict[str, dict[str, float]]:
    """Load each dataset once more with the key index and time the candidate-query shapes."""
    results = {}
    for kind, depth in _series(args):
        dataset = load(kind, depth, args.per_key, events)
        _create_key_index()
        _warm(dataset, args.warmup)
        results[dataset.label] = time_shapes(dataset, 4, args.claims)
        if kind == "saturated":
            _park_blocked(dataset)
            results[dataset.label].update(
                time_shapes(
                    dataset,
                    4,
                    args.claims,
                    suffix=", parked",
                    only=("library", "pinned index", "unpinned"),
                )
            )
        _clear()
    _create_key_index(drop=True)
    return results


def run_child(args: argparse.Namespace) -> None:
    """Measure one database and write the samples as JSON to `--result-file`."""
    series = _series(args)
    with tempfile.TemporaryDirectory(prefix="inngest_bench_") as workdir:
        harness.setup_django(args.db, Path(workdir))
        from django.db import connection

        events = _create_events()
        _check_keys_match_admit(events)
        # Warm up the connection and code paths on the small datasets before any sample.
        for kind in KINDS:
            _warm(load(kind, args.small, args.per_key, events), args.warmup)
            _clear()
        samples: dict[str, list[Any]] = {f"{kind}/{depth}": [] for kind, depth in series}
        load_seconds: list[float] = []
        # Interleaved: every repeat reloads every dataset, so drift hits every series alike.
        for repeat in range(args.repeats):
            for kind, depth in series:
                started = time.perf_counter()
                dataset = load(kind, depth, args.per_key, events)
                load_seconds.append(time.perf_counter() - started)
                _warm(dataset, args.warmup)
                samples[dataset.label].append(sample(dataset, args.claims))
                _clear()
            line = ", ".join(
                f"{label} {s[-1][1]['total']:.2f}/{s[-1][4]['total']:.2f} ms"
                for label, s in samples.items()
            )
            print(f"[{args.db}] repeat {repeat + 1}/{args.repeats} (limit 1/4): {line}", flush=True)
        plans = {}
        for kind in KINDS:
            dataset = load(kind, args.large, args.per_key, events)
            _warm(dataset, args.warmup)
            plans[f"{dataset.label}/4"] = explain(dataset, 4)
            _clear()
        shapes = shapes_phase(args, events) if args.shapes else {}
        result = {
            "db": args.db,
            "vendor": harness.server_version(),
            "small": args.small,
            "large": args.large,
            "per_key": args.per_key,
            "claims": args.claims,
            "samples": samples,
            "plans": plans,
            "shapes": shapes,
            "load_seconds": load_seconds,
        }
        connection.close()
    Path(args.result_file).write_text(json.dumps(result))


# -- the parent: one child per database, then the table -------------------------------------


def print_table(results: list[dict[str, Any]]) -> None:
    """Print the medians: ms per claim and in its scan statement, small and large, and ratios."""
    first = results[0]
    repeats = len(next(iter(first["samples"].values())))
    print()
    print(
        f"Medians of {repeats} repeats of {first['claims']} claims per limit; "
        f"{first['per_key']} queued runs per key; ms per claim inside atomic() "
        "(BEGIN to COMMIT) and in its scan statement."
    )
    print("plain: claim(), no keys; keyed: claim_limited(), every key free;")
    print("saturated: claim_limited(), every key full but one, whose one queued run is the newest.")
    header = (
        f"{'database':<10} {'kind':<9} {'depth':>7} {'keys':>5} {'limit':>5} {'claim ms':>9} "
        f"{'scan ms':>8} {'stmts':>5} {'ratio':>7} {'scan ratio':>10}  {'claim ms range':>15}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        samples = result["samples"]
        for kind in KINDS:
            for limit in LIMITS:
                small = samples[f"{kind}/{result['small']}"]
                for depth in (result["small"], result["large"]):
                    values = [s[str(limit)] for s in samples[f"{kind}/{depth}"]]
                    total = harness.median([v["total"] for v in values])
                    scan = harness.median([v["scan"] for v in values])
                    ratio = scan_ratio = ""
                    if depth == result["large"]:
                        base = [s[str(limit)] for s in small]
                        ratio = f"{total / harness.median([v['total'] for v in base]):.1f}x"
                        scan_ratio = f"{scan / harness.median([v['scan'] for v in base]):.1f}x"
                    keys = 0 if kind == "plain" else depth // result["per_key"]
                    spread = f"{min(v['total'] for v in values):.2f}-"
                    spread += f"{max(v['total'] for v in values):.2f}"
                    print(
                        f"{result['db']:<10} {kind:<9} {depth:>7,} {keys:>5} {limit:>5} "
                        f"{total:>9.2f} {scan:>8.2f} {values[-1]['statements']:>5} {ratio:>7} "
                        f"{scan_ratio:>10}  {spread:>15}"
                    )
    for result in results:
        for label, samples in result["samples"].items():
            for limit in LIMITS:
                unordered = sum(s[str(limit)]["unordered"] for s in samples)
                if unordered:
                    print(
                        f"{result['db']} {label} limit {limit}: {unordered} of "
                        f"{len(samples) * result['claims']} claims returned the right runs "
                        "but not oldest due first"
                    )
    if any(result["shapes"] for result in results):
        print_shapes(results)
    for result in results:
        print()
        loads = result["load_seconds"]
        print(
            f"{result['db']} ({result['vendor']}): loading a dataset took "
            f"{min(loads):.2f}-{max(loads):.2f} s (untimed)."
        )
        for label, lines in result["plans"].items():
            print(f"\n{result['db']} plan, {label} (kind/depth/limit):")
            for line in lines:
                print(f"  {line}")


def print_shapes(results: list[dict[str, Any]]) -> None:
    """Print the median ms of each candidate-query shape, small and large, and the ratio."""
    print()
    print(
        "--shapes: the claim's scan statement alone (limit 4, no row locks), median ms; "
        f"'keys first' walks the partial index {KEY_INDEX} (concurrency_key, available_at, id)."
    )
    header = (
        f"{'database':<10} {'kind':<9} {'shape':<24} {'small ms':>9} {'large ms':>9} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        shapes = result["shapes"]
        for kind in KINDS:
            small, large = shapes[f"{kind}/{result['small']}"], shapes[f"{kind}/{result['large']}"]
            for name, ms in small.items():
                print(
                    f"{result['db']:<10} {kind:<9} {name:<24} {ms:>9.3f} {large[name]:>9.3f} "
                    f"{large[name] / ms:>6.1f}x"
                )


def run_parent(args: argparse.Namespace) -> None:
    """Measure each requested database in a child process and print the table."""
    options = ["--small", str(args.small), "--large", str(args.large)]
    options += ["--per-key", str(args.per_key), "--claims", str(args.claims)]
    options += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    if args.shapes:
        options.append("--shapes")
    databases = harness.selected_databases(args.db)
    results = harness.run_children("bench.claim_depth", [(db, options) for db in databases])
    print_table(results)
    harness.write_json(args.json, results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = harness.new_parser(__doc__)
    harness.add_db_argument(parser)
    parser.add_argument(
        "--small",
        type=harness.positive,
        default=1000,
        help="queued runs, shallow (default: %(default)r)",
    )
    parser.add_argument(
        "--large",
        type=harness.positive,
        default=100000,
        help="queued runs, deep (default: %(default)r)",
    )
    parser.add_argument(
        "--per-key",
        type=harness.positive,
        default=100,
        help="queued runs per concurrency key (default: %(default)r: 10 and 1,000 keys)",
    )
    parser.add_argument(
        "--claims",
        type=harness.positive,
        default=20,
        help="timed claims per limit per sample (default: %(default)r)",
    )
    parser.add_argument(
        "--warmup",
        type=harness.positive,
        default=3,
        help="untimed claims per limit after each load (default: %(default)r)",
    )
    parser.add_argument(
        "--repeats",
        type=harness.positive,
        default=5,
        help="samples of each kind (default: %(default)r)",
    )
    parser.add_argument(
        "--shapes",
        action="store_true",
        help="also time the candidate query in other shapes (default: %(default)r)",
    )
    parser.add_argument("--json", help="also write the raw samples here (default: %(default)r)")
    harness.add_child_arguments(parser)
    args = parser.parse_args(argv)
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    if args.small < 2 * args.per_key:
        parser.error("--small needs two keys or more: at least twice --per-key")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark: the parent by default, one database's child with --child."""
    harness.run_main(parse_args(argv), run_child, run_parent)


if __name__ == "__main__":
    main()
