"""EN 16931 calculations (invoicing.computation) against hand-computed figures."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from invoicing.computation import check, compute, money
from invoicing.document import AllowanceCharge, ElectronicAddress, Line
from tests.invoicing import samples

D = Decimal


def rules(doc) -> set[str]:
    return {rule for rule, _ in check(doc)}


def test_money_rounds_half_up_not_bankers():
    # Python's default (ROUND_HALF_EVEN) would give 0.12 and 2.52; EN 16931 rounds half-up.
    assert money(D("0.125")) == D("0.13")
    assert money(D("2.525")) == D("2.53")
    assert money(D("-0.125")) == D("-0.13")


def test_simple_standard_totals():
    doc = compute(samples.simple_standard())
    # 10 HUR × 85.00 = 850.00; VAT 20 % = 170.00; total 1 020.00.
    assert doc.lines[0].net_amount == D("850.00")
    assert [(vb.category, vb.rate, vb.taxable_amount, vb.tax_amount) for vb in doc.vat_breakdown] == [
        ("S", D("20"), D("850.00"), D("170.00"))
    ]
    t = doc.totals
    assert (t.line_total, t.tax_exclusive, t.tax_total, t.tax_inclusive, t.amount_due) == (
        D("850.00"),
        D("850.00"),
        D("170.00"),
        D("1020.00"),
        D("1020.00"),
    )
    assert t.tax_total_accounting is None


def test_multi_rate_breakdown_per_rate():
    doc = compute(samples.multi_rate())
    # Lines: 2 × 450 = 900.00 (20 %), 12 × 18.50 = 222.00 (10 %), 3 × 39.90 = 119.70 (5.5 %),
    # 1 × 120 = 120.00 (2.1 %), 7 × 3.333 = 23.331 → 23.33 (20 %).
    assert [line.net_amount for line in doc.lines] == [
        D("900.00"),
        D("222.00"),
        D("119.70"),
        D("120.00"),
        D("23.33"),
    ]
    breakdown = {vb.rate: (vb.taxable_amount, vb.tax_amount) for vb in doc.vat_breakdown}
    # 20 %: 923.33 × 0.20 = 184.666 → 184.67; 10 %: 22.20; 5.5 %: 119.70 × 0.055 = 6.5835 → 6.58;
    # 2.1 %: 120 × 0.021 = 2.52.
    assert breakdown == {
        D("20"): (D("923.33"), D("184.67")),
        D("10"): (D("222.00"), D("22.20")),
        D("5.5"): (D("119.70"), D("6.58")),
        D("2.1"): (D("120.00"), D("2.52")),
    }
    # 1 385.03 + (184.67 + 22.20 + 6.58 + 2.52 = 215.97) = 1 601.00
    assert doc.totals.line_total == D("1385.03")
    assert doc.totals.tax_total == D("215.97")
    assert doc.totals.tax_inclusive == D("1601.00")


def test_line_allowances_and_charges():
    doc = compute(samples.line_allowances_charges())
    first, second = doc.lines
    # Line 1: 4 × 250.00 = 1 000.00; 10 % allowance computed on that base = 100.00; charge 15.00.
    assert first.allowances[0].base_amount == D("1000.00")
    assert first.allowances[0].amount == D("100.00")
    assert first.net_amount == D("915.00")
    # Line 2: 4 × 32.50 = 130.00 − 5.00 = 125.00.
    assert second.net_amount == D("125.00")
    assert doc.totals.line_total == D("1040.00")
    assert doc.totals.tax_total == D("208.00")
    assert doc.totals.amount_due == D("1248.00")


def test_document_allowance_and_charge():
    doc = compute(samples.document_allowance_charge())
    # Lines 1 200 + 1 200 (20 %) + 60 (5.5 %) = 2 460.00.
    # Allowance 5 % × 2 400.00 = 120.00 (20 %), charge 35.00 (20 %).
    assert doc.allowances[0].amount == D("120.00")
    t = doc.totals
    assert (t.line_total, t.allowance_total, t.charge_total, t.tax_exclusive) == (
        D("2460.00"),
        D("120.00"),
        D("35.00"),
        D("2375.00"),  # BR-CO-13: 2 460 − 120 + 35
    )
    breakdown = {vb.rate: (vb.taxable_amount, vb.tax_amount) for vb in doc.vat_breakdown}
    # 20 %: 2 400 − 120 + 35 = 2 315.00 → 463.00; 5.5 %: 60.00 → 3.30.
    assert breakdown == {D("20"): (D("2315.00"), D("463.00")), D("5.5"): (D("60.00"), D("3.30"))}
    assert t.tax_total == D("466.30")
    assert t.tax_inclusive == D("2841.30")


def test_foreign_currency_vat_in_accounting_currency():
    doc = compute(samples.foreign_currency())
    # 3 × 1 999.00 = 5 997.00 USD; VAT 1 199.40 USD; BT-111 = 1 199.40 × 0.9215 = 1 105.2471 → 1 105.25 EUR.
    assert doc.totals.tax_total == D("1199.40")
    assert doc.totals.tax_total_accounting == D("1105.25")
    assert doc.totals.tax_inclusive == D("7196.40")


def test_prepaid_amount_reduces_amount_due():
    doc = compute(samples.prepaid())
    # 2 500 + 20 % = 3 000.00; 300.00 already paid → 2 700.00 due (BR-CO-16).
    assert doc.totals.tax_inclusive == D("3000.00")
    assert doc.totals.prepaid == D("300.00")
    assert doc.totals.amount_due == D("2700.00")


@pytest.mark.parametrize("category", ["E", "AE", "K", "G", "Z"])
def test_zero_rate_categories_have_no_vat(category):
    doc = compute(
        {
            "E": samples.exempt,
            "AE": samples.reverse_charge,
            "K": samples.intra_eu,
            "G": samples.export,
            "Z": samples.zero_rated,
        }[category]()
    )
    (vb,) = doc.vat_breakdown
    assert vb.category == category
    assert vb.tax_amount == D("0.00")
    assert doc.totals.tax_inclusive == doc.totals.tax_exclusive
    if category == "Z":
        assert (vb.exemption_reason_code, vb.exemption_reason) == ("", "")  # BR-Z-10
    else:
        assert vb.exemption_reason_code.startswith("VATEX-")
        assert vb.exemption_reason


def test_not_subject_has_no_rate():
    doc = compute(samples.not_subject())
    (vb,) = doc.vat_breakdown
    assert (vb.category, vb.rate, vb.tax_amount, vb.exemption_reason_code) == (
        "O",
        None,
        D("0.00"),
        "VATEX-EU-O",
    )


@pytest.mark.parametrize("name", list(samples.SCENARIOS))
def test_calculation_rules_hold_for_every_sample(name):
    doc = compute(samples.SCENARIOS[name]())
    t = doc.totals
    assert t.line_total == sum((line.net_amount for line in doc.lines), D(0))  # BR-CO-10
    assert t.allowance_total == sum((ac.amount for ac in doc.allowances), D(0))  # BR-CO-11
    assert t.charge_total == sum((ac.amount for ac in doc.charges), D(0))  # BR-CO-12
    assert t.tax_exclusive == t.line_total - t.allowance_total + t.charge_total  # BR-CO-13
    assert t.tax_total == sum((vb.tax_amount for vb in doc.vat_breakdown), D(0))  # BR-CO-14
    assert t.tax_inclusive == t.tax_exclusive + t.tax_total  # BR-CO-15
    assert t.amount_due == t.tax_inclusive - t.prepaid + t.rounding  # BR-CO-16
    assert sum((vb.taxable_amount for vb in doc.vat_breakdown), D(0)) == t.tax_exclusive
    for vb in doc.vat_breakdown:
        if vb.rate is not None:
            assert vb.tax_amount == money(vb.taxable_amount * vb.rate / 100)  # BR-CO-17
    for amount in (t.line_total, t.tax_exclusive, t.tax_total, t.tax_inclusive, t.amount_due):
        assert amount == amount.quantize(D("0.01"))


@pytest.mark.parametrize("name", list(samples.SCENARIOS))
def test_samples_pass_early_checks(name):
    assert check(samples.SCENARIOS[name]()) == []


def _one_line_doc(*lines: Line):
    doc = samples.simple_standard()
    doc.lines = list(lines)
    return doc


def test_rounding_three_times_a_third():
    doc = compute(_one_line_doc(Line("1", "Tiers", D("3"), "C62", D("0.333"), "S", D("20"))))
    # 3 × 0.333 = 0.999 → 1.00; VAT 0.20.
    assert doc.lines[0].net_amount == D("1.00")
    assert doc.totals.tax_total == D("0.20")
    assert doc.totals.tax_inclusive == D("1.20")


def test_rounding_half_up_on_line_and_vat():
    doc = compute(_one_line_doc(Line("1", "Demi-centime", D("1"), "C62", D("12.245"), "S", D("10"))))
    # 12.245 → 12.25 (half-up; banker's rounding would give 12.24); 12.25 × 10 % = 1.225 → 1.23.
    assert doc.lines[0].net_amount == D("12.25")
    assert doc.totals.tax_total == D("1.23")


def test_vat_is_rounded_per_group_not_per_line():
    doc = compute(
        _one_line_doc(
            Line("1", "A", D("1"), "C62", D("0.05"), "S", D("10")),
            Line("2", "B", D("1"), "C62", D("0.05"), "S", D("10.00")),
        )
    )
    # One group (10 and 10.00 are the same rate): 0.10 × 10 % = 0.01, not 0.005 → 0.01 twice = 0.02.
    assert len(doc.vat_breakdown) == 1
    assert doc.totals.tax_total == D("0.01")


def test_price_base_quantity():
    line = Line("1", "Vis", D("1000"), "C62", D("12.50"), "S", D("20"), price_base_quantity=D("100"))
    doc = compute(_one_line_doc(line))
    # 1 000 × 12.50 / 100 = 125.00
    assert doc.lines[0].net_amount == D("125.00")


def test_line_percent_allowance_rounding():
    line = Line(
        "1",
        "Article",
        D("3"),
        "C62",
        D("3.35"),
        "S",
        D("20"),
        allowances=[AllowanceCharge(False, None, percent=D("7.5"), reason="Remise")],  # type: ignore[arg-type]
    )
    doc = compute(_one_line_doc(line))
    # 3 × 3.35 = 10.05; 7.5 % = 0.75375 → 0.75; net 9.30.
    assert doc.lines[0].allowances[0].amount == D("0.75")
    assert doc.lines[0].net_amount == D("9.30")


def test_compute_is_idempotent():
    doc = compute(samples.document_allowance_charge())
    first = copy.deepcopy(doc.totals)
    assert compute(doc).totals == first


# --- check() -----------------------------------------------------------------------------------


def test_check_does_not_modify_the_document():
    doc = samples.line_allowances_charges()
    check(doc)
    assert doc.lines[0].net_amount == D("0.00")
    assert doc.lines[0].allowances[0].amount is None


def test_check_no_lines():
    doc = samples.simple_standard()
    doc.lines = []
    assert "BR-16" in rules(doc)


def test_check_standard_rate_must_be_positive():
    doc = samples.simple_standard()
    doc.lines[0].vat_rate = D("0")
    assert "BR-S-05" in rules(doc)


def test_check_exempt_rate_and_reason():
    doc = samples.exempt()
    doc.lines[0].vat_rate = D("20")
    doc.exemption_reasons = {}
    assert {"BR-E-05", "BR-E-10"} <= rules(doc)


def test_check_reverse_charge_needs_buyer_vat():
    doc = samples.reverse_charge()
    doc.buyer.vat_id = ""
    doc.buyer.siren = ""
    assert "BR-AE-02" in rules(doc)


def test_check_not_subject_rules():
    doc = samples.not_subject()
    doc.lines[0].vat_rate = D("0")
    doc.seller.vat_id = "FR44732829320"
    found = rules(doc)
    assert {"BR-O-05", "BR-O-02"} <= found


def test_check_intra_community_needs_delivery_information():
    doc = samples.intra_eu()
    doc.delivery = None
    doc.buyer.vat_id = ""
    assert {"BR-IC-02", "BR-IC-11", "BR-IC-12"} <= rules(doc)


def test_check_due_date_or_terms():
    doc = samples.simple_standard()
    doc.due_date = None
    doc.payment.terms = ""
    assert "BR-CO-25" in rules(doc)


def test_check_french_rules():
    doc = samples.simple_standard()
    doc.notes = [note for note in doc.notes if note.subject != "PMT"]
    doc.business_process = ""
    doc.seller.siren = "12345"
    doc.buyer.electronic_address = ElectronicAddress("999999999", "0225")
    doc.number = "FA 2025/01"
    found = rules(doc)
    assert {"BR-FR-05", "BR-FR-08", "BR-FR-10", "BR-FR-21", "BR-FR-02", "BR-FR-09"} <= found


def test_check_credit_note_and_corrective_references():
    credit = samples.credit_note()
    credit.preceding_invoices = []
    corrective = samples.corrective()
    corrective.preceding_invoices = []
    assert "BR-FR-CO-05" in rules(credit)
    assert "BR-FR-CO-04" in rules(corrective)


def test_check_foreign_currency_needs_eur_accounting():
    doc = samples.foreign_currency()
    doc.tax_currency = ""
    assert "BR-FR-CO-12" in rules(doc)
    assert "BR-FR-CO-12" not in {rule for rule, _ in check(doc, french=False)}


def test_check_french_vat_rates():
    doc = samples.simple_standard()
    doc.lines[0].vat_rate = D("19")
    assert "BR-FR-16" in rules(doc)
