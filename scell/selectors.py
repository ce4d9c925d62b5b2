"""Reads of tenancy data; each takes the caller's ``scope``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from scell.models import SubTenant
from scell.tenancy import Scope


def sub_tenant_list(*, scope: Scope) -> QuerySet[SubTenant]:
    return SubTenant.objects.scoped(scope)


def sub_tenant_get(*, scope: Scope, ref: str) -> SubTenant | None:
    """A sub-tenant by id or identifier, within the scope; ``None`` when it is not the caller's."""
    qs = sub_tenant_list(scope=scope)
    found = qs.filter(identifier=ref.upper()).first()
    if found is None:
        try:
            found = qs.filter(pk=ref).first()
        except (ValueError, ValidationError):  # not a UUID: simply not found
            return None
    return found
