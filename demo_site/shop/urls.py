"""Shop URLs: the demo page, the form that sends demo events and the order form."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("events/", views.send_demo_event, name="send-event"),
    path("orders/", views.place_order, name="place-order"),
]
