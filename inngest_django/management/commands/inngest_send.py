"""`manage.py inngest_send`: send events from the command line and print their ids."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from inngest_django.events import send
from inngest_django.exceptions import InvalidEventError
from inngest_django.management.arguments import positive_int
from inngest_django.names import RESERVED_PREFIX
from inngest_django.schemas.events import Event


def _parse_data(value: Any) -> dict[str, Any]:
    """Return --data as a dict, or raise CommandError saying what is wrong with it."""
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"--data must be a JSON object, not {type(data).__name__}")
    return data


class Command(BaseCommand):
    help = "Send events (stored at once, in one transaction) and print their ids."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Event name, such as shop/product.imported")
        parser.add_argument(
            "--data", default="{}", help="Event data as a JSON object (default: %(default)r)"
        )
        parser.add_argument(
            "--id",
            default="",
            help="Producer id; repeats within 24 h start no new run (default: %(default)r)",
        )
        parser.add_argument(
            "--count",
            type=positive_int,
            default=1,
            help="How many copies of the event to send (default: %(default)r)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        if name.startswith(RESERVED_PREFIX):
            raise CommandError(
                f"{name!r} is reserved: names starting with {RESERVED_PREFIX!r} are sent only "
                "by the engine"
            )
        data = _parse_data(options["data"])
        events = [Event(name=name, data=data, id=options["id"]) for _ in range(options["count"])]
        try:
            with transaction.atomic():
                ids = send(events)
        except InvalidEventError as exc:
            raise CommandError(str(exc)) from exc
        for event_id in ids:
            self.stdout.write(event_id)
