"""Validation against the official rule sets (XSD, EN 16931, Factur-X profiles, BR-FR, CDAR).

The CEN example invoices in fixtures/cen/ are copies of the official ones (EUPL 1.2, see
fixtures/cen/LICENSE.txt). They are EN 16931 invoices, not French ones: they must pass EN 16931 and
must fail the BR-FR rules this file names.
"""

from __future__ import annotations

import io
import multiprocessing
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from invoicing.validation import (
    Issue,
    ValidationReport,
    declared_profile,
    validate_cdar,
    validate_cii,
    validate_document,
    validate_facturx_pdf,
    validate_ubl,
    warm_up,
)
from invoicing.validation.engine import STYLESHEETS, parse_svrl

FIXTURES = Path(__file__).parent / "fixtures" / "cen"
CII_EXAMPLES = sorted((FIXTURES / "cii").glob("*.xml"))
UBL_EXAMPLES = sorted((FIXTURES / "ubl").glob("*.xml"))
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}


def _blocking(report: ValidationReport, *sources: str) -> list[Issue]:
    return [i for i in report.issues if i.blocking and (not sources or i.source in sources)]


def _mutate(path: Path, xpath: str, action: str, value: str = "") -> bytes:
    tree = etree.parse(str(path))
    nodes = tree.xpath(xpath, namespaces=NS)
    assert nodes, f"{xpath} not found in {path.name}"
    for node in nodes:
        if action == "remove":
            node.getparent().remove(node)
        else:
            node.text = value
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def test_fixtures_are_present() -> None:
    assert len(CII_EXAMPLES) == 6
    assert len(UBL_EXAMPLES) == 6


# --- CEN examples pass EN 16931 -------------------------------------------------------------------


@pytest.mark.parametrize("path", CII_EXAMPLES, ids=lambda p: p.name)
def test_cen_cii_examples_pass_xsd_and_en16931(path: Path) -> None:
    report = validate_cii(path.read_bytes(), french=False)
    assert report.syntax == "cii"
    assert report.profile == "en16931"
    assert _blocking(report, "xsd", "en16931", "syntax") == []


@pytest.mark.parametrize(
    "name",
    [p.name for p in CII_EXAMPLES if p.name != "CII_example5.xml"],
)
def test_cen_cii_examples_pass_the_facturx_en16931_profile(name: str) -> None:
    report = validate_cii((FIXTURES / "cii" / name).read_bytes(), french=False)
    assert report.valid, [i.to_dict() for i in report.errors]


def test_facturx_profile_rejects_what_the_profile_does_not_use() -> None:
    # CII_example5 has an AdditionalReferencedDocument with a type code Factur-X EN16931 does not
    # allow (only 916, 50 and 130): valid EN 16931, invalid Factur-X EN16931 profile.
    report = validate_cii((FIXTURES / "cii" / "CII_example5.xml").read_bytes(), french=False)
    profile_errors = _blocking(report, "facturx-profile")
    assert profile_errors
    assert all("AdditionalReferencedDocument" in i.message for i in profile_errors)
    assert all(i.flag == "error" for i in profile_errors)


@pytest.mark.parametrize("path", UBL_EXAMPLES, ids=lambda p: p.name)
def test_cen_ubl_examples_pass_xsd_and_en16931(path: Path) -> None:
    report = validate_ubl(path.read_bytes(), french=False)
    assert report.syntax == "ubl"
    assert report.valid, [i.to_dict() for i in report.errors]


@pytest.mark.parametrize("path", CII_EXAMPLES + UBL_EXAMPLES, ids=lambda p: p.name)
def test_autodetection_matches_the_syntax(path: Path) -> None:
    report = validate_document(path.read_bytes(), french=False)
    assert report.syntax == ("cii" if path.parent.name == "cii" else "ubl")
    assert _blocking(report, "xsd", "en16931", "syntax") == []


# --- Broken invoices fail with the exact rule ------------------------------------------------------


def test_cii_wrong_grand_total_breaks_br_co_15() -> None:
    xml = _mutate(
        FIXTURES / "cii" / "CII_example1.xml",
        "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount",
        "set",
        "9999.99",
    )
    report = validate_cii(xml, french=False)
    assert not report.valid
    fatal = {i.rule for i in _blocking(report, "en16931")}
    assert "BR-CO-15" in fatal
    issue = next(i for i in report.issues if i.rule == "BR-CO-15")
    assert issue.flag == "fatal"
    assert issue.message.startswith("[BR-CO-15]")
    assert "  " not in issue.message  # whitespace normalised
    assert issue.location.startswith("/")


def test_cii_without_seller_name_breaks_br_06() -> None:
    xml = _mutate(FIXTURES / "cii" / "CII_example1.xml", "//ram:SellerTradeParty/ram:Name", "remove")
    report = validate_cii(xml, french=False)
    assert "BR-06" in {i.rule for i in _blocking(report, "en16931")}
    # The XSD keeps Name optional: only the business rule catches this.
    assert _blocking(report, "xsd") == []


def test_ubl_wrong_tax_inclusive_amount_breaks_br_co_15() -> None:
    xml = _mutate(
        FIXTURES / "ubl" / "ubl-tc434-example1.xml",
        "/*/cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount",
        "set",
        "1.00",
    )
    report = validate_ubl(xml, french=False)
    assert "BR-CO-15" in {i.rule for i in _blocking(report, "en16931")}


def test_ubl_without_seller_name_breaks_br_06() -> None:
    xml = _mutate(
        FIXTURES / "ubl" / "ubl-tc434-example2.xml",
        "/*/cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
        "remove",
    )
    report = validate_ubl(xml, french=False)
    assert "BR-06" in {i.rule for i in _blocking(report, "en16931")}


def test_xsd_errors_are_reported_per_error() -> None:
    tree = etree.parse(str(FIXTURES / "cii" / "CII_example3.xml"))
    header = tree.find(".//rsm:ExchangedDocument", NS)
    etree.SubElement(header, f"{{{NS['ram']}}}Unexpected").text = "x"
    report = validate_cii(etree.tostring(tree), french=False)
    xsd = [i for i in report.issues if i.source == "xsd"]
    assert len(xsd) == 1
    assert xsd[0].rule == "SCELL-XSD"
    assert "Unexpected" in xsd[0].message
    assert "line" in xsd[0].location


# --- BR-FR ----------------------------------------------------------------------------------------

# Verified by hand on the CEN examples: no SIREN (BT-30), no billing mode (BT-23), no mandatory
# notes PMT/PMD/AAB (BT-22), no electronic addresses (BT-34/BT-49).
BR_FR_ON_CEN_CII = {
    "BR-FR-10_BT-30",
    "BR-FR-08_BT-23",
    "BR-FR-05_BT-22_PMT",
    "BR-FR-05_BT-22_PMD",
    "BR-FR-05_BT-22_AAB",
    "BR-FR-12_BT-49",
    "BR-FR-13_BT-34",
}


def test_br_fr_rules_fire_on_a_cen_cii_example() -> None:
    data = (FIXTURES / "cii" / "CII_example4.xml").read_bytes()
    report = validate_cii(data)
    br_fr = {i.rule for i in _blocking(report, "br-fr")}
    assert br_fr >= BR_FR_ON_CEN_CII
    assert all(i.flag == "fatal" for i in report.issues if i.source == "br-fr")
    assert not report.valid
    # Without the French rules the same invoice is valid.
    assert validate_cii(data, french=False).valid


def test_br_fr_10_is_satisfied_by_a_siren() -> None:
    tree = etree.parse(str(FIXTURES / "cii" / "CII_example4.xml"))
    seller = tree.find(".//ram:SellerTradeParty", NS)
    legal = seller.find("ram:SpecifiedLegalOrganization", NS)
    if legal is None:
        legal = etree.Element(f"{{{NS['ram']}}}SpecifiedLegalOrganization")
        seller.find("ram:Name", NS).addnext(legal)
    for child in list(legal):
        legal.remove(child)
    identifier = etree.SubElement(legal, f"{{{NS['ram']}}}ID", schemeID="0002")
    identifier.text = "732829320"
    report = validate_cii(etree.tostring(tree))
    rules = {i.rule for i in _blocking(report, "br-fr")}
    assert "BR-FR-10_BT-30" not in rules
    assert "BR-FR-08_BT-23" in rules
    assert _blocking(report, "xsd") == []


def test_br_fr_rules_fire_on_a_cen_ubl_example() -> None:
    report = validate_ubl((FIXTURES / "ubl" / "ubl-tc434-example3.xml").read_bytes())
    rules = {i.rule for i in _blocking(report, "br-fr")}
    assert {"BR-FR-10_BT-30", "BR-FR-08_BT-23", "BR-FR-05_BT-22-1"} <= rules


# --- Profiles -------------------------------------------------------------------------------------


def test_declared_profile_is_read_from_bt_24() -> None:
    root = etree.parse(str(CII_EXAMPLES[0])).getroot()
    assert declared_profile(root) == "urn:cen.eu:en16931:2017"


def test_expected_profile_mismatch_is_reported() -> None:
    report = validate_cii((FIXTURES / "cii" / "CII_example3.xml").read_bytes(), profile="basic", french=False)
    assert report.profile == "basic"
    assert "SCELL-PROFILE" in report.rules()


def test_unknown_profile_argument_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        validate_cii(b"<x/>", profile="gold")


def test_missing_bt_24_is_reported() -> None:
    xml = _mutate(
        FIXTURES / "cii" / "CII_example3.xml",
        "//ram:GuidelineSpecifiedDocumentContextParameter",
        "remove",
    )
    report = validate_cii(xml, french=False)
    assert report.profile is None
    assert "SCELL-PROFILE" in report.rules()
    # Still checked as EN 16931: BR-01 (specification identifier) fires as well.
    assert "BR-01" in report.rules()


def test_basicwl_document_gets_the_basicwl_profile_rules_not_en16931() -> None:
    tree = etree.parse(str(FIXTURES / "cii" / "CII_example3.xml"))
    tree.find(
        ".//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", NS
    ).text = "urn:factur-x.eu:1p0:basicwl"
    seller_name = tree.find(".//ram:SellerTradeParty/ram:Name", NS)
    seller_name.getparent().remove(seller_name)
    report = validate_cii(etree.tostring(tree), french=False)
    assert report.profile == "basicwl"
    # BASIC WL is not a complete EN 16931 invoice: the CEN rules are not applied...
    assert not any(i.source == "en16931" for i in report.issues)
    # ...but the XSD refuses invoice lines and the BASIC WL Schematron carries BR-06 itself.
    assert any(i.source == "xsd" and "IncludedSupplyChainTradeLineItem" in i.message for i in report.issues)
    assert "BR-06" in {i.rule for i in _blocking(report, "facturx-profile")}


def test_minimum_profile_uses_the_minimum_rules() -> None:
    tree = etree.parse(str(FIXTURES / "cii" / "CII_example3.xml"))
    tree.find(
        ".//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", NS
    ).text = "urn:factur-x.eu:1p0:minimum"
    report = validate_cii(etree.tostring(tree))
    assert report.profile == "minimum"
    assert {i.source for i in report.issues} <= {"xsd", "facturx-profile"}  # no EN 16931, no BR-FR
    assert any("PostalTradeAddress" in i.message for i in _blocking(report, "facturx-profile"))


# --- Unreadable and hostile input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"<Invoice><unclosed></Invoice>",
        bytes(range(256)) * 4,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        b"%PDF-1.7\n%garbage that is not a PDF",
        b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>',
    ],
    ids=["empty", "blank", "malformed", "random", "png", "broken-pdf", "unknown-root"],
)
def test_bad_input_gives_a_syntax_issue(data: bytes) -> None:
    report = validate_document(data)
    assert not report.valid
    assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]
    assert report.issues[0].source == "syntax"


@pytest.mark.parametrize("validator", [validate_cii, validate_ubl, validate_cdar, validate_facturx_pdf])
def test_each_validator_reports_bad_input(validator) -> None:
    report = validator(b"not xml at all")
    assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]


def test_xxe_does_not_read_local_files() -> None:
    payload = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE rsm:CrossIndustryInvoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100">'
        b"&xxe;</rsm:CrossIndustryInvoice>"
    )
    for validate in (validate_document, validate_cii):
        report = validate(payload)
        assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]
        dumped = repr(report.to_dict())
        assert "root:" not in dumped
        assert "/bin/" not in dumped


def test_entity_expansion_bomb_is_refused() -> None:
    lol = b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    payload = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">' + lol + b"]><lolz>&lol9;</lolz>"
    report = validate_document(payload)
    assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]


def test_xxe_inside_a_real_invoice_is_refused() -> None:
    text = (FIXTURES / "cii" / "CII_example3.xml").read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>", "", text, count=1)
    payload = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + text.replace(
        "<ram:Name>", "<ram:Name>&xxe;", 1
    )
    report = validate_document(payload.encode())
    assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]


# --- SVRL mapping ---------------------------------------------------------------------------------


def test_svrl_severity_and_rule_id_mapping() -> None:
    svrl = b"""<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
      <svrl:failed-assert id="BR-01" flag="fatal" location="/a"><svrl:text>
          [BR-01]-An Invoice shall have   a Specification identifier.</svrl:text></svrl:failed-assert>
      <svrl:failed-assert id="R008" flag="warning" location="/b"><svrl:text>advice</svrl:text>
      </svrl:failed-assert>
      <svrl:failed-assert location="/c"><svrl:text>[BR-52]-Each Additional supporting document</svrl:text>
      </svrl:failed-assert>
      <svrl:failed-assert id="FX-SCH-A-000015" location="/e"><svrl:text>[BR-06]-Seller name</svrl:text>
      </svrl:failed-assert>
      <svrl:successful-report location="/d"><svrl:text>Attribute @schemeID' marked as not used in the given
        context.</svrl:text></svrl:successful-report>
      <svrl:fired-rule context="/"/>
    </svrl:schematron-output>"""
    issues = parse_svrl(svrl, source="en16931")
    assert [(i.rule, i.flag, i.location) for i in issues] == [
        ("BR-01", "fatal", "/a"),
        ("R008", "warning", "/b"),
        ("BR-52", "error", "/c"),
        ("BR-06", "error", "/e"),
        ("FX-PROFILE", "error", "/d"),
    ]
    assert issues[3].message == "[BR-06]-Seller name (FX-SCH-A-000015)"
    assert issues[0].message == "[BR-01]-An Invoice shall have a Specification identifier."
    assert issues[4].message == "Attribute @schemeID' marked as not used in the given context."


def test_issue_to_dict_and_report_properties() -> None:
    fatal = Issue(rule="BR-06", message="m", flag="fatal", location="/x", source="en16931")
    warning = Issue(rule="R008", message="w", flag="warning", location="", source="en16931")
    assert fatal.to_dict() == {
        "rule": "BR-06",
        "message": "m",
        "flag": "fatal",
        "location": "/x",
        "source": "en16931",
    }
    report = ValidationReport(syntax="cii", profile="en16931", issues=[warning])
    assert report.valid
    assert report.warnings == [warning]
    report.issues.append(fatal)
    assert not report.valid
    assert report.errors == [fatal]
    assert report.to_dict()["valid"] is False


# --- Factur-X PDF ---------------------------------------------------------------------------------


def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_facturx_pdf_round_trip() -> None:
    from facturx import generate_from_binary

    xml = (FIXTURES / "cii" / "CII_example3.xml").read_bytes()
    pdf = generate_from_binary(_blank_pdf(), xml)
    report = validate_document(pdf, french=False)
    assert report.syntax == "facturx"
    assert report.profile == "en16931"
    assert report.valid, [i.to_dict() for i in report.errors]
    assert not validate_facturx_pdf(pdf).valid  # BR-FR: the CEN example has no SIREN


def test_facturx_pdf_with_wrong_xmp_level() -> None:
    from facturx import generate_from_binary

    xml = (FIXTURES / "cii" / "CII_example3.xml").read_bytes()
    pdf = generate_from_binary(_blank_pdf(), xml, level="basic", check_xsd=False)
    report = validate_facturx_pdf(pdf, french=False)
    xmp = [i for i in report.issues if i.rule == "SCELL-FX-XMP"]
    assert len(xmp) == 1
    assert "BASIC" in xmp[0].message


def test_pdf_with_a_wrongly_named_xml() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_blank_pdf())))
    writer.add_attachment("invoice.xml", (FIXTURES / "cii" / "CII_example3.xml").read_bytes())
    out = io.BytesIO()
    writer.write(out)
    report = validate_facturx_pdf(out.getvalue(), french=False)
    rules = report.rules()
    assert "SCELL-FX-FILENAME" in rules
    assert "SCELL-FX-XMP" in rules  # no Factur-X XMP metadata either
    assert _blocking(report, "en16931", "xsd") == []  # the content itself was still checked


def test_pdf_without_xml() -> None:
    report = validate_facturx_pdf(_blank_pdf())
    assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]


# --- CDAR -----------------------------------------------------------------------------------------


def test_cdar_rules_run() -> None:
    cdar = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse
    xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument><ram:ID>CDV-1</ram:ID></rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>F-1</ram:IssuerAssignedID>
      <ram:ProcessConditionCode>999</ram:ProcessConditionCode>
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>"""
    for report in (validate_cdar(cdar), validate_document(cdar)):
        assert report.syntax == "cdar"
        assert not report.valid
        assert report.issues
        assert all(i.source == "cdar" for i in report.issues)
        assert all(i.rule.startswith("BR-FR-") for i in report.issues)


def test_cdar_validator_rejects_an_invoice() -> None:
    report = validate_cdar(CII_EXAMPLES[0].read_bytes())
    assert [i.rule for i in report.issues] == ["SCELL-SYNTAX"]


# --- saxonche in threads and forked processes -----------------------------------------------------


def _fingerprint(report: ValidationReport) -> list[tuple[str, str, str]]:
    return [(i.rule, i.flag, i.location) for i in report.issues]


MIXED = [
    *CII_EXAMPLES,
    *UBL_EXAMPLES,
]


def test_warm_up_compiles_every_stylesheet() -> None:
    timings = warm_up()
    assert set(timings) == set(STYLESHEETS)
    assert all(seconds > 0 for seconds in timings.values())


def test_concurrent_validation_from_threads_gives_the_sequential_results() -> None:
    inputs = [p.read_bytes() for p in MIXED]
    expected = [_fingerprint(validate_document(data)) for data in inputs]
    jobs = list(range(len(inputs))) * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda k: (k, _fingerprint(validate_document(inputs[k]))), jobs))
    for k, fingerprint in results:
        assert fingerprint == expected[k], MIXED[k].name


def _child(paths: list[str], queue) -> None:  # runs in the forked child
    try:
        in_fork_thread = [_fingerprint(validate_document(Path(p).read_bytes())) for p in paths]
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_other_thread = pool.submit(lambda: validate_document(Path(paths[0]).read_bytes())).result()
        queue.put(("ok", in_fork_thread, in_other_thread.to_dict()))
    except BaseException as exc:  # report anything to the parent rather than dying silently
        queue.put(("error", repr(exc), None))


def test_forked_child_of_a_process_that_used_saxon() -> None:
    """saxonche survives fork() only in the forking thread: there validation gives the parent's
    results; any other thread of the child gets a fatal issue instead of a GraalVM segfault."""
    warm_up()
    paths = [str(p) for p in MIXED]
    expected = [_fingerprint(validate_document(Path(p).read_bytes())) for p in paths]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(paths, queue))
    process.start()
    try:
        status, in_fork_thread, in_other_thread = queue.get(timeout=120)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    assert status == "ok", in_fork_thread
    assert in_fork_thread == expected
    assert in_other_thread["valid"] is False
    assert {i["rule"] for i in in_other_thread["issues"]} == {"SCELL-SCHEMATRON"}
    assert process.exitcode == 0
    # The parent still works after the fork.
    assert _fingerprint(validate_document(Path(paths[0]).read_bytes())) == expected[0]


CLEAN_FORK_SCRIPT = """
import json, multiprocessing, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import invoicing.validation as v  # imported by the master, as gunicorn --preload / Dramatiq do

paths = sys.argv[1:]

def fingerprint(path):
    return [[i.rule, i.flag, i.location] for i in v.validate_document(Path(path).read_bytes()).issues]

def worker(queue):
    v.warm_up()  # the worker's own engine, started after fork (post_fork / process boot)
    with ThreadPoolExecutor(max_workers=4) as pool:
        queue.put(list(pool.map(fingerprint, paths * 2)))

if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=worker, args=(queue,)) for _ in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=240) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    json.dump({"results": results, "exitcodes": [w.exitcode for w in workers]}, sys.stdout)
"""


def test_threads_in_workers_forked_from_a_clean_master() -> None:
    """The production shape: a master that imported the package but never started saxonche forks
    workers which validate from several threads (gunicorn gthread, Dramatiq worker threads)."""
    import json
    import subprocess
    import sys

    paths = [str(p) for p in MIXED]
    expected = [_fingerprint(validate_document(Path(p).read_bytes())) for p in paths]
    done = subprocess.run(
        [sys.executable, "-c", CLEAN_FORK_SCRIPT, *paths],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    assert outcome["exitcodes"] == [0, 0]
    for result in outcome["results"]:
        assert [[tuple(issue) for issue in fp] for fp in result] == expected * 2


def test_worker_hooks_start_the_engine() -> None:
    from invoicing.validation.warmup import WarmUpMiddleware, gunicorn_post_fork

    WarmUpMiddleware().after_process_boot(broker=None)
    gunicorn_post_fork(server=None, worker=None)
    assert validate_document(CII_EXAMPLES[0].read_bytes(), french=False).syntax == "cii"
