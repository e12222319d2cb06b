"""`manage.py inngest_function`: pause, resume or invoke a function, or list the paused ones."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inngest_django.exceptions import FunctionNotFoundError, InvalidEventError
from inngest_django.function_control import invoke_function, pause_function, resume_function
from inngest_django.management.commands.inngest_send import _parse_data
from inngest_django.models import FunctionPause


def _user() -> str:
    """Return the OS user running the command, or "?" where there is none (containers)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "?"


class Command(BaseCommand):
    help = (
        "Pause or resume a function (while paused, triggers start no runs and its queued runs "
        "wait), invoke it with a JSON payload, or list the paused functions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("verb", choices=["pause", "resume", "invoke", "paused"])
        parser.add_argument("function_id", nargs="?", help="The function's slug")
        parser.add_argument(
            "--data", default="{}", help="invoke: the event data, a JSON object (default: {})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verb, function_id = options["verb"], options["function_id"]
        if verb == "paused":
            for pause in FunctionPause.objects.order_by("function_id"):
                self.stdout.write(f"{pause.function_id}\t{pause.paused_at.isoformat()}")
            return
        if not function_id:
            raise CommandError(f"{verb} needs a function id")
        try:
            if verb == "pause":
                done = pause_function(function_id, paused_by=f"command ({_user()})")
                self.stdout.write(
                    f"Paused {function_id}." if done else f"{function_id} was already paused."
                )
            elif verb == "resume":
                done = resume_function(function_id)
                self.stdout.write(
                    f"Resumed {function_id}." if done else f"{function_id} was not paused."
                )
            else:
                run_id = invoke_function(function_id, _parse_data(options["data"]))
                self.stdout.write(run_id or "Merged into a pending run (debounce).")
        except FunctionNotFoundError:
            raise CommandError(f"No registered function has the id {function_id!r}") from None
        except InvalidEventError as exc:
            raise CommandError(str(exc)) from None
