"""Dashboard forms of the invoice lifecycle: a buyer's dispute or refusal (reason from the status's allowed
list), a simulated status (sandbox), a simulated incoming invoice (sandbox).

Choice labels follow the active language: the forms are built per request."""

from __future__ import annotations

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from pdp import cdar

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def status_label(code: str) -> str:
    """The label of a CDAR status in the active language (French or English)."""
    info = cdar.STATUSES.get(code)
    if info is None:
        return code
    return info.label_fr if (translation.get_language() or "").startswith("fr") else info.label_en


def _reason_choices(codes: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    return [("", "—")] + [(code, f"{code} — {cdar.REASONS.get(code, '')}") for code in codes]


class ReasonForm(forms.Form):
    """A buyer status with a reason: 207 En litige (dispute) or 210 Refusée (refuse).

    The reason code is optional here: whether the status needs one is the CDAR rules' call
    (BR-FR-CDV-15), made by the service, whose error names the rule."""

    reason_code = forms.ChoiceField(label=_("Reason"), required=False)
    reason = forms.CharField(label=_("Explanation"), required=False, max_length=500)

    def __init__(self, *args: object, code: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.code = code
        self.fields["reason_code"].choices = _reason_choices(cdar.STATUSES[code].reasons)


# Statuses the simulated PDP or buyer can send about an issued invoice. 224–228 are valid codes whose
# meaning no text gives: not offered.
SIMULATED_EMITTERS = ("buyer", "platform")


def simulated_statuses() -> list[str]:
    return [
        code
        for code, info in cdar.STATUSES.items()
        if info.emitter in SIMULATED_EMITTERS and not info.slug.startswith("status_")
    ]


class SimulateStatusForm(forms.Form):
    """Sandbox: make the simulated buyer or platform send a status about an issued invoice."""

    code = forms.ChoiceField(label=_("Status"))
    reason_code = forms.ChoiceField(label=_("Reason (when the status needs one)"), required=False)
    reason = forms.CharField(label=_("Explanation"), required=False, max_length=500)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        codes = simulated_statuses()
        self.fields["code"].choices = [(code, f"{code} — {status_label(code)}") for code in codes]
        reasons = sorted({reason for code in codes for reason in cdar.STATUSES[code].reasons})
        self.fields["reason_code"].choices = _reason_choices(reasons)


class IncomingInvoiceForm(forms.Form):
    """Sandbox: make the simulated PDP deliver a supplier invoice (CII, UBL or Factur-X) to this tenant."""

    file = forms.FileField(
        label=_("Invoice file (CII, UBL or Factur-X)"),
        help_text=_("The simulated PDP delivers it to you as a supplier invoice."),
    )

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 20 MB."))
        return upload
