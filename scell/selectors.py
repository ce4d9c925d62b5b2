"""Reads of tenancy data; each takes the caller's ``scope``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.db.models import Case, QuerySet, When
from django.utils import timezone

from scell.models import ApiKey, Invitation, Membership, SubTenant, User, hash_key
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


def api_key_list(*, scope: Scope) -> QuerySet[ApiKey]:
    """The keys of the caller's tenant and mode (revoked ones included), newest first."""
    return ApiKey.objects.scoped(scope).select_related("created_by").order_by("-created_at", "-pk")


def api_key_get(*, scope: Scope, pk: Any) -> ApiKey | None:
    """A key of the caller's tenant and mode by id; ``None`` for another tenant's or mode's."""
    try:
        return api_key_list(scope=scope).filter(pk=pk).first()
    except (ValueError, ValidationError):  # not a UUID: simply not found
        return None


def month_starts(count: int, *, today: dt.date | None = None) -> list[dt.date]:
    """The first day of each of the last ``count`` months, oldest first, the current month last (in the
    active time zone: the dashboard reads the business time zone). Charts of 12 months use it so that a
    month without activity still shows, as zero."""
    current = (today or timezone.localdate()).replace(day=1)
    return [current - relativedelta(months=back) for back in range(count - 1, -1, -1)]


def membership_list(*, scope: Scope) -> QuerySet[Membership]:
    """The tenant's team, admins first."""
    return (
        Membership.objects.filter(tenant=scope.tenant)
        .select_related("user")
        .order_by(
            Case(
                When(role=Membership.Role.ADMIN, then=0),
                When(role=Membership.Role.MEMBER, then=1),
                default=2,
            ),
            "user__email",
        )
    )


def membership_get(*, scope: Scope, pk: int) -> Membership | None:
    return membership_list(scope=scope).filter(pk=pk).first()


def admin_count(*, scope: Scope) -> int:
    return Membership.objects.filter(
        tenant=scope.tenant, role=Membership.Role.ADMIN, user__is_active=True
    ).count()


def invitation_list(*, scope: Scope) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (pending or expired), newest first."""
    return (
        Invitation.objects.scoped(scope)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def invitation_get(*, scope: Scope, pk: str) -> Invitation | None:
    try:
        return Invitation.objects.scoped(scope).filter(pk=pk).first()
    except (ValueError, ValidationError):
        return None


def invitation_by_token(*, token: str) -> Invitation | None:
    """The invitation a link points to, whatever its state. Not scoped: the token is the credential."""
    return Invitation.objects.select_related("tenant").filter(token_hash=hash_key(token)).first()


def users_with_two_factor(*, users: list[User]) -> set[int]:
    """Ids of ``users`` who have a confirmed authenticator (TOTP or backup codes)."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    ids = [u.pk for u in users]
    found: set[int] = set()
    for model in (TOTPDevice, StaticDevice):
        found.update(model.objects.filter(user_id__in=ids, confirmed=True).values_list("user_id", flat=True))
    return found
