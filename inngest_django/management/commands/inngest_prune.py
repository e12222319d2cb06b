"""`manage.py inngest_prune`: delete old finished runs, their rows and unused events."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inngest_django.conf import app_settings
from inngest_django.management.arguments import positive_int
from inngest_django.retention import PruneReport, configured_older_than, parse_older_than, prune


def older_than(value: str) -> timedelta:
    """Return `value` as a retention period, or raise an error argparse reports."""
    try:
        return parse_older_than(value, what="duration")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Command(BaseCommand):
    help = (
        "Delete finished runs older than --older-than, with their steps, waits, defers and "
        "relayed outbox rows, then the events no remaining run needs, idle flow-control state "
        "and expired idempotency keys. Unfinished runs and what they need are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=older_than,
            default=None,
            help="Retention period such as 30d, 12h or 1w; required unless "
            "INNGEST_DJANGO['PRUNE_OLDER_THAN'] is set (default: that setting)",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=None,
            help="Rows deleted per transaction (default: PRUNE_BATCH_SIZE, 500 unless set)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted and delete nothing (default: %(default)r)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        period = options["older_than"]
        if period is None:
            try:
                period = configured_older_than()
            except (ImproperlyConfigured, ValueError) as exc:
                raise CommandError(str(exc)) from None
        if period is None:
            raise CommandError(
                "--older-than is required unless INNGEST_DJANGO['PRUNE_OLDER_THAN'] is set"
            )
        batch_size = options["batch_size"] or app_settings.PRUNE_BATCH_SIZE
        report = prune(period, batch_size=batch_size, dry_run=options["dry_run"])
        self._print(report, period)

    def _print(self, report: PruneReport, period: timedelta) -> None:
        cutoff = report.cutoff.strftime("%Y-%m-%d %H:%M:%S UTC")
        if report.dry_run:
            self.stdout.write(f"Dry run: nothing deleted. Older than {period} (before {cutoff}):")
        else:
            self.stdout.write(f"Deleted, older than {period} (before {cutoff}):")
        width = max(len(name) for name in report.counts)
        for name, count in report.counts.items():
            self.stdout.write(f"  {name:<{width}}  {count:>9}")
        verb = "would be deleted" if report.dry_run else "deleted"
        self.stdout.write(f"{report.total} rows {verb}.")
