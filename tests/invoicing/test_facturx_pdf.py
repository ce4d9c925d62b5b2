"""The human-readable invoice PDF (PDF/A-3b) and the Factur-X PDF built on it.

No veraPDF here (not installed, and not downloaded): the tests check by hand the PDF/A basics it
would check first — sRGB OutputIntent, embedded fonts, no transparency, one XMP stream declaring
PDF/A-3B, Info/XMP consistency, trailer /ID — plus the Factur-X specifics (attachment name,
AFRelationship, /AF array, fx: extension schema and conformance level).
"""

from __future__ import annotations

import base64
import io
import re
import time
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject

from invoicing.computation import compute
from invoicing.document import AllowanceCharge, InvoiceDocument, Line, Profile, TypeCode
from invoicing.formats.cii import to_cii
from invoicing.formats.facturx import (
    AF_RELATIONSHIPS,
    XMP_CONFORMANCE_LEVELS,
    FacturXError,
    embed_cii,
    to_facturx_pdf,
)
from invoicing.formats.pdf import (
    build_context,
    format_amount,
    format_price,
    format_quantity,
    format_rate,
    render_invoice_html,
    render_invoice_pdf,
)
from tests.invoicing.samples import all_samples

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
}
PROFILES = [Profile.MINIMUM, Profile.BASIC_WL, Profile.BASIC, Profile.EN16931, Profile.EXTENDED]


def sample(name: str = "simple_standard", **changes: object) -> InvoiceDocument:
    doc = all_samples()[name]
    for key, value in changes.items():
        setattr(doc, key, value)
    return compute(doc)


def text_of(pdf: bytes) -> str:
    """All page text, with the non-breaking spaces of the amounts turned into plain spaces."""
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return re.sub(r"[\u00a0\u202f]", " ", text)


def plain(value: str) -> str:
    return value.replace("\u00a0", " ")


def xmp_tree(reader: PdfReader) -> etree._Element:
    data = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    body = data.partition(b"?>")[2].rpartition(b"<?xpacket")[0]
    return etree.fromstring(body.strip())


def xmp_value(tree: etree._Element, path: str) -> str:
    """A simple XMP property, written either as an element or in the attribute shorthand."""
    values = tree.xpath(f"//rdf:Description/{path} | //rdf:Description/@{path}", namespaces=NS)
    assert len(values) == 1, (path, values)
    value = values[0]
    return str(value) if isinstance(value, str) else "".join(value.itertext()).strip()


def metadata_streams(reader: PdfReader) -> int:
    count = 0
    for number in range(1, int(reader.trailer["/Size"])):
        obj = reader.get_object(number)  # None for free xref entries
        if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Metadata":
            count += 1
    return count


def fonts_of(reader: PdfReader) -> list[DictionaryObject]:
    fonts = []
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            fonts.append(ref.get_object())
    return fonts


def assert_pdfa_basics(pdf: bytes) -> PdfReader:
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    # OutputIntent: PDF/A needs a device-independent output profile (sRGB from WeasyPrint).
    intents = root["/OutputIntents"]
    assert len(intents) == 1
    intent = intents[0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"].get_object().get_data()[36:40] == b"acsp"  # ICC signature
    # Every font, and for composite fonts the descendant, is embedded.
    for font in fonts_of(reader):
        descriptors = (
            [d.get_object()["/FontDescriptor"] for d in font["/DescendantFonts"]]
            if font["/Subtype"] == "/Type0"
            else [font["/FontDescriptor"]]
        )
        for descriptor in descriptors:
            descriptor = descriptor.get_object()
            assert any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")), descriptor
    # No transparency: no soft masks, constant alpha 1, no transparency group on pages.
    for page in reader.pages:
        assert "/Group" not in page
        for gs in page["/Resources"].get("/ExtGState", {}).values():
            gs = gs.get_object()
            assert gs.get("/SMask", "/None") == "/None"
            assert gs.get("/ca", 1) == 1 and gs.get("/CA", 1) == 1
            assert gs.get("/BM", "/Normal") in ("/Normal", "/Compatible")
    # A single XMP stream declaring PDF/A-3B, and the file identifier PDF/A requires.
    tree = xmp_tree(reader)
    assert xmp_value(tree, "pdfaid:part") == "3"
    assert xmp_value(tree, "pdfaid:conformance") == "B"
    assert len(reader.trailer["/ID"]) == 2
    assert metadata_streams(reader) == 1
    return reader


# --- formatting ---------------------------------------------------------------------------------


def test_amounts_are_french_formatted_with_two_decimals_and_currency() -> None:
    assert format_amount(Decimal("1234567.5"), "EUR") == "1\u00a0234\u00a0567,50\u00a0EUR"
    assert format_amount(Decimal("-24"), "USD") == "-24,00\u00a0USD"
    assert format_amount(Decimal("0.005"), "EUR") == "0,01\u00a0EUR"  # half-up, display only
    assert format_quantity(Decimal("3.0000")) == "3"
    assert format_quantity(Decimal("2.5")) == "2,5"
    assert format_price(Decimal("12.34567")) == "12,3457"
    assert format_price(Decimal("85")) == "85,00"
    assert format_rate(Decimal("5.50")) == "5,5\u00a0%"
    assert format_rate(None) == "–"


# --- the visual PDF -----------------------------------------------------------------------------


def test_invoice_pdf_is_pdfa3b_with_the_invoice_content() -> None:
    doc = sample("simple_standard")
    pdf = render_invoice_pdf(doc)
    reader = assert_pdfa_basics(pdf)
    assert len(reader.pages) == 1
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)  # A4
    text = text_of(pdf)
    for expected in (
        doc.number,
        doc.buyer.name,
        doc.seller.name,
        doc.seller.siren,
        doc.seller.vat_id,
        doc.buyer.siren,
        "Facture / Invoice",
        "Prestations de services",
        "Développement logiciel",
        "14/03/2025",  # issue date
        "13/04/2025",  # due date
        "PO-88123",  # BT-13
        "FR76 3000 6000 0112 3456 7890 189",  # IBAN grouped
        plain(format_amount(doc.totals.tax_exclusive, "EUR")),
        plain(format_amount(doc.totals.tax_total, "EUR")),
        plain(format_amount(doc.totals.tax_inclusive, "EUR")),
        plain(format_amount(doc.totals.amount_due, "EUR")),
        "Indemnité forfaitaire",  # PMT note
    ):
        assert expected in text, expected
    assert "SANDBOX" not in text
    assert "d'après les débits" not in text


def test_sandbox_documents_carry_the_watermark_on_every_page() -> None:
    doc = sample("simple_standard")
    template = doc.lines[0]
    doc.lines = [
        Line(
            id=str(i),
            name=f"Prestation {i}",
            quantity=Decimal("1"),
            unit_code="HUR",
            net_price=Decimal("10.00"),
            vat_category=template.vat_category,
            vat_rate=template.vat_rate,
        )
        for i in range(1, 71)
    ]
    doc.sandbox = True
    pdf = render_invoice_pdf(compute(doc))
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    for page in reader.pages:
        assert "SANDBOX – no legal value" in page.extract_text()
    # The lines header repeats on continuation pages.
    assert "Désignation / Description" in reader.pages[1].extract_text()


def test_credit_note_shows_type_and_preceding_invoice() -> None:
    doc = sample("credit_note")
    assert doc.type_code == TypeCode.CREDIT_NOTE
    text = text_of(render_invoice_pdf(doc))
    assert "Avoir / Credit note" in text
    assert doc.preceding_invoices[0].number in text


def test_vat_on_debits_option_and_goods_mention() -> None:
    doc = sample("goods", tax_point_code="5", delivery_note_ref="BL-2025-77", contract_ref="CTR-9")
    text = text_of(render_invoice_pdf(doc))
    assert "Option pour le paiement de la TVA d'après les débits" in text
    assert "Livraison de biens" in text
    assert "BL-2025-77" in text and "CTR-9" in text


def test_reverse_charge_prints_autoliquidation() -> None:
    doc = sample("reverse_charge")
    text = text_of(render_invoice_pdf(doc))
    assert "Autoliquidation" in text


def test_allowances_and_charges_are_listed() -> None:
    doc = sample("line_allowances_charges")
    doc.charges.append(AllowanceCharge(is_charge=True, amount=Decimal("15.00"), reason="Frais de port"))
    doc.charges[-1].vat_category = doc.lines[0].vat_category
    doc.charges[-1].vat_rate = doc.lines[0].vat_rate
    doc = compute(doc)
    text = text_of(render_invoice_pdf(doc))
    assert "Frais de port" in text
    assert "Remise / Allowance" in text or "Frais / Charge" in text
    assert plain(format_amount(doc.totals.charge_total, "EUR")) in text


@pytest.mark.parametrize("name", sorted(all_samples()))
def test_every_sample_renders(name: str) -> None:
    doc = sample(name)
    text = text_of(render_invoice_pdf(doc))
    assert doc.number in text
    assert doc.buyer.name in text
    assert plain(format_amount(doc.totals.amount_due, doc.currency)) in text
    for note in doc.notes:
        assert note.text[:30] in text.replace("\n", " ")


def test_html_is_escaped() -> None:
    doc = sample("simple_standard")
    doc.buyer.name = "<script>alert(1)</script> & Cie"
    html = render_invoice_html(doc)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Cie" in html


def test_branding_is_whitelisted() -> None:
    png = io.BytesIO()
    Image.new("RGB", (40, 20), (30, 80, 160)).save(png, format="PNG")
    logo = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    doc = sample("simple_standard")
    brand = build_context(
        doc,
        {
            "primary_color": "red;}</style><script>",
            "logo_url": "http://169.254.169.254/x",
            "footer_text": "Merci",
        },
    )["brand"]
    assert brand == {"footer_text": "Merci"}  # unsafe colour and remote logo dropped
    pdf = render_invoice_pdf(doc, branding={"primary_color": "#aa3300", "logo_url": logo})
    reader = assert_pdfa_basics(pdf)
    images = [x.get_object() for x in reader.pages[0]["/Resources"]["/XObject"].values()]
    assert any(image["/Subtype"] == "/Image" for image in images)
    assert all("/SMask" not in image for image in images)


def test_render_time_after_warm_up(capsys: pytest.CaptureFixture[str]) -> None:
    doc = sample("multi_rate")
    xml = to_cii(doc)
    render_invoice_pdf(doc)  # warm-up: fonts, template and stylesheet caches
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        render_invoice_pdf(doc)
        timings.append(time.perf_counter() - start)
    fx_timings = []
    for _ in range(5):
        start = time.perf_counter()
        to_facturx_pdf(doc, xml)
        fx_timings.append(time.perf_counter() - start)
    with capsys.disabled():
        print(
            f"\ninvoice PDF render: median {sorted(timings)[2] * 1000:.0f} ms; "
            f"Factur-X (render + XSD + embed): median {sorted(fx_timings)[2] * 1000:.0f} ms"
        )
    # Target is 300 ms; the assertion leaves headroom for slow, shared CI machines.
    assert sorted(timings)[2] < 1.0


# --- Factur-X -----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_facturx_pdf_embeds_the_xml_for_each_profile(profile: Profile) -> None:
    doc = sample("simple_standard", profile=profile)
    xml = to_cii(doc)
    pdf = to_facturx_pdf(doc, xml)

    assert facturx.get_xml_from_pdf(pdf, check_xsd=False) == ("factur-x.xml", xml)
    assert facturx.get_level(etree.fromstring(xml)) == profile.value

    reader = assert_pdfa_basics(pdf)
    root = reader.trailer["/Root"]
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "factur-x.xml"
    filespec = names[1].get_object()
    assert filespec["/F"] == filespec["/UF"] == "factur-x.xml"
    assert filespec["/AFRelationship"] == "/" + AF_RELATIONSHIPS[profile].capitalize()
    assert filespec["/AFRelationship"] == ("/Data" if profile in ("minimum", "basicwl") else "/Alternative")
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    af = [ref.get_object() for ref in root["/AF"].get_object()]
    assert filespec in af

    tree = xmp_tree(reader)
    assert xmp_value(tree, "fx:ConformanceLevel") == XMP_CONFORMANCE_LEVELS[profile]
    assert xmp_value(tree, "fx:DocumentFileName") == "factur-x.xml"
    assert xmp_value(tree, "fx:DocumentType") == "INVOICE"
    assert xmp_value(tree, "fx:Version") == "1.0"
    assert tree.xpath("//pdfaSchema:prefix/text()", namespaces=NS) == ["fx"]
    assert all(d.get(f"{{{NS['rdf']}}}about") == "" for d in tree.xpath("//rdf:Description", namespaces=NS))

    # Info dictionary and XMP agree (veraPDF compares them).
    info = reader.metadata
    assert xmp_value(tree, "pdf:Producer") == info["/Producer"]
    assert xmp_value(tree, "pdf:Keywords") == info["/Keywords"]
    assert xmp_value(tree, "dc:title") == info["/Title"] and doc.number in info["/Title"]
    assert xmp_value(tree, "dc:creator") == info["/Author"] == doc.seller.name

    text = text_of(pdf)
    assert doc.number in text and doc.buyer.name in text
    assert plain(format_amount(doc.totals.amount_due, "EUR")) in text


def test_facturx_xmp_conformance_level_strings() -> None:
    assert XMP_CONFORMANCE_LEVELS == {
        "minimum": "MINIMUM",
        "basicwl": "BASIC WL",
        "basic": "BASIC",
        "en16931": "EN 16931",
        "extended": "EXTENDED",
    }


def test_sandbox_facturx_is_marked() -> None:
    doc = sample("simple_standard", sandbox=True)
    pdf = to_facturx_pdf(doc, to_cii(doc))
    assert "SANDBOX" in text_of(pdf)


def test_facturx_refuses_xml_of_another_profile() -> None:
    doc = sample("simple_standard", profile=Profile.MINIMUM)
    en16931_xml = to_cii(sample("simple_standard"))
    with pytest.raises(FacturXError, match="not valid against the official XML Schema Definition"):
        to_facturx_pdf(doc, en16931_xml)


def test_embed_cii_accepts_a_cen_example(cen_xml: bytes) -> None:
    pdf = embed_cii(
        render_invoice_pdf(sample("simple_standard")),
        cen_xml,
        profile=Profile.EN16931,
        metadata={"author": "A", "title": "T", "subject": "S", "keywords": "K"},
    )
    assert facturx.get_xml_from_pdf(pdf, check_xsd=False) == ("factur-x.xml", cen_xml)
    # Streams must be indirect objects; the catalog points at the (single) metadata stream.
    assert isinstance(PdfReader(io.BytesIO(pdf)).trailer["/Root"].raw_get("/Metadata"), IndirectObject)


@pytest.fixture
def cen_xml() -> bytes:
    from pathlib import Path

    return (Path(__file__).parent / "fixtures" / "cen" / "cii" / "CII_example2.xml").read_bytes()
