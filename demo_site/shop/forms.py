"""The forms of the demo page: an order, an abandoned cart and a quote."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .inngest_functions import MAX_PRICED_QUANTITY


class OrderForm(forms.Form):
    """Place an order of demo mugs, optionally one whose shipping fails."""

    quantity = forms.IntegerField(label=_("Mugs"), min_value=1, max_value=5, initial=1)
    fail_shipment = forms.BooleanField(label=_("make shipping fail"), required=False)


class CartForm(forms.Form):
    """Leave a cart of demo mugs behind."""

    quantity = forms.IntegerField(label=_("Mugs"), min_value=1, max_value=5, initial=2)


class QuoteForm(forms.Form):
    """Ask for the price of some mugs; price-order refuses more than it prices at a time."""

    quantity = forms.IntegerField(
        label=_("Mugs"), min_value=1, max_value=MAX_PRICED_QUANTITY * 2, initial=3
    )
