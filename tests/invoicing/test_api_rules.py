"""Acceptance: what the issue refuses and what it costs, through the real API.

A refused issue (422 rules, 402 credits, 409 state) changes nothing: the invoice stays a draft with its
DRAFT number, no credit is spent, the issued sequence does not move and no ``invoice.issued`` event is
written. Tenants never see each other's invoices (404)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from billing.models import CreditAccount, LedgerEntry
from billing.services import credits_grant_pack, ledger_balance
from invoicing.models import Invoice, InvoiceEvent, NumberSequence
from scell.services import sub_tenant_create
from scell.tenancy import Scope
from tests.invoicing import api_bodies
from tests.invoicing.api_bodies import NUMBER_RE, create, create_and_issue, error_rules, issue
from tests.invoicing.conftest import SELLER_PROFILE
from webhooks.models import Event


def issued_value(tenant: Any, *, livemode: bool, sub_tenant: Any = None) -> int:
    row = NumberSequence.objects.filter(
        tenant=tenant, sub_tenant=sub_tenant, livemode=livemode, kind=NumberSequence.Kind.ISSUED
    ).first()
    return row.last_value if row else 0


def balance(tenant: Any) -> Decimal:
    account = CreditAccount.objects.filter(tenant=tenant).first()
    return account.balance if account else Decimal("0.00")


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:2000])
    error = response.json()["error"]
    assert {"type", "code", "message"} <= error.keys()
    if code:
        assert error["code"] == code, error
    return error


def assert_untouched(client: Any, seller: Any, draft: dict[str, Any], *, livemode: bool) -> None:
    """The refused issue left no trace."""
    now = client.get(f"/api/v1/invoices/{draft['id']}").json()
    assert now["status"] == "draft"
    assert now["number"] == draft["number"] and now["number"].startswith("DRAFT-")
    assert now["issued_at"] is None
    assert issued_value(seller.tenant, livemode=livemode) == 0
    assert not Event.objects.filter(tenant=seller.tenant, type="invoice.issued").exists()
    assert not InvoiceEvent.objects.filter(invoice_id=draft["id"], type="issued").exists()
    assert not LedgerEntry.objects.filter(tenant=seller.tenant, kind=LedgerEntry.Kind.SPEND).exists()
    assert balance(seller.tenant) == Decimal("50.00")


# --- 422: rules ------------------------------------------------------------------------------------


def _standard_rate_zero() -> dict[str, Any]:
    body = api_bodies.simple()
    body["lines"][0]["vat_rate"] = "0"
    return body


def _exempt_without_reason() -> dict[str, Any]:
    body = api_bodies.exempt()
    body["vat_exemptions"] = {}
    return body


def _b2b_without_siren() -> dict[str, Any]:
    """A French company (it has a FR VAT id) without its SIREN: B2B, so BR-FR-11, not a consumer."""
    body = api_bodies.simple()
    body["buyer"]["siren"] = ""
    return body


def _declared_b2b_without_siren() -> dict[str, Any]:
    body = _b2b_without_siren()
    body["buyer"]["vat_id"] = ""
    body["notes"] = [{"subject": "BAR", "text": "B2B"}]
    return body


def _not_french_rate() -> dict[str, Any]:
    body = api_bodies.simple()
    body["lines"][0]["vat_rate"] = "19"
    return body


def _intra_eu_without_delivery() -> dict[str, Any]:
    body = api_bodies.intra_eu()
    body["delivery"] = None
    return body


def _no_lines() -> dict[str, Any]:
    body = api_bodies.simple()
    body["lines"] = []
    return body


INVALID = {
    "standard_rate_zero": (_standard_rate_zero, {"BR-S-05"}),
    "exempt_without_reason": (_exempt_without_reason, {"BR-E-10"}),
    "b2b_without_buyer_siren": (_b2b_without_siren, {"BR-FR-11"}),
    "declared_b2b_without_buyer_siren": (_declared_b2b_without_siren, {"BR-FR-11"}),
    "not_a_french_rate": (_not_french_rate, {"BR-FR-16"}),
    "intra_eu_without_delivery": (_intra_eu_without_delivery, {"BR-IC-11", "BR-IC-12"}),
    "no_lines": (_no_lines, {"BR-16"}),
}


@pytest.mark.parametrize("key", ["sk_test", "sk_live"])
@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_draft_is_refused_and_nothing_changes(seller, case: str, key: str) -> None:
    client = seller.client(key)
    make, rules = INVALID[case]
    draft = create(client, make())
    response = issue(client, draft["id"])
    error = assert_error(response, 422, "invoice_invalid")
    assert error["type"] == "validation_error"
    assert rules <= set(error_rules(response)), error["details"]
    assert all(d.get("rule") and d.get("message") for d in error["details"])
    assert_untouched(client, seller, draft, livemode=key == "sk_live")

    # The next valid issue takes number 1: the refusal consumed nothing.
    invoice = create_and_issue(client, api_bodies.simple())
    assert invoice["number"].endswith("-00001")


def test_french_consumer_is_b2c(seller) -> None:
    """No SIREN and no VAT id: a consumer (B2C), issued without BR-FR-11; BT-49 is the e-mail."""
    client = seller.client("sk_test")
    body = api_bodies.simple()
    body["buyer"] = {
        "name": "Jeanne Martin",
        "email": "jeanne@example.fr",
        "address": {"line1": "8 rue Verte", "postcode": "44000", "city": "Nantes", "country": "FR"},
    }
    invoice = create_and_issue(client, body)
    notes = {n["subject"]: n["text"] for n in invoice["notes"]} if invoice["notes"] else {}
    assert "BAR" not in notes  # the framework note is added to the document, not to the stored notes
    cii = client.get(f"/api/v1/invoices/{invoice['id']}/download", {"format": "cii"}).content
    assert b"<ram:Content>B2C</ram:Content>" in cii
    assert b'schemeID="EM">jeanne@example.fr<' in cii


def test_fixing_the_draft_then_issuing_works(seller) -> None:
    client = seller.client("sk_test")
    draft = create(client, _standard_rate_zero())
    assert issue(client, draft["id"]).status_code == 422
    lines = api_bodies.simple()["lines"]
    response = client.patch(f"/api/v1/invoices/{draft['id']}", {"lines": lines}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["total_with_vat"] == "1080.00"
    response = issue(client, draft["id"])
    assert response.status_code == 200
    assert response.json()["number"].endswith("-00001")


def test_future_issue_date_is_refused(seller) -> None:
    client = seller.client("sk_test")
    body = api_bodies.simple()
    body["issue_date"] = "2999-01-01"
    draft = create(client, body)
    response = issue(client, draft["id"])
    assert_error(response, 422)
    assert "issue_date" in error_rules(response)


def test_an_older_date_cannot_follow_a_newer_one(seller) -> None:
    """Numbers follow dates (CGI art. 242 nonies A): 409, and the number is not consumed."""
    client = seller.client("sk_test")
    newer = api_bodies.simple()
    newer["issue_date"] = "2026-11-20"
    older = api_bodies.simple()
    older["issue_date"] = "2026-11-10"
    assert create_and_issue(client, newer)["number"].endswith("-00001")
    draft = create(client, older)
    assert_error(issue(client, draft["id"]), 409, "issue_date_before_last_issued")
    assert client.get(f"/api/v1/invoices/{draft['id']}").json()["status"] == "draft"
    assert issued_value(seller.tenant, livemode=False) == 1
    client.patch(f"/api/v1/invoices/{draft['id']}", {"issue_date": None}, format="json")
    assert issue(client, draft["id"]).json()["number"].endswith("-00002")


def test_malformed_draft_bodies(seller) -> None:
    client = seller.client("sk_test")
    body = api_bodies.simple()
    body["buyer"]["siren"] = "123456789"  # fails the Luhn check
    response = client.post("/api/v1/invoices", body, format="json")
    assert_error(response, 422)
    assert any("siren" in (d.get("field") or "") for d in response.json()["error"]["details"])
    response = client.post("/api/v1/invoices", b"{not json", content_type="application/json")
    assert response.status_code == 400


# --- credits ---------------------------------------------------------------------------------------


def test_live_issue_charges_four_cents(seller) -> None:
    client = seller.client("sk_live")
    invoice = create_and_issue(client, api_bodies.simple())
    assert invoice["livemode"] is True
    (entry,) = LedgerEntry.objects.filter(tenant=seller.tenant, kind=LedgerEntry.Kind.SPEND)
    assert entry.unit_price == Decimal("0.04")
    assert entry.amount == Decimal("-0.04")
    assert entry.quantity == 1
    assert entry.operation == "invoice_issue"
    assert entry.reference == invoice["number"]
    assert balance(seller.tenant) == Decimal("49.96")
    assert ledger_balance(tenant=seller.tenant) == Decimal("49.96")
    create_and_issue(client, api_bodies.multi_rate())
    assert balance(seller.tenant) == Decimal("49.92")
    assert ledger_balance(tenant=seller.tenant) == Decimal("49.92")


def test_sandbox_issue_is_free(seller) -> None:
    client = seller.client("sk_test")
    for _ in range(3):
        create_and_issue(client, api_bodies.simple())
    assert balance(seller.tenant) == Decimal("50.00")
    assert not LedgerEntry.objects.filter(tenant=seller.tenant, kind=LedgerEntry.Kind.SPEND).exists()


def test_no_credits_402_then_credits_and_number_one(make_tenant) -> None:
    poor = make_tenant("SELL1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    client = poor.client("sk_live")
    draft = create(client, api_bodies.simple())
    response = issue(client, draft["id"])
    error = assert_error(response, 402, "insufficient_credits")
    assert error["type"] == "billing_error"
    now = client.get(f"/api/v1/invoices/{draft['id']}").json()
    assert (now["status"], now["number"]) == ("draft", draft["number"])
    assert issued_value(poor.tenant, livemode=True) == 0
    assert not Event.objects.filter(tenant=poor.tenant, type="invoice.issued").exists()
    assert list(InvoiceEvent.objects.filter(invoice_id=draft["id"]).values_list("type", flat=True)) == [
        "created"
    ]
    # The sandbox is still free for this tenant.
    assert create_and_issue(poor.client("sk_test"), api_bodies.simple())["number"].endswith("-00001")

    credits_grant_pack(tenant=poor.tenant, amount=Decimal("50.00"))
    response = issue(client, draft["id"])
    assert response.status_code == 200, response.content
    assert re.fullmatch(NUMBER_RE, response.json()["number"])
    assert response.json()["number"].endswith("-00001")
    assert balance(poor.tenant) == Decimal("49.96")


# --- 409: state ------------------------------------------------------------------------------------


def test_issued_invoice_is_frozen_for_the_api(seller) -> None:
    client = seller.client("sk_test")
    invoice = create_and_issue(client, api_bodies.simple())
    url = f"/api/v1/invoices/{invoice['id']}"
    assert_error(client.patch(url, {"notes": [{"text": "x"}]}, format="json"), 409, "invoice_not_draft")
    assert_error(client.delete(url), 409, "invoice_not_draft")
    assert_error(issue(client, invoice["id"]), 409, "invoice_not_draft")
    after = client.get(url).json()
    assert after["number"] == invoice["number"] and after["notes"] == invoice["notes"]
    assert issued_value(seller.tenant, livemode=False) == 1


def test_draft_patch_and_delete(seller) -> None:
    client = seller.client("sk_test")
    draft = create(client, api_bodies.simple())
    response = client.patch(
        f"/api/v1/invoices/{draft['id']}", {"purchase_order_ref": "PO-1", "profile": "basic"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["purchase_order_ref"], response.json()["profile"]) == ("PO-1", "basic")
    assert response.json()["lines"] == draft["lines"]
    assert client.delete(f"/api/v1/invoices/{draft['id']}").status_code == 204
    assert client.get(f"/api/v1/invoices/{draft['id']}").status_code == 404


def test_drafts_are_numbered_in_sequence(seller) -> None:
    client = seller.client("sk_test")
    numbers = [create(client, api_bodies.simple())["number"] for _ in range(3)]
    assert numbers == ["DRAFT-00001", "DRAFT-00002", "DRAFT-00003"]
    # Live drafts have their own draft sequence.
    assert create(seller.client("sk_live"), api_bodies.simple())["number"] == "DRAFT-00001"


# --- sub-tenants -----------------------------------------------------------------------------------


def test_sub_tenant_issues_with_its_own_prefix_and_sequence(seller) -> None:
    sub = sub_tenant_create(
        scope=Scope(tenant=seller.tenant, livemode=False),
        legal_name="Boulangerie Martin SARL",
        identifier="MART1",
        siren="443061841",
        siret="44306184100013",
        vat_id="FR83443061841",
        address_line1="4 place du Marché",
        postcode="33000",
        city="Bordeaux",
        country="FR",
        email="compta@martin.example",
        iban="FR7630006000011234567890189",
        bic="AGRIFRPP",
    )
    partner = seller.client("tenant_key", HTTP_X_SUB_TENANT="MART1")
    own = create_and_issue(seller.client("sk_test"), api_bodies.simple())
    assert own["number"].startswith("SELL1-") and own["number"].endswith("-00001")

    first = create_and_issue(partner, api_bodies.simple())
    second = create_and_issue(partner, api_bodies.multi_rate())
    for invoice, n in ((first, 1), (second, 2)):
        assert re.fullmatch(r"^MART1-\d{6}-\d{5}$", invoice["number"]), invoice["number"]
        assert invoice["number"].endswith(f"-{n:05d}")
        assert invoice["sub_tenant"] == "MART1"
        assert invoice["seller"]["siren"] == "443061841"
        assert invoice["seller"]["name"] == "Boulangerie Martin SARL"
    assert issued_value(seller.tenant, livemode=False, sub_tenant=sub) == 2
    assert issued_value(seller.tenant, livemode=False) == 1
    # The tenant's own sequence went on undisturbed.
    assert create_and_issue(seller.client("sk_test"), api_bodies.simple())["number"].endswith("-00002")
    # The partner acting on the sub-tenant sees only the sub-tenant's invoices.
    listed = partner.get("/api/v1/invoices").json()["data"]
    assert {i["number"] for i in listed} == {first["number"], second["number"]}
    assert partner.get(f"/api/v1/invoices/{own['id']}").status_code == 404


# --- lists -----------------------------------------------------------------------------------------


def test_list_filters_and_cursor_pagination(seller) -> None:
    client = seller.client("sk_test")
    early = api_bodies.simple()
    early["issue_date"] = "2026-11-02"
    late = api_bodies.multi_rate()
    late["issue_date"] = "2026-11-16"
    other_buyer = api_bodies.simple()
    other_buyer["buyer"]["siren"] = "443061841"
    other_buyer["buyer"]["vat_id"] = "FR83443061841"
    a = create_and_issue(client, early)
    b = create_and_issue(client, late)
    c = create(client, other_buyer)  # stays a draft, no issue date
    assert a["number"].endswith("202611-00001") and b["number"].endswith("202611-00002")

    def numbers(**params: str) -> set[str]:
        response = client.get("/api/v1/invoices", params)
        assert response.status_code == 200, response.content
        return {i["number"] for i in response.json()["data"]}

    assert numbers() == {a["number"], b["number"], c["number"]}
    assert numbers(status="issued") == {a["number"], b["number"]}
    assert numbers(status="draft") == {c["number"]}
    assert numbers(number=b["number"]) == {b["number"]}
    assert numbers(buyer_siren="443061841") == {c["number"]}
    assert numbers(buyer_siren="552100554") == {a["number"], b["number"]}
    assert numbers(issue_date_from="2026-11-10") == {b["number"]}
    assert numbers(issue_date_to="2026-11-10") == {a["number"]}
    assert numbers(issue_date_from="2026-11-02", issue_date_to="2026-11-16") == {a["number"], b["number"]}
    assert client.get("/api/v1/invoices", {"status": "bogus"}).status_code in {400, 422}

    for _ in range(3):
        create(client, api_bodies.simple())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = client.get("/api/v1/invoices", params).json()
        assert set(body) == {"data", "next_cursor"}
        assert len(body["data"]) <= 2
        seen += [i["id"] for i in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 6
    # Newest first.
    assert seen[-1] == a["id"]
    # Live keys see none of the sandbox invoices.
    assert seller.client("sk_live").get("/api/v1/invoices").json()["data"] == []


# --- isolation -------------------------------------------------------------------------------------


def test_other_tenant_gets_404_everywhere(seller, tenant_b) -> None:
    mine = seller.client("sk_test")
    issued = create_and_issue(mine, api_bodies.simple())
    draft = create(mine, api_bodies.simple())
    other = tenant_b.client("sk_test")
    for invoice in (issued, draft):
        base = f"/api/v1/invoices/{invoice['id']}"
        calls = [
            other.get(base),
            other.patch(base, {"notes": []}, format="json"),
            other.delete(base),
            other.post(f"{base}/issue"),
            other.get(f"{base}/download", {"format": "cii"}),
            other.get(f"{base}/events"),
            other.post(f"{base}/credit-note", {}, format="json"),
        ]
        assert [r.status_code for r in calls] == [404] * len(calls)
        assert all(r.json()["error"]["code"] for r in calls)
    # The same holds across modes of one tenant.
    assert seller.client("sk_live").get(f"/api/v1/invoices/{issued['id']}").status_code == 404
    assert other.get("/api/v1/invoices").json()["data"] == []
    # Nothing of the other tenant's calls changed our invoices.
    assert mine.get(f"/api/v1/invoices/{draft['id']}").json()["status"] == "draft"
    assert Invoice.objects.filter(tenant=seller.tenant).count() == 2


# --- events and idempotency ---------------------------------------------------------------------------


def test_events_list_created_then_issued(seller) -> None:
    client = seller.client("sk_test")
    invoice = create_and_issue(client, api_bodies.simple())
    response = client.get(f"/api/v1/invoices/{invoice['id']}/events")
    assert response.status_code == 200
    events = response.json()["data"]
    assert [e["type"] for e in events] == ["created", "issued"]
    assert events[1]["data"]["number"] == invoice["number"]
    assert events[1]["data"]["sha256"] == invoice["document_sha256"]
    outbox = Event.objects.filter(tenant=seller.tenant, livemode=False).order_by("created_at")
    assert [e.type for e in outbox] == ["invoice.created", "invoice.issued"]
    assert outbox[1].data["number"] == invoice["number"]
    assert outbox[1].data["total_with_vat"] == "1080.00"


def test_idempotent_issue_replays_the_same_number(seller) -> None:
    client = seller.client("sk_live")
    draft = create(client, api_bodies.simple())
    first = issue(client, draft["id"], HTTP_IDEMPOTENCY_KEY="issue-1")
    second = issue(client, draft["id"], HTTP_IDEMPOTENCY_KEY="issue-1")
    assert first.status_code == second.status_code == 200
    assert first.json()["number"] == second.json()["number"]
    assert first.json()["number"].endswith("-00001")
    assert second.get("Idempotent-Replayed") == "true"
    assert issued_value(seller.tenant, livemode=True) == 1
    assert balance(seller.tenant) == Decimal("49.96")
    # Without the key, a second issue is a conflict; the next draft gets number 2.
    assert issue(client, draft["id"]).status_code == 409
    assert create_and_issue(client, api_bodies.simple())["number"].endswith("-00002")


def test_idempotent_create_replays_and_other_body_conflicts(seller) -> None:
    client = seller.client("sk_test")
    first = client.post("/api/v1/invoices", api_bodies.simple(), format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    again = client.post("/api/v1/invoices", api_bodies.simple(), format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/api/v1/invoices", api_bodies.exempt(), format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert other.status_code == 409
    assert Invoice.objects.filter(tenant=seller.tenant).count() == 1
