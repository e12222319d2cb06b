"""`manage.py inngest_event_key`: create, list and revoke Event API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inngest_django.event_keys import issue_key, revoke
from inngest_django.management.arguments import positive_int
from inngest_django.models import EventKey


class Command(BaseCommand):
    help = "Manage Event API keys: create one (shown once), list them, or revoke one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{create,list,revoke}"
        )
        create = actions.add_parser("create", help="Create a key and print it, once.")
        create.add_argument("name", help="Who uses the key, for example 'billing service'")
        create.add_argument(
            "--key",
            dest="raw_key",
            help="Register this key (from a secret store) instead of a random one; "
            "32 or more letters, digits, '-' or '_'",
        )
        create.add_argument(
            "--prefix",
            dest="event_prefixes",
            action="append",
            default=[],
            metavar="PREFIX",
            help="Let the key send only events whose names start with PREFIX, such as "
            "'billing/'; repeat for several (default: any name)",
        )
        actions.add_parser(
            "list", help="List keys by id, name, prefix and event-name prefixes; never the keys."
        )
        revoke_parser = actions.add_parser(
            "revoke", help="Revoke a key: it is refused from now on."
        )
        revoke_parser.add_argument("key_id", type=positive_int, help="The key's id, from `list`")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options["name"], options["raw_key"], options["event_prefixes"])
        elif action == "list":
            self._list()
        else:
            self._revoke(options["key_id"])

    def _create(self, name: str, raw_key: str | None, event_prefixes: list[str]) -> None:
        if not name.strip():
            raise CommandError("The key's name must not be blank")
        if any(not prefix.strip() for prefix in event_prefixes):
            raise CommandError("An event name prefix must not be blank")
        try:
            row, raw_key = issue_key(name.strip(), raw_key=raw_key, event_prefixes=event_prefixes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        limited = (
            f" It may send only event names starting with {_prefixes_text(row.event_prefixes)}."
            if row.event_prefixes
            else ""
        )
        self.stderr.write(
            f"Created event key {row.pk} {row.name!r}.{limited} "
            "It is shown only now; store it safely:"
        )
        # The key alone on stdout, so `KEY=$(manage.py inngest_event_key create x)` works.
        self.stdout.write(raw_key)

    def _list(self) -> None:
        rows = list(EventKey.objects.order_by("pk"))
        if not rows:
            self.stdout.write("No event keys.")
            return
        self.stdout.write(
            f"{'ID':>5}  {'PREFIX':<9} {'STATUS':<26} {'LAST USED':<20} {'EVENT NAMES':<24} NAME"
        )
        for row in rows:
            status = f"revoked {_when(row.revoked_at)}" if row.revoked_at else "live"
            names = _prefixes_text(row.event_prefixes) if row.event_prefixes else "any"
            self.stdout.write(
                f"{row.pk:>5}  {row.prefix + '…':<9} {status:<26} "
                f"{_when(row.last_used_at) or 'never':<20} {names:<24} {row.name}"
            )

    def _revoke(self, key_id: int) -> None:
        if not revoke(key_id):
            raise CommandError(f"No live event key has id {key_id} (unknown, or revoked already)")
        self.stdout.write(f"Revoked event key {key_id}.")


def _prefixes_text(prefixes: list[str]) -> str:
    """Return event-name prefixes as "'billing/*', 'shop/*'"."""
    return ", ".join(f"'{prefix}*'" for prefix in prefixes)


def _when(moment: datetime | None) -> str:
    """Return a datetime as UTC to the minute, or "" for None."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""
