"""`manage.py run_inngest_worker`: run the engine loop until stopped."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from inngest_django.management.arguments import positive_int
from inngest_django.worker import Worker

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}
_SIGNALS = (signal.SIGTERM, signal.SIGINT)

logger = logging.getLogger("inngest_django.worker")


class Command(BaseCommand):
    help = "Run the inngest_django worker: events, cron ticks and function runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=positive_int,
            default=1,
            help="Runs executed at once (default: %(default)r)",
        )
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="Exit once nothing is due now (default: %(default)r)",
        )
        parser.add_argument(
            "--worker-id",
            default=None,
            help="Name recorded on claimed runs (default: host:pid:random)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker = Worker(
            threads=options["threads"],
            worker_id=options["worker_id"],
            until_idle=options["until_idle"],
        )
        if not self._called_from_command_line:
            # call_command(): the calling program owns the process's logging and signals.
            worker.run()
            return
        self._configure_logging(options["verbosity"])
        self._run_under_signals(worker)

    def _run_under_signals(self, worker: Worker) -> None:
        """Run the loop in a thread, keeping the main thread free for SIGTERM and SIGINT."""
        # Python runs signal handlers on the main thread between bytecodes, so a loop blocked in
        # the database (SQLite waits out another step's write lock) would delay them for as long.
        failures: list[BaseException] = []

        def run() -> None:
            try:
                worker.run()
            except BaseException as exc:
                failures.append(exc)
            finally:
                connections.close_all()

        self._install_signal_handlers(worker)
        loop = threading.Thread(target=run, name="inngest-worker", daemon=True)
        loop.start()
        while loop.is_alive():
            loop.join(timeout=1)
        if failures:
            raise failures[0]

    def _configure_logging(self, verbosity: int) -> None:
        # Library code attaches no handlers; the command does, from --verbosity.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log = logging.getLogger("inngest_django")
        log.addHandler(handler)
        log.setLevel(_LEVELS.get(verbosity, logging.DEBUG))
        log.propagate = False

    def _install_signal_handlers(self, worker: Worker) -> None:
        received = {"count": 0}

        def on_signal(signum: int, frame: Any) -> None:
            received["count"] += 1
            if received["count"] > 1:
                # Second signal: leave now; leases expire and other workers resume the runs.
                os._exit(1)
            logger.warning(
                "Signal %d: finishing in-flight runs; send it again to exit at once",
                signum,
                extra={"action": "worker_stopping", "worker_id": worker.worker_id},
            )
            worker.stop()

        for signum in _SIGNALS:
            signal.signal(signum, on_signal)
