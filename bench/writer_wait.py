"""How long another process's `send()` waits for SQLite's write lock while two workers drain.

Run from the repository root:

    python bench/writer_wait.py --runs 6000

Sends `--runs` events of the one-step `noop-steps` function (untimed) to two
`run_inngest_worker` processes on a throwaway SQLite file, then, until every run has finished,
times one `send()` of an event no function listens to every 20 ms from this process, as a web
request would send it. Prints how long the drain took after the last batch was sent and the
sends' wait percentiles.
`INNGEST_DJANGO_BENCH_CHECKPOINT`, `INNGEST_DJANGO_BENCH_GROUP_COMMIT` and
`INNGEST_DJANGO_BENCH_WRITE_QUEUE` (bench/settings.py) choose the settings of this process and
of the workers, which inherit them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if not __package__:
    # `python bench/writer_wait.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, positive, setup_django

SEND_BATCH = 500
# A web request's send, this often while the workers drain.
SEND_EVERY_SECONDS = 0.02


def measure(runs: int, workdir: Path) -> str:
    """Queue `runs` one-step runs for two workers; time sends until they finish; return a line."""
    from bench.fleet_throughput import Fleet
    from bench.inngest_functions import STEPS_EVENT
    from inngest_django import send
    from inngest_django.enums import RunStatus
    from inngest_django.models import FunctionRun

    fleet = Fleet(2, 1, workdir)
    try:
        fleet.wait_until_up()
        for start in range(0, runs, SEND_BATCH):
            batch = min(SEND_BATCH, runs - start)
            send([{"name": STEPS_EVENT, "data": {"steps": 1}} for _ in range(batch)])
        finished = FunctionRun.objects.filter(
            function_id="bench-noop-steps", status=RunStatus.COMPLETED
        )
        started, waits = time.monotonic(), []
        while not waits or len(waits) % 10 or finished.count() < runs:
            before = time.perf_counter()
            send({"name": "bench/web-request", "data": {}})
            waits.append((time.perf_counter() - before) * 1000)
            time.sleep(SEND_EVERY_SECONDS)
        seconds = time.monotonic() - started
    finally:
        fleet.stop()
    shown = ", ".join(
        f"{name} {percentile(waits, fraction):.1f}"
        for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
    )
    settings = {
        name: os.environ.get(f"INNGEST_DJANGO_BENCH_{name}", "default")
        for name in ("CHECKPOINT", "GROUP_COMMIT", "WRITE_QUEUE")
    }
    return (
        f"CHECKPOINT {settings['CHECKPOINT']}, GROUP_COMMIT {settings['GROUP_COMMIT']}, "
        f"WRITE_QUEUE {settings['WRITE_QUEUE']}: "
        f"finished {seconds:.1f} s after the last batch; {len(waits)} sends waited ms {shown}"
    )


def main(argv: list[str] | None = None) -> None:
    """Run one sample and print its line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=positive, default=6000, help="runs to drain (default: %(default)r)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="inngest_writer_wait_") as workdir:
        setup_django("sqlite", Path(workdir))
        print(measure(args.runs, Path(workdir)), flush=True)


if __name__ == "__main__":
    main()
