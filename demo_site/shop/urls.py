"""Shop URLs: the demo page and the forms on it."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("events/", views.send_demo_event, name="send-event"),
    path("orders/", views.place_order, name="place-order"),
    path("accounts/", views.sign_up, name="sign-up"),
    path("accounts/<int:pk>/activate/", views.activate, name="activate"),
    path("carts/", views.abandon_cart, name="abandon-cart"),
    path("carts/<int:pk>/order/", views.order_cart, name="order-cart"),
    path("quotes/", views.request_quote, name="request-quote"),
    path("flow/", views.send_flow_burst, name="flow-burst"),
    path("runs/<str:run_id>/cancel/", views.cancel_run, name="cancel-run"),
]
