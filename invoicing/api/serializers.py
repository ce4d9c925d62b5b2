"""Input and output shapes of the invoice API (API.md, "Invoices"). No business logic here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from invoicing.document import VatCategory
from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from scell.models import validate_siren

_PLAIN_DECIMAL = re.compile(r"-?(\d+)?(?:\.(\d*))?")


class DecimalInputField(serializers.DecimalField):
    """A decimal in plain notation: the string ``"-1234.50"`` (no exponent, no spaces) or a JSON number.
    The whole part may not be longer than ``max_digits - decimal_places`` even with leading zeros, so
    what is accepted is exactly what the OpenAPI pattern (``DecimalInputScheme``) documents."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # DRF reads "" as null on a nullable decimal; here null is null and "" is not a number.
        return serializers.Field.validate_empty_values(self, data)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str):
            match = _PLAIN_DECIMAL.fullmatch(data)
            if not match or not (match.group(1) or match.group(2)):
                self.fail("invalid")
            whole = self.max_digits - self.decimal_places
            if len(match.group(1) or "") > whole:
                self.fail("max_whole_digits", max_whole_digits=whole)
        elif isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class DecimalInputScheme(OpenApiSerializerFieldExtension):
    """OpenAPI of the decimal fields: a string in plain notation whose pattern bounds the digits; in
    requests a JSON number is accepted too (API.md, "Conventions")."""

    target_class = "invoicing.api.serializers.DecimalInputField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        whole, places = field.max_digits - field.decimal_places, field.decimal_places
        string = {
            "type": "string",
            "format": "decimal",
            "pattern": rf"^-?(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$",
        }
        if direction == "request":
            return {"oneOf": [string, {"type": "number"}]}
        return string


class AmountField(DecimalInputField):
    """A money amount: accepts strings or JSON numbers, answers a string with 2 decimals."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)


class QuantityField(DecimalInputField):
    """Quantities, prices and rates: up to 6 decimals in, shown without trailing zeros."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 19)
        kwargs.setdefault("decimal_places", 6)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        if value is None:
            return None
        value = Decimal(str(value))
        normalized = value.normalize()
        # normalize() writes 100 as 1E+2; quantize back to a plain exponent-free string.
        if normalized.as_tuple().exponent > 0:
            normalized = normalized.quantize(Decimal(1))
        return format(normalized, "f")


class RateField(QuantityField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 6)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("max_value", Decimal("100"))
        super().__init__(**kwargs)


class AddressSerializer(serializers.Serializer):
    line1 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    line3 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    postcode = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    subdivision = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    country = serializers.RegexField(r"^[A-Za-z]{2}$", help_text="ISO 3166-1 alpha-2")


class ElectronicAddressSerializer(serializers.Serializer):
    value = serializers.CharField(max_length=200)
    scheme = serializers.CharField(max_length=10, default="0225", help_text="EAS code: 0225 SIREN, EM e-mail")


class PartySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    siren = serializers.CharField(max_length=9, required=False, allow_blank=True, default="", validators=[])
    siret = serializers.CharField(max_length=14, required=False, allow_blank=True, default="")
    vat_id = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    contact_phone = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    address = AddressSerializer()
    electronic_address = ElectronicAddressSerializer(required=False, allow_null=True, default=None)

    def validate_siren(self, value: str) -> str:
        if value:
            validate_siren(value)
        return value


class AllowanceChargeSerializer(serializers.Serializer):
    amount = AmountField(required=False, allow_null=True, default=None)
    percent = QuantityField(required=False, allow_null=True, default=None)
    base_amount = AmountField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    reason_code = serializers.CharField(max_length=10, required=False, allow_blank=True, default="")
    vat_category = serializers.ChoiceField(choices=[c.value for c in VatCategory], required=False)
    vat_rate = RateField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("amount") is None and attrs.get("percent") is None:
            raise serializers.ValidationError("Give an amount or a percent.")
        return attrs


class LineSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=500)
    detail = serializers.CharField(required=False, allow_blank=True, default="")
    quantity = QuantityField()
    unit_code = serializers.CharField(
        max_length=10, default="C62", help_text="UN/ECE rec. 20 (C62, HUR, DAY...)"
    )
    unit_price = QuantityField(min_value=Decimal("0"))
    price_base_quantity = QuantityField(required=False, allow_null=True, default=None)
    vat_category = serializers.ChoiceField(choices=[c.value for c in VatCategory], default="S")
    vat_rate = RateField(required=False, allow_null=True, default=None)
    allowances = AllowanceChargeSerializer(many=True, required=False, default=list)
    charges = AllowanceChargeSerializer(many=True, required=False, default=list)
    seller_item_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    period_start = serializers.DateField(required=False, allow_null=True, default=None)
    period_end = serializers.DateField(required=False, allow_null=True, default=None)


class LineOutputSerializer(serializers.ModelSerializer):
    quantity = QuantityField()
    unit_price = QuantityField()
    price_base_quantity = QuantityField(allow_null=True)
    vat_rate = RateField(allow_null=True)
    net_amount = AmountField()

    class Meta:
        model = InvoiceLine
        fields = ["position", *InvoiceLine.EDITABLE_FIELDS, "net_amount"]


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=2000)
    subject = serializers.CharField(max_length=3, required=False, allow_blank=True, default="")


class PaymentSerializer(serializers.Serializer):
    means_code = serializers.CharField(max_length=3, default="58", help_text="UNCL 4461: 58 SEPA transfer")
    iban = serializers.CharField(max_length=34, required=False, allow_blank=True, default="")
    bic = serializers.CharField(max_length=11, required=False, allow_blank=True, default="")
    account_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    terms = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    remittance_info = serializers.CharField(max_length=140, required=False, allow_blank=True, default="")


class DeliverySerializer(serializers.Serializer):
    date = serializers.DateField(required=False, allow_null=True, default=None)
    party_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    address = AddressSerializer(required=False, allow_null=True, default=None)


class ExemptionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    code = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")


class InvoiceInputSerializer(serializers.Serializer):
    """The draft body of API.md. On PATCH every field is optional; ``lines`` replaces all lines."""

    def to_internal_value(self, data: Any) -> Any:
        if self.partial and isinstance(data, Mapping):
            # PATCH leaves fields out, not parts of a field: a nested object or list that is sent
            # replaces the stored one, so it is validated whole (a note without text is refused).
            errors = {}
            for name, value in data.items():
                field = self.fields.get(name)
                if value is None:  # null is the field's own business (allow_null)
                    continue
                if isinstance(field, serializers.ListSerializer):
                    whole = type(field.child)(data=value, many=True)
                elif isinstance(field, serializers.Serializer):
                    whole = type(field)(data=value)
                else:
                    continue
                if not whole.is_valid():
                    errors[name] = whole.errors
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    type = serializers.ChoiceField(choices=Invoice.Type.choices, default=Invoice.Type.INVOICE)
    format = serializers.ChoiceField(choices=Invoice.Format.choices, default=Invoice.Format.FACTURX)
    profile = serializers.ChoiceField(choices=Invoice.Profile.choices, default=Invoice.Profile.EN16931)
    issue_date = serializers.DateField(required=False, allow_null=True, default=None)
    due_date = serializers.DateField(required=False, allow_null=True, default=None)
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="EUR")
    tax_currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, allow_blank=True, default="")
    tax_exchange_rate = QuantityField(required=False, allow_null=True, default=None)
    buyer = PartySerializer()
    delivery = DeliverySerializer(required=False, allow_null=True, default=None)
    operation_category = serializers.ChoiceField(
        choices=Invoice.OperationCategory.choices, required=False, allow_blank=True, default=""
    )
    vat_on_debits = serializers.BooleanField(default=False)
    purchase_order_ref = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True
    )
    delivery_note_ref = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True
    )
    contract_ref = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    buyer_reference = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    project_ref = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    lines = LineSerializer(many=True, default=list)
    allowances = AllowanceChargeSerializer(many=True, required=False, default=list)
    charges = AllowanceChargeSerializer(many=True, required=False, default=list)
    payment = PaymentSerializer(required=False, default=dict)
    notes = NoteSerializer(many=True, required=False, default=list)
    vat_exemptions = serializers.DictField(
        child=ExemptionSerializer(),
        required=False,
        default=dict,
        help_text="reason per VAT category (E, AE...)",
    )
    prepaid_amount = AmountField(required=False, default=Decimal("0.00"))
    sub_tenant = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None)
    preceding_invoice = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="an issued invoice this one corrects (BG-3), for type corrective",
    )
    preceding_number = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="BT-25 of an invoice not issued by Scell"
    )
    preceding_issue_date = serializers.DateField(required=False, allow_null=True, help_text="BT-26")

    def validate_lines(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > 1000:
            raise serializers.ValidationError("At most 1000 lines.")
        return value


class PrecedingSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True)
    number = serializers.CharField()
    issue_date = serializers.DateField(allow_null=True)


class TransmissionSerializer(serializers.Serializer):
    """The invoice's transmission to the PDP (the simulator for sandbox invoices)."""

    state = serializers.ChoiceField(
        choices=["queued", "held", "submitting", "retrying", "submitted", "accepted", "rejected", "failed"]
    )
    target = serializers.ChoiceField(choices=["simulator", "pdp"])
    flow_id = serializers.CharField(allow_blank=True, help_text="the PDP's flow id (XP Z12-013)")
    tracking_id = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)
    rejection = serializers.ListField(
        child=serializers.DictField(), help_text="the PDP's acknowledgement details when it rejected the flow"
    )
    submitted_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)


class LifecycleSerializer(serializers.Serializer):
    """The latest lifecycle status (CDAR, XP Z12-012) and the payment."""

    status_code = serializers.CharField(allow_blank=True, help_text="200 Déposée … 212 Encaissée, 501")
    status = serializers.CharField(allow_blank=True, help_text="e.g. approved, disputed, refused, cashed")
    label = serializers.CharField(allow_blank=True)
    label_fr = serializers.CharField(allow_blank=True)
    reason_code = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    status_at = serializers.DateTimeField(allow_null=True)
    paid = serializers.BooleanField()
    paid_at = serializers.DateTimeField(allow_null=True)
    amount_paid = AmountField()


class InvoiceSerializer(serializers.ModelSerializer):
    lines = LineOutputSerializer(many=True, read_only=True)
    operation_category = serializers.ChoiceField(
        Invoice.OperationCategory.choices, allow_blank=True, read_only=True
    )
    transmission = serializers.SerializerMethodField()
    lifecycle = serializers.SerializerMethodField()
    sub_tenant = serializers.SerializerMethodField()
    preceding_invoice = serializers.SerializerMethodField()
    total_without_vat = AmountField()
    total_vat = AmountField()
    total_with_vat = AmountField()
    amount_due = AmountField()
    prepaid_amount = AmountField()
    tax_exchange_rate = QuantityField(allow_null=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "type",
            "livemode",
            "sub_tenant",
            "format",
            "profile",
            "issue_date",
            "due_date",
            "currency",
            "tax_currency",
            "tax_exchange_rate",
            "seller",
            "buyer",
            "delivery",
            "operation_category",
            "vat_on_debits",
            "purchase_order_ref",
            "delivery_note_ref",
            "contract_ref",
            "buyer_reference",
            "project_ref",
            "lines",
            "allowances",
            "charges",
            "payment",
            "notes",
            "vat_exemptions",
            "preceding_invoice",
            "prepaid_amount",
            "total_without_vat",
            "total_vat",
            "total_with_vat",
            "amount_due",
            "vat_breakdown",
            "totals",
            "document_sha256",
            "source_syntax",
            "import_report",
            "transmission",
            "lifecycle",
            "created_at",
            "updated_at",
            "issued_at",
        ]
        read_only_fields = fields

    def get_sub_tenant(self, obj: Invoice) -> str | None:
        return obj.sub_tenant.identifier if obj.sub_tenant_id else None

    @extend_schema_field(TransmissionSerializer(allow_null=True))
    def get_transmission(self, obj: Invoice) -> dict[str, Any] | None:
        flows = getattr(obj, "transmission_flows", None)
        if flows is None:
            from pdp.models import Flow

            flows = list(
                obj.flows.filter(direction=Flow.Direction.OUT, kind=Flow.Kind.INVOICE).defer("content")
            )
        if not flows:
            return None
        flow = flows[-1]
        return TransmissionSerializer(
            {
                "state": flow.state,
                "target": flow.target,
                "flow_id": flow.flow_id,
                "tracking_id": flow.tracking_id,
                "attempts": flow.attempts,
                "last_error": flow.last_error,
                "rejection": flow.ack_details if flow.ack_status == "Error" else [],
                "submitted_at": flow.submitted_at,
                "next_attempt_at": flow.next_attempt_at,
            }
        ).data

    @extend_schema_field(LifecycleSerializer(allow_null=True))
    def get_lifecycle(self, obj: Invoice) -> dict[str, Any] | None:
        from pdp.models import InvoiceLifecycle
        from pdp.services import status_payload

        try:
            lifecycle = obj.lifecycle
        except InvoiceLifecycle.DoesNotExist:
            return None
        payload = (
            status_payload(lifecycle.status_code)
            if lifecycle.status_code
            else {"status_code": "", "status": "", "label": "", "label_fr": ""}
        )
        return LifecycleSerializer(
            payload
            | {
                "reason_code": lifecycle.reason_code,
                "reason": lifecycle.reason,
                "status_at": lifecycle.status_at,
                "paid": lifecycle.paid_at is not None,
                "paid_at": lifecycle.paid_at,
                "amount_paid": lifecycle.amount_paid,
            }
        ).data

    def get_preceding_invoice(self, obj: Invoice) -> dict[str, Any] | None:
        if not obj.preceding_number:
            return None
        return {
            "id": str(obj.preceding_invoice_id) if obj.preceding_invoice_id else None,
            "number": obj.preceding_number,
            "issue_date": obj.preceding_issue_date.isoformat() if obj.preceding_issue_date else None,
        }


class CreditNoteLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1, help_text="position of the line in the original invoice")
    quantity = QuantityField(required=False, help_text="credited quantity (default: all of it)")


class CreditNoteInputSerializer(serializers.Serializer):
    lines = CreditNoteLineSerializer(
        many=True, required=False, default=list, help_text="empty: credit everything"
    )
    notes = NoteSerializer(many=True, required=False)
    issue = serializers.BooleanField(default=False, help_text="issue the credit note at once")


class InvoiceEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceEvent
        fields = ["id", "type", "status_code", "data", "created_at"]


class ValidationIssueSerializer(serializers.Serializer):
    rule = serializers.CharField()
    message = serializers.CharField()
    flag = serializers.CharField()
    location = serializers.CharField()
    source = serializers.CharField()


class ValidationReportSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    syntax = serializers.CharField()
    profile = serializers.CharField(allow_null=True)
    issues = ValidationIssueSerializer(many=True)


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        required=False, help_text="multipart upload; or send the raw file as the body"
    )
    document_base64 = serializers.CharField(required=False, help_text="the file, base64-encoded (JSON body)")


class StatusAmountSerializer(serializers.Serializer):
    amount = AmountField()
    vat_rate = RateField(required=False, allow_null=True, default=None)


class StatusInputSerializer(serializers.Serializer):
    """A lifecycle status sent by the seller (issued invoices) or the buyer (received invoices)."""

    code = serializers.RegexField(
        r"^\d{3}$", help_text="CDAR status: 204, 205, 206, 207, 208, 210, 211 (buyer); 209, 212, 220 (seller)"
    )
    reason_code = serializers.CharField(
        max_length=30, required=False, allow_blank=True, default="", help_text="e.g. TX_TVA_ERR, DOUBLON"
    )
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    amounts = StatusAmountSerializer(
        many=True,
        required=False,
        default=list,
        help_text="212: amount cashed per VAT rate (default: the amount due)",
    )


class ReasonInputSerializer(serializers.Serializer):
    reason_code = serializers.CharField(max_length=30, help_text="e.g. TX_TVA_ERR, MONTANTTOTAL_ERR, DOUBLON")
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class PaidInputSerializer(serializers.Serializer):
    amounts = StatusAmountSerializer(
        many=True,
        required=False,
        default=list,
        help_text="amount cashed per VAT rate (default: the amount due)",
    )
