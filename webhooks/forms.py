"""Dashboard form of a webhook endpoint (the service validates the URL for the mode)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy

from webhooks.events import EVENT_DESCRIPTIONS


class EndpointForm(forms.Form):
    url = forms.URLField(label=gettext_lazy("URL"), max_length=2000, assume_scheme="https")
    description = forms.CharField(label=gettext_lazy("Description"), max_length=300, required=False)
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Events to send"),
        choices=[(t, f"{t} — {d}") for t, d in EVENT_DESCRIPTIONS.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=gettext_lazy("None ticked: every event."),
    )
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False, initial=True)
