"""The demo site works end to end: migrate, send, run a worker, and see the steps' rows."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
ON_POSTGRES = os.environ.get("INNGEST_DJANGO_TEST_DB") == "postgres"

pytestmark = pytest.mark.slow

# Posts the "Sign up a user" form the way a browser does: CSRF cookie and token included.
SIGN_UP_THROUGH_HOME_PAGE = """
from django.test import Client
browser = Client(enforce_csrf_checks=True)
page = browser.get("/")
assert page.status_code == 200 and b"Recent runs" in page.content, page.status_code
token = browser.cookies["csrftoken"].value
sent = browser.post("/events/", {"event": "user", "csrfmiddlewaretoken": token}, follow=True)
assert sent.status_code == 200 and b"Sent user/created" in sent.content, sent.status_code
"""

# Places an order of two mugs through the home page form, drains the worker in-process, and
# prints the emails sent meanwhile as JSON. FAIL_SHIPMENT is defined before this runs.
PLACE_ORDER_AND_DRAIN = """
import json
from django.core import mail
from django.test import Client
from django.test.utils import setup_test_environment
from inngest_django.testing import drain

setup_test_environment()  # the locmem email backend: sent emails land in mail.outbox
browser = Client(enforce_csrf_checks=True)
browser.get("/")
form = {"quantity": "2", "csrfmiddlewaretoken": browser.cookies["csrftoken"].value}
if FAIL_SHIPMENT:
    form["fail_shipment"] = "on"
placed = browser.post("/orders/", form)
assert placed.status_code == 302, placed.status_code
drain(timeout=30)  # the failing shipment is retried once, 2 s later
page = browser.get("/")
assert page.status_code == 200 and b"Cleanups" in page.content, page.status_code
print(json.dumps([{"to": m.to, "subject": m.subject, "body": m.body} for m in mail.outbox]))
"""


def _pg_params() -> dict[str, str]:
    return {
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD", "postgres"),
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
    }


class DemoDatabase:
    """A fresh database for the demo: a SQLite file, or a PostgreSQL database on PostgreSQL."""

    def __init__(self, tmp_path: Path) -> None:
        if ON_POSTGRES:
            prefix = os.environ.get("INNGEST_DJANGO_TEST_PG_NAME", "test_inngest_django")
            self.name = f"{prefix}_demo_{secrets.token_hex(3)}"
            self._admin(f'CREATE DATABASE "{self.name}"')
            self.env = {"DEMO_DB": "postgres", "DEMO_PG_NAME": self.name}
        else:
            self.name = str(tmp_path / "demo.sqlite3")
            self.env = {"DEMO_DB_PATH": self.name}

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Return the rows of `sql`, written with %s placeholders."""
        if ON_POSTGRES:
            with psycopg.connect(dbname=self.name, **_pg_params()) as db:
                return [tuple(row) for row in db.execute(sql, params).fetchall()]
        with closing(sqlite3.connect(self.name)) as db:
            return db.execute(sql.replace("%s", "?"), params).fetchall()

    def drop(self) -> None:
        if ON_POSTGRES:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    @staticmethod
    def _admin(sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **_pg_params()) as db:
            db.execute(sql)  # type: ignore[arg-type]  # a name we built, not user input


def as_json(value: Any) -> Any:
    """Return a JSON column's value: SQLite gives its text, PostgreSQL the decoded value."""
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Any]:
    """Run `manage.py` commands of the demo site against a fresh database."""
    database = DemoDatabase(tmp_path)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="demo_site.settings", PYTHONPATH=str(ROOT))
    env.update(database.env)

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr}"
        return result.stdout

    def place_order(*, fail_shipment: bool) -> list[dict[str, Any]]:
        """Place an order through the home page, drain, and return the emails sent."""
        script = f"FAIL_SHIPMENT = {fail_shipment!r}\n{PLACE_ORDER_AND_DRAIN}"
        return json.loads(manage("shell", "--no-imports", "-c", script).splitlines()[-1])

    try:
        manage("migrate", "--noinput")
        manage.query = database.query  # type: ignore[attr-defined]
        manage.place_order = place_order  # type: ignore[attr-defined]
        yield manage
    finally:
        database.drop()


def test_product_import_runs_its_steps_and_records_image_copies(demo):
    data = {
        "sku": "mug-42",
        "name": "Blue mug",
        "image_urls": [
            "https://images.example.com/front.jpg",
            "https://images.example.com/back.jpg",
        ],
    }
    [event_id] = demo("inngest_send", "shop/product.imported", "--data", json.dumps(data)).split()
    demo("run_inngest_worker", "--until-idle")

    [(run_id, status, output)] = demo.query(
        "SELECT id, status, output FROM inngest_django_functionrun "
        "WHERE event_id = %s AND function_id = 'shop-import-product-images'",
        event_id,
    )
    assert status == "COMPLETED"
    assert as_json(output)["copies"] == [
        "s3://demo-bucket/products/mug-42/front.jpg",
        "s3://demo-bucket/products/mug-42/back.jpg",
    ]
    steps = demo.query(
        "SELECT step_key, status, attempts FROM inngest_django_steprun "
        "WHERE run_id = %s ORDER BY id",
        run_id,
    )
    assert steps == [
        ("save-product", "COMPLETED", 1),
        ("copy-image", "COMPLETED", 1),
        ("copy-image:1", "COMPLETED", 1),
    ]
    copies = demo.query("SELECT copied_to, run_id FROM shop_imagecopy ORDER BY id")
    assert [run for _, run in copies] == [run_id, run_id]


def test_home_page_form_sends_a_signup_that_emails_then_sleeps(demo):
    demo("shell", "--no-imports", "-c", SIGN_UP_THROUGH_HOME_PAGE)
    [(event_id, name)] = demo.query("SELECT id, name FROM inngest_django_event")
    assert name == "user/created"
    output = demo("run_inngest_worker", "--until-idle")
    assert "Subject: Welcome!" in output  # the console email backend prints to stdout

    [(run_id, status)] = demo.query(
        "SELECT id, status FROM inngest_django_functionrun WHERE event_id = %s",
        event_id,
    )
    assert status == "SLEEPING"  # until 30 s after the event
    steps = demo.query(
        "SELECT step_key, status FROM inngest_django_steprun WHERE run_id = %s ORDER BY id",
        run_id,
    )
    assert steps == [
        ("send-the-user-a-signup-email", "COMPLETED"),
        ("wait-for-the-future", "SLEEPING"),
    ]
    assert demo.query("SELECT subject, run_id FROM shop_emaillog") == [("Welcome!", run_id)]


# -- Orders: deferred cleanups and a deferred confirmation email ---------------------------------


def process_order_run(demo) -> tuple[str, str, Any]:
    """Return the id, status and output of the one process-order run."""
    [(run_id, status, output)] = demo.query(
        "SELECT id, status, output FROM inngest_django_functionrun "
        "WHERE function_id = 'shop-process-order'"
    )
    return run_id, status, as_json(output)


def defers_of(demo, run_id: str) -> list[tuple[str, str, str]]:
    return demo.query(
        "SELECT defer_id, function_id, status FROM inngest_django_deferintent "
        "WHERE run_id = %s ORDER BY defer_id",
        run_id,
    )


def deferred_runs_of(demo, run_id: str) -> list[tuple[str, str, str]]:
    return demo.query(
        "SELECT id, function_id, status FROM inngest_django_functionrun "
        "WHERE parent_run_id = %s ORDER BY function_id",
        run_id,
    )


def test_shipped_order_cancels_both_cleanups(demo):
    demo.place_order(fail_shipment=False)

    run_id, status, output = process_order_run(demo)
    assert status == "COMPLETED"
    assert output["status"] == "shipped"
    steps = demo.query(
        "SELECT step_key, status FROM inngest_django_steprun WHERE run_id = %s ORDER BY id",
        run_id,
    )
    assert steps == [
        ("charge-card", "COMPLETED"),
        ("allocate-inventory", "COMPLETED"),
        ("create-shipment", "COMPLETED"),
    ]
    assert defers_of(demo, run_id) == [
        ("refund-if-failed", "shop-refund-payment", "CANCELLED"),
        ("release-if-failed", "shop-release-inventory", "CANCELLED"),
    ]
    assert deferred_runs_of(demo, run_id) == []
    assert demo.query(
        "SELECT COUNT(*) FROM inngest_django_outboxmessage o "
        "JOIN inngest_django_deferintent d ON d.id = o.intent_id "
        "WHERE d.run_id = %s",
        run_id,
    ) == [(0,)]
    assert demo.query("SELECT COUNT(*) FROM shop_refund") == [(0,)]
    assert demo.query("SELECT COUNT(*) FROM shop_stockrelease") == [(0,)]
    assert demo.query("SELECT on_hand FROM shop_stockitem") == [(98,)]
    [(tracking_number,)] = demo.query("SELECT tracking_number FROM shop_order")
    assert tracking_number == output["tracking_number"]


def test_failed_shipment_refunds_and_releases_exactly_once(demo):
    demo.place_order(fail_shipment=True)

    run_id, status, _ = process_order_run(demo)
    assert status == "FAILED"
    assert demo.query(
        "SELECT status, attempts FROM inngest_django_steprun "
        "WHERE run_id = %s AND step_key = 'create-shipment'",
        run_id,
    ) == [("FAILED", 2)]  # retries=1: tried twice
    assert defers_of(demo, run_id) == [
        ("refund-if-failed", "shop-refund-payment", "SCHEDULED"),
        ("release-if-failed", "shop-release-inventory", "SCHEDULED"),
    ]
    [(refund_run, _, refund_status), (release_run, _, release_status)] = deferred_runs_of(
        demo, run_id
    )
    assert (refund_status, release_status) == ("COMPLETED", "COMPLETED")

    [(charge_id, amount)] = demo.query("SELECT charge_id, amount FROM shop_charge")
    assert amount == 2400
    assert demo.query(
        "SELECT c.charge_id, r.amount, r.run_id FROM shop_refund r "
        "JOIN shop_charge c ON c.id = r.charge_id"
    ) == [(charge_id, 2400, refund_run)]
    assert demo.query(
        "SELECT a.run_id, s.quantity, s.run_id FROM shop_stockrelease s "
        "JOIN shop_allocation a ON a.id = s.allocation_id"
    ) == [(run_id, 2, release_run)]  # found through ctx.parents[0].run_id
    assert demo.query("SELECT on_hand FROM shop_stockitem") == [(100,)]
    assert demo.query("SELECT tracking_number FROM shop_order") == [("",)]


def test_order_placed_sends_one_confirmation_through_deferred_send_email(demo):
    emails = demo.place_order(fail_shipment=False)

    [(order_id, email)] = demo.query("SELECT id, email FROM shop_order")
    assert emails == [
        {
            "to": [email],
            "subject": f"Thanks for your order #{order_id}!",
            "body": f"Thanks for your order #{order_id}!\n\nWe are preparing it now.",
        }
    ]
    [(parent_run, status)] = demo.query(
        "SELECT id, status FROM inngest_django_functionrun WHERE function_id = 'shop-order-placed'"
    )
    assert status == "COMPLETED"
    assert defers_of(demo, parent_run) == [("send-confirmation", "shop-send-email", "SCHEDULED")]
    [(email_run, _, email_status)] = deferred_runs_of(demo, parent_run)
    assert email_status == "COMPLETED"
    assert demo.query("SELECT subject, run_id FROM shop_emaillog") == [
        (f"Thanks for your order #{order_id}!", email_run)
    ]
