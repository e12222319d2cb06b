"""Measure runs/s of a fleet of 1, 2 and 4 `run_inngest_worker` processes draining one queue.

Run from the repository root:

    python bench/fleet_throughput.py --workers 1,2,4 --runs 2000 --repeats 3

Each sample queues `--runs` runs of the 3-step `noop-steps` function (sent and dispatched
untimed, then parked), starts the worker processes, waits until every one is up, releases the
runs at once and times from the first claim to the last finish, as the runs themselves record
them (`started_at`, `finished_at`). The database is throwaway: a freshly created `bench_inngest`
on PostgreSQL (the default), or a temporary SQLite file with `--db sqlite`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if not __package__:
    # `python bench/fleet_throughput.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, median, positive, server_version, setup_django, write_json

DATABASES = ("postgres", "sqlite")
STEPS = 3
# Runs wait this far in the future until every worker is up, then are all released at once.
PARKED = timedelta(hours=1)
SEND_BATCH = 500


def _worker_env() -> dict[str, str]:
    """Return the environment of a worker: bench.settings on the database set up here."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONPATH": str(ROOT)}


def queue_parked_runs(runs: int) -> None:
    """Send and dispatch `runs` events of `noop-steps`, then park the runs (untimed)."""
    from django.utils import timezone

    from bench.inngest_functions import STEPS_EVENT
    from inngest_django import send
    from inngest_django.events import dispatch_pending
    from inngest_django.models import FunctionRun

    for start in range(0, runs, SEND_BATCH):
        batch = min(SEND_BATCH, runs - start)
        send([{"name": STEPS_EVENT, "data": {"steps": STEPS}} for _ in range(batch)])
    while dispatch_pending():
        pass
    queued = FunctionRun.objects.filter(function_id="bench-noop-steps")
    if queued.count() != runs:
        raise RuntimeError(f"{queued.count()} runs queued, expected {runs}")
    queued.update(available_at=timezone.now() + PARKED)


def clear() -> None:
    """Delete every run and event of the previous sample."""
    from inngest_django.models import Event, FunctionRun

    FunctionRun.objects.all().delete()
    Event.objects.all().delete()


class Fleet:
    """`run_inngest_worker` processes on the bench database, with their logs in `workdir`.

    `verbosity` is the workers' `--verbosity`: 1 logs a line as each run is queued and another
    as it finishes; 0 logs warnings only, as the suite runs the peers.
    """

    def __init__(self, size: int, threads: int, workdir: Path, *, verbosity: int = 1) -> None:
        from django.utils import timezone

        self.logs = [workdir / f"worker-{index}.log" for index in range(size)]
        self.worker_ids = [f"bench-{index}" for index in range(size)]
        self.started_at = timezone.now()
        self.processes: list[subprocess.Popen] = []
        for worker_id, log in zip(self.worker_ids, self.logs, strict=True):
            with log.open("w") as out:
                command = [sys.executable, str(ROOT / "manage.py"), "run_inngest_worker"]
                command += ["--threads", str(threads), "--worker-id", worker_id]
                command += ["--verbosity", str(verbosity)]
                self.processes.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=_worker_env(), stdout=out, stderr=subprocess.STDOUT
                    )
                )

    def wait_until_up(self, timeout: float = 60.0) -> None:
        """Wait until every worker has stored its first heartbeat (logged or not)."""
        from inngest_django.models import WorkerHeartbeat

        up = WorkerHeartbeat.objects.filter(
            worker_id__in=self.worker_ids,
            started_at__gte=self.started_at,
            stopped_at__isnull=True,
        )
        deadline = time.monotonic() + timeout
        while up.count() < len(self.worker_ids):
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError(f"a worker exited while starting:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not up after {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every worker (they drain, with nothing left) and wait for them."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def output(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text()[-3000:]}" for log in self.logs)


def drain_sample(size: int, *, runs: int, threads: int, workdir: Path) -> dict[str, float]:
    """Queue `runs` parked runs, release them to `size` workers; time first claim to last finish."""
    from django.db.models import Max, Min
    from django.utils import timezone

    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun, StepRun

    clear()
    queue_parked_runs(runs)
    fleet = Fleet(size, threads, workdir)
    try:
        fleet.wait_until_up()
        FunctionRun.objects.update(available_at=timezone.now())
        deadline = time.monotonic() + max(600.0, runs / 2)
        pending = FunctionRun.objects.exclude(status=RunStatus.COMPLETED)
        while pending.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending.count()} runs left at the deadline\n{fleet.output()}")
            if any(process.poll() is not None for process in fleet.processes):
                raise RuntimeError(f"a worker exited mid-sample:\n{fleet.output()}")
            time.sleep(0.1)
    finally:
        fleet.stop()
    span = FunctionRun.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
    steps = StepRun.objects.count()
    if steps != runs * STEPS:
        raise RuntimeError(f"{steps} step rows for {runs} runs of {STEPS} steps")
    seconds = (span["last"] - span["first"]).total_seconds()
    return {"seconds": seconds, "runs_per_second": runs / seconds}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Set up the database, then sample each fleet size `--repeats` times, interleaved."""
    with tempfile.TemporaryDirectory(prefix="inngest_fleet_") as workdir:
        setup_django(args.db, Path(workdir))
        samples: dict[int, list[dict[str, float]]] = {size: [] for size in args.workers}
        # Untimed warm-up: the server's caches, and the files the workers import.
        drain_sample(1, runs=min(args.runs, 200), threads=args.threads, workdir=Path(workdir))
        # Interleaved, so drift (checkpoints, noisy neighbours) hits every fleet size alike.
        for repeat in range(args.repeats):
            for size in args.workers:
                sample = drain_sample(
                    size, runs=args.runs, threads=args.threads, workdir=Path(workdir)
                )
                samples[size].append(sample)
                print(
                    f"[{args.db}] repeat {repeat + 1}/{args.repeats}, {size} workers: "
                    f"{sample['runs_per_second']:,.1f} runs/s ({sample['seconds']:.1f} s)",
                    flush=True,
                )
        version = server_version()
        clear()
    return {
        "db": args.db,
        "vendor": version,
        "runs": args.runs,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "samples": {str(size): values for size, values in samples.items()},
    }


def print_table(result: dict[str, Any]) -> None:
    """Print the median runs/s per fleet size, and the speed-up over one worker."""
    samples = {int(size): values for size, values in result["samples"].items()}
    rates = {size: median(s["runs_per_second"] for s in values) for size, values in samples.items()}
    base = rates.get(1)
    print()
    print(
        f"{result['vendor']}, {result['cpus']} CPUs: {result['runs']:,} runs of {STEPS} no-op "
        f"steps per sample, --threads {result['threads']}; medians of "
        f"{len(next(iter(samples.values())))} samples, first claim to last finish."
    )
    header = f"{'workers':>7} {'runs/s':>8} {'speed-up':>8} {'runs/s range':>14}"
    print(header)
    print("-" * len(header))
    for size, rate in rates.items():
        values = [s["runs_per_second"] for s in samples[size]]
        speedup = f"{rate / base:.2f}x" if base else ""
        spread = f"{min(values):,.1f}-{max(values):,.1f}"
        print(f"{size:>7} {rate:>8,.1f} {speedup:>8} {spread:>14}")


def _sizes(value: str) -> list[int]:
    try:
        return [positive(part) for part in value.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts") from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--db", choices=DATABASES, default="postgres", help="database (default: %(default)r)"
    )
    parser.add_argument(
        "--workers",
        type=_sizes,
        default=[1, 2, 4],
        help="fleet sizes, comma-separated (default: 1,2,4)",
    )
    parser.add_argument(
        "--runs", type=positive, default=2000, help="runs per sample (default: %(default)r)"
    )
    parser.add_argument(
        "--threads", type=positive, default=1, help="threads per worker (default: %(default)r)"
    )
    parser.add_argument(
        "--repeats", type=positive, default=3, help="samples per fleet size (default: %(default)r)"
    )
    parser.add_argument("--json", help="also write the raw samples here (default: %(default)r)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    result = run_bench(args)
    print_table(result)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
