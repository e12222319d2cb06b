"""One command, one table: inngest_django beside its peers and the ORM's limit.

Run from the repository root, with the app's venv active and PostgreSQL on 127.0.0.1:5432:

    python -m bench.suite --quick            # 1,000 jobs per sample: a few minutes
    python -m bench.suite                    # 10,000 jobs per sample, as issue 8 asks
    python -m bench.suite --only runs,peers  # some rows only

Every row is measured in this one invocation, each a median of `--repeats` samples. The rows
that already had a script are measured by that script (`step_throughput`, `wake_latency`,
`defer_cost`, `claim_depth`, each in its own child process with its own throwaway database
named `bench8_*`, or `--db-prefix`); run throughput and worker memory by `runs_child` below;
the peers (django-q2, django-tasks-db, procrastinate) by `bench/peers/*` with the Python of
bench/.peers-venv, created here if missing from bench/peers_requirements.txt, so no peer leaks
into the app's requirements. Ours and every peer are measured on each database of `--dbs`
that the peer supports, and compared there: issue 16 asks for 2x the best peer. With both rows
asked for, the samples are taken in turns (one of ours, then one of each peer, `--repeats`
times; our idle workers stopped meanwhile), so the machine's drift over the minutes of a run
moves every figure of a ratio alike. Our workers log as the peers do: no line per job.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

if not __package__:
    # `python bench/suite.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, median, server_version, setup_django, write_json
from bench.peers.common import DB_PREFIX_ENV, DEFAULT_DB_PREFIX

PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEERS_REQUIREMENTS = ROOT / "bench" / "peers_requirements.txt"
ROWS = ("limit", "runs", "peers", "latency", "defers", "depth", "waits")
WORKERS = 2
SEND_BATCH = 500
# Issue 16: one-step runs/s of ours over the best peer's jobs/s on the same database.
TARGET_OVER_BEST_PEER = 2.0


class Peer(NamedTuple):
    """One peer configuration: its script in bench/peers, extra options and databases."""

    label: str
    script: str
    options: tuple[str, ...]
    databases: tuple[str, ...]


PEERS = (
    # Django's default CONN_MAX_AGE 0: what the suite measured before issue 16, shown beside.
    # PostgreSQL only: a new SQLite "connection" is a file opened, not a login.
    Peer("django-q2 (reconnect per job)", "djangoq_drain", ("--conn-max-age", "0"), ("postgres",)),
    Peer(
        "django-q2 (CONN_MAX_AGE=600)",
        "djangoq_drain",
        ("--conn-max-age", "600"),
        ("postgres", "sqlite"),
    ),
    Peer("django-tasks-db", "django_tasks_db_drain", (), ("postgres", "sqlite")),
    Peer("procrastinate", "procrastinate_drain", (), ("postgres",)),
)


@cache  # once a suite run: every turn of every peer asks
def ensure_peers_venv() -> Path:
    """Return the peers' Python, creating or updating bench/.peers-venv from its requirements."""
    python = PEERS_VENV / "bin" / "python"
    # A copy of the requirements last installed: a venv made before a peer was added updates.
    installed = PEERS_VENV / "installed-requirements.txt"
    wanted = PEERS_REQUIREMENTS.read_text()
    if not python.exists():
        print(f"creating {PEERS_VENV} from {PEERS_REQUIREMENTS.name}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    if not installed.exists() or installed.read_text() != wanted:
        print(f"installing {PEERS_REQUIREMENTS.name} into {PEERS_VENV}", flush=True)
        pip = [str(python), "-m", "pip", "install", "-q", "-r", str(PEERS_REQUIREMENTS)]
        subprocess.run(pip, check=True)
        installed.write_text(wanted)
    return python


# -- run throughput and worker memory: the child ---------------------------------------------


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _send_and_drain(fleet: Any, runs: int) -> dict[str, float]:
    """Send `runs` events of a one-step function to the running fleet; time send to finish."""
    from django.db.models import Max, Min
    from django.utils import timezone

    from bench.fleet_throughput import clear
    from bench.inngest_functions import STEPS_EVENT
    from inngest_django import send
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun, StepRun

    clear()
    sent_at = timezone.now()
    for start in range(0, runs, SEND_BATCH):
        batch = min(SEND_BATCH, runs - start)
        send([{"name": STEPS_EVENT, "data": {"steps": 1}} for _ in range(batch)])
    sent = timezone.now()
    deadline = time.monotonic() + max(600.0, runs / 2)
    runs_of = FunctionRun.objects.filter(function_id="bench-noop-steps")
    while runs_of.filter(status=RunStatus.COMPLETED).count() < runs:
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs left at the deadline\n{fleet.output()}")
        if any(process.poll() is not None for process in fleet.processes):
            raise RuntimeError(f"a worker exited mid-sample:\n{fleet.output()}")
        time.sleep(0.1)
    if runs_of.count() != runs or StepRun.objects.count() != runs:
        raise RuntimeError(f"{runs_of.count()} runs, {StepRun.objects.count()} steps for {runs}")
    span = runs_of.aggregate(first=Min("started_at"), last=Max("finished_at"))
    end_to_end = (span["last"] - sent_at).total_seconds()
    drain = (span["last"] - span["first"]).total_seconds()
    return {
        "send_seconds": (sent - sent_at).total_seconds(),
        "end_to_end_seconds": end_to_end,
        "runs_per_second": runs / end_to_end,
        "drain_runs_per_second": runs / drain,
        "peak_rss_mib": [_peak_rss_mib(process.pid) for process in fleet.processes],
    }


def runs_child(args: argparse.Namespace) -> None:
    """2 workers stay up for every sample, so their peak RSS shows growth with run count.

    With `--interleaved` the child takes one sample per line `next` on stdin and answers each
    on stdout; between samples its workers are stopped (SIGSTOP), so the peers measured
    meanwhile share the machine with nothing of ours.
    """
    from bench.fleet_throughput import Fleet

    with tempfile.TemporaryDirectory(prefix="inngest_suite_") as workdir:
        setup_django(args.db, Path(workdir))
        fleet = Fleet(WORKERS, args.threads, Path(workdir), verbosity=args.worker_verbosity)
        try:
            fleet.wait_until_up()
            warm = _send_and_drain(fleet, min(args.jobs, 200))
            samples = []
            for repeat in range(args.repeats):
                if args.interleaved:
                    _pause_between_samples(fleet)
                samples.append(_send_and_drain(fleet, args.jobs))
                print(
                    f"[runs {args.db}] repeat {repeat + 1}/{args.repeats}: "
                    f"{samples[-1]['runs_per_second']:,.1f} runs/s end to end, "
                    f"peak RSS {samples[-1]['peak_rss_mib']} MiB",
                    file=sys.stderr if args.interleaved else sys.stdout,
                    flush=True,
                )
                if args.interleaved:
                    print("sampled", flush=True)
        finally:
            fleet.stop()
        result = {"db": args.db, "vendor": server_version(), "threads": args.threads}
        result.update(verbosity=args.worker_verbosity, interleaved=args.interleaved)
        result.update(warm=warm, samples=samples)
    Path(args.result_file).write_text(json.dumps(result))


def _pause_between_samples(fleet: Any) -> None:
    """Stop the idle workers until the parent asks for the next sample, then go on."""
    for process in fleet.processes:
        process.send_signal(signal.SIGSTOP)
    try:
        if sys.stdin.readline().strip() != "next":
            raise SystemExit("the parent ended the samples early")
    finally:
        for process in fleet.processes:
            process.send_signal(signal.SIGCONT)


# -- the parent: every row in its own child, then one table -----------------------------------


def _env(database: str, prefix: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INNGEST_DJANGO_BENCH_PG_NAME": database}
    env[DB_PREFIX_ENV] = prefix
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def _run(command: list[str], database: str, log: Path, *, prefix: str, fatal: bool = True) -> str:
    """Run one child with its output in `log`; return "" or, unless fatal, why it failed."""
    print(f"$ {' '.join(command[1:])}  > {log}", flush=True)
    with log.open("w") as out:
        env = _env(database, prefix)
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    if not done.returncode:
        return ""
    failure = f"failed ({done.returncode}); last lines of {log}:\n" + log.read_text()[-3000:]
    if fatal:
        raise SystemExit(failure)
    print(failure, flush=True)
    return failure


def _module(name: str, *options: Any) -> list[str]:
    return [sys.executable, "-m", name, *map(str, options)]


def _script(args: argparse.Namespace, logs: Path, name: str, database: str, *options: Any) -> Any:
    """Run one bench script on both databases into `logs`; return the results it wrote."""
    out = logs / f"{name}.json"
    command = _module(f"bench.{name}", "--db", "both", *options, "--json", out)
    _run(command, args.db_prefix + database, logs / f"{name}.log", prefix=args.db_prefix)
    return json.loads(out.read_text())


def measure_peers(args: argparse.Namespace, logs: Path) -> list[dict[str, Any]]:
    """Run every peer on each database of `--dbs` it supports; a failure becomes a result."""
    return [
        measure_peer(args, logs, peer, db, args.repeats)
        for db in args.dbs
        for peer in PEERS
        if db in peer.databases
    ]


def measure_peer(
    args: argparse.Namespace, logs: Path, peer: Peer, db: str, repeats: int, *, label: str = ""
) -> dict[str, Any]:
    """Run one peer on `db` for `repeats` samples; return its results, or why it failed."""
    python = str(ensure_peers_venv())
    name = f"{peer.script}-{'-'.join(peer.options[1:]) or 'default'}-{db}{label}"
    out = logs / f"{name}.json"
    database = args.db_prefix + peer.script.removesuffix("_drain")
    command = [python, "-m", f"bench.peers.{peer.script}", *peer.options, "--db", db]
    command += ["--jobs", str(args.jobs), "--repeats", str(repeats)]
    command += ["--workers", str(WORKERS), "--database", database, "--json", str(out)]
    # One peer that cannot run on a database must not cost the others' figures.
    failure = _run(command, "", logs / f"{name}.log", prefix=args.db_prefix, fatal=False)
    if failure:
        return {"peer": peer.label, "db": db, "error": failure}
    return json.loads(out.read_text())


def measure_runs_and_peers(
    args: argparse.Namespace, logs: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Take our samples and the peers' in turns, so the machine's drift hits all alike.

    Per database and repeat: one sample of ours (its workers kept up, stopped in between),
    then one of each peer. A peer's samples are merged into one result.
    """
    runs, peers = [], []
    for db in args.dbs:
        out = logs / f"runs-{db}.json"
        log = (logs / f"runs-{db}.log").open("w")
        command = [*_runs_command(args, db, out), "--interleaved"]
        print(f"$ {' '.join(command[1:])}  > {log.name}", flush=True)
        child = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_env(args.db_prefix + "runs", args.db_prefix),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        by_peer: dict[str, dict[str, Any]] = {}
        try:
            for repeat in range(args.repeats):
                child.stdin.write("next\n")
                child.stdin.flush()
                if child.stdout.readline().strip() != "sampled":
                    child.wait()
                    raise SystemExit(f"runs child failed; see {log.name}:\n{_tail(log.name)}")
                for peer in (peer for peer in PEERS if db in peer.databases):
                    result = measure_peer(args, logs, peer, db, 1, label=f"-{repeat + 1}")
                    kept = by_peer.get(peer.label)
                    # A failed turn stands for the peer; a later success does not hide it.
                    if kept is None or "error" in result:
                        by_peer[peer.label] = result
                    elif "error" not in kept:
                        kept["samples"] += result["samples"]
            child.stdin.close()
            if child.wait():
                raise SystemExit(f"runs child failed; see {log.name}:\n{_tail(log.name)}")
        finally:
            if child.poll() is None:
                child.kill()
            log.close()
        runs.append(json.loads(out.read_text()))
        peers.extend(by_peer.values())
    return runs, peers


def _runs_command(args: argparse.Namespace, db: str, out: Path) -> list[str]:
    command = _module("bench.suite", "--runs-child", "--db", db, "--jobs", args.jobs)
    command += ["--repeats", str(args.repeats), "--result-file", str(out)]
    command += ["--threads", str(args.threads)]
    return [*command, "--worker-verbosity", str(args.worker_verbosity)]


def _tail(path: str) -> str:
    return Path(path).read_text()[-3000:]


def measure(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Measure the requested rows; return their raw results by row."""
    results: dict[str, Any] = {}
    repeats = args.repeats
    if "limit" in args.only:
        results["limit"] = _script(args, logs, "step_throughput", "steps", "--repeats", repeats)
    if "runs" in args.only and "peers" in args.only:
        results["runs"], results["peers"] = measure_runs_and_peers(args, logs)
    elif "runs" in args.only:
        results["runs"] = []
        for db in args.dbs:
            out = logs / f"runs-{db}.json"
            _run(
                _runs_command(args, db, out),
                args.db_prefix + "runs",
                logs / f"runs-{db}.log",
                prefix=args.db_prefix,
            )
            results["runs"].append(json.loads(out.read_text()))
    elif "peers" in args.only:
        results["peers"] = measure_peers(args, logs)
    if "latency" in args.only:
        options = ("--samples", args.latency_samples, "--idle-seconds", 0.2)
        results["latency"] = _script(args, logs, "wake_latency", "latency", *options)
    if "defers" in args.only:
        options = ("--counts", 20, "--placement", "after", "--repeats", repeats)
        results["defers"] = _script(args, logs, "defer_cost", "defers", *options)
    if "depth" in args.only:
        options = ("--large", args.depth, "--repeats", repeats)
        results["depth"] = _script(args, logs, "claim_depth", "depth", *options)
    if "waits" in args.only:
        options = ("--small", 10, "--large", args.waits, "--repeats", repeats)
        results["waits"] = _script(args, logs, "wait_depth", "waits", *options)
    return results


def _floor_note(result: dict[str, Any]) -> str:
    """Return the bare floor measured beside a latency row, for its note ("" if none)."""
    if result.get("floor_p50_ms") is None:
        return ""
    return f"; bare floor {result['floor_p50_ms']:.1f} / {result['floor_p99_ms']:.1f}"


def compare(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per database: ours, each peer that ran, the best one and ours over each (issue 16)."""
    ours = {
        r["db"]: (
            median([s["runs_per_second"] for s in r["samples"]]),
            median([s["drain_runs_per_second"] for s in r["samples"]]),
        )
        for r in results.get("runs", [])
    }
    peers = [p for p in results.get("peers", []) if "error" not in p]
    databases = list(dict.fromkeys([*ours, *(p["db"] for p in peers)]))
    comparison = []
    for db in databases:
        rates = {
            p["peer"]: median([s["jobs_per_second"] for s in p["samples"]])
            for p in peers
            if p["db"] == db
        }
        entry: dict[str, Any] = {"db": db, "peers": rates}
        best = max(rates, key=rates.__getitem__) if rates else None
        entry["best_peer"] = best
        if db in ours:
            rate, drain = ours[db]
            entry.update(ours_runs_per_second=rate, ours_drain_runs_per_second=drain)
            entry["ratios"] = {peer: rate / value for peer, value in rates.items()}
            if best:
                entry["ratio_to_best"] = rate / rates[best]
                entry["drain_ratio_to_best"] = drain / rates[best]
                entry["target"] = TARGET_OVER_BEST_PEER
                entry["met"] = entry["ratio_to_best"] >= TARGET_OVER_BEST_PEER
        comparison.append(entry)
    return comparison


def _name(db: str) -> str:
    return {"postgres": "PostgreSQL", "sqlite": "SQLite"}.get(db, db)


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(row, database, median, note) for every measured row."""
    rows: list[tuple[str, str, str, str]] = []
    commits: dict[str, float] = {}
    for r in results.get("limit", []):
        commits[r["db"]] = median(r["samples"]["atomic"])
        rows.append(
            (
                "ORM commits/s (atomic, 1 row)",
                _name(r["db"]),
                f"{commits[r['db']]:,.0f}",
                "the limit",
            )
        )
    for r in results.get("limit", []):
        steps = median(r["samples"]["steps"])
        ratio = steps / commits[r["db"]]
        verdict = "met" if ratio >= 0.5 else "MISSED"
        note = f"{ratio:.2f} of the limit (target 0.5: {verdict})"
        rows.append(
            (f"steps/s (1 run of {r['steps']:,} steps)", _name(r["db"]), f"{steps:,.0f}", note)
        )
    rows.extend(peer_rows(results))
    for r in results.get("latency", []):
        age = "None" if r["conn_max_age"] is None else r["conn_max_age"]
        rows.append(
            (
                "send to first step p50 / p99 ms",
                _name(r["db"]),
                f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}",
                f"{r['wake']}, CONN_MAX_AGE {age}, {r['samples']} samples{_floor_note(r)}",
            )
        )
    for r in results.get("defers", []):
        relay = r["samples"]["relay"]
        relay_rate = median([s["relay"] for s in relay])
        rows.append(
            (
                "deferred runs/s (20 defers per parent)",
                _name(r["db"]),
                f"{median([s['end_to_end'] for s in relay]):,.0f}",
                f"outbox row to completed run; relay {relay_rate:,.0f} rows/s",
            )
        )
    for r in results.get("depth", []):
        for kind in ("plain", "keyed", "saturated"):
            small = median([s["4"]["total"] for s in r["samples"][f"{kind}/{r['small']}"]])
            large = median([s["4"]["total"] for s in r["samples"][f"{kind}/{r['large']}"]])
            ratio = large / small
            verdict = "met" if ratio < 2 else "MISSED"
            rows.append(
                (
                    f"claim ms, {kind}, {r['large']:,} vs {r['small']:,} queued",
                    _name(r["db"]),
                    f"{large:.2f} / {small:.2f}",
                    f"{ratio:.1f}x (target < 2x: {verdict})",
                )
            )
    for r in results.get("waits", []):
        for kind in ("match", "if", "expression"):
            small = median(r["samples"][f"{kind}/{r['small']}"])
            large = median(r["samples"][f"{kind}/{r['large']}"])
            ratio = large / small
            verdict = "met" if ratio < 2 else "MISSED"
            note = f"{ratio:.1f}x (target < 2x: {verdict})"
            if kind == "expression":
                note = f"{ratio:.1f}x: no indexable equality, every wait's CEL is evaluated"
            rows.append(
                (
                    f"wait match ms, {kind}, {r['large']:,} vs {r['small']:,} pending",
                    _name(r["db"]),
                    f"{large:.2f} / {small:.2f}",
                    note,
                )
            )
    for r in results.get("runs", []):
        first = r["warm"]["peak_rss_mib"]
        last = r["samples"][-1]["peak_rss_mib"]
        growth = max(b - a for a, b in zip(first, last, strict=True))
        rows.append(
            (
                "worker peak RSS MiB (after warm-up -> last)",
                _name(r["db"]),
                " ".join(f"{a:.0f}->{b:.0f}" for a, b in zip(first, last, strict=True)),
                f"growth {growth:+.1f} MiB over {len(r['samples'])} more samples",
            )
        )
    return rows


def peer_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Per database: our runs/s, each peer's jobs/s with ours over it, then ours over the best."""
    rows: list[tuple[str, str, str, str]] = []
    comparison = {entry["db"]: entry for entry in compare(results)}
    for db, entry in comparison.items():
        for r in results.get("runs", []):
            if r["db"] != db:
                continue
            note = f"first claim to last finish {entry['ours_drain_runs_per_second']:,.1f}/s"
            note += f"; worker --verbosity {r.get('verbosity', 1)}"
            if r.get("interleaved"):
                note += "; sampled in turns with the peers"
            rows.append(
                (
                    f"ours: runs/s, send to finished, {WORKERS} workers x "
                    f"{r.get('threads', 1)} threads",
                    _name(db),
                    f"{entry['ours_runs_per_second']:,.1f}",
                    f"{note} {r.get('jobs', '')}".rstrip(),
                )
            )
        for peer in results.get("peers", []):
            if peer["db"] != db:
                continue
            if "error" in peer:
                reason = peer["error"].strip().splitlines()[-1]
                rows.append((f"{peer['peer']} jobs/s", _name(db), "-", f"did not run: {reason}"))
                continue
            rate = entry["peers"][peer["peer"]]
            note = f"{peer['jobs']:,} jobs, first pick-up to last finish, v{peer['version']}"
            if "ratios" in entry:
                note += f"; ours {entry['ratios'][peer['peer']]:.2f}x"
            rows.append(
                (
                    f"{peer['peer']} jobs/s, {peer['workers']} workers",
                    _name(db),
                    f"{rate:,.1f}",
                    note,
                )
            )
        if "ratio_to_best" in entry:
            verdict = "met" if entry["met"] else "MISSED"
            rows.append(
                (
                    "ours / best peer (runs/s over jobs/s)",
                    _name(db),
                    f"{entry['ratio_to_best']:.2f}x",
                    f"best: {entry['best_peer']}; target {entry['target']:g}x: {verdict}; "
                    f"{entry['drain_ratio_to_best']:.2f}x first claim to last finish",
                )
            )
    for db in {peer["db"] for peer in results.get("peers", [])} - comparison.keys():
        # Every peer failed on this database: still say so.
        for peer in results["peers"]:
            if peer["db"] == db:
                reason = peer["error"].strip().splitlines()[-1]
                rows.append((f"{peer['peer']} jobs/s", _name(db), "-", f"did not run: {reason}"))
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print()
    print(f"| {'row':<{widths[0]}} | {'database':<{widths[1]}} | {'median':>{widths[2]}} | note |")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 1)}:|------|")
    for row, db, value, note in rows:
        print(f"| {row:<{widths[0]}} | {db:<{widths[1]}} | {value:>{widths[2]}} | {note} |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1,000 jobs, 3 repeats, 20 latency samples, depth 10,000",
    )
    parser.add_argument("--jobs", type=int, help="events, runs or peer jobs per sample (10,000)")
    parser.add_argument("--repeats", type=int, help="samples per row (default 3)")
    parser.add_argument("--latency-samples", type=int, help="events sent to an idle worker (100)")
    parser.add_argument("--depth", type=int, help="queued runs of the deep claim sample (100,000)")
    parser.add_argument("--waits", type=int, default=10000, help="pending waits, deep sample")
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows, of {','.join(ROWS)}")
    parser.add_argument(
        "--threads", type=int, default=1, help="--threads of each of our 2 workers (default 1)"
    )
    parser.add_argument(
        "--dbs", default="postgres,sqlite", help="databases of the runs and peers rows"
    )
    # The peers run without a log line per job (django-q2 at WARNING, db_worker --verbosity
    # 0); ours alike by default. 1 adds our two INFO lines a run.
    parser.add_argument(
        "--worker-verbosity",
        type=int,
        choices=(0, 1),
        default=0,
        help="--verbosity of our workers in the runs row (default 0, as the peers log)",
    )
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get(DB_PREFIX_ENV, DEFAULT_DB_PREFIX),
        help=f"prefix of every PostgreSQL database created (${DB_PREFIX_ENV}, else %(default)r)",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--logs", help="keep the children's logs here (default: a temp dir)")
    parser.add_argument("--runs-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    parser.add_argument("--interleaved", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.jobs = args.jobs or (1000 if quick else 10000)
    args.repeats = args.repeats or 3
    args.latency_samples = args.latency_samples or (20 if quick else 100)
    args.depth = args.depth or (10000 if quick else 100000)
    args.only = [row for row in args.only.split(",") if row]
    args.dbs = [db for db in args.dbs.split(",") if db]
    unknown = set(args.only) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.runs_child:
        runs_child(args)
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="inngest_suite_logs_") as tmp:
        logs = Path(args.logs or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        results = measure(args, logs)
    for r in results.get("runs", []):
        r["jobs"] = f"({args.jobs:,} events)"
    if "runs" in results or "peers" in results:
        results["comparison"] = compare(results)
    print_table(table_rows(results))
    print(
        f"\n{os.cpu_count()} CPUs; {args.repeats} repeats; "
        f"{time.monotonic() - started:,.0f} s in all."
    )
    write_json(args.json, results)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    main()
