"""Dashboard forms of signature requests: the request and its signers (a formset of rows), and the
cancellation's confirmation. They check the input's shape; the services decide the rest (the PDF, the
signers, the expiry) and their refusals are put back next to the field concerned."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scell.errors import ScellError
from signatures.api.serializers import E164
from signatures.models import SignatureRequest


class SignatureRequestForm(forms.Form):
    document = forms.FileField(
        label=_("PDF document"),
        help_text=_("The document to sign, a PDF."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    message = forms.CharField(
        label=_("Message to the signers"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    order = forms.ChoiceField(
        label=_("Signing order"),
        choices=SignatureRequest.Order.choices,
        initial=SignatureRequest.Order.SEQUENTIAL,
        widget=forms.RadioSelect,
        help_text=_(
            "Sequential: each signer is invited once the previous one has signed. Parallel: all at once."
        ),
    )
    locale = forms.ChoiceField(
        label=_("Language of the e-mails and the signing page"),
        choices=[("fr", "Français"), ("en", "English")],
        initial="fr",
    )
    expires_at = forms.DateTimeField(label=_("Expires at"), required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read in the time zone the dashboard shows (the business one), like every time on its pages.
        self.fields["expires_at"].help_text = _(
            "For example 2026-12-31 18:00 (%(zone)s time). Default: in 30 days."
        ) % {"zone": timezone.get_current_timezone_name()}

    def clean_document(self):
        document = self.cleaned_data["document"]
        if document.size > int(settings.SIGNATURE_MAX_PDF_BYTES):
            limit = int(settings.SIGNATURE_MAX_PDF_BYTES) // (1024 * 1024)
            raise forms.ValidationError(_("The file is too big (%(limit)s MB at most).") % {"limit": limit})
        return document


class SignerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("E-mail"))
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=20,
        help_text=_("The code to sign is sent by SMS, e.g. +33612345678."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )

    def clean_phone(self) -> str:
        value = "".join(c for c in self.cleaned_data["phone"] if c not in " .-()")
        if not E164.match(value):
            raise forms.ValidationError(_("Give the number in E.164 form, e.g. +33612345678."))
        return value


class BaseSignerFormSet(forms.BaseFormSet):
    default_error_messages = {
        "too_few_forms": _("Add at least one signer."),
        "too_many_forms": _("Too many signers for one request."),
    }

    def clean(self) -> None:
        if any(self.errors):
            return
        seen: set[str] = set()
        for form in self.forms:
            email = (form.cleaned_data or {}).get("email", "").lower()
            if email and email in seen:
                form.add_error("email", _("Each signer needs their own e-mail address."))
            seen.add(email)

    def rows(self) -> list[dict]:
        """The filled-in rows, in order (blank extra rows are left out)."""
        return [form.cleaned_data for form in self.forms if form.cleaned_data]


SignerFormSet = forms.formset_factory(
    SignerForm,
    formset=BaseSignerFormSet,
    extra=2,
    min_num=1,
    validate_min=True,
    max_num=settings.SIGNATURE_MAX_SIGNERS,
    validate_max=True,
)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (shown to the signers)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def service_error_to_forms(exc: ScellError, form: forms.Form, signers: BaseSignerFormSet) -> None:
    """Put a service's refusal next to the field it names (``document``, ``signers.2.email``...), or at
    the top of the form when it names none."""
    placed = False
    for detail in exc.details:
        field = str(detail.get("field", ""))
        parts = field.split(".")
        if parts[0] == "signers" and len(parts) == 3 and parts[1].isdigit():
            index = int(parts[1])
            rows = [f for f in signers.forms if f.cleaned_data]
            if index < len(rows) and parts[2] in rows[index].fields:
                rows[index].add_error(parts[2], exc.message)
                placed = True
        elif field in form.fields:
            form.add_error(field, exc.message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)
