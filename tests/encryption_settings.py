"""Test settings for worker subprocesses of the encryption tests: keys from the environment."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import INNGEST_DJANGO

# Comma-separated Fernet keys, newest first, as the test process configures its own.
INNGEST_DJANGO = {
    **INNGEST_DJANGO,
    "ENCRYPTION_KEYS": tuple(
        key for key in os.environ.get("INNGEST_DJANGO_TEST_ENCRYPTION_KEYS", "").split(",") if key
    ),
}
