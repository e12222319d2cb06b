#!/usr/bin/env bash
# Set up and run the whole test suite: venv, install, lint, checks, pytest on SQLite then PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements.txt

# The browser tests drive Debian's Chromium; `playwright install` cannot download one here.
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

echo "== lint"
ruff check .
ruff format --check .

echo "== django checks"
python manage.py check
python manage.py makemigrations --check --dry-run
DJANGO_SETTINGS_MODULE=tests.settings python manage.py makemigrations --check --dry-run

run_pytest() {
  # pytest exits 5 when it collects nothing; that is a failure here too.
  local status=0
  python -m pytest "$@" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "pytest failed with exit status $status" >&2
    exit "$status"
  fi
}

# The chaos suite (tests/chaos: worker fleets under SIGKILL, and on PostgreSQL a restart of the
# server) runs in a session of its own after the rest, so its restart cannot break a connection
# another test holds, and its summary line stands out in the log.
echo "== pytest on SQLite"
run_pytest -m "not chaos"
echo "== chaos suite on SQLite"
run_pytest -m chaos

echo "== pytest on PostgreSQL"
bash scripts/start_postgres.sh
INNGEST_DJANGO_TEST_DB=postgres run_pytest -m "not chaos"
# Restarts the server started above: as root, restart_postgres() runs pg_ctl through runuser.
echo "== chaos suite on PostgreSQL"
INNGEST_DJANGO_TEST_DB=postgres run_pytest -m chaos
