"""GDPR and signatures: the export lists a tenant's signers; their phone numbers are erased once the
retention period after the request ended is over, and the chained evidence never held them."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import dramatiq
import pytest
import time_machine
from django.utils import timezone

from archive.chain import verify_chain
from archive.gdpr import personal_data_export, signer_phones_erase
from archive.models import ChainEntry
from billing.services import credits_grant_pack
from scell.tenancy import Scope
from signatures.models import OtpChallenge, SignatureRequest, Signer
from signatures.services import SignerInput, otp_send, signature_request_cancel
from signatures.sms import mask_phone
from tests.archive.conftest import chain_key
from tests.signatures import test_chain_evidence as evidence_tests
from tests.signatures.test_chain_evidence import IP, PHONE, create_request, sign
from webhooks.models import Event

pytestmark = pytest.mark.django_db

# Fixtures shared with the evidence tests.
signing = evidence_tests.signing
seal_dir = evidence_tests.seal_dir

BOB_PHONE = "+33798765432"


def two_signers() -> list[SignerInput]:
    return [
        SignerInput(name="Alice Martin", email="alice@example.com", phone=PHONE),
        SignerInput(name="Bob Durand", email="bob@example.com", phone=BOB_PHONE),
    ]


def cancel(request: SignatureRequest) -> SignatureRequest:
    scope = Scope(tenant=request.tenant, livemode=request.livemode, sub_tenant=request.sub_tenant)
    return signature_request_cancel(scope=scope, request=request, reason="no longer needed")


def test_export_lists_signers_of_both_modes(signing, tenant_a, tenant_b) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    sandbox = create_request(tenant_a.tenant, signers=two_signers(), title="Sandbox").request
    live = create_request(tenant_a.tenant, livemode=True, title="Live").request
    sign(sandbox.signers.get(position=1))
    create_request(
        tenant_b.tenant,
        signers=[SignerInput(name="Zoé Autre", email="zoe@other.example", phone="+33600000001")],
    )

    data = personal_data_export(tenant=tenant_a.tenant)
    json.dumps(data)  # serialisable as is
    by_email = {(s["email"], s["livemode"]): s for s in data["signers"]}
    assert set(by_email) == {
        ("alice@example.com", False),
        ("bob@example.com", False),
        ("alice@example.com", True),
    }
    alice = by_email[("alice@example.com", False)]
    assert alice["signature_request"] == str(sandbox.pk) and alice["title"] == "Sandbox"
    assert alice["name"] == "Alice Martin" and alice["phone"] == PHONE
    assert alice["status"] == Signer.Status.SIGNED
    assert alice["signed_at"] is not None and alice["ip"] == IP and alice["user_agent"].startswith("Mozilla")
    bob = by_email[("bob@example.com", False)]
    assert bob["status"] == Signer.Status.PENDING and bob["signed_at"] is None and bob["ip"] is None
    assert by_email[("alice@example.com", True)]["signature_request"] == str(live.pk)
    # Another tenant's signers are not this tenant's business, and the reverse.
    assert "zoe@other.example" not in json.dumps(data)
    other = personal_data_export(tenant=tenant_b.tenant)
    assert [s["email"] for s in other["signers"]] == ["zoe@other.example"]


def test_phones_are_erased_after_the_retention_period_only(signing, tenant_a, tenant_b, settings) -> None:
    request = create_request(tenant_a.tenant, signers=two_signers()).request
    alice = request.signers.get(position=1)
    otp_send(signer=alice, ip=IP)
    request = cancel(request)
    ended = request.ended_at
    pending = create_request(tenant_b.tenant).request  # never ends: its signer keeps the number
    retention = timedelta(days=settings.SIGNATURE_PHONE_RETENTION_DAYS)

    assert signer_phones_erase(now=ended + retention - timedelta(minutes=1)) == 0
    assert signer_phones_erase(now=ended + timedelta(days=3650)) == 2  # not the pending request's
    later = ended + retention + timedelta(days=1)
    for signer in Signer.objects.filter(request=request):
        assert signer.phone == "" and signer.phone_erased_at is not None
    assert not OtpChallenge.objects.filter(signer__request=request).exclude(phone="").exists()
    assert OtpChallenge.objects.filter(signer=alice).count() == 1
    assert pending.signers.get().phone == PHONE
    # The webhook events carried the API's view of the request, numbers included: erased too.
    events = Event.objects.filter(tenant=tenant_a.tenant, type__startswith="signature_request.")
    assert events.count() >= 2
    for event in events:
        assert [s["phone"] for s in event.data["signers"]] == [None, None]
    assert PHONE not in json.dumps(list(Event.objects.filter(tenant=tenant_a.tenant).values_list("data")))
    assert Event.objects.get(tenant=tenant_b.tenant).data["signers"][0]["phone"] == PHONE

    # The export says it; a second run finds nothing left to do.
    exported = {s["email"]: s for s in personal_data_export(tenant=tenant_a.tenant)["signers"]}
    assert exported["alice@example.com"]["phone"] is None
    assert exported["alice@example.com"]["phone_erased_at"] is not None
    assert signer_phones_erase(now=later) == 0


def test_daily_actor_erases_with_the_clock(signing, tenant_a, settings) -> None:
    from archive import tasks

    # Discovered through archive.tasks (DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]).
    assert tasks.erase_signer_phones.actor_name in dramatiq.get_broker().get_declared_actors()
    request = cancel(create_request(tenant_a.tenant).request)
    retention = timedelta(days=settings.SIGNATURE_PHONE_RETENTION_DAYS)
    with time_machine.travel(request.ended_at + retention - timedelta(days=1), tick=False):
        tasks.erase_signer_phones()
    assert request.signers.get().phone == PHONE
    with time_machine.travel(request.ended_at + retention + timedelta(days=1), tick=False):
        tasks.erase_signer_phones()
        erased_at = timezone.now()
    signer = request.signers.get()
    assert signer.phone == "" and signer.phone_erased_at == erased_at


def test_chained_evidence_never_holds_the_full_phone(signing, tenant_a) -> None:
    request = create_request(tenant_a.tenant, signers=two_signers()).request
    sign(request.signers.get(position=1))
    bob = request.signers.get(position=2)
    otp_send(signer=bob, ip=IP)
    cancel(request)
    key = chain_key(tenant_a.tenant)
    payloads = [
        bytes(p).decode() for p in ChainEntry.objects.filter(chain_key=key).values_list("payload", flat=True)
    ]
    assert len(payloads) == request.events.count() >= 9
    for phone in (PHONE, BOB_PHONE):
        national = phone[3:]  # "612345678": no formatting of the full number either
        assert not any(national in text for text in payloads), phone
    # The masked number is what the evidence quotes (otp.sent, the consent text, signer.signed).
    assert any(mask_phone(PHONE) in text for text in payloads)
    assert any(mask_phone(BOB_PHONE) in text for text in payloads)

    # Erasing changes nothing chained: the chain still verifies.
    signer_phones_erase(now=timezone.now() + timedelta(days=10 * 365))
    assert not Signer.objects.filter(request=request).exclude(phone="").exists()
    assert verify_chain(key).ok
