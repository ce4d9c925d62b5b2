"""GDPR: a tenant's personal data as JSON; erasure of a user that leaves fiscal rows byte-identical."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice

from archive.gdpr import personal_data_erase, personal_data_export
from archive.models import ChainEntry
from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from invoicing.services import invoice_render
from scell.models import Membership, User
from tests.invoicing import conftest as invoicing_fixtures

# Fixtures shared with the invoicing tests.
seller = invoicing_fixtures.seller
draft_body = invoicing_fixtures.draft_body


def _issue(fixture, body) -> Invoice:
    client = fixture.client("sk_test")
    draft = client.post("/api/v1/invoices", body, format="json").json()
    assert client.post(f"/api/v1/invoices/{draft['id']}/issue").status_code == 200
    return Invoice.objects.get(pk=draft["id"])


def _fiscal_snapshot(tenant) -> str:
    """Every column of every fiscal row of the tenant, as the database returns it."""
    with connection.cursor() as cursor:
        parts = []
        for table, where in [
            ("invoicing_invoice", "tenant_id = %s"),
            (
                "invoicing_invoiceline",
                "invoice_id IN (SELECT id FROM invoicing_invoice WHERE tenant_id = %s)",
            ),
            ("invoicing_invoiceevent", "tenant_id = %s"),
            ("archive_chainentry", "tenant_id = %s"),
        ]:
            cursor.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY 1", [tenant.pk])  # noqa: S608
            parts.append(
                repr([tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cursor])
            )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@pytest.mark.django_db
def test_personal_data_export(seller, make_tenant, draft_body) -> None:
    teammate = User.objects.create_user(
        "jeanne@seller.example", "correct-horse-battery-9", full_name="Jeanne M."
    )
    Membership.objects.create(user=teammate, tenant=seller.tenant, role="read_only")
    outsider = make_tenant("OUTS1")
    draft_body["buyer"]["contact_name"] = "Paul Achat"
    draft_body["buyer"]["contact_phone"] = "+33 6 12 34 56 78"
    invoice = _issue(seller, draft_body)

    data = personal_data_export(tenant=seller.tenant)
    json.dumps(data)  # serialisable as is
    emails = {u["email"]: u for u in data["users"]}
    assert set(emails) == {seller.owner.email, "jeanne@seller.example"}
    assert outsider.owner.email not in emails
    assert emails["jeanne@seller.example"]["full_name"] == "Jeanne M."
    assert emails["jeanne@seller.example"]["memberships"] == [
        {
            "tenant": seller.tenant.identifier,
            "role": "read_only",
            "since": emails["jeanne@seller.example"]["memberships"][0]["since"],
        }
    ]
    assert "last_login" in emails[seller.owner.email]
    [contact] = data["invoice_contacts"]
    assert contact["email"] == "ap@client.example"
    assert contact["contact_name"] == "Paul Achat" and contact["contact_phone"] == "+33 6 12 34 56 78"
    assert contact["invoices"] == 1 and contact["numbers"][0]["number"] == invoice.number
    # Another tenant's export shows none of it.
    other = personal_data_export(tenant=outsider.tenant)
    assert [u["email"] for u in other["users"]] == [outsider.owner.email]
    assert other["invoice_contacts"] == []


@pytest.mark.django_db
def test_erasure_anonymises_the_user_and_never_touches_fiscal_rows(seller, draft_body) -> None:
    invoice = _issue(seller, draft_body)
    document = invoice_render(invoice=invoice, fmt="cii")
    with document.file.open("rb") as handle:
        document_bytes = handle.read()
    TOTPDevice.objects.create(user=seller.owner, name="phone", confirmed=True)
    before = _fiscal_snapshot(seller.tenant)
    counts = (
        Invoice.objects.count(),
        InvoiceLine.objects.count(),
        InvoiceEvent.objects.count(),
        ChainEntry.objects.count(),
    )
    logged_in = seller.owner.email

    erased = personal_data_erase(user=seller.owner)

    assert erased.email == f"erased-{erased.pk}@invalid"
    assert erased.full_name == "" and not erased.is_active and not erased.has_usable_password()
    assert not TOTPDevice.objects.filter(user=erased).exists()
    assert not User.objects.filter(email=logged_in).exists()
    from django.test import Client

    assert not Client().login(email=logged_in, password="correct-horse-battery-9")
    # Fiscal record: byte-identical rows, same documents, nothing added or removed.
    assert _fiscal_snapshot(seller.tenant) == before
    assert (
        Invoice.objects.count(),
        InvoiceLine.objects.count(),
        InvoiceEvent.objects.count(),
        ChainEntry.objects.count(),
    ) == counts
    document.refresh_from_db()
    with document.file.open("rb") as handle:
        assert handle.read() == document_bytes
    # The membership stays, anonymous: the tenant's history still shows the role.
    assert Membership.objects.filter(user=erased, tenant=seller.tenant).exists()
    export = personal_data_export(tenant=seller.tenant)
    assert [u["email"] for u in export["users"]] == [erased.email]
