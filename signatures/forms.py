"""Dashboard forms of signature requests: the request and its signers (a formset of rows)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from signatures.api.serializers import E164
from signatures.models import SignatureRequest


class SignatureRequestForm(forms.Form):
    document = forms.FileField(label=_("PDF document"))
    title = forms.CharField(label=_("Title"), max_length=200)
    message = forms.CharField(
        label=_("Message to the signers"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    order = forms.ChoiceField(label=_("Order"), choices=SignatureRequest.Order.choices, initial="sequential")
    locale = forms.ChoiceField(
        label=_("Language"), choices=[("fr", "Français"), ("en", "English")], initial="fr"
    )
    expires_at = forms.DateTimeField(
        label=_("Expires at (UTC)"), required=False, help_text=_("Default: in 30 days.")
    )


class SignerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("E-mail"))
    phone = forms.CharField(label=_("Mobile phone (E.164)"), max_length=20, help_text="+33612345678")

    def clean_phone(self) -> str:
        value = "".join(c for c in self.cleaned_data["phone"] if c not in " .-()")
        if not E164.match(value):
            raise forms.ValidationError(_("Give the number in E.164 form, e.g. +33612345678."))
        return value


SignerFormSet = forms.formset_factory(SignerForm, extra=3, min_num=1, validate_min=True, max_num=20)
