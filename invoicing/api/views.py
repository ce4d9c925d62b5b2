"""Invoice endpoints (API.md, "Invoices"). Thin: parse, call a service, serialise."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from invoicing import selectors, services
from invoicing.api.serializers import (
    CreditNoteInputSerializer,
    DocumentUploadSerializer,
    InvoiceEventSerializer,
    InvoiceInputSerializer,
    InvoiceSerializer,
    PaidInputSerializer,
    ReasonInputSerializer,
    StatusInputSerializer,
    ValidationReportSerializer,
)
from invoicing.models import Invoice
from scell.api.base import ScopedViewSet
from scell.api.fields import StrictBooleanFilter
from scell.errors import Conflict, UnprocessableEntity
from scell.pagination import CursorPagination

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DOWNLOAD_FORMATS = ["facturx", "cii", "ubl", "json", "pdf"]


# The request body of the calls that take a CII, UBL or Factur-X file (validate, import, sandbox inbound).
UPLOAD_REQUEST = {
    "multipart/form-data": DocumentUploadSerializer,
    "application/json": DocumentUploadSerializer,
    "application/xml": OpenApiTypes.BINARY,
    "application/pdf": OpenApiTypes.BINARY,
}


class RawDocumentParser(parsers.BaseParser):
    """A CII/UBL/Factur-X file sent as the request body itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"_raw": stream.read(MAX_UPLOAD_BYTES + 1) if stream is not None else b""}


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Invoice.Status.choices)
    type = django_filters.ChoiceFilter(choices=Invoice.Type.choices)
    number = django_filters.CharFilter()
    buyer_siren = django_filters.CharFilter()
    issue_date_from = django_filters.DateFilter(field_name="issue_date", lookup_expr="gte")
    issue_date_to = django_filters.DateFilter(field_name="issue_date", lookup_expr="lte")
    lifecycle_status = django_filters.CharFilter(
        field_name="lifecycle__status_code", help_text="latest lifecycle status code (205, 212…)"
    )
    paid = StrictBooleanFilter(field_name="lifecycle__paid_at", lookup_expr="isnull", exclude=True)
    transmission = django_filters.CharFilter(
        method="filter_transmission", help_text="queued, accepted, failed…"
    )

    def filter_transmission(self, queryset: QuerySet[Invoice], name: str, value: str) -> QuerySet[Invoice]:
        return queryset.filter(flows__direction="out", flows__kind="invoice", flows__state=value).distinct()

    class Meta:
        model = Invoice
        fields = ["status", "type", "number", "buyer_siren"]


class EventPagination(CursorPagination):
    ordering = ("created_at", "pk")  # a lifecycle reads oldest first


def uploaded_bytes(request: Request) -> bytes:
    """The document of a validate/import call: multipart ``file``, a base64 JSON field, or the body."""
    data = request.data
    content: bytes | None = None
    if not isinstance(data, Mapping):  # a JSON body that is not an object: null, a list, a number
        data = {}
    if "file" in data and hasattr(data["file"], "read"):
        content = data["file"].read(MAX_UPLOAD_BYTES + 1)
    elif isinstance(data, dict) and data.get("document_base64"):
        if not isinstance(data["document_base64"], str):
            raise UnprocessableEntity(
                "document_base64 must be a base64 string.",
                details=[{"field": "document_base64", "message": "expected a string"}],
            )
        try:
            content = base64.b64decode(data["document_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnprocessableEntity(
                "document_base64 is not valid base64.",
                details=[{"field": "document_base64", "message": str(exc)}],
            ) from exc
    elif isinstance(data, dict) and "_raw" in data:
        content = data["_raw"]
    if not content:
        raise UnprocessableEntity(
            "Send the file as multipart 'file', as 'document_base64', or as the request body.",
            code="document_missing",
            details=[{"field": "file", "message": "missing"}],
        )
    if len(content) > MAX_UPLOAD_BYTES:
        raise UnprocessableEntity(
            "The file is larger than 20 MB.",
            code="document_too_large",
            details=[{"field": "file", "message": ">20MB"}],
        )
    return content


class InvoiceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ScopedViewSet,
):
    """Invoices and credit notes of the caller's tenant and mode."""

    model = Invoice
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self) -> QuerySet[Invoice]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no scope
            return Invoice.objects.none()
        return selectors.invoice_list(scope=self.scope)

    @extend_schema(
        request=InvoiceInputSerializer, responses={201: InvoiceSerializer}, summary="Create a draft"
    )
    def create(self, request: Request) -> Response:
        serializer = InvoiceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = services.invoice_create_draft(scope=self.scope, data=serializer.validated_data)
        return Response(
            InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data, status=201
        )

    @extend_schema(request=InvoiceInputSerializer, responses=InvoiceSerializer, summary="Change a draft")
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        serializer = InvoiceInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.invoice_update_draft(scope=self.scope, invoice=invoice, data=serializer.validated_data)
        return Response(InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data)

    @extend_schema(responses={204: None}, summary="Delete a draft")
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.invoice_delete_draft(scope=self.scope, invoice=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            200: InvoiceSerializer,
            402: OpenApiResponse(description="not enough credits"),
            409: OpenApiResponse(description="not a draft"),
            422: OpenApiResponse(description="rules broken"),
        },
        summary="Validate, number, charge and issue a draft",
    )
    @action(detail=True, methods=["post"])
    def issue(self, request: Request, pk: str | None = None) -> Response:
        invoice = services.invoice_issue(scope=self.scope, invoice=self.get_object())
        # The issued row is in hand: only its lines are read again (the hot path of the API).
        selectors.invoice_prefetch(invoice)
        return Response(InvoiceSerializer(invoice).data)

    @extend_schema(
        request=CreditNoteInputSerializer, responses={201: InvoiceSerializer}, summary="Credit an invoice"
    )
    @action(detail=True, methods=["post"], url_path="credit-note")
    def credit_note(self, request: Request, pk: str | None = None) -> Response:
        serializer = CreditNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        extra = (
            {"notes": serializer.validated_data["notes"]} if "notes" in serializer.validated_data else None
        )
        credit = services.invoice_create_credit_note(
            scope=self.scope, original=self.get_object(), lines=serializer.validated_data["lines"], data=extra
        )
        if serializer.validated_data["issue"]:
            credit = services.invoice_issue(scope=self.scope, invoice=credit)
        return Response(
            InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=credit.pk)).data, status=201
        )

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=DOWNLOAD_FORMATS, default="facturx")],
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            (200, "application/xml"): OpenApiTypes.BINARY,
            (200, "application/json"): InvoiceSerializer,
        },
        summary="Download the invoice document",
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        invoice = self.get_object()
        fmt = request.query_params.get("format", "facturx")
        if fmt not in DOWNLOAD_FORMATS:
            raise UnprocessableEntity(
                f"format must be one of {', '.join(DOWNLOAD_FORMATS)}.",
                details=[{"field": "format", "message": f"unknown format {fmt!r}"}],
            )
        if fmt == "json":
            return Response(InvoiceSerializer(invoice).data)
        document = services.invoice_render(invoice=invoice, fmt=fmt)
        with document.file.open("rb") as handle:
            content = handle.read()
        response = HttpResponse(content, content_type=document.content_type)
        extension = "pdf" if document.content_type == "application/pdf" else "xml"
        suffix = {"facturx": "", "pdf": "-readable", "cii": "-cii", "ubl": "-ubl"}[fmt]
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}{suffix}.{extension}"'
        response["X-Content-SHA256"] = document.sha256
        return response

    @extend_schema(responses=InvoiceEventSerializer(many=True), summary="Lifecycle events")
    @action(detail=True, methods=["get"], pagination_class=EventPagination, filterset_class=None)
    def events(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        page = self.paginate_queryset(selectors.invoice_events(scope=self.scope, invoice=invoice))
        return self.get_paginated_response(InvoiceEventSerializer(page, many=True).data)

    @extend_schema(
        request=UPLOAD_REQUEST,
        responses={
            200: ValidationReportSerializer,
            422: OpenApiResponse(description="the document breaks rules"),
        },
        summary="Validate a CII, UBL or Factur-X file (nothing stored)",
    )
    @action(
        detail=False,
        methods=["post"],
        parser_classes=[parsers.MultiPartParser, parsers.JSONParser, RawDocumentParser],
        filterset_class=None,
    )
    def validate(self, request: Request) -> Response:
        report = services.document_validate(data=uploaded_bytes(request))
        return Response(report)

    @extend_schema(
        request=UPLOAD_REQUEST,
        responses={201: InvoiceSerializer},
        summary="Import a received CII, UBL or Factur-X invoice",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[parsers.MultiPartParser, parsers.JSONParser, RawDocumentParser],
        filterset_class=None,
    )
    def import_(self, request: Request) -> Response:
        invoice = services.invoice_import(scope=self.scope, data=uploaded_bytes(request))
        return Response(
            InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data, status=201
        )

    # --- Lifecycle (PDP) ---------------------------------------------------------------------------
    def _status(self, invoice: Invoice, **kwargs: object) -> Response:
        from pdp.services import invoice_status_send

        invoice_status_send(scope=self.scope, invoice=invoice, **kwargs)  # type: ignore[arg-type]
        return Response(InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data)

    @extend_schema(
        request=StatusInputSerializer,
        responses={
            200: InvoiceSerializer,
            409: OpenApiResponse(description="draft, refused invoice, or already paid"),
            422: OpenApiResponse(description="status not yours to send, or the CDAR breaks BR-FR-CDV rules"),
        },
        summary="Send a lifecycle status (CDAR) about an issued or received invoice",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def statuses(self, request: Request, pk: str | None = None) -> Response:
        serializer = StatusInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return self._status(
            self.get_object(),
            code=data["code"],
            reason_code=data["reason_code"],
            reason=data["reason"],
            amounts=data["amounts"] or None,
        )

    @extend_schema(
        request=None, responses={200: InvoiceSerializer}, summary="Approve a received invoice (205)"
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._status(self._received(), code="205")

    @extend_schema(
        request=ReasonInputSerializer,
        responses={200: InvoiceSerializer},
        summary="Dispute a received invoice (207)",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def dispute(self, request: Request, pk: str | None = None) -> Response:
        return self._reasoned(request, code="207")

    @extend_schema(
        request=ReasonInputSerializer,
        responses={200: InvoiceSerializer},
        summary="Refuse a received invoice (210)",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def refuse(self, request: Request, pk: str | None = None) -> Response:
        return self._reasoned(request, code="210")

    @extend_schema(
        request=PaidInputSerializer,
        responses={200: InvoiceSerializer},
        summary="Mark an issued invoice paid: sends 212 Encaissée",
    )
    @action(detail=True, methods=["post"], url_path="mark-paid", filterset_class=None)
    def mark_paid(self, request: Request, pk: str | None = None) -> Response:
        serializer = PaidInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = self.get_object()
        if invoice.status != Invoice.Status.ISSUED:
            raise Conflict(
                "Only an issued invoice can be marked paid by its seller.", code="invoice_not_issued"
            )
        return self._status(invoice, code="212", amounts=serializer.validated_data["amounts"] or None)

    def _reasoned(self, request: Request, *, code: str) -> Response:
        serializer = ReasonInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._status(self._received(), code=code, **serializer.validated_data)

    def _received(self) -> Invoice:
        invoice = self.get_object()
        if invoice.status != Invoice.Status.RECEIVED:
            raise Conflict(
                "Only a received invoice can be approved, disputed or refused.", code="invoice_not_received"
            )
        return invoice

    @extend_schema(
        request=None,
        responses={200: InvoiceSerializer, 409: OpenApiResponse(description="no failed transmission")},
        summary="Retransmit an invoice whose transmission failed",
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def transmit(self, request: Request, pk: str | None = None) -> Response:
        from pdp.services import transmission_retry

        invoice = self.get_object()
        transmission_retry(scope=self.scope, invoice=invoice)
        return Response(InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data)

    @extend_schema(
        request=StatusInputSerializer,
        responses={
            200: InvoiceSerializer,
            409: OpenApiResponse(description="live invoice or not transmitted"),
        },
        summary="Sandbox: make the simulated PDP or buyer send a status about this invoice",
    )
    @action(detail=True, methods=["post"], url_path="simulate-status", filterset_class=None)
    def simulate_status(self, request: Request, pk: str | None = None) -> Response:
        from pdp.services import sandbox_status_simulate

        serializer = StatusInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invoice = self.get_object()
        sandbox_status_simulate(
            scope=self.scope,
            invoice=invoice,
            code=data["code"],
            reason_code=data["reason_code"],
            reason=data["reason"],
            amounts=data["amounts"] or None,
        )
        return Response(InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data)

    @extend_schema(
        request=UPLOAD_REQUEST,
        responses={201: InvoiceSerializer, 409: OpenApiResponse(description="live key")},
        summary="Sandbox: make the simulated PDP deliver a supplier invoice to you",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="simulate-incoming",
        parser_classes=[parsers.MultiPartParser, parsers.JSONParser, RawDocumentParser],
        filterset_class=None,
    )
    def simulate_incoming(self, request: Request) -> Response:
        from pdp.services import sandbox_incoming_simulate

        invoice = sandbox_incoming_simulate(scope=self.scope, content=uploaded_bytes(request))
        return Response(
            InvoiceSerializer(selectors.invoice_get(scope=self.scope, pk=invoice.pk)).data, status=201
        )
