"""Signatures in the dashboard: create a request with a PDF and signers, follow it, remind, cancel,
download the evidence; read-only members cannot write; nothing of another tenant is reachable."""

from __future__ import annotations

import pytest
import weasyprint
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from scell.models import Membership, User
from signatures import sms
from signatures.models import SignatureRequest

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
    return data


def test_create_follow_remind_cancel(tenant_a) -> None:
    client = login(tenant_a.owner)
    assert f'href="{INDEX}"' in client.get("/").content.decode()
    assert "No signature request yet." in client.get(INDEX).content.decode()
    response = client.post(INDEX, form())
    assert response.status_code == 302, response.content.decode()[:3000]
    request = SignatureRequest.objects.get()
    assert response["Location"] == f"{INDEX}{request.pk}/"
    assert request.tenant == tenant_a.tenant and request.livemode is False and request.order == "parallel"
    assert list(request.signers.values_list("phone", flat=True)) == ["+33612345678", "+33698765432"]
    detail = client.get(f"{INDEX}{request.pk}/").content.decode()
    assert "Élodie Martin" in detail and "request.created" in detail and request.original_sha256 in detail
    assert "Bon de commande" in client.get(INDEX).content.decode()

    evidence = client.get(f"{INDEX}{request.pk}/download/evidence.pdf")
    assert evidence.status_code == 200 and evidence.content.startswith(b"%PDF")
    assert client.get(f"{INDEX}{request.pk}/download/document.pdf").status_code == 404  # not completed

    reminded = client.post(f"{INDEX}{request.pk}/remind", follow=True).content.decode()
    assert "less than an hour ago" in reminded or "reminded" in reminded
    client.post(f"{INDEX}{request.pk}/cancel", {"reason": "Mauvais fichier"})
    request.refresh_from_db()
    assert request.status == "cancelled" and request.end_reason == "Mauvais fichier"


def test_bad_input_shows_errors_and_creates_nothing(tenant_a) -> None:
    client = login(tenant_a.owner)
    bad_pdf = form(document=SimpleUploadedFile("x.pdf", b"not a pdf", content_type="application/pdf"))
    page = client.post(INDEX, bad_pdf)
    assert page.status_code == 200 and "PDF" in page.content.decode()
    page = client.post(INDEX, form(**{"signers-0-phone": "0612345678"}))
    assert page.status_code == 200 and "E.164" in page.content.decode()
    assert not SignatureRequest.objects.exists()


def test_read_only_member_cannot_create(tenant_a) -> None:
    reader = User.objects.create_user("reader@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=reader, tenant=tenant_a.tenant, role="read_only")
    client = login(reader)
    client.post(INDEX, form())
    assert not SignatureRequest.objects.exists()


def test_other_tenant_sees_nothing(tenant_a, tenant_b) -> None:
    login(tenant_a.owner).post(INDEX, form())
    request = SignatureRequest.objects.get()
    other = login(tenant_b.owner)
    assert "Bon de commande" not in other.get(INDEX).content.decode()
    assert other.get(f"{INDEX}{request.pk}/").status_code == 404
    assert other.get(f"{INDEX}{request.pk}/download/evidence.pdf").status_code == 404
    assert other.post(f"{INDEX}{request.pk}/cancel").status_code == 404
    request.refresh_from_db()
    assert request.status == "pending"
