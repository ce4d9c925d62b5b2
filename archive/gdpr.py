"""Personal data (GDPR art. 15 and 17): export of a tenant's personal data, erasure of a user.

What a fiscal duty keeps, and therefore what erasure never touches (GDPR art. 17(3)(b): processing
required by a legal obligation):

- issued invoices and credit notes, their lines, lifecycle events and rendered documents, including
  the names, addresses, e-mails and contact persons of buyers printed on them: 10 years from the end of
  the financial year (Code de commerce L123-22; CGI / Livre des procédures fiscales L102 B, 6 years for
  the tax administration's right of inspection, within those 10), which Scell rounds up to issue date +
  11 years in the WORM archive (``archive.storage``);
- the hash chain and its daily closures, which prove those documents unaltered (CGI art. 286-I-3° bis
  for the integrity of the record);
- signature evidence, for the evidence period of the signed document.

Those rows are frozen by database triggers anyway: an erasure that tried to rewrite them would fail.
What can be erased is everything else: the user account (e-mail, name, password, second factors) and,
once the evidence period is over, signers' phone numbers (not yet stored: the signatures app will add
its own erasure here). Exports include everything, fiscal or not: access is not limited by retention.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
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
    its invoices name (both modes). JSON-serialisable."""
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
        "retention": (
            "Invoices and the contact data printed on them are kept 10 years (Code de commerce L123-22, "
            "LPF L102 B) and are not erased on request (GDPR art. 17(3)(b))."
        ),
    }


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


__all__ = ["personal_data_erase", "personal_data_export"]
