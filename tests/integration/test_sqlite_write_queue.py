"""SQLite's writers queue on a file lock beside the database, held while SQLite's write lock is."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator

import pytest
from django.db import connection, connections, transaction

from inngest_django.sqlite_write_queue import lock_path, takes_write_lock
from tests.helpers import wait_for
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue_file() -> Iterator[str]:
    if connection.vendor != "sqlite":
        pytest.skip("the write queue is SQLite's: PostgreSQL locks rows, not the database")
    connection.ensure_connection()
    path = lock_path(connection)
    assert path is not None and path == f"{connection.settings_dict['NAME']}-writers"
    yield path


def is_locked(path: str) -> bool:
    """Return True if another open file holds the queue's lock (tried from a file of our own)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "sql, writes",
    [
        ('INSERT INTO "t" VALUES (1)', True),
        ("  update t set a = 1", True),
        ("DELETE FROM t", True),
        ("BEGIN IMMEDIATE", True),
        ("BEGIN", False),
        ("CREATE TABLE t (a)", True),
        ("SELECT * FROM t", False),
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
        ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", True),
        ("SAVEPOINT s1", False),
        ("PRAGMA journal_mode=WAL", False),
    ],
)
def test_statements_that_take_sqlites_write_lock(sql, writes):
    assert takes_write_lock(sql) is writes


def test_a_write_transaction_holds_the_queue_until_it_commits(queue_file):
    with transaction.atomic():
        # transaction_mode IMMEDIATE: SQLite's write lock, and so the queue's, from BEGIN on.
        assert is_locked(queue_file)
        Order.objects.create(reference="held")
        assert is_locked(queue_file)
    assert not is_locked(queue_file)
    assert Order.objects.filter(reference="held").exists()


def test_a_rolled_back_transaction_lets_the_queue_go(queue_file):
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(reference="gone")
        raise RuntimeError("roll back")
    assert not is_locked(queue_file)
    assert not Order.objects.filter(reference="gone").exists()


def test_an_autocommit_write_holds_it_for_its_statement_only_and_a_read_not_at_all(queue_file):
    seen: dict[str, bool] = {}

    def probe(execute, sql, params, many, context):
        # Added after the queue's own wrapper, so it runs inside it.
        seen[sql.split()[0].upper()] = is_locked(queue_file)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(probe):
        Order.objects.create(reference="autocommit")
        list(Order.objects.all())
    assert seen == {"INSERT": True, "SELECT": False}
    assert not is_locked(queue_file)


def test_a_closed_connection_lets_the_queue_go(queue_file):
    atomic = transaction.atomic()
    atomic.__enter__()
    Order.objects.create(reference="closed")
    assert is_locked(queue_file)
    connection.close()  # closed inside the transaction: SQLite rolls it back
    assert not is_locked(queue_file)
    atomic.__exit__(None, None, None)
    assert not Order.objects.filter(reference="closed").exists()


def test_a_waiting_writer_gets_in_once_the_holder_commits(queue_file):
    holding, release, wrote = threading.Event(), threading.Event(), threading.Event()
    held_while_writing: list[bool] = []

    def holder() -> None:
        try:
            with transaction.atomic():
                Order.objects.create(reference="first")
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    def writer() -> None:
        def probe(execute, sql, params, many, context):
            if sql.startswith("INSERT"):
                held_while_writing.append(connection._inngest_write_queue.held)
            return execute(sql, params, many, context)

        try:
            with connection.execute_wrapper(probe):
                Order.objects.create(reference="second")
            wrote.set()
        finally:
            connections.close_all()

    first = threading.Thread(target=holder)
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=writer)
    second.start()
    # The second writer waits on the queue while the first holds it.
    assert not wrote.wait(0.3)
    release.set()
    first.join(10)
    second.join(10)
    assert wrote.is_set()
    assert held_while_writing == [True]
    assert set(Order.objects.values_list("reference", flat=True)) == {"first", "second"}


def test_a_writer_that_cannot_take_the_queue_in_time_goes_on_to_sqlite(queue_file):
    # Someone holds the file lock but not SQLite's: the writer must not hang on the file.
    fd = os.open(queue_file, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    queue = connection._inngest_write_queue
    timeout, queue.timeout = queue.timeout, 0.2
    try:
        Order.objects.create(reference="past the queue")
        assert not queue.held and not queue.bypassed
        with transaction.atomic():
            # Gave up at BEGIN: the transaction's writes go on without waiting again.
            assert queue.bypassed and not queue.held
            Order.objects.create(reference="in a transaction")
            assert queue.bypassed and not queue.held
        assert not queue.bypassed
    finally:
        queue.timeout = timeout
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert Order.objects.filter(reference__in=["past the queue", "in a transaction"]).count() == 2
    # The helper that was still waiting gives the lock back once it gets it.
    wait_for(lambda: not is_locked(queue_file), what="the queue let go", timeout=5, logs=lambda: "")


def test_a_lock_file_that_cannot_be_opened_turns_the_queue_off_not_the_write(queue_file, caplog):
    queue = connection._inngest_write_queue
    path, queue.path = queue.path, f"{queue_file}-missing-dir/writers"
    fd, queue._fd = queue._fd, None
    try:
        Order.objects.create(reference="no lock file")
        assert queue.off and not queue.held
        Order.objects.create(reference="still no lock file")
    finally:
        queue.path, queue._fd, queue.off = path, fd, False
    assert Order.objects.filter(reference__contains="no lock file").count() == 2
    assert [r.message for r in caplog.records].count(
        f"SQLite write queue off for {queue_file}-missing-dir/writers: "
        f"[Errno 2] No such file or directory: '{queue_file}-missing-dir/writers'"
    ) == 1


def test_no_queue_with_the_setting_off_or_on_postgresql(settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "SQLITE_WRITE_QUEUE": False}
    other = connections.create_connection("default")
    try:
        other.ensure_connection()
        assert getattr(other, "_inngest_write_queue", None) is None
    finally:
        other.close()
    connection.ensure_connection()
    installed = getattr(connection, "_inngest_write_queue", None) is not None
    assert installed == (connection.vendor == "sqlite")
