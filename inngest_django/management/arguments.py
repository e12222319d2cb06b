"""Argument types shared by the management commands."""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """Return `value` as an int of at least 1, or raise an error argparse reports."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number
