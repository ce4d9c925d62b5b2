"""Factur-X: the invoice PDF/A-3 with its CII XML embedded as ``factur-x.xml``.

``invoicing.formats.pdf`` renders the visual PDF/A-3b (embedded fonts, sRGB output intent); the
``factur-x`` library then attaches the XML, adds it to the catalog ``/AF`` array and replaces the
XMP metadata stream with one holding ``pdfaid:part=3``/``conformance=B``, the Factur-X PDF/A
extension schema and ``fx:ConformanceLevel``. WeasyPrint's own XMP stream is replaced, not
duplicated, so the file keeps exactly one metadata stream.
"""

from __future__ import annotations

import io
import re
from typing import Any

import facturx
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, TextStringObject

from invoicing.document import InvoiceDocument, Profile
from invoicing.formats.pdf import TYPE_LABELS, render_invoice_pdf

FACTURX_FILENAME = "factur-x.xml"

# fx:ConformanceLevel values written in the XMP, by profile (Factur-X 1.07 §6.2.2).
XMP_CONFORMANCE_LEVELS: dict[str, str] = {
    Profile.MINIMUM: "MINIMUM",
    Profile.BASIC_WL: "BASIC WL",
    Profile.BASIC: "BASIC",
    Profile.EN16931: "EN 16931",
    Profile.EXTENDED: "EXTENDED",
}

# AFRelationship of factur-x.xml. MINIMUM and BASIC WL lack the lines, so their XML is not a full
# equivalent of the PDF and Factur-X requires "Data" for them; from BASIC up the XML carries the
# whole invoice and "Alternative" (the ZUGFeRD/XRechnung expectation, allowed by Factur-X) says so.
AF_RELATIONSHIPS: dict[str, str] = {
    Profile.MINIMUM: "data",
    Profile.BASIC_WL: "data",
    Profile.BASIC: "alternative",
    Profile.EN16931: "alternative",
    Profile.EXTENDED: "alternative",
}

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PDF_NS = "http://ns.adobe.com/pdf/1.3/"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
_PDF_DATE_RE = re.compile(r"^D:(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([+-])(\d{2})'(\d{2})'$")


class FacturXError(ValueError):
    """The XML could not be embedded (e.g. invalid against the XSD of the announced profile)."""


def pdf_metadata(doc: InvoiceDocument) -> dict[str, str]:
    """Info dictionary / XMP Dublin Core values (title, author, subject, keywords)."""
    label = TYPE_LABELS.get(doc.type_code, ("Facture", "Invoice"))[0]
    return {
        "author": doc.seller.name,
        "keywords": "Factur-X, Facture, Invoice",
        "title": f"{doc.seller.name}: {label} {doc.number}",
        "subject": f"Factur-X {label} {doc.number} du {doc.issue_date.isoformat()} émise par "
        f"{doc.seller.name}",
    }


def embed_cii(
    pdf: bytes,
    cii_xml: bytes,
    *,
    profile: str,
    metadata: dict[str, str],
    lang: str = "fr-FR",
    check_xsd: bool = True,
) -> bytes:
    """Attach ``cii_xml`` to a PDF/A-3 ``pdf`` as Factur-X ``profile`` and return the new PDF.

    ``check_xsd`` (the Factur-X XSD of ``profile``, a few milliseconds) refuses to produce a
    Factur-X whose XML does not match the profile announced in the XMP.
    """
    level = Profile(profile).value
    try:
        out = facturx.generate_from_binary(
            pdf,
            cii_xml,
            flavor="factur-x",
            level=level,
            check_xsd=check_xsd,
            # A dict copy: the library rewrites non-string values of the dict it is given in place.
            pdf_metadata=dict(metadata),
            lang=lang,
            afrelationship=AF_RELATIONSHIPS[level],
        )
    except Exception as err:
        # The library raises bare ``Exception`` on XSD errors; give callers one type to catch.
        raise FacturXError(f"Cannot build the Factur-X {level} PDF: {err}") from err
    return _harmonise_metadata(out)


def _xmp_date(pdf_date: str) -> str | None:
    """``D:20250314101500+00'00'`` -> ``2025-03-14T10:15:00+00:00`` (same instant, XMP syntax)."""
    match = _PDF_DATE_RE.match(pdf_date)
    if not match:
        return None
    y, mo, d, h, mi, sec, sign, tzh, tzm = match.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{sec}{sign}{tzh}:{tzm}"


def _harmonise_metadata(pdf: bytes) -> bytes:
    """Make the XMP packet and the Info dictionary say the same thing, as PDF/A validators demand.

    The factur-x library writes ``pdf:Producer`` = "pypdf" into the XMP while the Info dictionary
    keeps WeasyPrint's producer, puts ``/Keywords`` in Info only, and writes ``rdf:Description``
    without the ``rdf:about`` attribute the XMP specification requires. veraPDF flags each of
    these (Info/XMP mismatch, missing rdf:about), so one extra pypdf pass (a few ms) fixes them.
    """
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    info = writer.metadata or {}
    metadata_stream = writer._root_object["/Metadata"].get_object()
    packet = metadata_stream.get_data()
    head, _, rest = packet.partition(b"?>")
    body, _, _ = rest.rpartition(b"<?xpacket")
    root = etree.fromstring(body.strip())
    descriptions = root.findall(f"{{{RDF_NS}}}RDF/{{{RDF_NS}}}Description")
    for description in descriptions:
        description.set(f"{{{RDF_NS}}}about", "")
    rdf = root.find(f"{{{RDF_NS}}}RDF")

    def set_property(namespace: str, name: str, value: str) -> None:
        element = rdf.find(f"{{{RDF_NS}}}Description/{{{namespace}}}{name}")
        if element is None:
            description = etree.SubElement(rdf, f"{{{RDF_NS}}}Description")
            description.set(f"{{{RDF_NS}}}about", "")
            element = etree.SubElement(description, f"{{{namespace}}}{name}")
        element.text = value

    producer = str(info.get("/Producer", "")) or "Scell"
    set_property(PDF_NS, "Producer", producer)
    keywords = str(info.get("/Keywords", ""))
    if keywords:
        set_property(PDF_NS, "Keywords", keywords)
    for info_key, xmp_name in (("/CreationDate", "CreateDate"), ("/ModDate", "ModifyDate")):
        xmp_value = _xmp_date(str(info.get(info_key, "")))
        if xmp_value:
            set_property(XMP_NS, xmp_name, xmp_value)
    new_body = etree.tostring(root, encoding="utf-8")
    metadata_stream.set_data(b"\n".join((head + b"?>", new_body, b'<?xpacket end="w"?>')))
    writer.add_metadata({NameObject("/Producer"): TextStringObject(producer)})
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def to_facturx_pdf(
    doc: InvoiceDocument,
    cii_xml: bytes,
    *,
    branding: dict[str, Any] | None = None,
    check_xsd: bool = True,
) -> bytes:
    """Render ``doc`` and embed ``cii_xml`` (the CII for ``doc.profile``): a Factur-X PDF/A-3b."""
    pdf = render_invoice_pdf(doc, branding=branding)
    return embed_cii(pdf, cii_xml, profile=doc.profile, metadata=pdf_metadata(doc), check_xsd=check_xsd)
