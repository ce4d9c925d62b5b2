"""Archive API: daily closures, their OpenTimestamps proofs, and per-invoice proof bundles."""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from archive import closures as selectors
from archive import selectors as archive_selectors
from archive.models import Closure
from scell.api.base import ScellAPIView, ScopedViewSet
from scell.errors import ScellError, UnprocessableEntity
from scell.pagination import CursorPagination


class ClosureSerializer(serializers.ModelSerializer):
    chain = serializers.CharField(source="chain_key")
    root = serializers.SerializerMethodField()
    status = serializers.CharField(source="ots_status")
    tsa_token = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Closure
        fields = [
            "id",
            "chain",
            "livemode",
            "day",
            "root",
            "first_seq",
            "last_seq",
            "leaf_count",
            "status",
            "bitcoin_block",
            "tsa_token",
            "created_at",
            "upgraded_at",
            "links",
        ]

    def get_root(self, obj: Closure) -> str:
        return bytes(obj.root).hex()

    def get_tsa_token(self, obj: Closure) -> str | None:
        """The RFC 3161 time-stamp token (DER, base64), if a TSA is configured."""
        return base64.b64encode(bytes(obj.tsa_token)).decode() if obj.tsa_token else None

    def get_links(self, obj: Closure) -> dict[str, str | None]:
        return {"ots": f"/api/v1/archive/closures/{obj.pk}/ots" if obj.ots_proof else None}


class ClosurePagination(CursorPagination):
    ordering = ("-day", "-pk")


class ClosureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """The caller's daily closures, newest day first; each one's ``.ots`` proof."""

    model = Closure
    serializer_class = ClosureSerializer
    pagination_class = ClosurePagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Closure.objects.none()
        return selectors.closures(scope=self.scope)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="The closure is not timestamped yet (closure_not_timestamped)."),
        },
        summary="The closure's OpenTimestamps proof (.ots) on its Merkle root",
    )
    @action(detail=True, methods=["get"], url_path="ots")
    def ots(self, request: Request, pk: Any = None) -> HttpResponse:
        closure = self.get_object()
        if not closure.ots_proof:
            raise ScellError(
                "This closure is not timestamped yet; try again later.",
                status_code=409,
                type="conflict_error",
                code="closure_not_timestamped",
            )
        response = HttpResponse(bytes(closure.ots_proof), content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{selectors.closure_filename(closure)}"'
        return response


class ProofView(ScellAPIView):
    """Proof that an issued invoice is in the chain: its entry hash, the Merkle path to its day's
    closure, and an ``.ots`` on the entry hash that ``ots verify`` checks offline."""

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "zip"], required=False)],
        responses={
            200: OpenApiTypes.OBJECT,
            (200, "application/zip"): OpenApiTypes.BINARY,
            409: OpenApiResponse(
                description="A draft has no chain entry (not_chained), or the chain fails its check "
                "(archive_compromised)."
            ),
        },
        summary="Proof bundle of one invoice (JSON, or a zip with entry.bin and entry.bin.ots)",
    )
    def get(self, request: Request, invoice_id: str) -> Response | HttpResponse:
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "zip"):
            raise UnprocessableEntity(
                "format must be one of json, zip.",
                details=[{"field": "format", "message": f"unknown format {fmt!r}"}],
            )
        try:
            proof = archive_selectors.invoice_proof(scope=self.scope, invoice_id=invoice_id)
        except selectors.ClosureError as exc:
            raise ScellError(
                str(exc), status_code=409, type="conflict_error", code="archive_compromised"
            ) from exc
        if proof is None:
            raise exceptions.NotFound("No such invoice.")
        invoice, bundle = proof.invoice, proof.bundle
        if bundle is None:
            raise ScellError(
                "This invoice has no chain entry (drafts are not chained).",
                status_code=409,
                type="conflict_error",
                code="not_chained",
            )
        if fmt == "zip":
            response = HttpResponse(bundle.as_zip(), content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="proof-{invoice.pk}.zip"'
            return response
        return Response(bundle.as_dict())


router = SimpleRouter(trailing_slash=False)
router.register("archive/closures", ClosureViewSet, basename="archive-closure")

urlpatterns = [
    path("archive/proofs/<str:invoice_id>", ProofView.as_view(), name="archive-proof"),
    *router.urls,
]
