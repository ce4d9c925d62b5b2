"""Writes of tenancy: tenants, sub-tenants, members and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from scell.models import ApiKey, Membership, SubTenant, Tenant, User
from scell.tenancy import Scope


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``raw`` exists only here, once."""

    api_key: ApiKey
    raw: str


def api_key_create(
    *,
    tenant: Tenant,
    kind: str,
    livemode: bool,
    name: str = "",
    allowed_origins: list[str] | None = None,
    created_by: User | None = None,
) -> IssuedKey:
    raw, digest, display = ApiKey.generate(kind=kind, livemode=livemode)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        kind=kind,
        livemode=livemode,
        name=name,
        display_prefix=display,
        key_hash=digest,
        allowed_origins=list(allowed_origins or []),
        created_by=created_by,
    )
    return IssuedKey(api_key=api_key, raw=raw)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


@dataclass(frozen=True)
class CreatedTenant:
    tenant: Tenant
    keys: dict[str, IssuedKey]


KEY_SET = {
    "sk_test": (ApiKey.Kind.SECRET, False),
    "sk_live": (ApiKey.Kind.SECRET, True),
    "pk_test": (ApiKey.Kind.PUBLISHABLE, False),
    "pk_live": (ApiKey.Kind.PUBLISHABLE, True),
    # The legacy partner key acts in the sandbox unless the live one is used on purpose.
    "tenant_key": (ApiKey.Kind.TENANT, False),
    "tenant_key_live": (ApiKey.Kind.TENANT, True),
}


@transaction.atomic
def tenant_create(
    *,
    legal_name: str,
    siren: str,
    identifier: str,
    owner: User | None = None,
    allowed_origins: list[str] | None = None,
    **profile: Any,
) -> CreatedTenant:
    """Create a tenant (validated legal profile) with its full set of keys, and make ``owner`` admin."""
    tenant = Tenant(legal_name=legal_name, siren=siren, identifier=identifier.upper(), **profile)
    tenant.full_clean()
    tenant.save()
    keys = {
        name: api_key_create(
            tenant=tenant,
            kind=kind,
            livemode=livemode,
            name=f"default {name}",
            allowed_origins=allowed_origins if kind == ApiKey.Kind.PUBLISHABLE else None,
        )
        for name, (kind, livemode) in KEY_SET.items()
    }
    if owner is not None:
        Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.ADMIN)
    return CreatedTenant(tenant=tenant, keys=keys)


def sub_tenant_create(*, scope: Scope, **fields: Any) -> SubTenant:
    sub = SubTenant(tenant=scope.tenant, **fields)
    sub.identifier = sub.identifier.upper()
    sub.full_clean()
    sub.save()
    return sub


def sub_tenant_update(*, sub_tenant: SubTenant, **fields: Any) -> SubTenant:
    for name, value in fields.items():
        setattr(sub_tenant, name, value)
    sub_tenant.identifier = sub_tenant.identifier.upper()
    sub_tenant.full_clean()
    sub_tenant.save()
    return sub_tenant
