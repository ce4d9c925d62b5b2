"""Input and output shapes of the tenancy endpoints (no logic here)."""

from __future__ import annotations

from rest_framework import serializers

from scell.models import ApiKey, SubTenant, Tenant


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id",
            "legal_name",
            "identifier",
            "siren",
            "siret",
            "vat_id",
            "legal_form",
            "address_line1",
            "address_line2",
            "postcode",
            "city",
            "country",
            "archive_status",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    tenant = TenantSerializer()
    livemode = serializers.BooleanField()
    auth_mode = serializers.ChoiceField(choices=["secret", "publishable", "tenant", "session"])
    sub_tenant = serializers.CharField(allow_null=True, help_text="Identifier of the sub-tenant acted on.")


class SubTenantSerializer(serializers.ModelSerializer):
    # Upper-cased then validated by the model (full_clean in the service): "acme1" is accepted as ACME1.
    identifier = serializers.CharField(max_length=5)

    class Meta:
        model = SubTenant
        fields = [
            "id",
            "legal_name",
            "identifier",
            "siren",
            "siret",
            "vat_id",
            "legal_form",
            "rcs",
            "address_line1",
            "address_line2",
            "postcode",
            "city",
            "country",
            "email",
            "iban",
            "bic",
            "external_ref",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        # Uniqueness per partner is checked by the service (full_clean), with the tenant it knows.
        validators: list = []


class ApiKeySerializer(serializers.ModelSerializer):
    mode = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "kind",
            "livemode",
            "mode",
            "name",
            "display_prefix",
            "allowed_origins",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_mode(self, obj: ApiKey) -> str:
        return "live" if obj.livemode else "test"


class ApiKeyCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ApiKey.Kind.choices)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    allowed_origins = serializers.ListField(
        child=serializers.URLField(), required=False, default=list, max_length=20
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The key itself. Shown once: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
