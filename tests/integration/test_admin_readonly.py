"""Engine rows are read-only in the admin: none is added, changed or deleted through forms."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.helpers import RUNS_URL, run_url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model",
    [
        "event",
        "functionrun",
        "deferintent",
        "outboxmessage",
        "cronschedule",
        "idempotencykey",
        "flowstate",
    ],
)
def test_add_is_forbidden_and_not_offered(admin_client, model):
    add_url = reverse(f"admin:inngest_django_{model}_add")
    changelist = admin_client.get(reverse(f"admin:inngest_django_{model}_changelist"))
    assert changelist.status_code == 200
    assert add_url not in changelist.content.decode()
    assert admin_client.get(add_url).status_code == 403


def test_runs_cannot_be_deleted_or_changed(admin_client, runs):
    delete_url = reverse("admin:inngest_django_functionrun_delete", args=[runs.failed.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = admin_client.post(run_url(runs.failed), {"status": "COMPLETED"})
    assert response.status_code == 403
    runs.failed.refresh_from_db()
    assert runs.failed.status == "FAILED"
    page = admin_client.get(RUNS_URL).content.decode()
    assert "delete_selected" not in page
    assert 'name="_save"' not in admin_client.get(run_url(runs.failed)).content.decode()
