"""Credits endpoints: balance, lots, usage (JSON or CSV), ledger, purchases, provider webhooks."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors, services
from billing.api.serializers import (
    CreditsSerializer,
    LedgerEntrySerializer,
    PurchaseInputSerializer,
    PurchaseSerializer,
    UsageQuerySerializer,
    UsageSerializer,
)
from billing.models import LedgerEntry, Purchase
from billing.providers import WebhookError, get_provider
from scell.api.base import ScellAPIView, ScopedViewSet
from scell.errors import ScellError, UnprocessableEntity
from scell.selectors import sub_tenant_get


class CreditsView(ScellAPIView):
    @extend_schema(
        responses=CreditsSerializer, summary="Balance, lots with expiry, prices and this month's usage"
    )
    def get(self, request: Request) -> Response:
        scope = self.scope
        account = selectors.credit_account(scope=scope)
        lots = list(selectors.credit_lots(scope=scope))
        month_start = timezone.localdate().replace(day=1)
        data = {
            "balance": account.balance if account else services.ZERO,
            "currency": "EUR",
            "livemode": scope.livemode,
            "low_balance_threshold": account.low_balance_threshold
            if account
            else settings.CREDIT_LOW_BALANCE_DEFAULT,
            "next_expiry": lots[0].expires_at if lots else None,
            "lots": lots,
            "prices": {op: services.price_of(op) for op in services.OPERATIONS},
            "packs": services.pack_catalogue(),
            "usage_this_month": selectors.credit_usage(scope=scope, date_from=month_start),
        }
        return Response(CreditsSerializer(data).data)


class CreditUsageView(ScellAPIView):
    @extend_schema(
        parameters=[UsageQuerySerializer],
        responses={200: UsageSerializer, (200, "text/csv"): OpenApiTypes.STR},
        summary="Spend per operation over a period (JSON, or CSV with ?format=csv)",
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        sub_tenant = None
        if params.get("sub_tenant"):
            sub_tenant = sub_tenant_get(scope=self.scope, ref=params["sub_tenant"])
            if sub_tenant is None:
                raise UnprocessableEntity(
                    "No such sub-tenant.", details=[{"field": "sub_tenant", "message": "unknown"}]
                )
        kwargs = {
            "scope": self.scope,
            "date_from": params.get("date_from"),
            "date_to": params.get("date_to"),
            "sub_tenant_id": sub_tenant.pk if sub_tenant else None,
        }
        if params["format"] == "csv":
            response = HttpResponse(
                selectors.credit_usage_csv(**kwargs), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = 'attachment; filename="scell-credit-usage.csv"'
            return response
        rows = selectors.credit_usage(**kwargs)
        by_month = selectors.credit_usage_by_month(**kwargs)
        data = {
            "date_from": params.get("date_from"),
            "date_to": params.get("date_to"),
            "sub_tenant": sub_tenant.identifier if sub_tenant else None,
            "data": rows,
            "by_month": [row | {"amount": f"{row['amount']:.2f}"} for row in by_month],
        }
        return Response(UsageSerializer(data).data)


class LedgerViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Every credit movement, newest first."""

    model = LedgerEntry
    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LedgerEntry.objects.none()
        return selectors.ledger_entries(scope=self.scope)


class PurchaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Buying credit packs. With the sandbox provider, ``card`` 4242 4242 4242 4242 pays at once."""

    model = Purchase
    serializer_class = PurchaseSerializer
    secret_key_only = True
    admin_only = True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Purchase.objects.none()
        return selectors.purchases(scope=self.scope)

    @extend_schema(request=PurchaseInputSerializer, responses={201: PurchaseSerializer})
    def create(self, request: Request) -> Response:
        serializer = PurchaseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        base = settings.SITE_URL.rstrip("/")
        purchase = services.purchase_start(
            scope=self.scope,
            amount=data["amount"],
            card=data["card"],
            success_url=data["success_url"] or f"{base}/credits/?purchase=success",
            cancel_url=data["cancel_url"] or f"{base}/credits/?purchase=cancelled",
            created_by=self.scope.user,
        )
        purchase.refresh_from_db()
        return Response(PurchaseSerializer(purchase).data, status=status.HTTP_201_CREATED)


class StripeWebhookView(APIView):
    """Stripe's notifications; authenticated by their signature, not by a key."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        provider = get_provider("stripe")
        try:
            confirmation = provider.parse_webhook(request.body, dict(request.headers))
        except WebhookError as exc:
            raise ScellError(f"Invalid webhook: {exc}", code="invalid_signature") from exc
        known = (
            confirmation is not None
            and Purchase.objects.filter(provider="stripe", provider_ref=confirmation.provider_ref).exists()
        )
        # A session Scell did not create (another integration on the same Stripe account) is
        # acknowledged, so that Stripe does not retry it forever.
        if known:
            services.purchase_confirm(
                provider="stripe",
                provider_ref=confirmation.provider_ref,
                paid=confirmation.paid,
                amount_with_vat=confirmation.amount_with_vat,
            )
        return Response({"received": True})
