"""The demo's own tests (demo_site/shop/tests) pass when pytest runs them as a project would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ON_POSTGRES = os.environ.get("INNGEST_DJANGO_TEST_DB") == "postgres"


def test_demo_shop_tests_pass_without_touching_the_demo_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "PYTEST_"))}
    env["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"  # wins over pytest.ini's tests.settings
    env["PYTHONPATH"] = str(ROOT)
    # The demo's own database: pytest-django's test database must be the only one opened.
    demo_db = tmp_path / "demo.sqlite3"
    env["DEMO_DB_PATH"] = str(demo_db)
    if ON_POSTGRES:
        env["DEMO_DB"] = "postgres"
        # pytest-django creates and drops test_<this name>, named after this run's own.
        env["DEMO_PG_NAME"] = os.environ.get("INNGEST_DJANGO_TEST_PG_NAME", "inngest") + "_demo"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "demo_site/shop/tests", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "settings: demo_site.settings" in output, output
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) > 0, output
    assert not demo_db.exists()
