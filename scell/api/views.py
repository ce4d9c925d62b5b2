"""Tenancy endpoints: who am I, API keys, sub-tenants."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scell import services
from scell.api.base import ScellAPIView, ScopedViewSet
from scell.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    MeSerializer,
    SubTenantSerializer,
)
from scell.models import ApiKey, SubTenant


class MeView(ScellAPIView):
    """The caller's tenant and mode. Allowed to every key, publishable ones included."""

    public_widget = True

    @extend_schema(responses=MeSerializer, summary="The authenticated tenant, mode and key kind")
    def get(self, request: Request) -> Response:
        scope = self.scope
        data = {
            "tenant": scope.tenant,
            "livemode": scope.livemode,
            "auth_mode": scope.auth_mode,
            "sub_tenant": scope.sub_tenant.identifier if scope.sub_tenant else None,
        }
        return Response(MeSerializer(data).data)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """API keys of the caller's tenant and mode. Secrets are never shown again after creation."""

    model = ApiKey
    serializer_class = ApiKeySerializer
    secret_key_only = True
    admin_only = True

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.api_key_create(
            tenant=self.scope.tenant,
            livemode=self.scope.livemode,  # a sandbox key can only mint sandbox keys
            created_by=self.scope.user,
            **serializer.validated_data,
        )
        data = ApiKeySerializer(issued.api_key).data | {"key": issued.raw}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        api_key = services.api_key_revoke(api_key=self.get_object())
        return Response(ApiKeySerializer(api_key).data)


class SubTenantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    ScopedViewSet,
):
    """A partner's customers, each with its own legal profile and invoice numbering."""

    model = SubTenant
    serializer_class = SubTenantSerializer
    http_method_names = ["get", "post", "patch"]

    def perform_create(self, serializer: SubTenantSerializer) -> None:
        serializer.instance = services.sub_tenant_create(scope=self.scope, **serializer.validated_data)

    def perform_update(self, serializer: SubTenantSerializer) -> None:
        serializer.instance = services.sub_tenant_update(
            sub_tenant=serializer.instance, **serializer.validated_data
        )
