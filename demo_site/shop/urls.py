"""Shop URLs: the demo page and the form that sends demo events."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("events/", views.send_demo_event, name="send-event"),
]
