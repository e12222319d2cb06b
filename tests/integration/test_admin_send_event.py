"""The send-event page: stores an event as send() would, refuses bad input, asks permission."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun
from tests.helpers import EVENTS_URL, FUNCTIONS_URL, SEND_URL, shown_messages, staff_client

pytestmark = pytest.mark.django_db


def test_send_event_page_stores_the_event_and_reports_its_id(admin_client, inngest_client, drain):
    @inngest_client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="t/greeted"))
    def greet(ctx):
        return f"hello {ctx.event.data['who']}"

    assert f'href="{SEND_URL}"' in admin_client.get(EVENTS_URL).content.decode()
    form = admin_client.get(SEND_URL).content.decode()
    assert 'name="name"' in form and 'name="data"' in form and 'name="id"' in form

    response = admin_client.post(
        SEND_URL, {"name": "t/greeted", "data": '{"who": "Ada"}', "id": "greet-1"}, follow=True
    )
    event = Event.objects.get(name="t/greeted")
    assert (event.data, event.external_id) == ({"who": "Ada"}, "greet-1")
    assert response.redirect_chain[-1][0] == reverse(
        "admin:inngest_django_event_change", args=[event.pk]
    )
    assert shown_messages(response.content.decode()) == [
        ("success", f"Event {event.pk} stored; a worker starts the runs it triggers.")
    ]
    drain()
    assert FunctionRun.objects.get(function_id="test-greet").output == "hello Ada"


def form_errors(page: str) -> list[str]:
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, flags=re.S)
    return [" ".join(html.unescape(strip_tags(item)).split()) for item in found]


@pytest.mark.parametrize(
    ("post", "error"),
    [
        ({"name": "t/x", "data": "{not json"}, "This is not valid JSON"),
        ({"name": "t/x", "data": "[1, 2]"}, "Data must be a JSON object ({...}), not list."),
        ({"name": "t/x", "data": '"text"'}, "Data must be a JSON object ({...}), not str."),
        ({"name": "", "data": "{}"}, "This field is required."),
        (
            {"name": "inngest/function.failed", "data": "{}"},
            'Names starting with "inngest/" are sent only by the engine.',
        ),
        ({"name": "x" * 256, "data": "{}"}, "Ensure this value has at most 255 characters"),
        (
            {"name": "t/big", "data": '{"blob": "' + "x" * 600_000 + '"}'},
            "over the limit of 524288 bytes (MAX_EVENT_BYTES)",
        ),
    ],
)
def test_send_event_page_refuses_bad_input_with_form_errors(admin_client, post, error):
    response = admin_client.post(SEND_URL, post)
    assert response.status_code == 200
    errors = form_errors(response.content.decode())
    assert any(error in item for item in errors), errors
    assert not Event.objects.exists()


def test_send_event_needs_the_add_event_permission(django_user_model):
    viewer = staff_client(django_user_model, "viewer", "view_event")
    assert viewer.get(SEND_URL).status_code == 403
    assert viewer.post(SEND_URL, {"name": "t/x", "data": "{}"}).status_code == 403
    assert SEND_URL not in viewer.get(EVENTS_URL).content.decode()
    sender = staff_client(django_user_model, "sender", "view_event", "add_event")
    assert sender.post(SEND_URL, {"name": "t/x", "data": "{}"}).status_code == 302
    assert Event.objects.filter(name="t/x").count() == 1


def test_new_pages_refuse_anonymous_and_non_staff_users(client, non_staff_client):
    for browser in (client, non_staff_client):
        for url in (FUNCTIONS_URL, SEND_URL):
            for method in (browser.get, browser.post):
                response = method(url, {"name": "t/x", "data": "{}"})
                assert response.status_code == 302, url
                assert response.url.startswith(reverse("admin:login")), url
    assert not Event.objects.exists()
