"""Input and output shapes of the signature endpoints (API.md, "Signatures"). No logic here."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from signatures.models import SignatureEvent, SignatureRequest, Signer

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class SignerInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField()
    phone = serializers.CharField(max_length=20, help_text="E.164, e.g. +33612345678")
    page = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="Page of the visible stamp (1-based)."
    )
    x = serializers.FloatField(
        min_value=0, required=False, allow_null=True, help_text="Points from the left."
    )
    y = serializers.FloatField(
        min_value=0, required=False, allow_null=True, help_text="Points from the bottom."
    )

    def validate_phone(self, value: str) -> str:
        value = re.sub(r"[\s.\-()]", "", value)
        if not E164.match(value):
            raise serializers.ValidationError("Give the number in E.164 form, e.g. +33612345678.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        placed = [attrs.get(k) is not None for k in ("page", "x", "y")]
        if any(placed) and not all(placed):
            raise serializers.ValidationError("A placement needs page, x and y together.")
        return attrs


class SignatureRequestInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    signers = SignerInputSerializer(many=True, allow_empty=False)
    order = serializers.ChoiceField(choices=SignatureRequest.Order.choices, default="sequential")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    reminder_interval_days = serializers.IntegerField(min_value=0, max_value=30, default=3)
    max_reminders = serializers.IntegerField(min_value=0, max_value=10, default=3)
    notify_email = serializers.EmailField(required=False, allow_blank=True, default="")
    external_ref = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    locale = serializers.ChoiceField(choices=[("fr", "français"), ("en", "English")], default="fr")
    document_base64 = serializers.CharField(
        required=False, help_text="The PDF, base64-encoded (JSON bodies); multipart bodies send `document`."
    )
    document_filename = serializers.CharField(required=False, default="document.pdf", max_length=200)


class SignatureRequestMultipartSerializer(serializers.Serializer):
    """Multipart form: the PDF as ``document`` and the rest as a JSON string in ``payload``."""

    document = serializers.FileField()
    payload = serializers.CharField(help_text="JSON object with the fields of the JSON body.")


class SignerSerializer(serializers.ModelSerializer):
    phone = serializers.SerializerMethodField()
    placement = serializers.SerializerMethodField()

    class Meta:
        model = Signer
        fields = [
            "id",
            "position",
            "name",
            "email",
            "phone",
            "status",
            "placement",
            "notified_at",
            "reminder_count",
            "signed_at",
            "declined_at",
            "decline_reason",
        ]

    def get_phone(self, signer: Signer) -> str | None:
        return signer.phone or None

    def get_placement(self, signer: Signer) -> dict[str, Any] | None:
        if signer.placement_page is None:
            return None
        return {"page": signer.placement_page, "x": signer.placement_x, "y": signer.placement_y}


class DocumentSerializer(serializers.Serializer):
    filename = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    page_count = serializers.IntegerField()


class SignatureRequestSerializer(serializers.ModelSerializer):
    signers = SignerSerializer(many=True, read_only=True)
    sub_tenant = serializers.SerializerMethodField()
    document = serializers.SerializerMethodField()
    signed_document_sha256 = serializers.CharField(source="final_sha256")
    charged_amount = serializers.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        model = SignatureRequest
        fields = [
            "id",
            "status",
            "livemode",
            "sub_tenant",
            "title",
            "message",
            "order",
            "external_ref",
            "locale",
            "notify_email",
            "document",
            "signed_document_sha256",
            "evidence_sha256",
            "expires_at",
            "reminder_interval_days",
            "max_reminders",
            "charged_amount",
            "created_at",
            "completed_at",
            "ended_at",
            "end_reason",
            "signers",
        ]

    def get_sub_tenant(self, request: SignatureRequest) -> str | None:
        return str(request.sub_tenant_id) if request.sub_tenant_id else None

    def get_document(self, request: SignatureRequest) -> dict[str, Any]:
        return DocumentSerializer(
            {
                "filename": request.original_filename,
                "sha256": request.original_sha256,
                "size": request.original_size,
                "page_count": request.page_count,
            }
        ).data


class CreatedSignerSerializer(SignerSerializer):
    signing_url = serializers.SerializerMethodField()

    class Meta(SignerSerializer.Meta):
        fields = [*SignerSerializer.Meta.fields, "signing_url"]

    def get_signing_url(self, signer: Signer) -> str:
        return self.context["links"][str(signer.id)]


class CreatedSignatureRequestSerializer(SignatureRequestSerializer):
    """The creation answer: the only one that shows each signer's signing link (only its hash is kept).
    Use it to open the signing flow in your page with the widget; signers also receive it by e-mail."""

    signers = CreatedSignerSerializer(many=True, read_only=True)


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class SignatureEventSerializer(serializers.ModelSerializer):
    signer = serializers.SerializerMethodField()

    class Meta:
        model = SignatureEvent
        fields = ["id", "at", "action", "actor", "signer", "ip", "data"]

    def get_signer(self, event: SignatureEvent) -> str | None:
        return str(event.signer_id) if event.signer_id else None
