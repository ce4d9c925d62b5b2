"""The signature request API (API.md, "Signatures") and the services behind it: creation and its charge,
the signing flow end to end, cancel, remind, expiry, documents and evidence, tenant isolation."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
import weasyprint
from django.core import mail
from django.utils import timezone
from pypdf import PdfReader, PdfWriter

from billing.models import LedgerEntry
from billing.services import credits_grant_pack
from signatures import pdf as pdf_tools
from signatures import services, sms
from signatures.models import OtpChallenge, SignatureEvent, SignatureRequest, Signer
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _backends(settings, tmp_path):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(tmp_path / "seal")
    sms.outbox.clear()


def make_pdf(pages: int = 1) -> bytes:
    body = "".join(
        f'<div style="page-break-after: always">Contrat de prestation, page {n + 1}</div>'
        for n in range(pages)
    )
    return weasyprint.HTML(string=f"<html><body>{body}</body></html>").write_pdf()


PDF = make_pdf(2)

SIGNERS = [
    {"name": "Élodie Martin", "email": "elodie@example.com", "phone": "+33612345678"},
    {"name": "Jürgen Weiß", "email": "jurgen@example.com", "phone": "+49 151 2345 6789"},
]


def body(**overrides) -> dict:
    data = {
        "title": "Contrat de prestation",
        "message": "Merci de signer.",
        "signers": SIGNERS,
        "order": "sequential",
        "document_base64": base64.b64encode(PDF).decode(),
        "document_filename": "contrat.pdf",
    }
    data.update(overrides)
    return data


def create(tenant, key: str = "sk_test", **overrides):
    return tenant.client(key).post("/api/v1/signature-requests", body(**overrides), format="json")


def last_code() -> str:
    return re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)


def sign(signer: Signer, ip: str = "203.0.113.7") -> Signer:
    signer.refresh_from_db()
    services.otp_send(signer=signer, ip=ip, user_agent="pytest-browser/1.0")
    return services.signer_sign(
        signer=signer, code=last_code(), consent=True, ip=ip, user_agent="pytest-browser/1.0"
    )


def cooldown_over():
    """Codes of different signers from one IP within a minute are allowed; one signer's are not."""
    return time_machine.travel(timezone.now() + timedelta(seconds=61), tick=True)


# --- Creation ---------------------------------------------------------------------------------------
def test_create_json_in_sandbox_is_free_and_invites_the_first_signer(tenant_a) -> None:
    response = create(tenant_a)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "pending" and data["livemode"] is False
    assert data["document"] == {
        "filename": "contrat.pdf",
        "sha256": pdf_tools.inspect_pdf(PDF).sha256,
        "size": len(PDF),
        "page_count": 2,
    }
    first, second = data["signers"]
    assert first["status"] == "pending" and second["status"] == "waiting"
    assert second["phone"] == "+4915123456789"  # normalised to E.164
    assert first["signing_url"].startswith("http") and "/sign/" in first["signing_url"]
    assert first["signing_url"] != second["signing_url"]
    assert data["charged_amount"] == "0.00"
    assert not LedgerEntry.objects.filter(tenant=tenant_a.tenant).exists()
    # Only the creation answer shows the links; only their hashes are stored.
    again = tenant_a.client().get(f"/api/v1/signature-requests/{data['id']}").json()
    assert "signing_url" not in again["signers"][0]
    token = first["signing_url"].rstrip("/").rsplit("/", 1)[1]
    assert Signer.objects.get(pk=first["id"]).token_hash == services.token_hash(token)
    assert not Signer.objects.filter(token_hash=token).exists()
    assert Event.objects.filter(tenant=tenant_a.tenant, type="signature_request.sent").count() == 1
    assert list(SignatureEvent.objects.filter(request_id=data["id"]).values_list("action", flat=True)) == [
        "request.created",
        "signer.notified",
    ]


def test_create_multipart(tenant_a) -> None:
    payload = {k: v for k, v in body(order="parallel").items() if not k.startswith("document")}
    upload = io.BytesIO(PDF)
    upload.name = "bail.pdf"
    response = tenant_a.client().post(
        "/api/v1/signature-requests", {"document": upload, "payload": json.dumps(payload)}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["document"]["filename"] == "bail.pdf"
    assert [s["status"] for s in data["signers"]] == ["pending", "pending"]  # parallel: all at once


def test_live_request_charges_1_20_per_signer(tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50"))
    response = create(tenant_a, "sk_live")
    assert response.status_code == 201, response.json()
    assert response.json()["charged_amount"] == "2.40"
    spend = LedgerEntry.objects.get(tenant=tenant_a.tenant, kind=LedgerEntry.Kind.SPEND)
    assert spend.amount == Decimal("-2.40") or spend.amount == Decimal("2.40")
    assert spend.operation == "signature_signer" and spend.quantity == 2
    assert spend.reference == response.json()["id"]


def test_not_enough_credits_is_402_and_nothing_happens(tenant_a, settings) -> None:
    response = create(tenant_a, "sk_live")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits" and error["type"] == "billing_error"
    assert not SignatureRequest.objects.exists() and not Signer.objects.exists()
    assert not SignatureEvent.objects.exists()
    assert not Event.objects.filter(type__startswith="signature").exists()
    assert sms.outbox == [] and mail.outbox == []


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        (
            {"document_base64": base64.b64encode(b"not a pdf at all").decode()},
            "document_not_a_pdf",
            "document",
        ),
        ({"document_base64": "%%%"}, "validation_failed", "document_base64"),
        ({"signers": []}, None, "signers"),
        (
            {"signers": [{"name": "A", "email": "a@example.com", "phone": "0612345678"}]},
            None,
            "signers.0.phone",
        ),
        (
            {
                "signers": [
                    {
                        "name": "A",
                        "email": "a@example.com",
                        "phone": "+33612345678",
                        "page": 3,
                        "x": 1,
                        "y": 1,
                    }
                ]
            },
            None,
            "signers.0.page",
        ),
        (
            {"signers": [{"name": "A", "email": "a@example.com", "phone": "+33612345678", "page": 1}]},
            None,
            "signers.0",
        ),
        ({"signers": [SIGNERS[0], {**SIGNERS[1], "email": SIGNERS[0]["email"]}]}, None, "signers.1.email"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, None, "expires_at"),
    ],
)
def test_bad_input_is_422_and_changes_nothing(tenant_a, overrides, code, field) -> None:
    response = create(tenant_a, **overrides)
    assert response.status_code in (400, 422), response.json()
    error = response.json()["error"]
    if code:
        assert error["code"] == code
    assert any((d.get("field") or "").startswith(field) for d in error["details"]), error
    assert not SignatureRequest.objects.exists()


def test_encrypted_pdf_is_refused(tenant_a) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(PDF)))
    writer.encrypt("")
    out = io.BytesIO()
    writer.write(out)
    response = create(tenant_a, document_base64=base64.b64encode(out.getvalue()).decode())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "document_encrypted"


def test_tenants_never_see_each_other(tenant_a, tenant_b) -> None:
    request_id = create(tenant_a).json()["id"]
    other = tenant_b.client()
    for path in ("", "/document", "/evidence", "/events"):
        assert other.get(f"/api/v1/signature-requests/{request_id}{path}").status_code == 404
    for path in ("/cancel", "/remind"):
        assert (
            other.post(f"/api/v1/signature-requests/{request_id}{path}", {}, format="json").status_code == 404
        )
    assert other.get("/api/v1/signature-requests").json()["data"] == []
    # Live keys of the same tenant do not see sandbox requests either.
    assert tenant_a.client("sk_live").get(f"/api/v1/signature-requests/{request_id}").status_code == 404


# --- The flow, end to end ---------------------------------------------------------------------------
def test_sequential_flow_to_a_sealed_document_and_evidence(tenant_a) -> None:
    data = create(tenant_a).json()
    request = SignatureRequest.objects.get(pk=data["id"])
    first, second = request.signers.order_by("position")
    with pytest.raises(services.SigningUnavailable) as refused:
        services.otp_send(signer=second, ip="203.0.113.8")
    assert refused.value.code == "not_your_turn"

    sign(first)
    second.refresh_from_db()
    assert second.status == Signer.Status.PENDING  # invited once the first signed
    sign(second, ip="198.51.100.4")  # the 60 s cooldown is per signer
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.FINALIZING
    services.signature_request_finalize(request_id=str(request.id))
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.COMPLETED and request.completed_at is not None

    client = tenant_a.client()
    shown = client.get(f"/api/v1/signature-requests/{request.id}").json()
    assert shown["status"] == "completed"
    assert [s["status"] for s in shown["signers"]] == ["signed", "signed"]
    document = client.get(f"/api/v1/signature-requests/{request.id}/document")
    assert document.status_code == 200 and document["Content-Type"] == "application/pdf"
    check = pdf_tools.check_seal(document.content)
    assert check.valid and check.intact and check.covers_whole_document
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document.content)).pages)
    assert "Élodie Martin" in text and "Jürgen Weiß" in text and "Contrat de prestation, page 1" in text

    evidence = client.get(f"/api/v1/signature-requests/{request.id}/evidence")
    assert evidence.status_code == 200 and "X-Scell-Evidence" not in evidence
    assert pdf_tools.check_seal(evidence.content).valid
    evidence_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(evidence.content)).pages)
    compact = re.sub(r"\s+", "", evidence_text)
    assert request.original_sha256 in compact and request.final_sha256 in compact
    assert "203.0.113.7" in evidence_text and "198.51.100.4" in evidence_text
    assert "pytest-browser/1.0" in evidence_text

    types = list(
        Event.objects.filter(tenant=tenant_a.tenant).order_by("created_at").values_list("type", flat=True)
    )
    assert types == [
        "signature_request.sent",
        "signer.signed",
        "signer.signed",
        "signature_request.completed",
    ]
    completed = Event.objects.get(type="signature_request.completed")
    assert completed.data["id"] == str(request.id) and completed.data["status"] == "completed"
    actions = list(request.events.values_list("action", flat=True))
    for expected in ("otp.sent", "consent.accepted", "otp.verified", "signer.signed", "document.sealed"):
        assert expected in actions
    assert actions[-1] == "evidence.sealed"
    signed = request.events.filter(action="signer.signed").first()
    assert signed.data["document_sha256"] == request.original_sha256
    assert signed.data["consent_text"].startswith("J'ai lu le document")
    assert "+33612345678" not in json.dumps(list(request.events.values_list("data", flat=True)))
    # Finalising again changes nothing (the actor may run twice).
    services.signature_request_finalize(request_id=str(request.id))
    assert SignatureRequest.objects.get(pk=request.pk).final_sha256 == request.final_sha256


def test_document_is_409_until_completed_and_evidence_is_interim(tenant_a) -> None:
    request_id = create(tenant_a).json()["id"]
    client = tenant_a.client()
    response = client.get(f"/api/v1/signature-requests/{request_id}/document")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "signature_request_not_completed"
    interim = client.get(f"/api/v1/signature-requests/{request_id}/evidence")
    assert interim.status_code == 200 and interim["X-Scell-Evidence"] == "interim"
    assert pdf_tools.check_seal(interim.content).valid
    events = client.get(f"/api/v1/signature-requests/{request_id}/events").json()
    assert [e["action"] for e in events["data"]] == ["request.created", "signer.notified"]


def test_wrong_code_five_times_locks_the_link(tenant_a) -> None:
    request = SignatureRequest.objects.get(pk=create(tenant_a).json()["id"])
    signer = request.signers.get(position=1)
    services.otp_send(signer=signer, ip="203.0.113.7")
    right = last_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in range(1, 6):
        with pytest.raises(services.SigningRefused) as refused:
            services.signer_sign(signer=signer, code=wrong, consent=True, ip="203.0.113.7")
        assert refused.value.code == ("locked" if attempt == 5 else "wrong_code")
    signer.refresh_from_db()
    assert signer.status == Signer.Status.LOCKED and signer.failed_attempts == 5
    with pytest.raises(services.SigningUnavailable) as unavailable:
        services.signer_sign(signer=signer, code=right, consent=True, ip="203.0.113.7")
    assert unavailable.value.code == "locked"
    assert request.events.filter(action="otp.failed").count() == 5


def test_code_expires_after_ten_minutes(tenant_a) -> None:
    request = SignatureRequest.objects.get(pk=create(tenant_a).json()["id"])
    signer = request.signers.get(position=1)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        services.otp_send(signer=signer, ip="203.0.113.7")
    code = last_code()
    late = start + timedelta(minutes=10, seconds=1)
    with time_machine.travel(late, tick=False), pytest.raises(services.SigningRefused) as refused:
        services.signer_sign(signer=signer, code=code, consent=True, ip="203.0.113.7")
    assert refused.value.code == "code_expired"
    assert OtpChallenge.objects.get(signer=signer).expiry_recorded_at is not None
    assert Event.objects.filter(type="signer.otp_expired").count() == 1
    # The sweeper does not record it twice.
    assert services.otp_expiries_record(now=start + timedelta(hours=1)) == 0


def test_unused_code_expiry_is_recorded_by_the_sweeper(tenant_a) -> None:
    request = SignatureRequest.objects.get(pk=create(tenant_a).json()["id"])
    services.otp_send(signer=request.signers.get(position=1), ip="203.0.113.7")
    assert services.otp_expiries_record() == 0
    assert services.otp_expiries_record(now=timezone.now() + timedelta(minutes=11)) == 1
    assert request.events.filter(action="otp.expired").count() == 1
    assert Event.objects.filter(type="signer.otp_expired").count() == 1


def test_new_code_invalidates_the_old_one_and_cooldown_applies(tenant_a) -> None:
    request = SignatureRequest.objects.get(pk=create(tenant_a).json()["id"])
    signer = request.signers.get(position=1)
    services.otp_send(signer=signer, ip="203.0.113.7")
    old = last_code()
    with pytest.raises(services.SigningRefused) as refused:
        services.otp_send(signer=signer, ip="203.0.113.7")
    assert refused.value.code == "cooldown" and 0 < refused.value.retry_after <= 60
    with cooldown_over():
        services.otp_send(signer=signer, ip="203.0.113.7")
        new = last_code()
        if new != old:
            with pytest.raises(services.SigningRefused):
                services.signer_sign(signer=signer, code=old, consent=True, ip="203.0.113.7")
        services.signer_sign(signer=signer, code=new, consent=True, ip="203.0.113.7")
    assert OtpChallenge.objects.filter(signer=signer, invalidated_at__isnull=False).count() == 1


def test_hourly_cap_per_phone(tenant_a, settings) -> None:
    settings.SIGNATURE_OTP_MAX_PER_PHONE_HOUR = 2
    settings.SIGNATURE_OTP_RESEND_COOLDOWN_SECONDS = 0
    request = SignatureRequest.objects.get(pk=create(tenant_a).json()["id"])
    signer = request.signers.get(position=1)
    services.otp_send(signer=signer, ip="203.0.113.7")
    services.otp_send(signer=signer, ip="203.0.113.9")
    with pytest.raises(services.SigningRefused) as refused:
        services.otp_send(signer=signer, ip="203.0.113.10")
    assert refused.value.code == "phone_cap"


def test_consent_is_required(tenant_a) -> None:
    request = SignatureRequest.objects.get(pk=create(tenant_a).json()["id"])
    signer = request.signers.get(position=1)
    services.otp_send(signer=signer, ip="203.0.113.7")
    with pytest.raises(services.SigningRefused) as refused:
        services.signer_sign(signer=signer, code=last_code(), consent=False, ip="203.0.113.7")
    assert refused.value.code == "consent_required"


def test_decline_ends_the_request(tenant_a) -> None:
    request = SignatureRequest.objects.get(pk=create(tenant_a, order="parallel").json()["id"])
    first, second = request.signers.order_by("position")
    services.signer_decline(signer=first, reason="Le montant est faux.", ip="203.0.113.7")
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.DECLINED
    assert Signer.objects.get(pk=second.pk).status == Signer.Status.ENDED
    assert Event.objects.filter(type="signer.declined").get().data["reason"] == "Le montant est faux."
    with pytest.raises(services.SigningUnavailable):
        services.otp_send(signer=second, ip="203.0.113.8")
    services.signature_request_finalize(request_id=str(request.id))
    request.refresh_from_db()
    assert request.evidence_sha256 and not request.final_sha256


def test_cancel(tenant_a) -> None:
    request_id = create(tenant_a).json()["id"]
    client = tenant_a.client()
    response = client.post(
        f"/api/v1/signature-requests/{request_id}/cancel", {"reason": "Wrong file"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["end_reason"] == "Wrong file"
    assert Event.objects.filter(type="signature_request.cancelled").count() == 1
    again = client.post(f"/api/v1/signature-requests/{request_id}/cancel", {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "signature_request_not_pending"
    signer = Signer.objects.filter(request_id=request_id).first()
    with pytest.raises(services.SigningUnavailable) as refused:
        services.otp_send(signer=signer, ip="203.0.113.7")
    assert refused.value.code == "cancelled"


def test_remind_gives_a_new_link(tenant_a) -> None:
    data = create(tenant_a).json()
    old_hash = Signer.objects.get(pk=data["signers"][0]["id"]).token_hash
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=True):
        response = tenant_a.client().post(
            f"/api/v1/signature-requests/{data['id']}/remind", {}, format="json"
        )
    assert response.status_code == 200
    assert response.json()["signers"][0]["reminder_count"] == 1
    assert Signer.objects.get(pk=data["signers"][0]["id"]).token_hash != old_hash
    again = tenant_a.client().post(f"/api/v1/signature-requests/{data['id']}/remind", {}, format="json")
    assert again.status_code == 409


def test_expiry(tenant_a) -> None:
    expires = timezone.now() + timedelta(days=1)
    data = create(tenant_a, expires_at=expires.isoformat()).json()
    assert services.signature_requests_expire() == 0
    assert services.signature_requests_expire(now=expires + timedelta(seconds=1)) == 1
    request = SignatureRequest.objects.get(pk=data["id"])
    assert request.status == SignatureRequest.Status.EXPIRED
    assert Event.objects.filter(type="signature_request.expired").count() == 1
    assert set(request.signers.values_list("status", flat=True)) == {Signer.Status.ENDED}


def test_scheduled_reminders(tenant_a) -> None:
    data = create(tenant_a, reminder_interval_days=2, max_reminders=1).json()
    now = timezone.now()
    assert services.reminders_send(now=now + timedelta(days=1)) == 0
    assert services.reminders_send(now=now + timedelta(days=2, minutes=1)) == 1
    assert services.reminders_send(now=now + timedelta(days=5)) == 0  # max_reminders reached
    assert Signer.objects.get(pk=data["signers"][0]["id"]).reminder_count == 1


def test_list_and_filter(tenant_a) -> None:
    first = create(tenant_a).json()["id"]
    second = create(tenant_a, title="Avenant").json()["id"]
    tenant_a.client().post(f"/api/v1/signature-requests/{first}/cancel", {}, format="json")
    listed = tenant_a.client().get("/api/v1/signature-requests").json()
    assert [r["id"] for r in listed["data"]] == [second, first]
    pending = tenant_a.client().get("/api/v1/signature-requests?status=pending").json()
    assert [r["id"] for r in pending["data"]] == [second]


def test_idempotent_creation(tenant_a) -> None:
    client = tenant_a.client(HTTP_IDEMPOTENCY_KEY="create-contract-42")
    one = client.post("/api/v1/signature-requests", body(), format="json")
    two = client.post("/api/v1/signature-requests", body(), format="json")
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] == two.json()["id"]
    assert SignatureRequest.objects.count() == 1
