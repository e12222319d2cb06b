"""A task run's stored error as Django's TaskError: the exception's dotted class path."""

from __future__ import annotations

import traceback

import pytest

from inngest_django.backends.tasks.results import exception_class_path, task_error
from inngest_django.serialization import error_to_json


class ShipmentError(Exception):
    pass


class Outer:
    class InnerError(Exception):
        pass


def stored(exc: BaseException) -> dict:
    """Return `exc` raised and stored as the engine stores a run's error."""
    try:
        raise exc
    except BaseException as raised:
        return error_to_json(raised)


def chained() -> dict:
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ShipmentError("outer") from exc
    except ShipmentError as raised:
        return error_to_json(raised)


@pytest.mark.parametrize(
    ("error", "path"),
    [
        (stored(ValueError("plain")), "builtins.ValueError"),
        (stored(ValueError("two\nlines\nValueError: fake")), "builtins.ValueError"),
        (stored(Outer.InnerError("nested")), f"{__name__}.Outer.InnerError"),
        (chained(), f"{__name__}.ShipmentError"),
        (stored(KeyboardInterrupt()), "builtins.KeyboardInterrupt"),
    ],
    ids=["builtin", "multi-line message", "nested class", "chained", "no message"],
)
def test_the_class_path_is_read_from_the_stack(error, path):
    assert exception_class_path(error["name"], error["stack"]) == path
    converted = task_error(error)
    assert (converted.exception_class_path, converted.traceback) == (path, error["stack"])
    if "Outer" not in path:  # import_string, like Django, reaches module-level classes only
        assert converted.exception_class.__name__ == error["name"]


def test_a_note_after_the_message_does_not_confuse_it():
    exc = ValueError("with a note")
    exc.add_note("KeyError: a note that looks like an exception")
    error = stored(exc)
    assert exception_class_path(error["name"], error["stack"]) == "builtins.ValueError"


def test_without_a_stack_the_name_is_all_there_is():
    assert exception_class_path("ValueError", "") == "builtins.ValueError"
    assert exception_class_path("TaskNotFoundError", "") == "TaskNotFoundError"
    # A stack that names another class than the error's (written by hand) is not trusted.
    stack = "".join(traceback.format_exception(KeyError("x")))
    assert exception_class_path("ValueError", stack) == "builtins.ValueError"
