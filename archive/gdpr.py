"""Personal data (GDPR art. 15 and 17): export of a tenant's personal data, erasure of a user, and the
scheduled erasure of signers' phone numbers.

What a fiscal duty keeps, and therefore what erasure never touches (GDPR art. 17(3)(b): processing
required by a legal obligation):

- issued invoices and credit notes, their lines, lifecycle events and rendered documents, including
  the names, addresses, e-mails and contact persons of buyers printed on them: 10 years from the end of
  the financial year (Code de commerce L123-22; CGI / Livre des procédures fiscales L102 B, 6 years for
  the tax administration's right of inspection, within those 10), which Scell rounds up to issue date +
  11 years in the WORM archive (``archive.storage``);
- the hash chain and its daily closures, which prove those documents unaltered (CGI art. 286-I-3° bis
  for the integrity of the record);
- signature evidence (the chained events of each request, its sealed document and evidence file),
  kept in the WORM archive until the request ended + 11 years (``archive.signatures``). It names the
  signers (name, e-mail, IP address, user agent) but only ever the masked phone number.

Those rows are frozen by database triggers anyway: an erasure that tried to rewrite them would fail.
What can be erased is everything else: the user account (e-mail, name, password, second factors) and,
once a signature can no longer be contested (``SIGNATURE_PHONE_RETENTION_DAYS`` after the request
ended: 5 years, Code civil art. 2224), signers' full phone numbers, which only the SMS codes needed
(``signer_phones_erase``, daily). Exports include everything, fiscal or not: access is not limited by
retention.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from scell.models import Membership, Tenant, User

ERASED_DOMAIN = "invalid"  # RFC 2606: never deliverable


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _party_contacts(party: dict[str, Any] | None) -> dict[str, str]:
    if not isinstance(party, dict):
        return {}
    contact = {
        "name": party.get("name") or "",
        "email": party.get("email") or "",
        "contact_name": party.get("contact_name") or "",
        "contact_phone": party.get("contact_phone") or "",
    }
    address = party.get("electronic_address")
    if isinstance(address, dict) and address.get("scheme") == "EM":
        contact["electronic_address"] = address.get("value") or ""
    return {k: v for k, v in contact.items() if v}


def personal_data_export(*, tenant: Tenant) -> dict[str, Any]:
    """Every personal datum Scell holds for ``tenant``: its users (with their memberships in this
    tenant only: other tenants are not this tenant's business) and the contact data of the buyers
    its invoices name and the signers of its signature requests (both modes). JSON-serialisable."""
    from invoicing.models import Invoice

    memberships = Membership.objects.filter(tenant=tenant).select_related("user").order_by("created_at", "pk")
    users = [
        {
            "id": m.user.pk,
            "email": m.user.email,
            "full_name": m.user.full_name,
            "is_active": m.user.is_active,
            "date_joined": _iso(m.user.date_joined),
            "last_login": _iso(m.user.last_login),
            "memberships": [{"tenant": tenant.identifier, "role": m.role, "since": _iso(m.created_at)}],
        }
        for m in memberships
    ]
    contacts: dict[tuple[str, ...], dict[str, Any]] = {}
    # Both modes: sandbox invoices may name real people too.
    rows = Invoice.objects.filter(tenant=tenant).values_list("buyer", "number", "livemode", "status")
    for buyer, number, livemode, status in rows.iterator(chunk_size=2000):
        contact = _party_contacts(buyer)
        if not any(k in contact for k in ("email", "contact_name", "contact_phone", "electronic_address")):
            continue
        key = tuple(sorted(contact.items()))
        entry = contacts.setdefault(key, {**contact, "invoices": 0, "numbers": []})
        entry["invoices"] += 1
        if len(entry["numbers"]) < 50:
            entry["numbers"].append({"number": number, "livemode": livemode, "status": status})
    return {
        "generated_at": _iso(timezone.now()),
        "tenant": {"id": str(tenant.pk), "identifier": tenant.identifier, "legal_name": tenant.legal_name},
        "users": users,
        "invoice_contacts": sorted(contacts.values(), key=lambda c: (c.get("email", ""), c.get("name", ""))),
        "signers": _signers(tenant),
        "retention": (
            "Invoices and the contact data printed on them are kept 10 years (Code de commerce L123-22, "
            "LPF L102 B) and are not erased on request (GDPR art. 17(3)(b)). Signature evidence is kept "
            "11 years after the request ended; signers' phone numbers are erased "
            f"{settings.SIGNATURE_PHONE_RETENTION_DAYS} days after it ended."
        ),
    }


def _signers(tenant: Tenant) -> list[dict[str, Any]]:
    from signatures.models import Signer

    # Both modes and every sub-tenant, like the invoices: sandbox requests may name real people too.
    rows = (
        Signer.objects.filter(request__tenant=tenant)
        .select_related("request")
        .order_by("request__created_at", "request_id", "position")
    )
    return [
        {
            "signature_request": str(signer.request_id),
            "title": signer.request.title,
            "livemode": signer.request.livemode,
            "position": signer.position,
            "name": signer.name,
            "email": signer.email,
            "phone": signer.phone or None,  # None once erased
            "phone_erased_at": _iso(signer.phone_erased_at),
            "status": signer.status,
            "consent_at": _iso(signer.consent_at),
            "signed_at": _iso(signer.signed_at),
            "declined_at": _iso(signer.declined_at),
            "ip": signer.ip,
            "user_agent": signer.user_agent,
        }
        for signer in rows.iterator(chunk_size=2000)
    ]


@transaction.atomic
def personal_data_erase(*, user: User) -> User:
    """Anonymise ``user``: e-mail ``erased-<id>@invalid``, name blanked, unusable password, second
    factors and API sessions gone, account deactivated. Fiscal rows (issued invoices, their events,
    the archive and the chain) are left exactly as they are; memberships stay, anonymous, so that the
    tenant's history still shows that someone held a role."""
    from django.contrib.sessions.models import Session
    from django_otp import devices_for_user

    user = User.objects.select_for_update().get(pk=user.pk)
    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
    user.email = f"erased-{user.pk}@{ERASED_DOMAIN}"
    user.full_name = ""
    user.set_unusable_password()
    user.is_active = False
    user.last_login = None
    user.save()
    # Sessions are opaque blobs: decode them to find this user's (a user has few, the table is small).
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
    return user


# Signers erased per transaction: short transactions, bounded memory, whatever the backlog.
ERASE_BATCH = 500


def signer_phones_erase(*, now: dt.datetime | None = None) -> int:
    """Erase the phone numbers of the signers of requests that ended more than
    ``SIGNATURE_PHONE_RETENTION_DAYS`` ago: on the signer (``phone_erased_at`` set), on every code
    challenge sent to it, and in the webhook events that carried the request (their body is the API's,
    which shows the number). The evidence log and the sealed files only ever held the masked number, so
    nothing chained or archived changes. Idempotent; returns the number of signers erased."""
    from signatures.models import OtpChallenge, SignatureRequest, Signer

    now = now or timezone.now()
    cutoff = now - timedelta(days=int(settings.SIGNATURE_PHONE_RETENTION_DAYS))
    # A system sweep over every tenant (the retention rule is the same for all).
    due = Signer.objects.filter(
        phone_erased_at__isnull=True,
        request__status__in=SignatureRequest.ENDED,
        request__ended_at__lt=cutoff,
    ).order_by("pk")
    erased = 0
    columns = ("pk", "request_id", "request__tenant_id", "request__created_at")
    while batch := list(due.values_list(*columns)[:ERASE_BATCH]):
        signer_ids = [row[0] for row in batch]
        with transaction.atomic():
            OtpChallenge.objects.filter(signer_id__in=signer_ids).exclude(phone="").update(phone="")
            # The condition again, in the UPDATE itself: a concurrent run erases each signer once.
            erased += Signer.objects.filter(pk__in=signer_ids, phone_erased_at__isnull=True).update(
                phone="", phone_erased_at=now
            )
            _erase_event_phones(
                request_ids={row[1] for row in batch},
                tenant_ids={row[2] for row in batch},
                since=min(row[3] for row in batch),
            )
    return erased


def _erase_event_phones(*, request_ids: set[Any], tenant_ids: set[Any], since: dt.datetime) -> None:
    from webhooks.models import Event

    # Narrowed by tenant and date first (the events' index), then by the request id in the body.
    events = Event.objects.select_for_update().filter(
        Q(type__startswith="signature_request.") | Q(type__startswith="signer."),
        tenant_id__in=tenant_ids,
        created_at__gte=since,
        data__id__in=[str(pk) for pk in request_ids],
    )
    for event in events:
        signers = event.data.get("signers") if isinstance(event.data, dict) else None
        if not isinstance(signers, list) or not any(isinstance(s, dict) and s.get("phone") for s in signers):
            continue
        for signer in signers:
            if isinstance(signer, dict) and signer.get("phone"):
                signer["phone"] = None
        event.save(update_fields=["data"])


__all__ = ["personal_data_erase", "personal_data_export", "signer_phones_erase"]
