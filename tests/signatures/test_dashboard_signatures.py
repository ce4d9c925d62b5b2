"""Signatures in the dashboard: create a request with a PDF and signers, follow each signer, remind (all
or one), cancel after a confirmation, download the sealed PDF and the evidence; errors next to their
field; read-only members get 403 on every write; nothing of another tenant is reachable (404)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
import weasyprint
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from scell.models import Membership, User
from signatures import sms
from signatures.models import SignatureEvent, SignatureRequest, Signer
from signatures.services import signature_request_finalize
from tests.signatures.test_chain_evidence import sign

pytestmark = pytest.mark.django_db

INDEX = "/signatures/"
PDF = weasyprint.HTML(string="<p>Bon de commande</p>").write_pdf()


@pytest.fixture(autouse=True)
def _backends(settings, tmp_path):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(tmp_path / "seal")
    sms.outbox.clear()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(**overrides) -> dict:
    data = {
        "document": SimpleUploadedFile("commande.pdf", PDF, content_type="application/pdf"),
        "title": "Bon de commande",
        "message": "",
        "order": "parallel",
        "locale": "fr",
        "expires_at": "",
        "signers-TOTAL_FORMS": "3",
        "signers-INITIAL_FORMS": "0",
        "signers-MIN_NUM_FORMS": "1",
        "signers-MAX_NUM_FORMS": "20",
        "signers-0-name": "Élodie Martin",
        "signers-0-email": "elodie@example.com",
        "signers-0-phone": "+33 6 12 34 56 78",
        "signers-1-name": "Paul Durand",
        "signers-1-email": "paul@example.com",
        "signers-1-phone": "+33698765432",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def html(response) -> str:
    return response.content.decode()


def field_error(page: str, field_id: str) -> str:
    """The error list tied to a field (id ``<field>_error``, named by the input's aria-describedby)."""
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', page, re.S)
    assert match, f"no error for {field_id}"
    assert re.search(rf'id="{field_id}"[^>]*aria-describedby="[^"]*{field_id}_error', page) or re.search(
        rf'aria-describedby="[^"]*{field_id}_error[^"]*"[^>]*id="{field_id}"', page
    ), f"{field_id} does not point at its error"
    return re.sub(r"<[^>]+>", "", match.group(1))


@pytest.fixture
def reader(tenant_a) -> User:
    user = User.objects.create_user("reader@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=user, tenant=tenant_a.tenant, role="read_only")
    return user


def test_create_follow_remind_cancel(tenant_a) -> None:
    client = login(tenant_a.owner)
    assert f'href="{INDEX}"' in html(client.get("/"))
    page = html(client.get(INDEX))
    assert "No signature request yet." in page
    assert 'type="file"' in page and 'name="order"' in page and 'value="sequential"' in page
    response = client.post(INDEX, form())
    assert response.status_code == 302, html(response)[:3000]
    request = SignatureRequest.objects.get()
    assert response["Location"] == f"{INDEX}{request.pk}/"
    assert request.tenant == tenant_a.tenant and request.livemode is False and request.order == "parallel"
    assert request.created_by == tenant_a.owner
    assert list(request.signers.values_list("phone", flat=True)) == ["+33612345678", "+33698765432"]
    detail = html(client.get(f"{INDEX}{request.pk}/"))
    assert "Élodie Martin" in detail and "request.created" in detail and request.original_sha256 in detail
    # Each signer's state and when they were invited.
    assert detail.count('data-status="pending"') == 2
    invited = timezone.localtime(request.signers.first().notified_at, ZoneInfo(settings.BUSINESS_TIME_ZONE))
    assert invited.strftime("%Y-%m-%d %H:%M") in detail  # shown in the business time zone
    assert "Bon de commande" in html(client.get(INDEX))

    evidence = client.get(f"{INDEX}{request.pk}/download/evidence.pdf")
    assert evidence.status_code == 200 and evidence.content.startswith(b"%PDF")
    assert client.get(f"{INDEX}{request.pk}/download/document.pdf").status_code == 404  # not completed

    reminded = html(client.post(f"{INDEX}{request.pk}/remind", follow=True))
    assert "were reminded" in reminded
    assert set(request.signers.values_list("reminder_count", flat=True)) == {1}
    again = html(client.post(f"{INDEX}{request.pk}/remind", follow=True))
    assert "less than an hour ago" in again

    # Cancelling asks first; the reason goes to the signers.
    confirm = client.get(f"{INDEX}{request.pk}/cancel")
    assert confirm.status_code == 200 and "This cannot be undone." in html(confirm)
    request.refresh_from_db()
    assert request.status == "pending"
    done = html(client.post(f"{INDEX}{request.pk}/cancel", {"reason": "Mauvais fichier"}, follow=True))
    assert "The request was cancelled" in done
    request.refresh_from_db()
    assert request.status == "cancelled" and request.end_reason == "Mauvais fichier"
    assert SignatureEvent.objects.get(request=request, action="request.cancelled").actor == (
        f"sender ({tenant_a.owner.email})"
    )
    assert "Cancel the request" not in html(client.get(f"{INDEX}{request.pk}/"))


def test_resend_one_signer(tenant_a) -> None:
    client = login(tenant_a.owner)
    client.post(INDEX, form(order="sequential"))
    request = SignatureRequest.objects.get()
    first, second = request.signers.order_by("position")
    detail = html(client.get(f"{INDEX}{request.pk}/"))
    assert f"{INDEX}{request.pk}/signers/{first.pk}/resend" in detail
    assert f"{INDEX}{request.pk}/signers/{second.pk}/resend" not in detail  # not their turn yet
    old_hash = first.token_hash
    page = html(client.post(f"{INDEX}{request.pk}/signers/{first.pk}/resend", follow=True))
    assert "Élodie Martin was sent a fresh link by e-mail." in page
    first.refresh_from_db()
    assert first.token_hash != old_hash and first.reminder_count == 1
    refused = html(client.post(f"{INDEX}{request.pk}/signers/{second.pk}/resend", follow=True))
    assert "is not waiting to sign" in refused
    assert Signer.objects.get(pk=second.pk).reminder_count == 0


def test_completed_request_offers_the_sealed_pdf_and_the_evidence(tenant_a) -> None:
    client = login(tenant_a.owner)
    client.post(INDEX, form(**{"signers-1-name": "", "signers-1-email": "", "signers-1-phone": ""}))
    request = SignatureRequest.objects.get()
    sign(request.signers.get())
    signature_request_finalize(request_id=str(request.pk))
    request.refresh_from_db()
    assert request.status == "completed"
    detail = html(client.get(f"{INDEX}{request.pk}/"))
    assert "Download the signed PDF" in detail and request.final_sha256 in detail
    assert 'data-status="signed"' in detail and "Remind the signers" not in detail
    document = client.get(f"{INDEX}{request.pk}/download/document.pdf")
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
    assert document["Content-Disposition"] == f'attachment; filename="{request.pk}-signed.pdf"'
    evidence = client.get(f"{INDEX}{request.pk}/download/evidence.pdf")
    assert evidence["Content-Disposition"] == f'attachment; filename="{request.pk}-evidence.pdf"'


def test_bad_input_shows_errors_next_to_fields_and_creates_nothing(tenant_a) -> None:
    client = login(tenant_a.owner)
    bad_pdf = form(document=SimpleUploadedFile("x.pdf", b"not a pdf", content_type="application/pdf"))
    page = client.post(INDEX, bad_pdf)
    assert page.status_code == 200
    assert "PDF" in field_error(html(page), "id_document")

    page = html(client.post(INDEX, form(**{"signers-0-phone": "0612345678"})))
    assert "E.164" in field_error(page, "id_signers-0-phone")
    assert 'value="Élodie Martin"' in page  # what was typed is kept

    page = html(client.post(INDEX, form(**{"signers-1-email": "ELODIE@example.com"})))
    assert "own e-mail address" in field_error(page, "id_signers-1-email")

    page = html(client.post(INDEX, form(title="", document=None)))
    assert field_error(page, "id_title") and field_error(page, "id_document")

    empty = {f"signers-{i}-{k}": "" for i in (0, 1) for k in ("name", "email", "phone")}
    page = html(client.post(INDEX, form(**empty)))
    assert "Add at least one signer." in page

    page = html(client.post(INDEX, form(expires_at="2000-01-01 10:00")))
    assert "at least 10 minutes in the future" in field_error(page, "id_expires_at")
    assert not SignatureRequest.objects.exists()


def test_read_only_member_gets_403_on_every_write(tenant_a, reader) -> None:
    login(tenant_a.owner).post(INDEX, form())
    request = SignatureRequest.objects.get()
    signer = request.signers.first()
    client = login(reader)
    page = client.get(INDEX)
    assert page.status_code == 200 and "Bon de commande" in html(page)
    assert "New signature request" not in html(page)
    detail = html(client.get(f"{INDEX}{request.pk}/"))
    assert "/cancel" not in detail and "/resend" not in detail and "/remind" not in detail
    assert client.get(f"{INDEX}{request.pk}/download/evidence.pdf").status_code == 200

    assert client.post(INDEX, form(title="Autre")).status_code == 403
    assert client.post(f"{INDEX}{request.pk}/remind").status_code == 403
    assert client.post(f"{INDEX}{request.pk}/cancel", {"reason": "x"}).status_code == 403
    assert client.post(f"{INDEX}{request.pk}/signers/{signer.pk}/resend").status_code == 403
    assert SignatureRequest.objects.count() == 1
    request.refresh_from_db()
    signer.refresh_from_db()
    assert request.status == "pending" and signer.reminder_count == 0


def test_other_tenant_sees_nothing(tenant_a, tenant_b) -> None:
    login(tenant_a.owner).post(INDEX, form())
    request = SignatureRequest.objects.get()
    signer = request.signers.first()
    other = login(tenant_b.owner)
    assert "Bon de commande" not in html(other.get(INDEX))
    assert other.get(f"{INDEX}{request.pk}/").status_code == 404
    assert other.get(f"{INDEX}{request.pk}/download/evidence.pdf").status_code == 404
    assert other.get(f"{INDEX}{request.pk}/cancel").status_code == 404
    assert other.post(f"{INDEX}{request.pk}/cancel").status_code == 404
    assert other.post(f"{INDEX}{request.pk}/remind").status_code == 404
    assert other.post(f"{INDEX}{request.pk}/signers/{signer.pk}/resend").status_code == 404
    request.refresh_from_db()
    assert request.status == "pending"

    # A signer of another request, even of the same tenant, is not found under this one.
    owner = login(tenant_a.owner)
    owner.post(INDEX, form(title="Second"))
    second = SignatureRequest.objects.get(title="Second")
    assert owner.post(f"{INDEX}{second.pk}/signers/{signer.pk}/resend").status_code == 404
    # Nor a sandbox request in live mode.
    owner.post("/switch-mode/", {"mode": "live"})
    assert owner.get(f"{INDEX}{request.pk}/").status_code == 404
