"""A function's admin page: pause and resume buttons, and invoke with a JSON payload."""

from __future__ import annotations

import pytest
from django.urls import reverse

from inngest_django.models import FunctionPause, FunctionRun, is_paused
from tests.helpers import FUNCTIONS_URL, staff_client

pytestmark = pytest.mark.django_db

WRITE_ORDERS = "testapp-write-orders"
PAGE_URL = reverse("admin:inngest_django_functionrun_function_page", args=[WRITE_ORDERS])
PAUSE_URL = reverse("admin:inngest_django_functionrun_function_pause", args=[WRITE_ORDERS])
RESUME_URL = reverse("admin:inngest_django_functionrun_function_resume", args=[WRITE_ORDERS])


def test_the_functions_page_pauses_and_resumes_with_the_pause_permission(admin_client):
    page = admin_client.get(FUNCTIONS_URL).content.decode()
    assert f'action="{PAUSE_URL}"' in page
    answer = admin_client.post(PAUSE_URL, {"next": FUNCTIONS_URL}, follow=True)
    assert answer.redirect_chain[-1][0] == FUNCTIONS_URL
    assert is_paused(WRITE_ORDERS)
    assert FunctionPause.objects.get().paused_by == "admin"
    page = answer.content.decode()
    assert f'action="{RESUME_URL}"' in page and "is paused" in page
    admin_client.post(RESUME_URL, {"next": FUNCTIONS_URL})
    assert not is_paused(WRITE_ORDERS)


def test_pausing_needs_the_permission_and_a_post(django_user_model):
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    assert f'action="{PAUSE_URL}"' not in viewer.get(FUNCTIONS_URL).content.decode()
    assert viewer.post(PAUSE_URL).status_code == 403
    assert not is_paused(WRITE_ORDERS)
    operator = staff_client(django_user_model, "op", "view_functionrun", "pause_function")
    assert operator.get(PAUSE_URL).status_code == 405
    assert operator.post(PAUSE_URL, {"next": "https://evil.example/"}).url == PAGE_URL
    assert is_paused(WRITE_ORDERS)
    assert (
        operator.post(
            reverse("admin:inngest_django_functionrun_function_pause", args=["nope"])
        ).status_code
        == 404
    )


def test_the_function_page_shows_the_pause_state(admin_client):
    page = admin_client.get(PAGE_URL).content.decode()
    assert 'data-paused="0"' in page and "Pause function" in page
    admin_client.post(PAUSE_URL)
    page = admin_client.get(PAGE_URL).content.decode()
    assert 'data-paused="1"' in page and "Resume function" in page and "by admin" in page
    assert (
        admin_client.get(
            reverse("admin:inngest_django_functionrun_function_page", args=["nope"])
        ).status_code
        == 404
    )


def test_invoke_starts_a_run_with_the_payload(admin_client):
    answer = admin_client.post(PAGE_URL, {"data": '{"steps": 2}'})
    run = FunctionRun.objects.get(function_id=WRITE_ORDERS)
    assert answer.url == reverse("admin:inngest_django_functionrun_change", args=[run.pk])
    assert run.event.name == "inngest/function.invoked"
    assert run.event.data == {"steps": 2}


@pytest.mark.parametrize(
    ("data", "message"),
    [("{not json", "This is not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_bad_json_is_a_form_error_not_a_traceback(admin_client, data, message):
    answer = admin_client.post(PAGE_URL, {"data": data})
    assert answer.status_code == 200
    assert message in answer.content.decode()
    assert not FunctionRun.objects.exists()


def test_invoking_needs_the_send_permission(django_user_model):
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    assert "invoke-form" not in viewer.get(PAGE_URL).content.decode()
    assert viewer.post(PAGE_URL, {"data": "{}"}).status_code == 403
    sender = staff_client(django_user_model, "sender", "view_functionrun", "add_event")
    assert sender.post(PAGE_URL, {"data": "{}"}).status_code == 302
    assert FunctionRun.objects.count() == 1
