"""The evidence file: everything a reader needs is in the PDF text, hashes whole, PDF/A-3b."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.test import override_settings
from lxml import etree
from pypdf import PdfReader

from signatures.evidence import (
    EvidenceData,
    EvidenceEvent,
    EvidenceSigner,
    format_when,
    render_evidence_html,
    render_evidence_pdf,
)

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
ORIGINAL_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
FINAL_SHA256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
FINGERPRINT = "3A:7B:" + ":".join(["C4"] * 30)
UA_1 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
UA_2 = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
CONSENT_1 = "J'ai lu le document « Bail » et j'accepte de le signer électroniquement."
CONSENT_2 = "Ich habe das Dokument gelesen und stimme der elektronischen Unterschrift zu."
BANNER = "SANDBOX — NO LEGAL VALUE"
NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(minutes: int, actor: str, action: str, detail: str = "", ip: str = "") -> EvidenceEvent:
    return EvidenceEvent(at=at(minutes), actor=actor, action=action, detail=detail, ip=ip)


EVENTS = (
    event(0, "sender", "request.created", "2 signataires / signers"),
    event(1, "system", "signer.notified", "elodie@example.fr"),
    event(2, "system", "otp.sent", "+33 6•• ••• •78"),
    event(3, "Élodie Lefèvre-Garçon", "otp.failed", ip="203.0.113.7"),
    event(4, "Élodie Lefèvre-Garçon", "otp.verified", ip="203.0.113.7"),
    event(5, "Élodie Lefèvre-Garçon", "consent.accepted", ip="203.0.113.7"),
    event(6, "Élodie Lefèvre-Garçon", "signer.signed", ip="203.0.113.7"),
    event(7, "system", "signer.notified", "jurgen@example.de"),
    event(8, "system", "otp.sent", "+49 1•• ••• ••• 78"),
    event(9, "Jürgen Östermann", "otp.verified", ip="2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    event(10, "Jürgen Östermann", "consent.accepted", ip="2001:db8::42"),
    event(11, "Jürgen Östermann", "signer.signed", ip="2001:db8::42"),
    event(12, "system", "request.completed"),
    event(13, "system", "document.sealed", f"sha256={FINAL_SHA256}, certificate={FINGERPRINT}"),
)


def evidence(**changes: object) -> EvidenceData:
    signers = (
        EvidenceSigner(
            position=1,
            name="Élodie Lefèvre-Garçon",
            email="elodie@example.fr",
            phone_masked="+33 6•• ••• •78",
            status="signed",
            signed_at=at(6),
            ip="203.0.113.7",
            user_agent=UA_1,
            consent_text=CONSENT_1,
            consent_at=at(5),
            document_sha256_seen=ORIGINAL_SHA256,
            otp_events=EVENTS[2:5],
        ),
        EvidenceSigner(
            position=2,
            name="Jürgen Östermann",
            email="jurgen@example.de",
            phone_masked="+49 1•• ••• ••• 78",
            status="signed",
            signed_at=at(11),
            ip="2001:db8::42",
            user_agent=UA_2,
            consent_text=CONSENT_2,
            consent_at=at(10),
            document_sha256_seen=ORIGINAL_SHA256,
            otp_events=(EVENTS[8], EVENTS[9]),
        ),
    )
    data = EvidenceData(
        request_id="sr_7Hq2LxV9pQ4mN8",
        title="Bail d'habitation – 12 rue de l'Église",
        tenant_name="Agence Immobilière Sàrl",
        livemode=True,
        status="completed",
        created_at=at(0),
        completed_at=at(12),
        order="sequential",
        verification_url="https://scell.example/verify/sr_7Hq2LxV9pQ4mN8",
        original_sha256=ORIGINAL_SHA256,
        final_sha256=FINAL_SHA256,
        original_filename="bail.pdf",
        page_count=4,
        signers=signers,
        events=EVENTS,
        seal_certificate={
            "subject": "CN=Scell Evidence Seal, O=Scell SAS, C=FR",
            "issuer": "CN=Scell Test CA, O=Scell SAS, C=FR",
            "serial_number": "5A3F00C1",
            "sha256_fingerprint": FINGERPRINT,
            "not_before": "2025-01-01T00:00:00Z",
            "not_after": "2027-01-01T00:00:00Z",
        },
        generated_at=at(14),
    )
    return dataclasses.replace(data, **changes)


def render(data: EvidenceData) -> bytes:
    # Pinned: the local times printed depend on the business time zone.
    with override_settings(BUSINESS_TIME_ZONE="Europe/Paris"):
        return render_evidence_pdf(data)


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def squash(text: str) -> str:
    """Without any whitespace: long texts wrap across lines in the PDF, and a line break is no space."""
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def live_pdf() -> bytes:
    return render(evidence())


@pytest.fixture(scope="module")
def live_text(live_pdf: bytes) -> str:
    return "\n".join(pages_text(live_pdf))


def test_identifies_the_request(live_text):
    assert "sr_7Hq2LxV9pQ4mN8" in live_text
    assert "Dossier de preuve / Evidence file" in live_text
    assert "Bail d'habitation – 12 rue de l'Église" in live_text
    assert "Agence Immobilière Sàrl" in live_text
    assert "https://scell.example/verify/sr_7Hq2LxV9pQ4mN8" in live_text


def test_full_hashes_are_extractable_whole(live_text):
    hashes = re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", live_text)
    assert ORIGINAL_SHA256 in hashes
    assert FINAL_SHA256 in hashes
    # The original hash is printed for the document and again for each signer (what they were shown).
    assert hashes.count(ORIGINAL_SHA256) == 3
    assert FINGERPRINT in live_text


def test_signers(live_text):
    for name, phone, ip, ua, consent in [
        ("Élodie Lefèvre-Garçon", "+33 6•• ••• •78", "203.0.113.7", UA_1, CONSENT_1),
        ("Jürgen Östermann", "+49 1•• ••• ••• 78", "2001:db8::42", UA_2, CONSENT_2),
    ]:
        assert name in live_text
        assert phone in live_text
        assert ip in live_text
        assert squash(ua) in squash(live_text)
        assert squash(consent) in squash(live_text)
    assert live_text.count("Matches the original document") == 2
    assert "elodie@example.fr" in live_text


def test_times_in_business_zone_and_utc(live_text):
    # 09:30 UTC is 10:30 in Paris in March (CET, before the switch to summer time on the 30th).
    assert "14/03/2025 10:30:00 UTC+01:00" in live_text
    assert "2025-03-14T09:30:00Z" in live_text
    assert "2025-03-14T09:42:00Z" in live_text  # completed_at


def test_event_log_in_order(live_text):
    log = live_text.split("Journal des événements / Event log", 1)[1]
    log = log.split("Cachet électronique / Electronic seal", 1)[0]
    actions = re.findall(r"\b(?:request|signer|otp|consent|document)\.[a-z_]+\b", log)
    assert actions == [e.action for e in EVENTS]


def test_seal_certificate_and_legal_notice(live_text):
    assert "CN=Scell Evidence Seal, O=Scell SAS, C=FR" in live_text
    assert "5A3F00C1" in live_text
    flat = " ".join(live_text.split())
    assert "910/2014" in flat
    assert "3(10)" in flat
    assert "Article 25(1)" in flat


def test_live_has_no_sandbox_banner(live_text):
    assert BANNER not in live_text
    assert "Production / Live" in live_text


def test_sandbox_banner_on_every_page():
    pages = pages_text(render(evidence(livemode=False)))
    assert len(pages) >= 2
    assert all(BANNER in page for page in pages)


def test_is_pdf_a_3b(live_pdf):
    reader = PdfReader(io.BytesIO(live_pdf))
    data = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    body = data.partition(b"?>")[2].rpartition(b"<?xpacket")[0]
    tree = etree.fromstring(body.strip())

    def value(name: str) -> str:
        found = tree.xpath(f"//rdf:Description/{name} | //rdf:Description/@{name}", namespaces=NS)
        assert len(found) == 1, (name, found)
        item = found[0]
        return str(item) if isinstance(item, str) else "".join(item.itertext()).strip()

    assert value("pdfaid:part") == "3"
    assert value("pdfaid:conformance") == "B"
    assert reader.metadata.title == "Dossier de preuve / Evidence file sr_7Hq2LxV9pQ4mN8"
    # Every font is embedded (PDF/A), accented names included.
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            descendant = ref.get_object()["/DescendantFonts"][0].get_object()
            assert (
                "/FontFile2" in descendant["/FontDescriptor"] or "/FontFile3" in descendant["/FontDescriptor"]
            )


def test_declined_request_without_final_document():
    declined = dataclasses.replace(
        evidence().signers[1],
        status="declined",
        signed_at=None,
        decline_reason="Le loyer indiqué est erroné.",
        document_sha256_seen="0" * 64,
    )
    data = evidence(
        status="declined",
        completed_at=None,
        final_sha256="",
        signers=(evidence().signers[0], declined),
        events=(*EVENTS[:11], event(11, "Jürgen Östermann", "signer.declined", ip="2001:db8::42")),
    )
    text = "\n".join(pages_text(render(data)))
    assert FINAL_SHA256 not in text
    assert "no final document" in text
    assert "Le loyer indiqué est erroné." in text
    assert "Refusé / Declined" in text
    assert "Differs from the original document" in text


def test_html_escapes_signer_input():
    signer = dataclasses.replace(
        evidence().signers[0], name="<script>alert(1)</script>", user_agent="<img src=x>"
    )
    with override_settings(BUSINESS_TIME_ZONE="Europe/Paris"):
        html = render_evidence_html(evidence(signers=(signer,)))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html
    assert 'src="data:image/svg+xml;base64,' in html  # the QR code, inline


def test_format_when_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        format_when(datetime(2025, 3, 14, 9, 30))  # naive on purpose


@override_settings(BUSINESS_TIME_ZONE="Europe/Paris")
def test_format_when_summer_time_and_other_offsets():
    assert format_when(datetime(2025, 7, 1, 12, 0, tzinfo=UTC)) == {
        "local": "01/07/2025 14:00:00 UTC+02:00",
        "utc": "2025-07-01T12:00:00Z",
    }
    # An aware time in another zone is the same instant.
    new_york = timezone(timedelta(hours=-4))
    assert format_when(datetime(2025, 7, 1, 8, 0, tzinfo=new_york))["utc"] == "2025-07-01T12:00:00Z"
    assert format_when(None) is None
