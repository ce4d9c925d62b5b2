"""Archive API: the hash chain's heads and their full verification, for the caller's scope."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from archive import selectors, services
from scell.api.base import ScellAPIView


class ChainLastCheckSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=["ok", "broken"])
    finished_at = serializers.DateTimeField(allow_null=True)
    first_broken_seq = serializers.IntegerField(allow_null=True)


class ChainHeadSerializer(serializers.Serializer):
    chain_key = serializers.CharField()
    sub_tenant = serializers.UUIDField(source="sub_tenant_id", allow_null=True)
    livemode = serializers.BooleanField()
    seq = serializers.IntegerField(source="last_seq")
    hash = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField()
    status = serializers.SerializerMethodField(help_text="intact, broken, or unchecked (never verified yet)")
    last_check = serializers.SerializerMethodField()

    def get_hash(self, head) -> str:
        return bytes(head.last_hash).hex()

    def get_status(self, head) -> str:
        return {"ok": "intact", "broken": "broken"}.get(head.last_check_result, "unchecked")

    @extend_schema_field(ChainLastCheckSerializer(allow_null=True))
    def get_last_check(self, head) -> dict | None:
        if head.last_check_result is None:
            return None
        return {
            "result": head.last_check_result,
            "finished_at": head.last_check_at,
            "first_broken_seq": head.last_check_broken_seq,
        }


class ChainListSerializer(serializers.Serializer):
    archive_status = serializers.ChoiceField(choices=["healthy", "compromised"])
    data = ChainHeadSerializer(many=True)


class ChainResultSerializer(serializers.Serializer):
    chain_key = serializers.CharField()
    ok = serializers.BooleanField()
    entries_checked = serializers.IntegerField()
    seq = serializers.IntegerField(source="head_seq")
    first_broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)


class ChainVerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    result = serializers.ChoiceField(choices=["ok", "broken"])
    entries_checked = serializers.IntegerField()
    first_broken_seq = serializers.IntegerField(allow_null=True)
    chains = ChainResultSerializer(many=True)


class ChainView(ScellAPIView):
    """The caller's hash chains (per sub-tenant and mode): head seq and hash, and the last check."""

    @extend_schema(
        responses=ChainListSerializer, summary="Hash chain heads of the caller and their last check"
    )
    def get(self, request: Request) -> Response:
        heads = list(selectors.chain_heads(scope=self.scope))
        self.scope.tenant.refresh_from_db(fields=["archive_status"])
        data = {"archive_status": self.scope.tenant.archive_status, "data": heads}
        return Response(ChainListSerializer(data).data)


class ChainVerifyView(ScellAPIView):
    """Recompute the caller's chains now; the result is also recorded as the chains' last check."""

    @extend_schema(
        responses=ChainVerifySerializer,
        summary="Recompute the caller's hash chains now and report the first broken link",
    )
    def get(self, request: Request) -> Response:
        results = [run.result for run in services.chain_check(scope=self.scope)]
        broken = [r for r in results if not r.ok]
        data = {
            "ok": not broken,
            "result": "broken" if broken else "ok",
            "entries_checked": sum(r.entries_checked for r in results),
            "first_broken_seq": broken[0].first_broken_seq if broken else None,
            "chains": results,
        }
        return Response(ChainVerifySerializer(data).data)


urlpatterns = [
    path("archive/chain", ChainView.as_view(), name="archive-chain"),
    path("archive/chain/verify", ChainVerifyView.as_view(), name="archive-chain-verify"),
]
