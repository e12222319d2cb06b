"""The order form of the demo page."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class OrderForm(forms.Form):
    """Place an order of demo mugs, optionally one whose shipping fails."""

    quantity = forms.IntegerField(label=_("Mugs"), min_value=1, max_value=5, initial=1)
    fail_shipment = forms.BooleanField(label=_("make shipping fail"), required=False)
