"""Base classes of every API view: tenant scope, idempotency, error object."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.http.response import HttpResponseBase
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scell import idempotency
from scell.tenancy import Scope


class ScellAPIMixin:
    """Idempotent POSTs and the caller's ``scope`` for every view."""

    _idempotency_claim: idempotency.Claim | None = None

    @property
    def scope(self) -> Scope:
        return self.request.auth  # type: ignore[attr-defined]

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # An empty query parameter (``?status=``) is the same as leaving it out, on every endpoint (the
        # schema says so with allowEmptyValue): filters, formats and limits then take their defaults.
        if any("" in values for _, values in request.GET.lists()):
            query = QueryDict(mutable=True)
            for key, values in request.GET.lists():
                kept = [value for value in values if value != ""]
                if kept:
                    query.setlist(key, kept)
            query._mutable = False
            request.GET = query
        return super().initialize_request(request, *args, **kwargs)  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Read the raw body before DRF parses it, so the fingerprint sees the bytes the client sent.
        if request.method == "POST" and idempotency.HEADER in request.headers:
            request._request.body  # noqa: B018 - caches the body for the fingerprint
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method == "POST" and idempotency.HEADER in request.headers:
            self._idempotency_claim = idempotency.claim(
                scope=request.auth, key=request.headers[idempotency.HEADER], request=request._request
            )

    def handle_exception(self, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if self._idempotency_claim is not None:
            claim, self._idempotency_claim = self._idempotency_claim, None
            idempotency.complete(claim, response)
        return response


class ScellAPIView(ScellAPIMixin, APIView):
    """A single-operation API view."""


class ScopedViewSet(ScellAPIMixin, viewsets.GenericViewSet):
    """A viewset over a tenant-owned model: the queryset is always narrowed to the caller's scope, so an
    object of another tenant or mode is simply not found (404, never 403)."""

    model: Any = None

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no scope
            return self.model.objects.none()
        return self.model.objects.scoped(self.scope)


__all__ = ["ScellAPIView", "ScopedViewSet"]
