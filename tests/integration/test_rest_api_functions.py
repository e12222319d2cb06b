"""REST API: pause, resume and invoke a function, with their permissions and schema."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from inngest_django.models import FunctionRun, is_paused
from tests.helpers import staff_client

pytestmark = pytest.mark.django_db

WRITE_ORDERS = "testapp-write-orders"


def url(verb: str, function_id: str = WRITE_ORDERS) -> str:
    return reverse(f"inngest_api:function-{verb}", args=[function_id])


def test_pause_and_resume_through_the_api(admin_client):
    answer = admin_client.post(url("pause"))
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["paused"], body["changed"], body["paused_by"]) == (True, True, "admin")
    assert is_paused(WRITE_ORDERS)
    assert admin_client.post(url("pause")).json()["changed"] is False
    body = admin_client.post(url("resume")).json()
    assert (body["paused"], body["changed"]) == (False, True)
    assert not is_paused(WRITE_ORDERS)
    assert admin_client.post(url("pause", "nope")).status_code == 404
    assert admin_client.get(url("pause")).status_code == 405
    # The function's own detail route still answers under its slug.
    detail = reverse("inngest_api:function-detail", args=[WRITE_ORDERS])
    assert admin_client.get(detail).json()["id"] == WRITE_ORDERS


def test_function_rows_say_whether_the_function_is_paused(
    admin_client, django_assert_max_num_queries
):
    admin_client.post(url("pause"))
    detail = reverse("inngest_api:function-detail", args=[WRITE_ORDERS])
    assert admin_client.get(detail).json()["paused"] is True
    listing = reverse("inngest_api:function-list")
    # Many rows, one look-up of the paused functions (plus the session and user).
    with django_assert_max_num_queries(3):
        rows = admin_client.get(listing).json()
    paused = {row["id"] for row in rows if row["paused"]}
    assert paused == {WRITE_ORDERS} and len(rows) > 1
    admin_client.post(url("resume"))
    assert admin_client.get(detail).json()["paused"] is False


def test_pausing_needs_the_pause_permission(django_user_model):
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    answer = viewer.post(url("pause"))
    assert answer.status_code == 403
    assert "inngest_django.pause_function" in answer.json()["detail"]
    assert not is_paused(WRITE_ORDERS)
    operator = staff_client(django_user_model, "op", "pause_function")
    assert operator.post(url("pause")).status_code == 200
    assert is_paused(WRITE_ORDERS)


def test_invoke_through_the_api(admin_client, django_user_model):
    answer = admin_client.post(
        url("invoke"), json.dumps({"data": {"steps": 1}}), content_type="application/json"
    )
    assert answer.status_code == 201, answer.content
    run = FunctionRun.objects.get(pk=answer.json()["run_id"])
    assert run.event.data == {"steps": 1} and answer["Location"].endswith(f"/runs/{run.pk}/")
    bad = admin_client.post(url("invoke"), '{"data": [1]}', content_type="application/json")
    assert bad.status_code == 400
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    assert viewer.post(url("invoke"), "{}", content_type="application/json").status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"note": "a\u0000b"}, "NUL character"),
        ({"note": "\ud800"}, "lone surrogate"),
        ({"note": "x" * 600_000}, "MAX_EVENT_BYTES"),
    ],
)
def test_invoke_refuses_data_send_would_refuse(admin_client, data, message):
    # On PostgreSQL a NUL in the payload used to reach the INSERT and answer 500.
    answer = admin_client.post(url("invoke"), {"data": data}, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert message in json.dumps(answer.json())
    assert not FunctionRun.objects.exists()


def test_the_schema_documents_the_function_actions(admin_client):
    paths = admin_client.get(reverse("inngest_api:schema"), {"format": "json"}).json()["paths"]
    for verb in ("pause", "resume", "invoke"):
        [found] = [p for p in paths if p.endswith(f"/functions/{{function_id}}/{verb}/")]
        assert "post" in paths[found]
