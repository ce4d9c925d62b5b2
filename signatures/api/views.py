"""Signature request endpoints (API.md, "Signatures"). Thin: parse, call a service, serialise."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, parsers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scell.api.base import ScopedViewSet
from scell.errors import Conflict, UnprocessableEntity
from scell.pagination import CursorPagination
from signatures import selectors, services
from signatures.api.serializers import (
    CancelInputSerializer,
    CreatedSignatureRequestSerializer,
    SignatureEventSerializer,
    SignatureRequestInputSerializer,
    SignatureRequestMultipartSerializer,
    SignatureRequestSerializer,
)
from signatures.models import SignatureRequest

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class SignatureRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SignatureRequest.Status.choices)
    external_ref = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = SignatureRequest
        fields = ["status", "external_ref"]


class EventPagination(CursorPagination):
    ordering = ("at", "id")


def _parse_body(request: Request) -> tuple[dict[str, Any], bytes, str]:
    """Multipart (``document`` + ``payload`` JSON) or JSON (``document_base64``)."""
    data = request.data
    upload = data.get("document") if hasattr(data, "get") else None
    if upload is not None and hasattr(upload, "read"):
        raw_payload = data.get("payload") or "{}"
        try:
            payload = json.loads(raw_payload)
        except json.JSONDecodeError as exc:
            raise UnprocessableEntity(
                "payload is not valid JSON.", details=[{"field": "payload", "message": str(exc)}]
            ) from exc
        if not isinstance(payload, dict):
            raise UnprocessableEntity(
                "payload must be a JSON object.", details=[{"field": "payload", "message": "not an object"}]
            )
        content = upload.read(MAX_UPLOAD_BYTES + 1)
        payload.setdefault("document_filename", getattr(upload, "name", "") or "document.pdf")
        return payload, content, payload["document_filename"]
    payload = dict(data) if isinstance(data, dict) else {}
    encoded = payload.get("document_base64")
    if not encoded:
        raise UnprocessableEntity(
            "Send the PDF as multipart 'document' (with a JSON 'payload') or as 'document_base64'.",
            code="document_missing",
            details=[{"field": "document", "message": "missing"}],
        )
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise UnprocessableEntity(
            "document_base64 is not valid base64.",
            details=[{"field": "document_base64", "message": str(exc)}],
        ) from exc
    return payload, content, str(payload.get("document_filename") or "document.pdf")


class SignatureRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Signature requests of the caller's tenant and mode."""

    model = SignatureRequest
    serializer_class = SignatureRequestSerializer
    filterset_class = SignatureRequestFilter
    http_method_names = ["get", "post"]

    def get_queryset(self) -> QuerySet[SignatureRequest]:
        if getattr(self, "swagger_fake_view", False):
            return SignatureRequest.objects.none()
        return selectors.signature_request_list(scope=self.scope)

    def get_parsers(self) -> list[parsers.BaseParser]:
        # Creation takes the PDF as multipart (``document`` + ``payload``) too; the rest is JSON only.
        # (DRF picks the parsers before it sets ``self.action``: the action is read from the method.)
        request = getattr(self, "request", None)
        action = getattr(self, "action", None) or getattr(self, "action_map", {}).get(
            getattr(request, "method", "").lower()
        )
        if action == "create":
            return [parsers.JSONParser(), parsers.MultiPartParser()]
        return super().get_parsers()

    @extend_schema(
        request={
            "application/json": SignatureRequestInputSerializer,
            "multipart/form-data": SignatureRequestMultipartSerializer,
        },
        responses={
            201: CreatedSignatureRequestSerializer,
            402: OpenApiResponse(description="not enough credits (€1.20 per signer, live mode)"),
            422: OpenApiResponse(description="invalid PDF or signers"),
        },
        summary="Create and send a signature request",
        description=(
            "Charges €1.20 per signer in live mode (free in sandbox). The answer is the only one that "
            "shows each signer's `signing_url`; signers also receive their link by e-mail."
        ),
    )
    def create(self, request: Request) -> Response:
        payload, content, filename = _parse_body(request)
        if len(content) > MAX_UPLOAD_BYTES:
            raise UnprocessableEntity(
                "The PDF is larger than 20 MB.",
                code="document_too_large",
                details=[{"field": "document", "message": ">20MB"}],
            )
        serializer = SignatureRequestInputSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = services.signature_request_create(
            scope=self.scope,
            document=content,
            filename=filename,
            title=data["title"],
            message=data["message"],
            signers=[services.SignerInput(**s) for s in data["signers"]],
            order=data["order"],
            expires_at=data["expires_at"],
            reminder_interval_days=data["reminder_interval_days"],
            max_reminders=data["max_reminders"],
            notify_email=data["notify_email"],
            external_ref=data["external_ref"],
            locale=data["locale"],
            created_by=self.scope.user,
        )
        fresh = selectors.signature_request_get(scope=self.scope, pk=created.request.pk)
        return Response(
            CreatedSignatureRequestSerializer(fresh, context={"links": created.links}).data, status=201
        )

    @extend_schema(
        request=CancelInputSerializer,
        responses={200: SignatureRequestSerializer, 409: OpenApiResponse(description="not pending")},
        summary="Cancel a pending request",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        serializer = CancelInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        services.signature_request_cancel(
            scope=self.scope, request=self.get_object(), reason=serializer.validated_data["reason"]
        )
        return Response(
            SignatureRequestSerializer(selectors.signature_request_get(scope=self.scope, pk=pk)).data
        )

    @extend_schema(
        request=None,
        responses={200: SignatureRequestSerializer, 409: OpenApiResponse(description="nobody to remind")},
        summary="Remind the signers whose turn it is",
        description="Each reminded signer receives a new link by e-mail; the previous one stops working.",
    )
    @action(detail=True, methods=["post"])
    def remind(self, request: Request, pk: str | None = None) -> Response:
        services.signature_request_remind(scope=self.scope, request=self.get_object())
        return Response(
            SignatureRequestSerializer(selectors.signature_request_get(scope=self.scope, pk=pk)).data
        )

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="not completed yet"),
        },
        summary="Download the signed, sealed PDF",
    )
    @action(detail=True, methods=["get"])
    def document(self, request: Request, pk: str | None = None) -> HttpResponse:
        signature_request = self.get_object()
        if signature_request.status != SignatureRequest.Status.COMPLETED or not signature_request.final_file:
            raise Conflict(
                f"The signed document is available once every signer signed (status: "
                f"{signature_request.status}).",
                code="signature_request_not_completed",
            )
        return _pdf(signature_request.final_file, signature_request.final_sha256, "signed")

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
        summary="Download the evidence file (PDF, sealed)",
        description=(
            "Once the request has ended, the archived evidence file. Before that, an interim evidence "
            "file of what happened so far, sealed but not archived (header `X-Scell-Evidence: interim`)."
        ),
    )
    @action(detail=True, methods=["get"])
    def evidence(self, request: Request, pk: str | None = None) -> HttpResponse:
        signature_request = self.get_object()
        if signature_request.evidence_file and signature_request.evidence_sha256:
            return _pdf(signature_request.evidence_file, signature_request.evidence_sha256, "evidence")
        content, digest = services.evidence_interim(request=signature_request)
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="{signature_request.id}-evidence-interim.pdf"'
        )
        response["X-Content-SHA256"] = digest
        response["X-Scell-Evidence"] = "interim"
        return response

    @extend_schema(responses=SignatureEventSerializer(many=True), summary="The evidence log")
    @action(detail=True, methods=["get"], pagination_class=EventPagination, filterset_class=None)
    def events(self, request: Request, pk: str | None = None) -> Response:
        signature_request = self.get_object()
        queryset = signature_request.events.order_by("at", "id")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SignatureEventSerializer(page, many=True).data)


def _pdf(field: Any, sha256: str, suffix: str) -> HttpResponse:
    with field.open("rb") as handle:
        content = handle.read()
    request_id = field.name.split("/")[-2] if "/" in field.name else "document"
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{request_id}-{suffix}.pdf"'
    response["X-Content-SHA256"] = sha256
    return response


__all__ = ["SignatureRequestViewSet"]
