"""The PDF layer of signatures: inspection limits, visible stamps, the PAdES seal and its check."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.exceptions import ImproperlyConfigured
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject, NumberObject, RectangleObject, TextStringObject
from weasyprint import HTML

from signatures import pdf
from signatures.pdf import PdfRejected, Stamp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
A4 = (595.28, 841.89)
WINTER = datetime(2025, 1, 15, 9, 30, 5, tzinfo=UTC)  # 10:30:05 in Paris, UTC+01:00
SUMMER = datetime(2025, 7, 14, 12, 0, 0, tzinfo=UTC)  # 14:00:00 in Paris, UTC+02:00


# --- Helpers and fixtures ----------------------------------------------------------------------------


def make_pdf(pages: int = 1, *, label: str = "Sample") -> bytes:
    body = "".join(
        f'<p style="{"break-before: page;" if n > 1 else ""}">{label} page {n} of {pages}</p>'
        for n in range(1, pages + 1)
    )
    return HTML(string=f"<style>@page {{ size: A4; }}</style>{body}").write_pdf()


def rewrite(data: bytes, edit) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    edit(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def self_signed(
    common_name: str, key, *, extended_usage: list[x509.ObjectIdentifier] | None = None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
    )
    if extended_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended_usage), critical=True)
    return builder.sign(key, hashes.SHA256())


def to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def sign_with(data: bytes, key, certificate: x509.Certificate, field_name: str) -> bytes:
    """Sign as someone other than Scell (a signer's own certificate, or an impostor)."""
    raw = pkcs12.serialize_key_and_certificates(b"x", key, certificate, None, serialization.NoEncryption())
    signer = signers.SimpleSigner.load_pkcs12_data(raw, other_certs=[])
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    metadata = signers.PdfSignatureMetadata(field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES)
    return signers.PdfSigner(metadata, signer=signer).sign_pdf(writer).getvalue()


@pytest.fixture(scope="session")
def seal_dir(tmp_path_factory) -> Path:
    # One development seal for the whole session: every test seals with, and trusts, the same key.
    return tmp_path_factory.mktemp("seal")


@pytest.fixture(autouse=True)
def seal_settings(settings, seal_dir):
    settings.SIGNATURE_DEV_SEAL_DIR = seal_dir
    settings.SIGNATURE_SEAL_PKCS12 = ""
    settings.SIGNATURE_SEAL_PKCS12_PASSWORD = ""
    settings.SIGNATURE_ALLOW_DEV_SEAL = True
    settings.SIGNATURE_TSA_URL = ""
    settings.SIGNATURE_TSA_TRUST_ROOTS = []
    settings.SIGNATURE_MAX_PDF_BYTES = 20 * 1024 * 1024
    settings.SIGNATURE_MAX_PDF_PAGES = 200
    settings.BUSINESS_TIME_ZONE = "Europe/Paris"
    return settings


@pytest.fixture(scope="session")
def one_page() -> bytes:
    return make_pdf(1)


@pytest.fixture(scope="session")
def three_pages() -> bytes:
    return make_pdf(3)


@pytest.fixture(scope="session")
def tsa_credentials() -> tuple[x509.Certificate, asn1_keys.PrivateKeyInfo]:
    # pyHanko's DummyTimeStamper signs with RSA only.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = self_signed("Scell test TSA", key, extended_usage=[ExtendedKeyUsageOID.TIME_STAMPING])
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate, asn1_keys.PrivateKeyInfo.load(der_key)


@pytest.fixture
def tsa_trusted(settings, tmp_path, tsa_credentials) -> None:
    path = tmp_path / "tsa.pem"
    path.write_bytes(tsa_credentials[0].public_bytes(serialization.Encoding.PEM))
    settings.SIGNATURE_TSA_TRUST_ROOTS = [str(path)]


TSA_TIME = datetime(2025, 6, 1, 8, 0, 0, tzinfo=UTC)


def dummy_timestamper(credentials) -> DummyTimeStamper:
    certificate, key = credentials
    return DummyTimeStamper(tsa_cert=to_asn1(certificate), tsa_key=key, fixed_dt=TSA_TIME)


@pytest.fixture
def tsa_url(tsa_credentials, monkeypatch) -> Iterator[str]:
    """An RFC 3161 TSA on loopback, answering with pyHanko's dummy timestamper."""
    timestamper = dummy_timestamper(tsa_credentials)
    requests_seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            requests_seen.append(1)
            body = timestamper.request_tsa_response(request).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # requests would route even loopback through a proxy set in the environment.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert requests_seen, "the TSA was never asked"


# --- inspect_pdf -------------------------------------------------------------------------------------


def test_inspect_accepts_a_one_page_pdf(one_page):
    info = pdf.inspect_pdf(one_page)

    assert info.page_count == 1
    assert info.size == len(one_page)
    assert info.sha256 == hashlib.sha256(one_page).hexdigest()
    assert info.page_sizes[0] == pytest.approx(A4, abs=0.01)


def test_inspect_reports_each_page_size_as_displayed(three_pages):
    rotated = rewrite(three_pages, lambda writer: writer.pages[1].rotate(90))

    info = pdf.inspect_pdf(rotated)

    assert info.page_count == 3
    assert info.page_sizes[0] == pytest.approx(A4, abs=0.01)
    assert info.page_sizes[1] == pytest.approx(A4[::-1], abs=0.01)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"GIF89a not a pdf at all", "not_a_pdf"),
        (b"%PDF-1.7\n garbage garbage\n%%EOF\n", "not_a_pdf"),
        (b"<html>%PDF-1.7</html>", "not_a_pdf"),
    ],
)
def test_inspect_refuses_what_is_not_a_pdf(data, code):
    with pytest.raises(PdfRejected) as caught:
        pdf.inspect_pdf(data)

    assert caught.value.code == code
    assert caught.value.message.endswith(".")


def test_inspect_refuses_a_truncated_pdf(three_pages):
    with pytest.raises(PdfRejected) as caught:
        pdf.inspect_pdf(three_pages[: len(three_pages) // 2])

    assert caught.value.code == "not_a_pdf"


def test_inspect_refuses_an_encrypted_pdf_even_with_an_empty_password(one_page):
    encrypted = rewrite(one_page, lambda writer: writer.encrypt(""))

    with pytest.raises(PdfRejected) as caught:
        pdf.inspect_pdf(encrypted)

    assert caught.value.code == "encrypted"


def test_inspect_refuses_a_pdf_without_pages():
    out = io.BytesIO()
    PdfWriter().write(out)

    with pytest.raises(PdfRejected) as caught:
        pdf.inspect_pdf(out.getvalue())

    assert caught.value.code == "empty"


def test_inspect_refuses_a_pdf_over_the_size_limit(settings, one_page):
    settings.SIGNATURE_MAX_PDF_BYTES = len(one_page) - 1

    with pytest.raises(PdfRejected) as caught:
        pdf.inspect_pdf(one_page)

    assert caught.value.code == "too_large"
    assert "limit" in caught.value.message
    settings.SIGNATURE_MAX_PDF_BYTES = len(one_page)
    assert pdf.inspect_pdf(one_page).size == len(one_page)


def test_inspect_refuses_a_pdf_over_the_page_limit(settings, three_pages):
    settings.SIGNATURE_MAX_PDF_PAGES = 2

    with pytest.raises(PdfRejected) as caught:
        pdf.inspect_pdf(three_pages)

    assert caught.value.code == "too_many_pages"
    settings.SIGNATURE_MAX_PDF_PAGES = 3
    assert pdf.inspect_pdf(three_pages).page_count == 3


# --- stamp_pdf ---------------------------------------------------------------------------------------


def test_stamp_on_a_page_puts_the_box_there_and_keeps_the_original_text(three_pages):
    stamped = pdf.stamp_pdf(
        three_pages,
        [Stamp(name="Zoë Łukasz Straße", signed_at=WINTER, page=2, x=72, y=72, detail="Code SMS vérifié")],
    )

    texts = page_texts(stamped)
    assert len(texts) == 3
    for number, text in enumerate(texts, start=1):
        assert f"Sample page {number} of 3" in text
    assert "Signé électroniquement par / Signed by" in texts[1]
    assert "Zoë Łukasz Straße" in texts[1]
    assert "15/01/2025 10:30:05 (UTC+01:00)" in texts[1]
    assert "Code SMS vérifié" in texts[1]
    assert "Zoë" not in texts[0] + texts[2]
    # A rewrite, not an incremental update: exactly one %%EOF.
    assert stamped.count(b"%%EOF") == 1


def test_a_long_name_wraps_inside_a_placed_box(one_page):
    name = "Jean-Baptiste Alexandre Hippolyte de La Rochefoucauld-Montbel"

    stamped = pdf.stamp_pdf(one_page, [Stamp(name=name, signed_at=WINTER, page=1, x=72, y=72)])

    assert name in " ".join(page_texts(stamped)[0].split())


def test_stamp_prints_the_business_time_zone_offset_in_summer(one_page):
    stamped = pdf.stamp_pdf(one_page, [Stamp(name="Anne", signed_at=SUMMER, page=1, x=0, y=0)])

    assert "14/07/2025 14:00:00 (UTC+02:00)" in page_texts(stamped)[0]


def test_stamps_without_placement_go_on_one_appended_signature_page(three_pages):
    stamped = pdf.stamp_pdf(
        three_pages,
        [
            Stamp(name="Anne Martin", signed_at=WINTER, detail="Code SMS vérifié · +33 6•• •• •• 78"),
            Stamp(name="Jürgen Groß", signed_at=SUMMER, detail="REQ-42"),
            Stamp(name="Placed Person", signed_at=WINTER, page=1, x=300, y=300),
        ],
        title="Contrat de prestation",
        reference="SIG-2025-0001",
    )

    texts = page_texts(stamped)
    assert len(texts) == 4
    last = texts[3]
    assert last.lstrip().startswith("Signatures")
    assert "Contrat de prestation" in last
    assert "SIG-2025-0001" in last
    assert "Anne Martin" in last and "+33 6•• •• •• 78" in last
    assert "Jürgen Groß" in last and "14/07/2025 14:00:00 (UTC+02:00)" in last
    assert "Placed Person" not in last
    assert "Placed Person" in texts[0]
    assert PdfReader(io.BytesIO(stamped)).pages[3].mediabox.width == pytest.approx(A4[0], abs=0.01)


def test_stamp_escapes_markup_in_names(one_page):
    stamped = pdf.stamp_pdf(one_page, [Stamp(name="<img src='http://127.0.0.1:9/x'> & Co", signed_at=WINTER)])

    assert "<img src='http://127.0.0.1:9/x'> & Co" in page_texts(stamped)[-1]


def stamp_pixels(png: bytes) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the stamp's blue border in a rendered page."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    blue = [
        (x, y)
        for y in range(height)
        for x in range(width)
        if pixels[x, y][2] > 150 and pixels[x, y][0] < 120 and pixels[x, y][1] < 150
    ]
    assert blue, "no stamp drawn"
    xs, ys = [x for x, _ in blue], [y for _, y in blue]
    return min(xs), min(ys), max(xs), max(ys)


def test_stamp_position_follows_pdf_coordinates_and_is_clamped(one_page):
    corner = pdf.stamp_pdf(one_page, [Stamp(name="Low Left", signed_at=WINTER, page=1, x=0, y=0)])
    outside = pdf.stamp_pdf(one_page, [Stamp(name="Far Away", signed_at=WINTER, page=1, x=10_000, y=10_000)])

    width = 300
    height = round(width * A4[1] / A4[0])
    left, _top, _right, bottom = stamp_pixels(pdf.render_page_images(corner, width=width)[0])
    assert left <= 2 and bottom >= height - 3
    _left, top, right, _bottom = stamp_pixels(pdf.render_page_images(outside, width=width)[0])
    assert right >= width - 3 and top <= 2


def test_a_stamp_with_a_page_but_no_coordinates_goes_to_the_lower_right_corner(one_page):
    stamped = pdf.stamp_pdf(one_page, [Stamp(name="Corner", signed_at=WINTER, page=1)])

    width = 300
    height = round(width * A4[1] / A4[0])
    left, top, right, bottom = stamp_pixels(pdf.render_page_images(stamped, width=width)[0])
    assert left > width / 2 and top > height * 3 / 4
    assert right < width - 5 and bottom < height - 5


def test_stamp_on_a_rotated_page_is_placed_as_the_page_is_displayed(one_page):
    rotated = rewrite(one_page, lambda writer: writer.pages[0].rotate(90))

    stamped = pdf.stamp_pdf(rotated, [Stamp(name="Rotated", signed_at=WINTER, page=1, x=0, y=0)])

    png = pdf.render_page_images(stamped, width=400)[0]
    width, height = Image.open(io.BytesIO(png)).size
    assert width > height  # landscape as displayed
    left, top, right, bottom = stamp_pixels(png)
    assert left <= 2 and bottom >= height - 3
    # Upright: the box is wider than tall, as drawn.
    assert right - left > bottom - top
    assert "Rotated" in page_texts(stamped)[0]


def test_stamp_refuses_naive_dates_and_pages_outside_the_document(one_page):
    with pytest.raises(ValueError, match="aware"):
        pdf.stamp_pdf(one_page, [Stamp(name="A", signed_at=datetime(2025, 1, 1))])
    with pytest.raises(ValueError, match="outside"):
        pdf.stamp_pdf(one_page, [Stamp(name="A", signed_at=WINTER, page=2, x=0, y=0)])


# --- seal_pdf and check_seal -------------------------------------------------------------------------


def test_sealed_pdf_passes_the_check(three_pages):
    stamped = pdf.stamp_pdf(three_pages, [Stamp(name="Anne", signed_at=WINTER)])
    before = datetime.now(UTC) - timedelta(seconds=5)

    sealed = pdf.seal_pdf(stamped, reason="Scell signature request SIG-1", location="Paris")

    assert sealed.startswith(stamped)  # an incremental update over the stamped file
    check = pdf.check_seal(sealed)
    assert check.sealed and check.intact and check.valid and check.covers_whole_document
    assert check.signer_subject == "CN=Scell development seal,O=Scell"
    assert check.certificate_sha256 == pdf.seal_certificate_info()["sha256_fingerprint"]
    assert check.reason == "Scell signature request SIG-1"
    assert check.timestamped is False
    assert check.signed_at is not None and check.signed_at >= before
    assert len(page_texts(sealed)) == 4


def test_seal_certificate_info_describes_the_dev_seal():
    info = pdf.seal_certificate_info()

    assert info["subject"] == info["issuer"] == "CN=Scell development seal,O=Scell"
    assert len(info["sha256_fingerprint"]) == 64
    int(info["serial_number"], 16)
    not_before = datetime.fromisoformat(info["not_before"])
    not_after = datetime.fromisoformat(info["not_after"])
    assert timedelta(days=5 * 365) <= not_after - not_before <= timedelta(days=5 * 366)


def test_one_flipped_byte_inside_the_signed_range_invalidates_the_seal(one_page):
    sealed = pdf.seal_pdf(one_page, reason="Test")
    # The PDF header's version digit: inside ByteRange, and harmless to parsing.
    assert sealed.startswith(b"%PDF-1.7")
    tampered = b"%PDF-1.6" + sealed[len(b"%PDF-1.7") :]

    check = pdf.check_seal(tampered)

    assert check.sealed is True
    assert check.intact is False
    assert check.valid is False


def test_a_changed_text_inside_the_signed_range_invalidates_the_seal(one_page):
    stamped = pdf.stamp_pdf(one_page, [Stamp(name="Anne", signed_at=WINTER)])
    sealed = pdf.seal_pdf(stamped, reason="Test")
    producer = sealed.index(b"WeasyPrint")
    tampered = sealed[:producer] + b"WeasyPrinT" + sealed[producer + len(b"WeasyPrint") :]

    check = pdf.check_seal(tampered)

    assert check.sealed and not check.intact and not check.valid


def test_content_added_after_the_seal_is_detected(one_page):
    sealed = pdf.seal_pdf(one_page, reason="Test")
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    stream = generic.StreamObject(stream_data=b"0 0 1 rg 10 10 200 200 re f")
    writer.add_stream_to_page(0, writer.add_object(stream))
    out = io.BytesIO()
    writer.write(out)

    check = pdf.check_seal(out.getvalue())

    assert check.sealed and check.intact
    assert check.covers_whole_document is False
    assert check.valid is False


def test_an_annotation_added_after_the_seal_is_detected(one_page):
    sealed = pdf.seal_pdf(one_page, reason="Test")
    writer = PdfWriter(PdfReader(io.BytesIO(sealed)), incremental=True)
    annotation = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Text"),
            NameObject("/Rect"): RectangleObject([50, 50, 80, 80]),
            NameObject("/Contents"): TextStringObject("Added later"),
            NameObject("/F"): NumberObject(4),
        }
    )
    writer.add_annotation(0, annotation)
    out = io.BytesIO()
    writer.write(out)
    assert out.getvalue().startswith(sealed)

    check = pdf.check_seal(out.getvalue())

    assert check.sealed and check.intact
    assert check.covers_whole_document is False
    assert check.valid is False


def test_a_sealed_document_can_be_sealed_again(one_page):
    first = pdf.seal_pdf(one_page, reason="Signed document")
    second = pdf.seal_pdf(first, reason="Evidence")

    check = pdf.check_seal(second)

    assert check.valid and check.covers_whole_document
    assert check.reason == "Evidence"  # the latest seal is the one reported
    names = [sig.field_name for sig in PdfFileReader(io.BytesIO(second)).embedded_regular_signatures]
    assert names == ["ScellSeal", "ScellSeal-2"]


def test_sealing_keeps_an_earlier_signature_valid(one_page):
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed("Anne Martin", key)
    signed = sign_with(one_page, key, certificate, "Signer1")

    sealed = pdf.seal_pdf(signed, reason="Seal")

    assert pdf.check_seal(sealed).valid
    earlier = PdfFileReader(io.BytesIO(sealed)).embedded_regular_signatures[0]
    status = validate_pdf_signature(
        earlier, ValidationContext(trust_roots=[to_asn1(certificate)], allow_fetching=False)
    )
    assert status.intact and status.valid and status.trusted


def test_a_certified_or_sealed_upload_can_be_stamped_and_sealed(one_page):
    seal = pdf._seal()
    writer = IncrementalPdfFileWriter(io.BytesIO(one_page))
    metadata = signers.PdfSignatureMetadata(
        field_name="Author", certify=True, docmdp_permissions=fields.MDPPerm.NO_CHANGES
    )
    certified = signers.PdfSigner(metadata, signer=seal.signer).sign_pdf(writer).getvalue()
    resealed_upload = pdf.seal_pdf(one_page, reason="Earlier request")

    for upload in (certified, resealed_upload):
        stamped = pdf.stamp_pdf(upload, [Stamp(name="Anne", signed_at=WINTER)])
        check = pdf.check_seal(pdf.seal_pdf(stamped, reason="This request"))
        assert check.valid and check.reason == "This request"


def test_unsealed_and_unreadable_files_are_reported_not_raised(one_page):
    key = ec.generate_private_key(ec.SECP256R1())
    someone_else = sign_with(one_page, key, self_signed("Someone", key), "Signer1")

    for data in (one_page, b"", b"garbage", b"%PDF-1.7\ntruncated", someone_else):
        check = pdf.check_seal(data)
        assert check.sealed is False and check.valid is False


def test_a_seal_by_another_certificate_is_not_valid(one_page):
    key = ec.generate_private_key(ec.SECP256R1())
    impostor = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Scell"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Scell development seal"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(impostor)
        .issuer_name(impostor)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    forged = sign_with(one_page, key, certificate, "ScellSeal")

    check = pdf.check_seal(forged)

    assert check.sealed and check.intact
    assert check.valid is False
    assert check.certificate_sha256 != pdf.seal_certificate_info()["sha256_fingerprint"]


def test_a_configured_pkcs12_issued_by_a_ca_is_used(settings, tmp_path, one_page):
    # A real seal certificate is issued by a CA and may carry digitalSignature only (no nonRepudiation).
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Seal CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Scell"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Scell production seal"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    path = tmp_path / "seal.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"seal", key, certificate, [ca], serialization.BestAvailableEncryption(b"s3cret")
        )
    )
    settings.SIGNATURE_SEAL_PKCS12 = str(path)
    settings.SIGNATURE_SEAL_PKCS12_PASSWORD = "s3cret"
    settings.SIGNATURE_ALLOW_DEV_SEAL = False

    check = pdf.check_seal(pdf.seal_pdf(one_page, reason="Test"))

    assert check.valid and check.signer_subject == "CN=Scell production seal,O=Scell"
    info = pdf.seal_certificate_info()
    assert info["subject"] == "CN=Scell production seal,O=Scell"
    assert info["issuer"] == "CN=Test Seal CA"
    settings.SIGNATURE_SEAL_PKCS12_PASSWORD = "wrong"
    with pytest.raises(ImproperlyConfigured):
        pdf.seal_pdf(one_page, reason="Test")


def test_no_seal_configured_and_dev_seal_disallowed_is_a_configuration_error(settings, one_page):
    settings.SIGNATURE_ALLOW_DEV_SEAL = False

    with pytest.raises(ImproperlyConfigured):
        pdf.seal_pdf(one_page, reason="Test")


def test_the_dev_seal_is_created_once_under_concurrency(settings, tmp_path):
    settings.SIGNATURE_DEV_SEAL_DIR = tmp_path / "fresh"
    fingerprints: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            fingerprints.append(pdf.seal_certificate_info()["sha256_fingerprint"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert len(set(fingerprints)) == 1
    assert sorted(path.name for path in (tmp_path / "fresh").iterdir()) == ["dev-seal.p12"]


def test_a_tsa_url_gives_a_timestamped_seal(settings, tsa_url, tsa_trusted, one_page):
    settings.SIGNATURE_TSA_URL = tsa_url

    check = pdf.check_seal(pdf.seal_pdf(one_page, reason="Test"))

    assert check.valid and check.timestamped
    assert check.signed_at == TSA_TIME


def test_an_injected_timestamper_is_preferred(settings, tsa_credentials, tsa_trusted, one_page):
    settings.SIGNATURE_TSA_URL = "http://127.0.0.1:9/unreachable"

    sealed = pdf.seal_pdf(one_page, reason="Test", timestamper=dummy_timestamper(tsa_credentials))

    check = pdf.check_seal(sealed)
    assert check.valid and check.timestamped and check.signed_at == TSA_TIME


def test_a_timestamp_from_an_untrusted_tsa_is_not_reported(tsa_credentials, one_page):
    sealed = pdf.seal_pdf(one_page, reason="Test", timestamper=dummy_timestamper(tsa_credentials))

    check = pdf.check_seal(sealed)

    assert check.valid is True
    assert check.timestamped is False
    assert check.signed_at != TSA_TIME


# --- render_page_images ------------------------------------------------------------------------------


def test_render_page_images_gives_one_png_per_page(three_pages):
    images = pdf.render_page_images(three_pages, width=400)

    assert len(images) == 3
    for image in images:
        assert image.startswith(PNG_SIGNATURE)
        assert Image.open(io.BytesIO(image)).size[0] == 400
    assert len(pdf.render_page_images(three_pages, width=200, max_pages=2)) == 2


def test_render_page_images_bounds_the_height_of_a_strip_page():
    strip = HTML(string="<style>@page { size: 10pt 10000pt; margin: 0 }</style><p>.</p>").write_pdf()

    (image,) = pdf.render_page_images(strip, width=900)

    width, height = Image.open(io.BytesIO(image)).size
    assert height <= 900 * 8 + 1
    assert width < 900
