"""The demo site works end to end: migrate, send, run a worker, and see the steps' rows."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("INNGEST_DJANGO_TEST_DB") == "postgres",
        reason="the demo runs on SQLite only",
    ),
]

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


@pytest.fixture
def demo(tmp_path: Path):
    """Run `manage.py` commands of the demo site against a fresh SQLite file."""
    database = tmp_path / "demo.sqlite3"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="demo_site.settings", PYTHONPATH=str(ROOT))
    env["DEMO_DB_PATH"] = str(database)

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

    manage("migrate", "--noinput")
    manage.database = database  # type: ignore[attr-defined]
    return manage


def query(database: Path, sql: str, *params: object) -> list[tuple]:
    with closing(sqlite3.connect(database)) as db:
        return db.execute(sql, params).fetchall()


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

    [(run_id, status, output)] = query(
        demo.database,
        "SELECT id, status, output FROM inngest_django_functionrun "
        "WHERE event_id = ? AND function_id = 'shop-import-product-images'",
        event_id,
    )
    assert status == "COMPLETED"
    assert json.loads(output)["copies"] == [
        "s3://demo-bucket/products/mug-42/front.jpg",
        "s3://demo-bucket/products/mug-42/back.jpg",
    ]
    steps = query(
        demo.database,
        "SELECT step_key, status, attempts FROM inngest_django_steprun "
        "WHERE run_id = ? ORDER BY id",
        run_id,
    )
    assert steps == [
        ("save-product", "COMPLETED", 1),
        ("copy-image", "COMPLETED", 1),
        ("copy-image:1", "COMPLETED", 1),
    ]
    copies = query(demo.database, "SELECT copied_to, run_id FROM shop_imagecopy ORDER BY id")
    assert [run for _, run in copies] == [run_id, run_id]


def test_home_page_form_sends_a_signup_that_emails_then_sleeps(demo):
    demo("shell", "--no-imports", "-c", SIGN_UP_THROUGH_HOME_PAGE)
    [(event_id, name)] = query(demo.database, "SELECT id, name FROM inngest_django_event")
    assert name == "user/created"
    output = demo("run_inngest_worker", "--until-idle")
    assert "Subject: Welcome!" in output  # the console email backend prints to stdout

    [(run_id, status)] = query(
        demo.database,
        "SELECT id, status FROM inngest_django_functionrun WHERE event_id = ?",
        event_id,
    )
    assert status == "SLEEPING"  # until 30 s after the event
    steps = query(
        demo.database,
        "SELECT step_key, status FROM inngest_django_steprun WHERE run_id = ? ORDER BY id",
        run_id,
    )
    assert steps == [
        ("send-the-user-a-signup-email", "COMPLETED"),
        ("wait-for-the-future", "SLEEPING"),
    ]
    assert query(demo.database, "SELECT subject, run_id FROM shop_emaillog") == [
        ("Welcome!", run_id)
    ]
