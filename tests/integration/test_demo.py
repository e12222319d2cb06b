"""The demo site works end to end: migrate, send, run a worker, and see the steps' rows."""

from __future__ import annotations

import html
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
ON_POSTGRES = os.environ.get("INNGEST_DJANGO_TEST_DB") == "postgres"

pytestmark = pytest.mark.slow

# Posts a form of the home page the way a browser does, CSRF cookie and token included, and
# checks the page it lands on. PATH, FORM and EXPECTED are defined before this runs.
POST_THROUGH_HOME_PAGE = """
from django.test import Client
browser = Client(enforce_csrf_checks=True)
page = browser.get("/")
assert page.status_code == 200 and b"Recent runs" in page.content, page.status_code
form = dict(FORM, csrfmiddlewaretoken=browser.cookies["csrftoken"].value)
sent = browser.post(PATH, form, follow=True)
assert sent.status_code == 200, (sent.status_code, sent.content[:300])
assert EXPECTED.encode() in sent.content, sent.content
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


# Reruns a run from the start, as the admin's Rerun button does, drains the worker in-process,
# and prints the new run's id. RUN_ID is defined before this runs.
RERUN_AND_DRAIN = """
import inngest_django
from inngest_django.testing import drain

new_run_id = inngest_django.rerun_run(RUN_ID)
drain(timeout=30)
print(new_run_id)
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
    # A JSON string such as "nudged" arrives decoded from PostgreSQL, but as '"nudged"' here.
    return json.loads(value) if isinstance(value, str) and not ON_POSTGRES else value


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Any]:
    """Run `manage.py` commands of the demo site against a fresh database."""
    database = DemoDatabase(tmp_path)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="demo_site.settings", PYTHONPATH=str(ROOT))
    env.update(database.env)

    def manage(*args: str, settings: dict[str, str] | None = None) -> str:
        """Run a manage.py command; `settings` adds environment variables (DEMO_...)."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**env, **(settings or {})},
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

    def post(
        path: str,
        form: dict[str, str] | None = None,
        *,
        expected: str,
        settings: dict[str, str] | None = None,
    ) -> None:
        """Post a form of the home page; the page it redirects to must show `expected`."""
        script = f"PATH = {path!r}\nFORM = {form or {}!r}\nEXPECTED = {expected!r}\n"
        manage("shell", "--no-imports", "-c", script + POST_THROUGH_HOME_PAGE, settings=settings)

    def home_page() -> str:
        """Return the home page's HTML, unescaped."""
        script = "from django.test import Client\nprint(Client().get('/').content.decode())"
        return html.unescape(manage("shell", "--no-imports", "-c", script))

    try:
        manage("migrate", "--noinput")
        manage.query = database.query  # type: ignore[attr-defined]
        manage.place_order = place_order  # type: ignore[attr-defined]
        manage.post = post  # type: ignore[attr-defined]
        manage.home_page = home_page  # type: ignore[attr-defined]
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
    demo.post("/accounts/", expected="Sent user/created")
    [(event_id, name)] = demo.query("SELECT id, name FROM inngest_django_event")
    assert name == "user/created"
    output = demo("run_inngest_worker", "--until-idle")
    assert "Subject: Welcome!" in output  # the console email backend prints to stdout

    [(run_id, status)] = demo.query(
        "SELECT id, status FROM inngest_django_functionrun "
        "WHERE event_id = %s AND function_id = 'shop-send-signup-email'",
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


# -- Onboarding: wait_for_event ------------------------------------------------------------------


def onboarding_runs(demo) -> dict[int, tuple[str, str, Any]]:
    """Return each account's onboarding run: id, status and output, by account id."""
    rows = demo.query(
        "SELECT a.id, r.id, r.status, r.output FROM shop_account a "
        "JOIN inngest_django_functionrun r ON r.event_id = a.event_id "
        "WHERE r.function_id = 'shop-onboarding' ORDER BY a.id"
    )
    return {account: (run, status, as_json(output)) for account, run, status, output in rows}


def emails_of(demo, run_id: str) -> list[tuple[str, str]]:
    return demo.query(
        'SELECT subject, "to" FROM shop_emaillog WHERE run_id = %s ORDER BY id', run_id
    )


def test_onboarding_waits_for_its_own_users_activation_then_sends_tips(demo):
    demo.post("/accounts/", expected="Sent user/created")
    demo.post("/accounts/", expected="Sent user/created")
    demo("run_inngest_worker", "--until-idle")
    [(first, _), (second, second_email)] = demo.query(
        "SELECT id, email FROM shop_account ORDER BY id"
    )
    runs = onboarding_runs(demo)
    assert {status for _, status, _ in runs.values()} == {"WAITING"}
    # Waiting holds no worker: the run is released until its timeout, its step row shows why.
    [(locked_by, step_op, step_status)] = demo.query(
        "SELECT r.locked_by, s.op, s.status FROM inngest_django_functionrun r "
        "JOIN inngest_django_steprun s ON s.run_id = r.id WHERE r.id = %s",
        runs[second][0],
    )
    assert (locked_by, step_op, step_status) == ("", "WAIT_FOR_EVENT", "WAITING")

    demo.post(f"/accounts/{second}/activate/", expected="Sent app/user.activated")
    demo("run_inngest_worker", "--until-idle")

    runs = onboarding_runs(demo)
    second_run, status, output = runs[second]
    assert (status, output) == ("COMPLETED", "activated")
    assert emails_of(demo, second_run) == [("Tips for your first week", second_email)]
    # The other user's activation is still awaited: the wait matched on data.user_id.
    assert runs[first][1] == "WAITING"
    assert emails_of(demo, runs[first][0]) == []
    [(activation,)] = demo.query(
        "SELECT id FROM inngest_django_event WHERE name = 'app/user.activated'"
    )
    waits = demo.query(
        "SELECT run_id, match_key, match_value, outcome, event_id FROM inngest_django_wait "
        "WHERE kind = 'EVENT' ORDER BY run_id"
    )
    assert sorted(waits) == sorted(
        [
            (runs[first][0], "data.user_id", str(first), "", None),
            (second_run, "data.user_id", str(second), "EVENT", activation),
        ]
    )


def test_onboarding_nudges_a_user_who_does_not_activate_in_time(demo):
    short = {"DEMO_ACTIVATION_TIMEOUT": "2s"}
    demo.post("/accounts/", expected="Sent user/created")
    demo("run_inngest_worker", "--until-idle", settings=short)
    [(run_id, status, _)] = onboarding_runs(demo).values()
    assert status == "WAITING"

    time.sleep(2.5)
    demo("run_inngest_worker", "--until-idle", settings=short)

    [(account_id, email)] = demo.query("SELECT id, email FROM shop_account")
    assert onboarding_runs(demo)[account_id] == (run_id, "COMPLETED", "nudged")
    assert emails_of(demo, run_id) == [("Your account is waiting", email)]
    assert demo.query(
        "SELECT step_key, op, status FROM inngest_django_steprun WHERE run_id = %s ORDER BY id",
        run_id,
    ) == [
        ("wait-for-activation", "WAIT_FOR_EVENT", "COMPLETED"),
        ("send-nudge", "RUN", "COMPLETED"),
    ]
    assert demo.query("SELECT outcome FROM inngest_django_wait WHERE run_id = %s", run_id) == [
        ("TIMEOUT",)
    ]


# -- Quotes: invoke ------------------------------------------------------------------------------


def test_quote_order_invokes_price_order_and_saves_the_price_it_returns(demo):
    demo.post("/quotes/", {"quantity": "4"}, expected="Sent shop/quote.requested")
    demo("run_inngest_worker", "--until-idle")

    [(run_id, status, output)] = demo.query(
        "SELECT id, status, output FROM inngest_django_functionrun "
        "WHERE function_id = 'shop-quote-order'"
    )
    price = {
        "sku": "mug-classic",
        "quantity": 4,
        "unit_price": 1200,
        "discount_percent": 10,
        "total": 4320,
    }
    assert (status, as_json(output)) == ("COMPLETED", {"status": "priced", **price})
    # price-order ran as a run of its own, started by inngest/function.invoked, child of this one.
    [(child_status, child_output, event_name)] = demo.query(
        "SELECT r.status, r.output, e.name FROM inngest_django_functionrun r "
        "JOIN inngest_django_event e ON e.id = r.event_id "
        "WHERE r.function_id = 'shop-price-order' AND r.parent_run_id = %s",
        run_id,
    )
    assert (child_status, as_json(child_output)) == ("COMPLETED", price)
    assert event_name == "inngest/function.invoked"
    assert demo.query(
        "SELECT step_key, op, status FROM inngest_django_steprun WHERE run_id = %s ORDER BY id",
        run_id,
    ) == [("price-order", "INVOKE", "COMPLETED"), ("save-quote", "RUN", "COMPLETED")]
    assert demo.query("SELECT total, discount_percent, refusal, run_id FROM shop_quote") == [
        (4320, 10, "", run_id)
    ]


def test_a_quote_price_order_refuses_is_recorded_as_refused(demo):
    demo.post("/quotes/", {"quantity": "12"}, expected="Sent shop/quote.requested")
    demo("run_inngest_worker", "--until-idle")

    [(run_id, status, output)] = demo.query(
        "SELECT id, status, output FROM inngest_django_functionrun "
        "WHERE function_id = 'shop-quote-order'"
    )
    assert status == "COMPLETED"
    assert as_json(output)["status"] == "refused"
    [(child_status, child_error)] = demo.query(
        "SELECT status, error FROM inngest_django_functionrun "
        "WHERE function_id = 'shop-price-order' AND parent_run_id = %s",
        run_id,
    )
    assert child_status == "FAILED"
    assert as_json(child_error)["name"] == "NonRetriableError"  # no retries: failed at once
    [(total, refusal)] = demo.query("SELECT total, refusal FROM shop_quote")
    assert total is None
    assert refusal.endswith("failed: we price at most 10 mugs at a time, not 12")


# -- Carts: a cancel rule ------------------------------------------------------------------------


def test_cart_reminder_is_cancelled_by_its_carts_order_only(demo):
    short = {"DEMO_CART_REMINDER_DELAY": "2s"}
    demo.post("/carts/", {"quantity": "1"}, expected="Sent shop/cart.abandoned")
    demo.post("/carts/", {"quantity": "3"}, expected="Sent shop/cart.abandoned")
    demo("run_inngest_worker", "--until-idle", settings=short)
    [(kept, kept_email), (ordered, _)] = demo.query("SELECT id, email FROM shop_cart ORDER BY id")

    def reminders() -> dict[int, tuple[str, str, str]]:
        rows = demo.query(
            "SELECT c.id, r.id, r.status, r.cancel_reason FROM shop_cart c "
            "JOIN inngest_django_functionrun r ON r.event_id = c.event_id "
            "WHERE r.function_id = 'shop-cart-reminder'"
        )
        return {cart: (run, status, reason) for cart, run, status, reason in rows}

    assert {status for _, status, _ in reminders().values()} == {"SLEEPING"}

    demo.post(f"/carts/{ordered}/order/", expected=f"for cart #{ordered}")
    time.sleep(2.5)  # both reminders are due now: only the ordered cart's is cancelled
    demo("run_inngest_worker", "--until-idle", settings=short)

    runs = reminders()
    [(order_event,)] = demo.query(
        "SELECT o.event_id FROM shop_order o JOIN shop_cart c ON c.order_id = o.id WHERE c.id = %s",
        ordered,
    )
    cancelled_run, status, reason = runs[ordered]
    assert status == "CANCELLED"
    assert reason == f"cancel rule: event shop/order.placed ({order_event})"
    assert emails_of(demo, cancelled_run) == []
    # Stopped before its next step: the sleep is its only step.
    assert demo.query(
        "SELECT step_key FROM inngest_django_steprun WHERE run_id = %s", cancelled_run
    ) == [("wait-before-reminding",)]
    [(cancelled_event_run,)] = demo.query(
        "SELECT data FROM inngest_django_event WHERE name = 'inngest/function.cancelled'"
    )
    assert as_json(cancelled_event_run)["run_id"] == cancelled_run

    kept_run, status, reason = runs[kept]
    assert (status, reason) == ("COMPLETED", "")
    assert emails_of(demo, kept_run) == [("You left 1 mug in your cart", kept_email)]
    # The order itself went through process-order as usual.
    assert demo.query(
        "SELECT status FROM inngest_django_functionrun WHERE function_id = 'shop-process-order'"
    ) == [("COMPLETED",)]


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


def rerun(demo, run_id: str) -> tuple[str, str, Any]:
    """Rerun a run, drain, and return the new run's id, status and output."""
    script = f"RUN_ID = {run_id!r}\n{RERUN_AND_DRAIN}"
    new_run_id = demo("shell", "--no-imports", "-c", script).splitlines()[-1]
    [(status, output)] = demo.query(
        "SELECT status, output FROM inngest_django_functionrun WHERE id = %s AND rerun_of_id = %s",
        new_run_id,
        run_id,
    )
    return new_run_id, status, as_json(output)


def test_rerun_of_a_shipped_order_ships_again_without_charging_or_allocating_twice(demo):
    demo.place_order(fail_shipment=False)
    run_id, _, first = process_order_run(demo)

    rerun_id, status, output = rerun(demo, run_id)

    assert status == "COMPLETED", output
    assert output == first
    assert demo.query(
        "SELECT step_key, status FROM inngest_django_steprun WHERE run_id = %s ORDER BY id",
        rerun_id,
    ) == [
        ("charge-card", "COMPLETED"),
        ("allocate-inventory", "COMPLETED"),
        ("create-shipment", "COMPLETED"),
    ]
    assert demo.query("SELECT charge_id, run_id FROM shop_charge") == [(first["charge_id"], run_id)]
    assert demo.query("SELECT quantity FROM shop_allocation") == [(2,)]
    assert demo.query("SELECT on_hand FROM shop_stockitem") == [(98,)]
    assert demo.query("SELECT COUNT(*) FROM shop_refund") == [(0,)]
    assert demo.query("SELECT tracking_number FROM shop_order") == [(first["tracking_number"],)]


def test_rerun_of_a_failed_order_refunds_and_releases_nothing_twice(demo):
    demo.place_order(fail_shipment=True)
    run_id, _, _ = process_order_run(demo)

    rerun_id, status, _ = rerun(demo, run_id)

    # The shipment fails again, so the rerun's cleanups run, and find their work done.
    assert status == "FAILED"
    assert [status for _, _, status in deferred_runs_of(demo, rerun_id)] == [
        "COMPLETED",
        "COMPLETED",
    ]
    assert demo.query("SELECT COUNT(*) FROM shop_charge") == [(1,)]
    assert demo.query("SELECT COUNT(*) FROM shop_refund") == [(1,)]
    assert demo.query("SELECT COUNT(*) FROM shop_stockrelease") == [(1,)]
    assert demo.query("SELECT on_hand FROM shop_stockitem") == [(100,)]


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


# -- Flow control: a burst of events per option -------------------------------------------------


def flow_runs(demo, function_id: str) -> list[tuple[str, Any, str]]:
    """Return the status, output and flow-control note of each run of a function, oldest first."""
    rows = demo.query(
        "SELECT status, output, flow_note FROM inngest_django_functionrun "
        "WHERE function_id = %s ORDER BY created_at, id",
        function_id,
    )
    return [(status, as_json(output), note) for status, output, note in rows]


def test_rate_limit_burst_sends_two_password_resets_and_skips_the_rest(demo):
    demo.post("/flow/", {"example": "rate-limit"}, expected="two resets run, three are skipped")
    demo("run_inngest_worker", "--until-idle")

    ran = ("COMPLETED", "reset link for ada@example.com", "")
    skipped = ("SKIPPED", None, "rate limit: over 2 per 0:01:00")
    assert flow_runs(demo, "shop-send-password-reset") == [ran, ran, skipped, skipped, skipped]
    # The page lists the runs with their notes; the admin lists them as skipped by flow control.
    page = demo.home_page()
    assert "Flow control: a burst of events per option" in page
    assert page.count("rate limit: over 2 per 0:01:00") >= 3

    # Clicked again within the minute: the address has used its two resets.
    demo.post("/flow/", {"example": "rate-limit"}, expected="two resets run, three are skipped")
    demo("run_inngest_worker", "--until-idle")
    assert flow_runs(demo, "shop-send-password-reset")[5:] == [skipped] * 5
    assert demo.query(
        "SELECT kind, key FROM inngest_django_flowstate WHERE function_id = %s",
        "shop-send-password-reset",
    ) == [("rate_limit", "ada@example.com")]


def test_debounce_burst_reindexes_once_with_the_last_edit(demo):
    quick = {"DEMO_DEBOUNCE_PERIOD": "1s"}
    demo.post("/flow/", {"example": "debounce"}, expected="five edits, one run", settings=quick)
    demo("run_inngest_worker", "--until-idle", settings=quick)
    # Dispatched into one queued run, due once the edits have been quiet for a second.
    [(status, _, note)] = flow_runs(demo, "shop-reindex-product")
    assert (status, note) == ("QUEUED", "debounced for 0:00:01")

    time.sleep(1.5)
    demo("run_inngest_worker", "--until-idle", settings=quick)

    [(status, output, _)] = flow_runs(demo, "shop-reindex-product")
    # Scoped to the function: a demo cron run may land in the same second.
    [(sku,)] = demo.query(
        "SELECT DISTINCT debounce_key FROM inngest_django_functionrun WHERE function_id = %s",
        "shop-reindex-product",
    )
    assert (status, output) == ("COMPLETED", f"indexed {sku} at revision 5")
    assert demo.query(
        "SELECT COUNT(*) FROM inngest_django_event WHERE name = 'shop/product.edited'"
    ) == [(5,)]
    [(data,)] = demo.query(
        "SELECT e.data FROM inngest_django_functionrun r "
        "JOIN inngest_django_event e ON e.id = r.event_id WHERE r.function_id = %s",
        "shop-reindex-product",
    )
    assert as_json(data) == {"sku": sku, "revision": 5}  # the last edit's event


def test_idempotency_burst_captures_each_payment_once(demo):
    demo.post("/flow/", {"example": "idempotency"}, expected="one capture, two skipped")
    demo("run_inngest_worker", "--until-idle")

    [(status, output, _), *duplicates] = flow_runs(demo, "shop-capture-payment")
    assert status == "COMPLETED"
    payment = output.removeprefix("captured ")
    note = f"idempotency: key '{payment}' used within 24h"
    assert duplicates == [("SKIPPED", None, note)] * 2

    # The next click is another payment: captured once more.
    demo.post("/flow/", {"example": "idempotency"}, expected="one capture, two skipped")
    demo("run_inngest_worker", "--until-idle")
    statuses = [status for status, _, _ in flow_runs(demo, "shop-capture-payment")]
    assert statuses.count("COMPLETED") == 2 and statuses.count("SKIPPED") == 4


def test_singleton_burst_rebuilds_once_and_skips_while_it_is_active(demo):
    demo.post("/flow/", {"example": "singleton"}, expected="one rebuild runs")
    demo("run_inngest_worker", "--until-idle")

    [ran, *skipped] = flow_runs(demo, "shop-rebuild-recommendations")
    assert ran == ("COMPLETED", "recommendations of user 7", "")
    [(run_id,)] = demo.query(
        "SELECT id FROM inngest_django_functionrun WHERE status = 'COMPLETED' "
        "AND function_id = 'shop-rebuild-recommendations'"
    )
    assert skipped == [("SKIPPED", None, f"singleton: run {run_id} is active")] * 2


def test_unknown_flow_example_is_refused(demo):
    script = (
        "from django.test import Client\n"
        "print(Client().post('/flow/', {'example': 'everything'}).status_code)"
    )
    assert demo("shell", "--no-imports", "-c", script).split()[-1] == "400"


# Registers the demo key as scripts/demo.sh does, then posts the home page's curl example.
SEND_THROUGH_EVENT_API = """
import json, re, html
from django.conf import settings
from django.test import Client
from inngest_django import event_keys
event_keys.issue_key("demo", raw_key=settings.SHOP_EVENT_KEY)
page = html.unescape(Client().get("/").content.decode())
url, body = re.search(r"curl -X POST (\\S+) .*?-d '(.*?)'</pre>", page, re.S).groups()
sent = Client().post(url, body, content_type="application/json")
print(json.dumps(sent.json()))
"""


def test_home_page_curl_example_sends_through_the_event_api(demo):
    reply = json.loads(demo("shell", "--no-imports", "-c", SEND_THROUGH_EVENT_API).splitlines()[-1])
    [event_id] = reply["ids"]
    assert reply["status"] == 200
    demo("run_inngest_worker", "--until-idle")
    [(status, output)] = demo.query(
        "SELECT status, output FROM inngest_django_functionrun "
        "WHERE event_id = %s AND function_id = 'shop-import-product-images'",
        event_id,
    )
    assert status == "COMPLETED"
    assert as_json(output)["copies"] == ["s3://demo-bucket/products/mug-api/front.jpg"]
