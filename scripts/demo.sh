#!/usr/bin/env bash
# Start the demo: venv, install, migrate, an admin/admin superuser, a worker and the web server.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=demo_site.settings
# The demo's Event API key; local use only (demo_site/settings.py reads it as SHOP_EVENT_KEY).
export DEMO_EVENT_KEY=${DEMO_EVENT_KEY:-demo-event-key-for-local-testing-only}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements.txt

python manage.py migrate --noinput
python manage.py shell --no-imports -c "
from django.contrib.auth import get_user_model
User = get_user_model()
if not User.objects.filter(username='admin').exists():
    User.objects.create_superuser('admin', 'admin@example.com', 'admin')
    print('Created the superuser admin (password admin)')
"
# The demo's Event API key (DEMO_EVENT_KEY), registered once; the home page shows how to use it.
python manage.py shell --no-imports -c "
from django.conf import settings
from inngest_django import event_keys
if event_keys.authenticate(settings.SHOP_EVENT_KEY) is None:
    event_keys.issue_key('demo', raw_key=settings.SHOP_EVENT_KEY)
    print('Registered the demo Event API key')
"

# The worker gets its own session so Ctrl-C reaches only the web server; the trap then asks
# the worker to finish its in-flight runs and waits for it.
if command -v setsid >/dev/null 2>&1; then
  setsid python manage.py run_inngest_worker --threads 2 &
else
  python manage.py run_inngest_worker --threads 2 &
fi
WORKER_PID=$!
stop_worker() {
  kill -TERM "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
}
trap stop_worker EXIT

echo "Demo: http://127.0.0.1:$PORT/   admin: http://127.0.0.1:$PORT/admin/ (admin / admin)"
echo "Event API: POST http://127.0.0.1:$PORT/e/$DEMO_EVENT_KEY   REST API: http://127.0.0.1:$PORT/api/inngest/"
python manage.py runserver "0.0.0.0:$PORT"
