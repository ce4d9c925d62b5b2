"""The PDF layer of eIDAS simple electronic signatures: inspect, stamp, seal, check and preview.

A signed document goes through ``inspect_pdf`` (refuse what we cannot safely handle), ``stamp_pdf`` (the
visible signature boxes, rewritten as a new file) and ``seal_pdf`` (the platform's PAdES seal, an
incremental update over the whole file). ``check_seal`` answers "is this exactly the file Scell sealed?".

Settings are read at call time, never cached at import, so tests and operators can change them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import io
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdfium2
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader, PdfWriter, Transformation
from weasyprint import HTML
from weasyprint.urls import URLFetcher

__all__ = [
    "STAMP_HEIGHT",
    "STAMP_WIDTH",
    "PdfInfo",
    "PdfRejected",
    "SealCheck",
    "Stamp",
    "check_seal",
    "inspect_pdf",
    "render_page_images",
    "seal_certificate_info",
    "seal_pdf",
    "stamp_pdf",
]

# Size of a placed signature box, in PDF points; (x, y) of a Stamp is its lower-left corner.
STAMP_WIDTH = 220.0
STAMP_HEIGHT = 66.0
# Where a stamp given a page but no coordinates goes: the lower-right corner, this far from the edges.
_DEFAULT_MARGIN = 36.0

DEFAULT_SEAL_FIELD = "ScellSeal"
DEV_SEAL_FILENAME = "dev-seal.p12"
DEV_SEAL_COMMON_NAME = "Scell development seal"

# Acrobat and pypdf both look for %%EOF in the last KiB; its absence means a truncated upload.
_EOF_WINDOW = 1024


# --- Inspection --------------------------------------------------------------------------------------


class PdfRejected(Exception):
    """A PDF the signature feature refuses; ``code`` and ``message`` feed the API error object."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PdfInfo:
    """What the signature feature needs to know about an accepted PDF."""

    sha256: str
    size: int
    page_count: int
    # (width, height) in PDF points of each page as displayed: the crop box, with /Rotate applied.
    page_sizes: tuple[tuple[float, float], ...]


def inspect_pdf(data: bytes) -> PdfInfo:
    """Accept a real, parseable, unencrypted PDF within the size and page limits, or raise PdfRejected."""
    if not data:
        raise PdfRejected("empty", "The file is empty.")
    max_bytes = int(settings.SIGNATURE_MAX_PDF_BYTES)
    # Checked before parsing so an oversized upload costs no parsing work.
    if len(data) > max_bytes:
        raise PdfRejected("too_large", f"The PDF is larger than the {_human_size(max_bytes)} limit.")
    # Strictly at offset 0: pyHanko's incremental writer and the ByteRange offsets assume it.
    if not data.startswith(b"%PDF-"):
        raise PdfRejected("not_a_pdf", "The file is not a PDF document (no %PDF- header).")
    if b"%%EOF" not in data[-_EOF_WINDOW:]:
        raise PdfRejected("not_a_pdf", "The PDF is truncated or damaged (no end-of-file marker).")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        # Even one that opens with an empty user password must be decrypted to be stamped, and carries
        # its author's permissions (often "no changes"): refuse it whatever its passwords.
        if reader.is_encrypted:
            raise PdfRejected("encrypted", "The PDF is encrypted; upload a copy without password protection.")
        page_count = len(reader.pages)
        if page_count == 0:
            raise PdfRejected("empty", "The PDF has no pages.")
        max_pages = int(settings.SIGNATURE_MAX_PDF_PAGES)
        if page_count > max_pages:
            raise PdfRejected("too_many_pages", f"The PDF has {page_count} pages; the limit is {max_pages}.")
        page_sizes = tuple(_displayed_size(page) for page in reader.pages)
    except PdfRejected:
        raise
    except Exception:
        # pypdf signals damaged structure through many exception types (its own, ValueError, KeyError,
        # zlib.error, RecursionError…); for an untrusted upload they all mean the same thing.
        raise PdfRejected("not_a_pdf", "The PDF could not be read; it may be damaged.") from None
    if any(width <= 0 or height <= 0 for width, height in page_sizes):
        raise PdfRejected("not_a_pdf", "The PDF has a page with an invalid size.")
    return PdfInfo(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), page_count=page_count, page_sizes=page_sizes
    )


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MiB"
    if size >= 1024:
        return f"{size / 1024:g} KiB"
    return f"{size} bytes"


def _displayed_size(page) -> tuple[float, float]:
    box = page.cropbox
    width, height = float(box.width), float(box.height)
    if page.rotation % 180 == 90:
        return height, width
    return width, height


# --- Stamping ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """One visible signature box: on ``page`` at (``x``, ``y``) (its lower-left corner, in points from
    the page's left and bottom edges as displayed), or on the appended signature page when ``page`` is
    None. A page without coordinates gets the box in its lower-right corner."""

    name: str
    signed_at: datetime
    page: int | None = None
    x: float | None = None
    y: float | None = None
    detail: str = ""


class _NoFetch(URLFetcher):
    """Stamps carry user-typed text; refusing every URL keeps a crafted name from reaching the network
    or the file system (SSRF), should escaping ever be missed."""

    def fetch(self, url, headers=None):
        raise ValueError(f"External resources are disabled in signature stamps: {url}")


_STAMP_CSS = """
@page { margin: 0; }
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; font-family: "DejaVu Sans", sans-serif; color: #10243e; }
.overlay { position: relative; overflow: hidden; }
.overlay + .overlay, .signatures { break-before: page; }
.stamp {
  width: %(w)spt; height: %(h)spt; padding: 4pt 6pt; overflow: hidden;
  border: 1pt solid #1d4ed8; border-radius: 3pt; background: rgba(255, 255, 255, 0.92);
  font-size: 7pt; line-height: 1.3;
}
.overlay .stamp { position: absolute; }
.stamp p { margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.stamp .label { color: #1d4ed8; font-size: 6.5pt; }
.stamp .name {
  font-weight: bold; font-size: 8.5pt; white-space: normal; overflow-wrap: anywhere; max-height: 2.6em;
}
.signatures { padding: 48pt 56pt; }
.signatures h1 { font-size: 18pt; margin: 0 0 6pt; }
.signatures .meta { font-size: 9pt; margin: 0 0 2pt; }
.signatures .list { margin-top: 18pt; }
.signatures .list .stamp { margin: 0 0 10pt; width: 100%%; height: auto; font-size: 9pt; }
.signatures .list .stamp .label { font-size: 8pt; }
.signatures .list .stamp .name { font-size: 11pt; }
"""


def stamp_pdf(data: bytes, stamps: Sequence[Stamp], *, title: str = "", reference: str = "") -> bytes:
    """Return a new PDF with a visible box per stamp, the original page content kept as it was.

    Placed stamps are drawn as an overlay merged onto their page; the others are listed on one
    appended "Signatures" page. The result is a rewrite, not an incremental update: it is meant to be
    stamped before any seal.
    """
    for stamp in stamps:
        if stamp.signed_at.tzinfo is None or stamp.signed_at.utcoffset() is None:
            raise ValueError("Stamp.signed_at must be an aware datetime.")
    reader = PdfReader(io.BytesIO(data), strict=False)
    writer = PdfWriter(clone_from=reader)
    # A rewrite breaks any earlier signature anyway; a stale certification (DocMDP "no changes") left in
    # /Perms would only make pyHanko refuse the seal that follows.
    writer.root_object.pop("/Perms", None)
    page_count = len(writer.pages)

    placed: dict[int, list[Stamp]] = {}
    listed: list[Stamp] = []
    for stamp in stamps:
        if stamp.page is None:
            listed.append(stamp)
            continue
        if not 1 <= stamp.page <= page_count:
            raise ValueError(f"Stamp page {stamp.page} is outside the document (1-{page_count}).")
        placed.setdefault(stamp.page, []).append(stamp)

    sections: list[str] = []
    page_styles: list[str] = []
    for number, page_stamps in sorted(placed.items()):
        width, height = _displayed_size(writer.pages[number - 1])
        page_styles.append(f"@page p{number} {{ size: {width:.3f}pt {height:.3f}pt; margin: 0; }}")
        boxes = []
        for stamp in page_stamps:
            # Clamped so a box dropped near an edge (or a box bigger than a tiny page) stays readable.
            x = width - STAMP_WIDTH - _DEFAULT_MARGIN if stamp.x is None else stamp.x
            y = _DEFAULT_MARGIN if stamp.y is None else stamp.y
            x = min(max(x, 0.0), max(width - STAMP_WIDTH, 0.0))
            y = min(max(y, 0.0), max(height - STAMP_HEIGHT, 0.0))
            # CSS positions from the top; the stamp's y is from the bottom (PDF convention).
            top = max(height - y - STAMP_HEIGHT, 0.0)
            boxes.append(_stamp_html(stamp, style=f"left: {x:.3f}pt; top: {top:.3f}pt;"))
        # 1pt shorter than the page so rounding can never spill a blank page, which would shift every
        # following overlay onto the wrong page.
        sections.append(
            f'<section class="overlay" style="page: p{number}; width: {width:.3f}pt; '
            f'height: {height - 1:.3f}pt;">' + "".join(boxes) + "</section>"
        )
    if listed:
        page_styles.append("@page signatures { size: A4; margin: 0; }")
        meta = []
        if title:
            meta.append(f'<p class="meta">Document : {html.escape(title)}</p>')
        if reference:
            meta.append(f'<p class="meta">Référence / Reference : {html.escape(reference)}</p>')
        sections.append(
            '<section class="signatures" style="page: signatures;"><h1>Signatures</h1>'
            + "".join(meta)
            + '<div class="list">'
            + "".join(_stamp_html(stamp) for stamp in listed)
            + "</div></section>"
        )
    if not sections:
        return _write(writer)

    css = _STAMP_CSS % {"w": STAMP_WIDTH, "h": STAMP_HEIGHT} + "\n".join(page_styles)
    document = f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><style>{css}</style></head><body>'
    document += "".join(sections) + "</body></html>"
    # One weasyprint run for every overlay and the signature page: its start-up cost dominates.
    rendered = PdfReader(io.BytesIO(HTML(string=document, url_fetcher=_NoFetch()).write_pdf()))
    if len(rendered.pages) < len(placed) + (1 if listed else 0):
        raise RuntimeError("The signature stamps did not render one overlay per page.")
    for index, number in enumerate(sorted(placed)):
        page = writer.pages[number - 1]
        page.merge_transformed_page(rendered.pages[index], _overlay_transform(page), over=True, expand=False)
    for extra in rendered.pages[len(placed) :]:
        writer.add_page(extra)
    return _write(writer)


def _stamp_html(stamp: Stamp, *, style: str = "") -> str:
    tz = ZoneInfo(settings.BUSINESS_TIME_ZONE)
    local = stamp.signed_at.astimezone(tz)
    # The offset is printed because the legal time of signature must be unambiguous across DST changes.
    offset = local.strftime("%z")
    when = f"{local:%d/%m/%Y %H:%M:%S} (UTC{offset[:3]}:{offset[3:]})"
    lines = [
        '<p class="label">Signé électroniquement par / Signed by</p>',
        f'<p class="name">{html.escape(stamp.name)}</p>',
        f"<p>Le / On {when}</p>",
    ]
    if stamp.detail:
        lines.append(f"<p>{html.escape(stamp.detail)}</p>")
    style_attr = f' style="{style}"' if style else ""
    return f'<div class="stamp"{style_attr}>{"".join(lines)}</div>'


def _overlay_transform(page) -> Transformation:
    """Map the overlay, drawn upright at the displayed size, onto the page's unrotated user space.

    Merging through a transformation leaves the original content stream untouched (unlike
    ``transfer_rotation_to_content``, which rewrites it).
    """
    box = page.cropbox
    left, bottom = float(box.left), float(box.bottom)
    width, height = float(box.width), float(box.height)
    # /Rotate turns the page clockwise for display; (u, v) are displayed coordinates. A value that is not
    # a multiple of 90 is invalid, and treated as 0 like _displayed_size does.
    matrix = {
        0: (1, 0, 0, 1, left, bottom),
        90: (0, 1, -1, 0, left + width, bottom),
        180: (-1, 0, 0, -1, left + width, bottom + height),
        270: (0, -1, 1, 0, left, bottom + height),
    }.get(page.rotation % 360, (1, 0, 0, 1, left, bottom))
    return Transformation(ctm=matrix)


def _write(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- The seal ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seal:
    signer: signers.SimpleSigner
    certificate: x509.Certificate


def _seal() -> _Seal:
    configured = str(settings.SIGNATURE_SEAL_PKCS12 or "")
    if configured:
        path = Path(configured)
        password = settings.SIGNATURE_SEAL_PKCS12_PASSWORD or ""
    elif settings.SIGNATURE_ALLOW_DEV_SEAL:
        path = _ensure_dev_seal(Path(settings.SIGNATURE_DEV_SEAL_DIR))
        password = ""
    else:
        raise ImproperlyConfigured(
            "SIGNATURE_SEAL_PKCS12 is not set and the development seal is disabled "
            "(SCELL_SIGNATURE_ALLOW_DEV_SEAL=0): configure the platform's seal certificate."
        )
    try:
        stat = path.stat()
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read the seal PKCS#12 {path}: {exc}") from None
    # Keyed by mtime and size so a rotated certificate is picked up without a restart.
    return _load_seal(str(path), stat.st_mtime_ns, stat.st_size, password)


@functools.lru_cache(maxsize=4)
def _load_seal(path: str, mtime_ns: int, size: int, password: str) -> _Seal:
    try:
        signer = signers.SimpleSigner.load_pkcs12_data(
            Path(path).read_bytes(), other_certs=[], passphrase=password.encode() or None
        )
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"Cannot load the seal PKCS#12 {path}: {exc}") from None
    certificate = x509.load_der_x509_certificate(signer.signing_cert.dump())
    return _Seal(signer=signer, certificate=certificate)


def _ensure_dev_seal(directory: Path) -> Path:
    path = directory / DEV_SEAL_FILENAME
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Scell"),
            x509.NameAttribute(NameOID.COMMON_NAME, DEV_SEAL_COMMON_NAME),
        ]
    )
    not_before = datetime.now(UTC) - timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=5 * 365 + 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    blob = pkcs12.serialize_key_and_certificates(
        DEV_SEAL_COMMON_NAME.encode(), key, certificate, None, serialization.NoEncryption()
    )
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".dev-seal-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        # os.link publishes the complete file atomically and fails if another process won the race, so
        # the first seal stays the only one; os.replace would let the loser overwrite a key that may
        # already have sealed documents.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path


def seal_pdf(
    data: bytes,
    *,
    reason: str,
    location: str = "",
    field_name: str = DEFAULT_SEAL_FIELD,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """Seal the whole document with the platform's certificate (PAdES B-B, or B-T with a TSA).

    The seal is an incremental update, so earlier signatures and revisions stay valid. When
    ``field_name`` is already taken (a re-seal), ``<field_name>-2``, ``-3``… is used. ``timestamper``
    (tests) takes precedence over ``settings.SIGNATURE_TSA_URL``.
    """
    seal = _seal()
    if timestamper is None and settings.SIGNATURE_TSA_URL:
        timestamper = HTTPTimeStamper(settings.SIGNATURE_TSA_URL, timeout=10)
    # strict=True: whatever we seal must be readable by check_seal, which validates strictly.
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=True)
    taken = {name for name, _value, _ref in fields.enumerate_sig_fields(writer.prev)}
    name, suffix = field_name, 1
    while name in taken:
        suffix += 1
        name = f"{field_name}-{suffix}"
    metadata = signers.PdfSignatureMetadata(
        field_name=name,
        reason=reason,
        location=location or None,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=False,
    )
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=seal.signer,
        timestamper=timestamper,
        new_field_spec=fields.SigFieldSpec(sig_field_name=name),
    )
    return pdf_signer.sign_pdf(writer).getvalue()


# --- Checking ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealCheck:
    """What a verifier shows. ``valid`` is the bottom line: the seal is intact, cryptographically valid,
    made with Scell's seal certificate, and nothing was changed after it (``covers_whole_document``)."""

    sealed: bool
    intact: bool
    valid: bool
    covers_whole_document: bool
    signed_at: datetime | None
    timestamped: bool
    signer_subject: str
    certificate_sha256: str
    reason: str


_NOT_SEALED = SealCheck(
    sealed=False,
    intact=False,
    valid=False,
    covers_whole_document=False,
    signed_at=None,
    timestamped=False,
    signer_subject="",
    certificate_sha256="",
    reason="",
)

# Revisions after the seal that leave what it vouches for untouched: none, or validation data (DSS)
# and document timestamps (PAdES LTA).
_HARMLESS_LATER_CHANGES = {ModificationLevel.NONE, ModificationLevel.LTA_UPDATES}


# pyHanko wants nonRepudiation by default; an electronic seal certificate (eIDAS art. 36) may carry only
# digitalSignature, and either is enough for the platform's own seal.
_SEAL_KEY_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
)


def check_seal(data: bytes) -> SealCheck:
    """Validate the latest Scell seal of ``data``; an unreadable or unsealed file is reported, not raised."""
    seal = _seal()
    seal_fingerprint = seal.certificate.fingerprint(hashes.SHA256()).hex()
    # Built before the try below, so a configuration error surfaces instead of reading as a bad seal.
    trust_root = asn1_x509.Certificate.load(seal.certificate.public_bytes(serialization.Encoding.DER))
    signer_context = ValidationContext(trust_roots=[trust_root], allow_fetching=False)
    tsa_context = _tsa_context()
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        embedded = list(reader.embedded_regular_signatures)
    except Exception:
        # Anything pyHanko cannot parse is simply not a document Scell sealed.
        return _NOT_SEALED

    def is_scell_seal(signature) -> bool:
        name = signature.field_name or ""
        if name == DEFAULT_SEAL_FIELD or name.startswith(f"{DEFAULT_SEAL_FIELD}-"):
            return True
        try:
            return hashlib.sha256(signature.signer_cert.dump()).hexdigest() == seal_fingerprint
        except Exception:
            return False

    candidates = [signature for signature in embedded if is_scell_seal(signature)]
    if not candidates:
        return _NOT_SEALED
    # embedded_regular_signatures is ordered by signed revision: the last seal is the one that matters.
    signature = candidates[-1]
    reason = str(signature.sig_object.get("/Reason", ""))
    try:
        status = validate_pdf_signature(
            signature,
            signer_validation_context=signer_context,
            ts_validation_context=tsa_context,
            key_usage_settings=_SEAL_KEY_USAGE,
        )
    except Exception:
        # A malformed signature dictionary or CMS blob: present, but nothing can be vouched for.
        return SealCheck(
            sealed=True,
            intact=False,
            valid=False,
            covers_whole_document=False,
            signed_at=None,
            timestamped=False,
            signer_subject="",
            certificate_sha256="",
            reason=reason,
        )

    signer_cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    fingerprint = signer_cert.fingerprint(hashes.SHA256()).hex()
    covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and status.modification_level in _HARMLESS_LATER_CHANGES
    )
    tst = status.timestamp_validity
    timestamped = bool(tst is not None and tst.intact and tst.valid and tst.trusted)
    signed_at = tst.timestamp if timestamped else status.signer_reported_dt
    intact = bool(status.intact)
    return SealCheck(
        sealed=True,
        intact=intact,
        valid=intact and bool(status.valid and status.trusted) and fingerprint == seal_fingerprint and covers,
        covers_whole_document=covers,
        signed_at=signed_at,
        timestamped=timestamped,
        signer_subject=signer_cert.subject.rfc4514_string(),
        certificate_sha256=fingerprint,
        reason=reason,
    )


def _tsa_context() -> ValidationContext:
    """A timestamp counts only from a trusted TSA: its token sits in the unsigned part of the seal, so
    anyone could swap in a token from a TSA of their own asserting another time."""
    paths = list(settings.SIGNATURE_TSA_TRUST_ROOTS)
    if not paths:
        # The operating system's trust list: public TSAs chain to the usual roots.
        return ValidationContext(allow_fetching=False)
    roots = []
    for path in paths:
        raw = Path(path).read_bytes()
        loaded = (
            x509.load_pem_x509_certificates(raw)
            if b"-----BEGIN" in raw
            else [x509.load_der_x509_certificate(raw)]
        )
        roots.extend(
            asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)) for cert in loaded
        )
    return ValidationContext(trust_roots=roots, allow_fetching=False)


def seal_certificate_info() -> dict[str, str]:
    """The platform seal certificate, for the public verification page and the API."""
    certificate = _seal().certificate
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial_number": format(certificate.serial_number, "x"),
        "sha256_fingerprint": certificate.fingerprint(hashes.SHA256()).hex(),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


# --- Preview -----------------------------------------------------------------------------------------

# PDFium is not thread-safe (pypdfium2 documents it); gunicorn threads must take turns.
_PDFIUM_LOCK = threading.Lock()
# A page far taller than wide (a 1pt × 14,400pt strip) would otherwise ask for a bitmap of millions of
# rows at phone width: its height is capped at this many times the width.
_MAX_ASPECT = 8


def render_page_images(data: bytes, *, width: int = 900, max_pages: int | None = None) -> list[bytes]:
    """PNG images of the pages, ``width`` pixels wide, for showing the document on a phone.

    Pages more than ``_MAX_ASPECT`` times taller than wide are rendered narrower, to bound memory.
    """
    if width <= 0:
        raise ValueError("width must be positive.")
    images: list[bytes] = []
    with _PDFIUM_LOCK:
        document = pypdfium2.PdfDocument(data)
        try:
            count = len(document) if max_pages is None else min(len(document), max_pages)
            for index in range(count):
                page = document[index]
                try:
                    page_width, page_height = page.get_size()
                    scale = min(width / page_width, width * _MAX_ASPECT / page_height)
                    bitmap = page.render(scale=scale)
                    try:
                        out = io.BytesIO()
                        bitmap.to_pil().save(out, format="PNG", optimize=False)
                        images.append(out.getvalue())
                    finally:
                        bitmap.close()
                finally:
                    page.close()
        finally:
            document.close()
    return images
