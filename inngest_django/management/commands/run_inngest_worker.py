"""`manage.py run_inngest_worker`: run the engine loop until stopped."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inngest_django.worker import Worker

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be 1 or more")
    return number


class Command(BaseCommand):
    help = "Run the inngest_django worker: events, cron ticks and function runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=_positive_int,
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
        self._configure_logging(options["verbosity"])
        worker = Worker(
            threads=options["threads"],
            worker_id=options["worker_id"],
            until_idle=options["until_idle"],
        )
        self._install_signal_handlers(worker)
        try:
            worker.run()
        except KeyboardInterrupt as exc:
            raise CommandError("interrupted") from exc

    def _configure_logging(self, verbosity: int) -> None:
        # Library code attaches no handlers; the command does, from --verbosity.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        for name in ("inngest_django",):
            log = logging.getLogger(name)
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
            logging.getLogger("inngest_django.worker").warning(
                "Signal %d: finishing in-flight runs; send it again to exit at once", signum
            )
            worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
