"""Writes of tenancy: tenants, sub-tenants, members and API keys."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from scell.errors import Conflict, ScellError, UnprocessableEntity
from scell.models import PROFILE_FIELDS, ApiKey, Invitation, Membership, SubTenant, Tenant, User, hash_key
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


# --- Settings: legal profile, two-factor policy, DPA ---------------------------------------------------
# What an admin may edit on the tenant's legal profile (never the identifier: see PROFILE_FIELDS).
TENANT_PROFILE_FIELDS = frozenset(PROFILE_FIELDS)


@transaction.atomic
def tenant_profile_update(*, tenant: Tenant, **fields: Any) -> Tenant:
    """Validate and save the tenant's legal profile (the seller block of its invoices)."""
    unknown = set(fields) - TENANT_PROFILE_FIELDS
    if unknown:
        raise TypeError(f"not editable on the legal profile: {', '.join(sorted(unknown))}")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    for name, value in fields.items():
        setattr(tenant, name, value)
    # An unchanged stored logo is not validated again (it was when uploaded; reading its size would
    # only fail if storage lost it).
    tenant.full_clean(exclude=None if "logo" in fields else ["logo"])
    tenant.save()
    return tenant


def _has_confirmed_device(user: User) -> bool:
    from django_otp import devices_for_user

    return any(True for _device in devices_for_user(user, confirmed=True))


@transaction.atomic
def tenant_require_2fa_set(*, tenant: Tenant, required: bool, user: User) -> Tenant:
    """Make the authenticator app mandatory (or optional) for every member of ``tenant``. The admin who
    turns it on must have one already, or they would lock themselves out of their own dashboard."""
    if required and not _has_confirmed_device(user):
        raise Conflict(
            _("Set up your own authenticator app first (Settings → Security)."),
            code="two_factor_not_enrolled",
        )
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.require_2fa != required:
        tenant.require_2fa = required
        tenant.save(update_fields=["require_2fa"])
    return tenant


@transaction.atomic
def tenant_dpa_accept(*, tenant: Tenant, user: User, version: str) -> Tenant:
    """Record that ``user`` accepted version ``version`` of the data processing agreement (GDPR art. 28)
    for ``tenant``. Accepting the version already on record changes nothing."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.dpa_version != version or tenant.dpa_accepted_at is None:
        tenant.dpa_version = version
        tenant.dpa_accepted_at = timezone.now()
        tenant.dpa_accepted_by = user
        tenant.save(update_fields=["dpa_version", "dpa_accepted_at", "dpa_accepted_by"])
    return tenant


# --- Team: memberships and invitations -------------------------------------------------------------------
INVITATION_TTL = timedelta(days=7)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedInvitation:
    """A freshly created (or re-sent) invitation: ``token`` exists only here and in the e-mail."""

    invitation: Invitation
    token: str


def _lock_tenant(tenant_id: Any) -> None:
    # Every change to a tenant's team takes the tenant row first: two admins demoting each other at the
    # same moment are serialised, and the last-admin check sees the other's result.
    Tenant.objects.select_for_update().filter(pk=tenant_id).values_list("pk", flat=True).first()


def _other_active_admins(membership: Membership) -> int:
    return (
        Membership.objects.filter(
            tenant_id=membership.tenant_id, role=Membership.Role.ADMIN, user__is_active=True
        )
        .exclude(pk=membership.pk)
        .count()
    )


def _check_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise UnprocessableEntity(
            _("Unknown role."), details=[{"field": "role", "message": f"unknown role {role!r}"}]
        )


def _new_token() -> tuple[str, str]:
    # 32 random bytes: the link is a bearer credential, only its hash is stored (like API keys).
    token = secrets.token_urlsafe(32)
    return token, hash_key(token)


def invitation_link(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("account:invite-accept", args=[token])


def _invitation_send(invitation_id: Any, token: str) -> None:
    """E-mail the invitation link (after commit: never a link to a row that was rolled back)."""
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import translation

    invitation = Invitation.objects.select_related("tenant", "invited_by").get(pk=invitation_id)
    inviter = invitation.invited_by
    language = (inviter.language if inviter else "") or invitation.tenant.default_language
    with translation.override(language):
        context = {
            "invitation": invitation,
            "tenant": invitation.tenant,
            "inviter": inviter,
            "role": invitation.get_role_display(),
            "link": invitation_link(token),
        }
        subject = " ".join(render_to_string("email/account/invitation_subject.txt", context).split())
        body = render_to_string("email/account/invitation.txt", context)
    try:
        send_mail(subject=subject, message=body, from_email=None, recipient_list=[invitation.email])
    except Exception:
        # The invitation exists either way; the admin sees it pending and can resend it.
        logger.exception("Could not e-mail invitation %s", invitation_id)


@transaction.atomic
def invitation_create(*, tenant: Tenant, email: str, role: str, invited_by: User | None) -> IssuedInvitation:
    """Invite ``email`` to join ``tenant`` with ``role``: a random single-use link valid 7 days, e-mailed
    once the transaction commits."""
    _check_role(role)
    email = User.objects.normalize_email(email).strip().lower()
    _lock_tenant(tenant.pk)
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise Conflict(
            _("%(email)s is already a member of this team.") % {"email": email}, code="already_member"
        )
    now = timezone.now()
    pending = Invitation.objects.filter(
        tenant=tenant,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    )
    if pending.exists():
        raise Conflict(
            _("An invitation to %(email)s is already pending: resend it from the list.") % {"email": email},
            code="invitation_pending",
        )
    token, digest = _new_token()
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=digest,
        invited_by=invited_by,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    invitation_id = invitation.pk
    transaction.on_commit(lambda: _invitation_send(invitation_id, token))
    return IssuedInvitation(invitation=invitation, token=token)


def _not_open(invitation: Invitation) -> Conflict | None:
    if invitation.accepted_at is not None:
        return Conflict(_("This invitation has already been used."), code="invitation_accepted")
    if invitation.revoked_at is not None:
        return Conflict(_("This invitation was revoked."), code="invitation_revoked")
    return None


@transaction.atomic
def invitation_resend(*, invitation: Invitation) -> IssuedInvitation:
    """A new link (the old one stops working) valid 7 days from now, e-mailed again."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    error = _not_open(invitation)
    if error is not None:
        raise error
    token, digest = _new_token()
    invitation.token_hash = digest
    invitation.expires_at = timezone.now() + INVITATION_TTL
    invitation.save(update_fields=["token_hash", "expires_at"])
    invitation_id = invitation.pk
    transaction.on_commit(lambda: _invitation_send(invitation_id, token))
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """The link stops working at once. Revoking a revoked invitation changes nothing."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.revoked_at is not None:
        return invitation
    if invitation.accepted_at is not None:
        raise _not_open(invitation)  # type: ignore[misc]
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    return invitation


@transaction.atomic
def invitation_accept(
    *,
    token: str,
    user: User | None = None,
    full_name: str = "",
    password: str | None = None,
) -> Membership:
    """Join the invitation's tenant with its role. ``user``: the signed-in account of the invited
    e-mail; without it, a new account is created for that e-mail with ``full_name`` and ``password``.
    The link works once; an expired or revoked link changes nothing."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError as DjangoValidationError

    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(token_hash=hash_key(token or ""))
        .first()
    )
    if invitation is None:
        raise ScellError(
            _("This invitation link is not valid."), status_code=404, code="invitation_not_found"
        )
    error = _not_open(invitation)
    if error is not None:
        raise error
    if invitation.expires_at <= timezone.now():
        raise Conflict(
            _("This invitation has expired. Ask an admin to send it again."), code="invitation_expired"
        )
    if not invitation.tenant.is_active:
        raise Conflict(_("This tenant is closed."), code="tenant_inactive")
    if user is None:
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise Conflict(
                _("An account already exists for %(email)s: sign in to accept.")
                % {"email": invitation.email},
                code="account_exists",
            )
        candidate = User(email=invitation.email, full_name=full_name.strip())
        try:
            validate_password(password or "", user=candidate)
        except DjangoValidationError as exc:
            raise UnprocessableEntity(
                " ".join(exc.messages), details=[{"field": "password", "message": m} for m in exc.messages]
            ) from None
        user = User.objects.create_user(invitation.email, password, full_name=full_name.strip())
    elif not user.is_active or user.email.lower() != invitation.email.lower():
        raise Conflict(
            _("This invitation is for %(email)s. Sign in with that account to accept it.")
            % {"email": invitation.email},
            code="wrong_user",
        )
    _lock_tenant(invitation.tenant_id)
    # Someone who joined meanwhile keeps the role they have: an invitation never changes a role.
    membership, _created = Membership.objects.get_or_create(
        user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str) -> Membership:
    """Give a member another role. The last active admin of a tenant cannot be demoted: a tenant
    without an admin could no longer manage its keys, team or legal profile."""
    _check_role(role)
    _lock_tenant(membership.tenant_id)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == role:
        return membership
    if membership.role == Membership.Role.ADMIN and not _other_active_admins(membership):
        raise Conflict(_("The team must keep at least one admin."), code="last_admin")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a member from the tenant (the account stays, with its other tenants). Never the last
    active admin."""
    _lock_tenant(membership.tenant_id)
    membership = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if membership is None:
        return
    if membership.role == Membership.Role.ADMIN and not _other_active_admins(membership):
        raise Conflict(_("The team must keep at least one admin."), code="last_admin")
    membership.delete()


@transaction.atomic
def user_erase(*, user: User) -> User:
    """Erase one's own account (GDPR art. 17) with ``archive.gdpr.personal_data_erase``, unless the user
    is the last active admin of a tenant (the tenant would be left without anyone to manage it)."""
    from archive.gdpr import personal_data_erase

    admin_of = list(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN, tenant__is_active=True)
        .order_by("tenant_id")
        .values_list("tenant_id", flat=True)
    )
    # Locks in a fixed order (tenant id), like every team change.
    for tenant_id in admin_of:
        _lock_tenant(tenant_id)
    for membership in Membership.objects.filter(user=user, tenant_id__in=admin_of).select_related("tenant"):
        if not _other_active_admins(membership):
            raise Conflict(
                _("You are the last admin of %(tenant)s: make someone else admin first.")
                % {"tenant": membership.tenant.legal_name},
                code="last_admin",
            )
    return personal_data_erase(user=user)
