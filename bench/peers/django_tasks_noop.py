"""The no-op task of django_tasks_db_drain, in a module of its own.

`@task()` looks its backend up in `TASKS` when it decorates, so this module may be imported only
once settings are configured; `db_worker` imports it by the path each row stores.
"""

from __future__ import annotations

from django_tasks import task


@task()
def noop() -> None:
    """Do nothing, as the other systems' jobs do."""
