"""The chaos suite runs last: its database restart breaks connections that other tests hold."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the chaos tests after every other test, keeping both groups in their order."""
    # A session-scoped live server, for one, keeps a connection that a PostgreSQL restart
    # kills; tests after the restart would see it fail. This hook sees the whole session.
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)
