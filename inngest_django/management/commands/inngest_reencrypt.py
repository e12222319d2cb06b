"""`manage.py inngest_reencrypt`: seal every stored payload with the newest encryption key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inngest_django import encryption
from inngest_django.management.arguments import positive_int
from inngest_django.sealed_fields import reseal_column, sealed_columns
from inngest_django.waits import rehash_pending

_SHOWN_IDS = 20


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored payload (event data, outputs, errors, defer payloads) with "
        "the first of INNGEST_DJANGO['ENCRYPTION_KEYS'], seal values written in clear, and "
        "rehash pending waits' match values. Safe to interrupt and run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=500,
            help="Rows rewritten per transaction (default: %(default)r)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be rewritten; write nothing (default: %(default)r)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not encryption.enabled():
            raise CommandError(
                "Encryption at rest is off: INNGEST_DJANGO['ENCRYPTION_KEYS'] is empty, so "
                "there is no key to re-encrypt with."
            )
        dry_run = options["dry_run"]
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        unreadable: list[str] = []
        total = 0
        for model, field in sealed_columns():
            counts = reseal_column(model, field, batch_size=options["batch_size"], dry_run=dry_run)
            total += counts.resealed
            self.stdout.write(
                f"{model._meta.db_table}.{field.column}: {counts.resealed} {verb}, "
                f"{counts.current} already current, {counts.unreadable} unreadable"
            )
            if counts.unreadable:
                ids = ", ".join(str(pk) for pk in counts.unreadable_pks[:_SHOWN_IDS])
                more = "" if counts.unreadable <= _SHOWN_IDS else ", ..."
                unreadable.append(f"{model._meta.db_table}.{field.column} rows {ids}{more}")
        waits = rehash_pending(dry_run=dry_run)
        self.stdout.write(
            f"pending waits: {waits['rehashed']} match values "
            f"{'would be rehashed' if dry_run else 'rehashed'}, {waits['current']} already "
            f"current, {waits['kept']} kept, {waits['unreadable']} unreadable"
        )
        if unreadable:
            raise CommandError(
                "Some values could not be decrypted with any configured key; keep the old keys "
                "until these rows are fixed or deleted: " + "; ".join(unreadable)
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {total} values {verb}."
                + ("" if dry_run else " Keys other than the first may now be removed.")
            )
        )
