"""Dashboard forms of invoices: the list's search and filters; a draft (header form and a formset of lines)
turned into the very draft body the API passes to the services (``draft_body``); the mapping of the
services' validation errors (rule ids, field paths) back onto those fields; a credit note; and the forms
of the lifecycle: a buyer's dispute or refusal, a simulated status, a simulated incoming invoice.

Choice labels follow the active language: the forms are built per request."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from invoicing.computation import FRENCH_VAT_RATES
from invoicing.models import Invoice
from pdp import cdar
from scell.models import validate_siren

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


# --- The list's search and filters ------------------------------------------------------------------------
def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class InvoiceListFilter(django_filters.FilterSet):
    """Search and filters of the invoice list. ``status`` and ``lifecycle`` keep the names the list had,
    the others are the API's (``type``, ``issue_date_from``/``to``, ``paid``)."""

    q = django_filters.CharFilter(
        method="filter_search",
        label=_("Search"),
        help_text=_("Number, buyer name, SIREN or VAT number"),
    )
    status = django_filters.ChoiceFilter(
        choices=Invoice.Status.choices, label=_("Status"), empty_label=_("all")
    )
    type = django_filters.ChoiceFilter(choices=Invoice.Type.choices, label=_("Type"), empty_label=_("all"))
    lifecycle = django_filters.ChoiceFilter(
        field_name="lifecycle__status_code", label=_("Lifecycle status"), empty_label=_("all")
    )
    issue_date_from = django_filters.DateFilter(
        field_name="issue_date", lookup_expr="gte", label=_("Issued from"), widget=_date_widget()
    )
    issue_date_to = django_filters.DateFilter(
        field_name="issue_date", lookup_expr="lte", label=_("Issued until"), widget=_date_widget()
    )
    paid = django_filters.ChoiceFilter(
        choices=[("true", _("paid")), ("false", _("not paid"))],
        method="filter_paid",
        label=_("Payment"),
        empty_label=_("all"),
    )

    class Meta:
        model = Invoice
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["lifecycle"].extra["choices"] = [
            (code, f"{code} — {status_label(code)}") for code in cdar.STATUSES
        ]

    def filter_search(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        text = value.strip()
        if not text:
            return queryset
        # Identifiers are often typed with spaces or dots ("552 100 554", "FR 40 552100554").
        compact = re.sub(r"[\s.]", "", text)
        condition = (
            Q(number__icontains=text)
            | Q(buyer_name__icontains=text)
            | Q(seller__name__icontains=text)  # the counterparty of a received invoice
            | Q(buyer__vat_id__icontains=compact)
        )
        if compact.isdigit():
            condition |= Q(buyer_siren__startswith=compact[:9]) | Q(buyer__siret__startswith=compact)
        return queryset.filter(condition)

    def filter_paid(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        paid = Q(lifecycle__paid_at__isnull=False)
        return queryset.filter(paid) if value == "true" else queryset.exclude(paid)


# --- Drafts -----------------------------------------------------------------------------------------------
UNIT_CHOICES = [
    ("C62", _("unit (C62)")),
    ("H87", _("piece (H87)")),
    ("HUR", _("hour (HUR)")),
    ("DAY", _("day (DAY)")),
    ("WEE", _("week (WEE)")),
    ("MON", _("month (MON)")),
    ("ANN", _("year (ANN)")),
    ("LS", _("lump sum (LS)")),
    ("KGM", _("kilogram (KGM)")),
    ("MTR", _("metre (MTR)")),
    ("MTK", _("square metre (MTK)")),
    ("LTR", _("litre (LTR)")),
    ("KWH", _("kilowatt hour (KWH)")),
    ("SET", _("set (SET)")),
]
# L and M (Canary Islands, Ceuta and Melilla) are not relevant in France (BR-FR-15).
VAT_CATEGORY_CHOICES = [
    ("S", _("S — standard")),
    ("Z", _("Z — zero rated")),
    ("E", _("E — exempt")),
    ("AE", _("AE — reverse charge")),
    ("K", _("K — intra-EU")),
    ("G", _("G — export")),
    ("O", _("O — not subject")),
]
# Offered in the rate field; any other rate can be typed (the French rules then say what they think).
VAT_RATE_SUGGESTIONS = ["20", "10", "5.5", "2.1", "0"]
PAYMENT_MEANS_CHOICES = [
    ("58", _("SEPA credit transfer (58)")),
    ("30", _("credit transfer (30)")),
    ("59", _("SEPA direct debit (59)")),
    ("49", _("direct debit (49)")),
    ("48", _("bank card (48)")),
    ("20", _("cheque (20)")),
    ("10", _("cash (10)")),
    ("97", _("clearing between partners (97)")),
]
SCHEME_CHOICES = [
    ("0225", _("0225 — SIREN")),
    ("0009", _("0009 — SIRET")),
    ("9957", _("9957 — French VAT number")),
    ("EM", _("EM — e-mail")),
]
# The fields of an API line the form does not show; they ride along in the hidden ``extra`` field.
LINE_EXTRA_KEYS = (
    "detail",
    "price_base_quantity",
    "allowances",
    "charges",
    "seller_item_id",
    "period_start",
    "period_end",
)
DISCOUNT_REASON, DISCOUNT_REASON_CODE = "Remise", "95"  # UNTDID 5189: 95 discount (BR-42 wants a reason)


def _json(value: Any) -> Any:
    """The draft body as JSON would carry it: decimals and dates as strings, as the API receives them."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def trim_decimal(value: Any, places: int = 0) -> Decimal | None:
    """2.000000 → 2 (450.000000 → 450.00 with ``places=2``): the stored scale is not what was typed."""
    if value is None or value == "":
        return None
    number = Decimal(str(value)).normalize()
    if number.as_tuple().exponent > -places:  # type: ignore[operator]
        number = number.quantize(Decimal(1).scaleb(-places))
    return number


def _with_choice(field: forms.ChoiceField, value: Any) -> None:
    """Keep a value an API draft carries even when the form does not offer it."""
    if value and value not in {str(choice) for choice, _label in field.choices}:
        field.choices = [*field.choices, (value, value)]


class CodeField(forms.CharField):
    """Identifiers and codes: spaces removed, upper case (" fr 40 552 100 554" → "FR40552100554")."""

    def to_python(self, value: Any) -> str:
        return re.sub(r"\s", "", super().to_python(value)).upper()


class InvoiceDraftForm(forms.Form):
    """The header of a draft: issuer, buyer (BG-7), dates, currency, references, payment and notes.
    ``draft_body`` turns it, with the lines, into the draft body of API.md."""

    sub_tenant = forms.ChoiceField(label=_("Issuer"), required=False)
    buyer_name = forms.CharField(label=_("Name"), max_length=200)
    buyer_siren = CodeField(label=_("SIREN"), max_length=9, required=False, validators=[validate_siren])
    buyer_siret = CodeField(label=_("SIRET"), max_length=14, required=False)
    buyer_vat_id = CodeField(label=_("VAT number"), max_length=20, required=False)
    buyer_email = forms.EmailField(label=_("E-mail"), required=False)
    buyer_electronic_address = forms.CharField(
        label=_("Electronic address"),
        max_length=200,
        required=False,
        help_text=_("Blank: the SIREN of a French company, else the e-mail."),
    )
    buyer_electronic_scheme = forms.ChoiceField(
        label=_("Electronic address type"), choices=SCHEME_CHOICES, initial="0225"
    )
    buyer_line1 = forms.CharField(label=_("Address"), max_length=200, required=False)
    buyer_line2 = forms.CharField(label=_("Address (cont.)"), max_length=200, required=False)
    buyer_postcode = forms.CharField(label=_("Postcode"), max_length=20, required=False)
    buyer_city = forms.CharField(label=_("City"), max_length=100, required=False)
    buyer_country = CodeField(
        label=_("Country"), max_length=2, initial="FR", help_text=_("Two-letter code, e.g. FR.")
    )
    issue_date = forms.DateField(
        label=_("Issue date"), required=False, widget=_date_widget(), help_text=_("Blank: the day of issue.")
    )
    due_date = forms.DateField(
        label=_("Due date"),
        required=False,
        widget=_date_widget(),
        help_text=_("Blank, without payment terms: the payment term of your legal profile."),
    )
    delivery_date = forms.DateField(label=_("Delivery date"), required=False, widget=_date_widget())
    currency = CodeField(label=_("Currency"), max_length=3, initial="EUR")
    operation_category = forms.ChoiceField(
        label=_("Operation"),
        choices=[("", "—"), *Invoice.OperationCategory.choices],
        required=False,
        help_text=_("Goods, services or both: a mandatory French mention."),
    )
    vat_on_debits = forms.BooleanField(label=_("VAT on debits"), required=False)
    format = forms.ChoiceField(
        label=_("Format"), choices=Invoice.Format.choices, initial=Invoice.Format.FACTURX
    )
    profile = forms.ChoiceField(
        label=_("Factur-X profile"),
        choices=Invoice.Profile.choices,
        initial=Invoice.Profile.EN16931,
        help_text=_("For the Factur-X and CII formats."),
    )
    buyer_reference = forms.CharField(label=_("Buyer reference"), max_length=100, required=False)
    purchase_order_ref = forms.CharField(label=_("Purchase order"), max_length=100, required=False)
    delivery_note_ref = forms.CharField(label=_("Delivery note"), max_length=100, required=False)
    payment_means = forms.ChoiceField(label=_("Payment means"), choices=PAYMENT_MEANS_CHOICES, initial="58")
    payment_iban = CodeField(
        label=_("IBAN"), max_length=34, required=False, help_text=_("Blank: the one of your legal profile.")
    )
    payment_bic = CodeField(label=_("BIC"), max_length=11, required=False)
    payment_terms = forms.CharField(
        label=_("Payment terms"),
        max_length=500,
        required=False,
        help_text=_("Blank, without a due date: the terms of your legal profile."),
    )
    exemption_reason = forms.CharField(
        label=_("VAT exemption reason"),
        max_length=500,
        required=False,
        help_text=_("For exempt (E) lines: the legal basis, e.g. the article of the CGI."),
    )
    notes = forms.CharField(
        label=_("Notes"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, scope: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from scell.models import SubTenant

        subs = SubTenant.objects.scoped(scope).filter(is_active=True).order_by("legal_name")
        if subs.exists():
            tenant = scope.tenant
            self.fields["sub_tenant"].choices = [("", f"{tenant.legal_name} ({tenant.identifier})")] + [
                (str(sub.id), f"{sub.legal_name} ({sub.identifier})") for sub in subs
            ]
        else:
            del self.fields["sub_tenant"]
        for name in ("buyer_electronic_scheme", "payment_means"):
            _with_choice(self.fields[name], self.initial.get(name))

    def clean_buyer_country(self) -> str:
        value = self.cleaned_data["buyer_country"]
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise forms.ValidationError(_("Enter a two-letter country code."))
        return value

    def clean_currency(self) -> str:
        value = self.cleaned_data["currency"]
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise forms.ValidationError(_("Enter a three-letter currency code, e.g. EUR."))
        return value


def draft_initial(invoice: Invoice) -> dict[str, Any]:
    """The header form's values for a stored draft."""
    buyer = invoice.buyer or {}
    address = buyer.get("address") or {}
    electronic = buyer.get("electronic_address") or {}
    payment = invoice.payment or {}
    return {
        "sub_tenant": str(invoice.sub_tenant_id or ""),
        "buyer_name": buyer.get("name", ""),
        "buyer_siren": buyer.get("siren", ""),
        "buyer_siret": buyer.get("siret", ""),
        "buyer_vat_id": buyer.get("vat_id", ""),
        "buyer_email": buyer.get("email", ""),
        "buyer_electronic_address": electronic.get("value", ""),
        "buyer_electronic_scheme": electronic.get("scheme", "0225"),
        "buyer_line1": address.get("line1", ""),
        "buyer_line2": address.get("line2", ""),
        "buyer_postcode": address.get("postcode", ""),
        "buyer_city": address.get("city", ""),
        "buyer_country": address.get("country", "FR"),
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "delivery_date": (invoice.delivery or {}).get("date"),
        "currency": invoice.currency,
        "operation_category": invoice.operation_category,
        "vat_on_debits": invoice.vat_on_debits,
        "format": invoice.format,
        "profile": invoice.profile,
        "buyer_reference": invoice.buyer_reference,
        "purchase_order_ref": invoice.purchase_order_ref,
        "delivery_note_ref": invoice.delivery_note_ref,
        "payment_means": payment.get("means_code") or "58",
        "payment_iban": payment.get("iban", ""),
        "payment_bic": payment.get("bic", ""),
        "payment_terms": payment.get("terms", ""),
        "exemption_reason": ((invoice.vat_exemptions or {}).get("E") or {}).get("reason", ""),
        "notes": "\n\n".join(n.get("text", "") for n in invoice.notes or [] if not n.get("subject")),
    }


def _decimal_widget(**attrs: str) -> forms.TextInput:
    # A text box rather than a number input: no spinner eating the narrow cells, any decimal separator
    # typed is the server's to judge, and the mobile keyboard is still the numeric one.
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", **attrs})


class DecimalInputField(forms.DecimalField):
    """A decimal typed the French way too: "1 234,5" is 1234.5."""

    def to_python(self, value: Any) -> Decimal | None:
        if isinstance(value, str):
            value = re.sub(r"[\s\u00a0\u202f]", "", value).replace(",", ".")
        return super().to_python(value)


class InvoiceLineForm(forms.Form):
    """One line (BG-25). The discount is a line allowance in percent (BT-138) with its reason (BR-42)."""

    description = forms.CharField(label=_("Description"), max_length=500)
    quantity = DecimalInputField(
        label=_("Quantity"),
        max_digits=19,
        decimal_places=6,
        initial=Decimal("1"),
        widget=_decimal_widget(),
    )
    unit_code = forms.ChoiceField(label=_("Unit"), choices=UNIT_CHOICES, initial="C62")
    unit_price = DecimalInputField(
        label=_("Unit price excl. VAT"),
        max_digits=19,
        decimal_places=6,
        min_value=Decimal("0"),
        widget=_decimal_widget(),
    )
    vat_category = forms.ChoiceField(label=_("VAT category"), choices=VAT_CATEGORY_CHOICES, initial="S")
    vat_rate = DecimalInputField(
        label=_("VAT rate (%)"),
        max_digits=6,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        required=False,
        initial=Decimal("20"),
        widget=_decimal_widget(list="invoice-vat-rates"),
    )
    discount_percent = DecimalInputField(
        label=_("Discount (%)"),
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        required=False,
        widget=_decimal_widget(),
    )
    extra = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("unit_code", "vat_category"):
            _with_choice(self.fields[name], self.initial.get(name))

    def clean_extra(self) -> dict[str, Any]:
        raw = self.cleaned_data["extra"]
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("This line's hidden data is damaged; reload the page."))
        return {key: value[key] for key in (*LINE_EXTRA_KEYS, "discount") if key in value}


def _simple_discount(allowance: dict[str, Any]) -> bool:
    return (
        allowance.get("percent") not in (None, "")
        and allowance.get("amount") in (None, "")
        and (allowance.get("base_amount") in (None, ""))
    )


def line_initial(line: Any) -> dict[str, Any]:
    """The line form's values for a stored line; what the form does not show goes into ``extra``."""
    allowances = list(line.allowances or [])
    discount = None
    extra: dict[str, Any] = {}
    if allowances and _simple_discount(allowances[0]):
        first = allowances.pop(0)
        discount = trim_decimal(first["percent"])
        extra["discount"] = {"reason": first.get("reason", ""), "reason_code": first.get("reason_code", "")}
    extra |= {
        "detail": line.detail,
        "price_base_quantity": line.price_base_quantity,
        "allowances": allowances,
        "charges": line.charges,
        "seller_item_id": line.seller_item_id,
        "period_start": line.period_start,
        "period_end": line.period_end,
    }
    extra = {key: value for key, value in extra.items() if value not in ("", None, [], {})}
    return {
        "description": line.description,
        "quantity": trim_decimal(line.quantity),
        "unit_code": line.unit_code,
        "unit_price": trim_decimal(line.unit_price, 2),
        "vat_category": line.vat_category,
        "vat_rate": trim_decimal(line.vat_rate),
        "discount_percent": discount,
        "extra": json.dumps(_json(extra)) if extra else "",
    }


def line_body(data: dict[str, Any]) -> dict[str, Any]:
    """A line of the draft body (API.md) from a valid line form's ``cleaned_data``."""
    extra = dict(data.get("extra") or {})
    meta = extra.pop("discount", None) or {}
    line: dict[str, Any] = {key: extra[key] for key in LINE_EXTRA_KEYS if key in extra}
    allowances = list(line.get("allowances") or [])
    if data.get("discount_percent"):
        allowances.insert(
            0,
            {
                "percent": data["discount_percent"],
                "reason": meta.get("reason") or DISCOUNT_REASON,
                "reason_code": meta.get("reason_code") or DISCOUNT_REASON_CODE,
            },
        )
    line |= {
        "description": data["description"],
        "quantity": data["quantity"],
        "unit_code": data["unit_code"],
        "unit_price": data["unit_price"],
        "vat_category": data["vat_category"],
        "vat_rate": data.get("vat_rate"),
        "allowances": allowances,
    }
    return _json(line)


class BaseLineFormSet(forms.BaseFormSet):
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        form.fields["DELETE"].label = _("Remove")


LineFormSet = forms.formset_factory(
    InvoiceLineForm,
    formset=BaseLineFormSet,
    extra=1,
    can_delete=True,
    max_num=1000,
    absolute_max=1000,
    validate_max=True,
)
LINES_PREFIX = "lines"


def kept_line_forms(formset: forms.BaseFormSet, *, valid_only: bool = False) -> list[forms.Form]:
    """The line forms that make lines, in order: neither removed nor left blank (and, with
    ``valid_only``, without errors: what the live totals can count while the user types)."""
    kept = []
    for form in formset.forms:
        if valid_only and not form.is_valid():
            continue
        data = getattr(form, "cleaned_data", None)
        if not data or data.get("DELETE"):
            continue
        kept.append(form)
    return kept


def draft_body(
    form: InvoiceDraftForm, line_forms: list[forms.Form], *, invoice: Invoice | None = None
) -> dict[str, Any]:
    """The draft body of API.md from valid forms. Editing merges into the draft's blocks so that what
    the form does not show (e.g. a buyer contact or an allowance set through the API) is kept."""
    d = form.cleaned_data
    buyer = dict(invoice.buyer or {}) if invoice else {}
    address = dict(buyer.get("address") or {})
    address |= {
        "line1": d["buyer_line1"],
        "line2": d["buyer_line2"],
        "postcode": d["buyer_postcode"],
        "city": d["buyer_city"],
        "country": d["buyer_country"],
    }
    electronic = d["buyer_electronic_address"].strip()
    buyer |= {
        "name": d["buyer_name"],
        "siren": d["buyer_siren"],
        "siret": d["buyer_siret"],
        "vat_id": d["buyer_vat_id"],
        "email": d["buyer_email"],
        "address": address,
        "electronic_address": {"value": electronic, "scheme": d["buyer_electronic_scheme"]}
        if electronic
        else None,
    }
    payment = dict(invoice.payment or {}) if invoice else {}
    payment |= {
        "means_code": d["payment_means"],
        "iban": d["payment_iban"],
        "bic": d["payment_bic"],
        "terms": d["payment_terms"].strip(),
    }
    delivery = dict(invoice.delivery or {}) if invoice else {}
    delivery["date"] = d["delivery_date"]
    notes = [note for note in (invoice.notes if invoice else []) if note.get("subject")]
    if d["notes"].strip():
        notes.insert(0, {"text": d["notes"].strip(), "subject": ""})
    exemptions = dict(invoice.vat_exemptions or {}) if invoice else {}
    code = (exemptions.get("E") or {}).get("code", "")
    if d["exemption_reason"].strip() or code:
        exemptions["E"] = {"reason": d["exemption_reason"].strip(), "code": code}
    else:
        exemptions.pop("E", None)
    body: dict[str, Any] = {
        "format": d["format"],
        "profile": d["profile"],
        "issue_date": d["issue_date"],
        "due_date": d["due_date"],
        "currency": d["currency"],
        "operation_category": d["operation_category"],
        "vat_on_debits": d["vat_on_debits"],
        "buyer_reference": d["buyer_reference"],
        "purchase_order_ref": d["purchase_order_ref"],
        "delivery_note_ref": d["delivery_note_ref"],
        "buyer": buyer,
        "delivery": delivery if any(v not in (None, "", {}) for v in delivery.values()) else None,
        "payment": payment,
        "notes": notes,
        "vat_exemptions": exemptions,
        "lines": [line_body(line.cleaned_data) for line in line_forms],
    }
    if "sub_tenant" in form.fields:
        body["sub_tenant"] = d["sub_tenant"] or None
    return _json(body)


# --- Validation errors onto the fields --------------------------------------------------------------------
# The API path of a header value → the form field that holds it.
HEADER_PATHS = {
    "sub_tenant": "sub_tenant",
    "issue_date": "issue_date",
    "due_date": "due_date",
    "currency": "currency",
    "tax_currency": "currency",
    "format": "format",
    "profile": "profile",
    "operation_category": "operation_category",
    "vat_on_debits": "vat_on_debits",
    "buyer_reference": "buyer_reference",
    "purchase_order_ref": "purchase_order_ref",
    "delivery_note_ref": "delivery_note_ref",
    "buyer.name": "buyer_name",
    "buyer.siren": "buyer_siren",
    "buyer.siret": "buyer_siret",
    "buyer.vat_id": "buyer_vat_id",
    "buyer.email": "buyer_email",
    "buyer.electronic_address": "buyer_electronic_address",
    "buyer.electronic_address.value": "buyer_electronic_address",
    "buyer.electronic_address.scheme": "buyer_electronic_scheme",
    "buyer.address": "buyer_line1",
    "buyer.address.line1": "buyer_line1",
    "buyer.address.line2": "buyer_line2",
    "buyer.address.postcode": "buyer_postcode",
    "buyer.address.city": "buyer_city",
    "buyer.address.country": "buyer_country",
    "delivery.date": "delivery_date",
    "payment.means_code": "payment_means",
    "payment.iban": "payment_iban",
    "payment.bic": "payment_bic",
    "payment.terms": "payment_terms",
    "notes": "notes",
    "vat_exemptions": "exemption_reason",
    "vat_exemptions.E": "exemption_reason",
}
LINE_PATHS = {
    "description": "description",
    "quantity": "quantity",
    "unit_code": "unit_code",
    "unit_price": "unit_price",
    "vat_category": "vat_category",
    "vat_rate": "vat_rate",
    "allowances": "discount_percent",
}
# Rules the services report without a field, by the value they are about (EN 16931, BR-FR).
RULE_PATHS = {
    "BR-03": "issue_date",
    "BR-FR-03": "issue_date",
    "BR-05": "currency",
    "BR-CL-04": "currency",
    "BR-53": "currency",
    "BR-FR-CO-12": "currency",
    "BR-07": "buyer.name",
    "BR-10": "buyer.address.line1",
    "BR-11": "buyer.address.country",
    "BR-CL-14": "buyer.address.country",
    "BR-CO-25": "due_date",
    "BR-FR-CO-07": "due_date",
    "BR-FR-08": "operation_category",
    "BR-FR-11": "buyer.siren",
    "BR-FR-12": "buyer.electronic_address",
    "BR-FR-21": "buyer.electronic_address",
    "BR-63": "buyer.electronic_address.scheme",
    "BR-AE-02": "buyer.vat_id",
    "BR-IC-11": "delivery.date",
    "BR-E-10": "vat_exemptions",
}
# Rules about the seller and the buyer alike: the buyer's field when the message is about the buyer.
BUYER_RULE_PATHS = {"BR-FR-09": "buyer.siret", "BR-IC-02": "buyer.vat_id", "BR-O-02": "buyer.vat_id"}
# Rules about one line (the line is named in the message, "line 2: …", or in the XML location).
LINE_RULE_FIELDS = {
    "BR-21": None,
    "BR-22": "quantity",
    "BR-FR-DEC-02": "quantity",
    "BR-23": "unit_code",
    "BR-CL-23": "unit_code",
    "BR-25": "description",
    "BR-26": "unit_price",
    "BR-27": "unit_price",
    "BR-FR-DEC-03": "unit_price",
    "BR-CO-04": "vat_category",
    "BR-CL-17": "vat_category",
    "BR-S-05": "vat_rate",
    "BR-Z-05": "vat_rate",
    "BR-E-05": "vat_rate",
    "BR-AE-05": "vat_rate",
    "BR-IC-05": "vat_rate",
    "BR-G-05": "vat_rate",
    "BR-O-05": "vat_rate",
    "BR-42": "discount_percent",
    "BR-44": None,
}
_PATH_LINE = re.compile(r"^lines\[(\d+)\](?:\.([a-z_]+))?")
_MESSAGE_LINE = re.compile(r"^line (\d+)\b")
_LOCATION_LINE = re.compile(
    r"(?:IncludedSupplyChainTradeLineItem|InvoiceLine|CreditNoteLine)(?:\[namespace-uri\(\)='[^']*'\])?\[(\d+)\]"
)


@dataclass
class Problem:
    """One error of the summary at the top of the page, linking to the field it is shown next to."""

    message: str
    rule: str = ""
    anchor: str = ""
    label: str = ""
    near: str = ""  # "lines": about the lines as a whole, shown above them too


LINES_ANCHOR = "invoice-lines"


def _targets(
    detail: dict[str, Any], *, form: forms.Form, line_forms: list[forms.Form]
) -> list[tuple[forms.Form, str | None, str]]:
    """Where a service's error detail belongs: (form, field or None for the form itself, label)."""
    rule = str(detail.get("rule") or "")
    message = str(detail.get("message") or "")
    path = str(detail.get("field") or "")
    line_index: int | None = None
    line_field: str | None = None
    if path:
        match = _PATH_LINE.match(path)
        if match:
            line_index, line_field = int(match.group(1)), LINE_PATHS.get(match.group(2) or "")
        elif path in HEADER_PATHS:
            return [(form, HEADER_PATHS[path], "")]
        else:
            return []
    elif rule == "BR-FR-16":
        # "VAT rate 19 is not a French VAT rate.": every line with such a rate.
        return [
            (line, "vat_rate", str(index + 1))
            for index, line in enumerate(line_forms)
            if line.cleaned_data.get("vat_rate") is not None
            and line.cleaned_data["vat_rate"] not in FRENCH_VAT_RATES
        ]
    elif rule in RULE_PATHS:
        return [(form, HEADER_PATHS[RULE_PATHS[rule]], "")]
    elif rule in BUYER_RULE_PATHS and "buyer" in message.lower():
        return [(form, HEADER_PATHS[BUYER_RULE_PATHS[rule]], "")]
    elif rule in LINE_RULE_FIELDS:
        found = _MESSAGE_LINE.match(message) or _LOCATION_LINE.search(str(detail.get("location") or ""))
        if found is None:
            return []
        line_index, line_field = int(found.group(1)) - 1, LINE_RULE_FIELDS[rule]
    else:
        return []
    if line_index is None or not 0 <= line_index < len(line_forms):
        return []
    return [(line_forms[line_index], line_field, str(line_index + 1))]


def _label(form: forms.Form, field: str | None, line: str) -> str:
    name = str(form.fields[field].label) if field else ""
    if line:
        prefix = _("Line %(number)s") % {"number": line}
        return f"{prefix}: {name}" if name else str(prefix)
    return name


def attach_errors(
    details: list[dict[str, Any]], *, form: forms.Form, line_forms: list[forms.Form]
) -> list[Problem]:
    """Put each error of a service (``details`` of a ``ScellError``) next to its field, as
    "RULE — message", and return them all for the summary; those without a field are only there."""
    problems = []
    for detail in details:
        if not isinstance(detail, dict):
            problems.append(Problem(message=str(detail)))
            continue
        rule = str(detail.get("rule") or "")
        message = str(detail.get("message") or "")
        text = f"{rule} — {message}" if rule and message else rule or message
        anchor = label = ""
        for target, field, line in _targets(detail, form=form, line_forms=line_forms):
            if field is not None and field not in target.fields:
                continue
            target.add_error(field, text)
            if not anchor:
                anchor = target[field].auto_id if field else ""
                label = _label(target, field, line)
        problem = Problem(message=message or rule, rule=rule, anchor=anchor, label=label)
        if not anchor and (detail.get("field") == "lines" or rule == "BR-16"):
            problem.anchor, problem.near = LINES_ANCHOR, "lines"
        problems.append(problem)
    return problems


def flatten_errors(errors: Any, prefix: str = "") -> list[dict[str, str]]:
    """A serializer's nested errors as the services' details: ``[{"field": "lines[0].quantity", ...}]``."""
    if isinstance(errors, dict):
        out = []
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else key
            out += flatten_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name)
        return out
    if isinstance(errors, list) and any(isinstance(item, dict | list) for item in errors):
        out = []
        for index, item in enumerate(errors):
            out += flatten_errors(item, f"{prefix}[{index}]")
        return out
    items = errors if isinstance(errors, list) else [errors]
    return [{"field": prefix, "message": str(item)} for item in items]


def form_problems(form: forms.Form, line_forms: list[forms.Form]) -> list[Problem]:
    """The summary of a draft's form errors (the same list as for the services' errors)."""
    problems = []
    for number, target in [(0, form), *enumerate(line_forms, start=1)]:
        line = str(number) if number else ""
        for name, errors in target.errors.items():
            field = None if name == "__all__" else name
            for error in errors:
                problems.append(
                    Problem(
                        message=str(error),
                        anchor=target[field].auto_id if field else "",
                        label=_label(target, field, line),
                    )
                )
    return problems


# --- Credit notes -----------------------------------------------------------------------------------------
class CreditNoteForm(forms.Form):
    """A credit note (381) of an issued invoice: all of it, chosen quantities of its lines, or an amount
    at one of its VAT rates, with the reason printed on it."""

    MODES = [("full", _("the whole invoice")), ("lines", _("chosen lines")), ("amount", _("an amount"))]

    mode = forms.ChoiceField(label=_("Credit"), choices=MODES, initial="full", widget=forms.RadioSelect)
    reason = forms.CharField(
        label=_("Reason for the credit"), max_length=500, help_text=_("Printed on the credit note.")
    )
    amount = forms.DecimalField(
        label=_("Amount excl. VAT"),
        max_digits=16,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01"}),
    )
    vat = forms.ChoiceField(label=_("VAT of the amount"), required=False)

    def __init__(self, *args: Any, invoice: Invoice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        self.original_lines = list(invoice.lines.all())
        for line in self.original_lines:
            line.quantity_display = trim_decimal(line.quantity)
            self.fields[f"line_{line.position}"] = forms.DecimalField(
                label=_("Quantity to credit, line %(number)s") % {"number": line.position},
                max_digits=19,
                decimal_places=6,
                min_value=Decimal("0"),
                required=False,
                widget=forms.NumberInput(attrs={"step": "any", "min": "0"}),
            )
        self.fields["vat"].choices = [
            (f"{row['category']}|{row['rate'] or ''}", f"{row['category']} {row['rate'] or ''}".strip())
            for row in invoice.vat_breakdown or []
        ]

    def line_rows(self) -> list[tuple[Any, forms.BoundField]]:
        return [(line, self[f"line_{line.position}"]) for line in self.original_lines]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        mode = data.get("mode")
        if mode == "lines" and not any(data.get(f"line_{line.position}") for line in self.original_lines):
            raise forms.ValidationError(_("Give the quantity to credit of at least one line."))
        if mode == "amount":
            if not data.get("amount"):
                self.add_error("amount", _("Give the amount to credit."))
            if not data.get("vat"):
                self.add_error("vat", _("Choose the VAT of the amount."))
        return data

    def service_lines(self) -> tuple[list[dict[str, Any]] | None, list[str]]:
        """``lines`` for ``invoice_create_credit_note`` and, for each, the field it came from."""
        data = self.cleaned_data
        if data["mode"] == "lines":
            chosen = [line for line in self.original_lines if data.get(f"line_{line.position}")]
            return (
                [{"line": line.position, "quantity": data[f"line_{line.position}"]} for line in chosen],
                [f"line_{line.position}" for line in chosen],
            )
        if data["mode"] == "amount":
            category, _sep, rate = data["vat"].partition("|")
            line = {
                "description": data["reason"][:500],
                "quantity": "1",
                "unit_code": "C62",
                "unit_price": format(data["amount"], "f"),
                "vat_category": category,
                "vat_rate": rate or None,
            }
            return [line], ["amount"]
        return None, []
