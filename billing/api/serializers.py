"""Shapes of the credits API (API.md: GET /credits, GET /credits/usage; purchases)."""

from __future__ import annotations

from rest_framework import serializers

from billing.models import CreditLot, LedgerEntry, Purchase
from invoicing.api.serializers import AmountField


class CreditLotSerializer(serializers.ModelSerializer):
    amount = AmountField()
    remaining = AmountField()

    class Meta:
        model = CreditLot
        fields = ["id", "amount", "remaining", "source", "created_at", "expires_at", "expired_at"]


class PriceSerializer(serializers.Serializer):
    invoice_issue = AmountField()
    signature_signer = AmountField()


class UsageRowSerializer(serializers.Serializer):
    operation = serializers.CharField()
    count = serializers.IntegerField()
    amount = AmountField()


class CreditsSerializer(serializers.Serializer):
    balance = AmountField()
    currency = serializers.CharField()
    livemode = serializers.BooleanField(help_text="sandbox operations never spend credits")
    low_balance_threshold = AmountField()
    next_expiry = serializers.DateTimeField(allow_null=True)
    lots = CreditLotSerializer(many=True)
    prices = PriceSerializer()
    packs = serializers.ListField(child=AmountField())
    usage_this_month = UsageRowSerializer(many=True)


class UsageSerializer(serializers.Serializer):
    date_from = serializers.DateField(allow_null=True)
    date_to = serializers.DateField(allow_null=True)
    sub_tenant = serializers.CharField(allow_null=True)
    data = UsageRowSerializer(many=True)
    by_month = serializers.ListField(child=serializers.DictField())


class UsageQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    sub_tenant = serializers.CharField(required=False)
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount = AmountField()
    unit_price = AmountField(allow_null=True)
    sub_tenant = serializers.SlugRelatedField(slug_field="identifier", read_only=True, allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "operation",
            "quantity",
            "unit_price",
            "reference",
            "reason",
            "sub_tenant",
            "created_at",
        ]


class PurchaseSerializer(serializers.ModelSerializer):
    amount = AmountField()
    amount_with_vat = AmountField()
    invoice = serializers.SerializerMethodField()

    class Meta:
        model = Purchase
        fields = [
            "id",
            "amount",
            "vat_rate",
            "amount_with_vat",
            "provider",
            "status",
            "failure_reason",
            "checkout_url",
            "invoice",
            "created_at",
            "paid_at",
        ]

    def get_invoice(self, obj: Purchase) -> str | None:
        return str(obj.invoice_id) if obj.invoice_id else None


class PurchaseInputSerializer(serializers.Serializer):
    amount = AmountField(help_text="a pack of the catalogue (GET /credits → packs)")
    card = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="sandbox provider only"
    )
    success_url = serializers.URLField(required=False, default="")
    cancel_url = serializers.URLField(required=False, default="")
