"""The EN 16931 semantic invoice, independent of Django and of any syntax.

Every format writer (CII, UBL, Factur-X), every parser (import) and the computation work on these
plain dataclasses; the Django models convert to and from them. Business-term ids (BT-/BG-) of
EN 16931-1 are given beside each field so the mapping to CII and UBL can be checked by reading.

Amounts are ``Decimal``. Monetary amounts are rounded to 2 decimals by ``invoicing.computation``;
quantities and unit prices keep up to 4 (CII/UBL allow more, BR-FR-DEC rules cap what France accepts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal("0.00")


class TypeCode(StrEnum):
    """BT-3 invoice type codes (UNTDID 1001) Scell issues or imports."""

    COMMERCIAL_INVOICE = "380"
    CREDIT_NOTE = "381"
    CORRECTED_INVOICE = "384"
    PREPAYMENT_INVOICE = "386"
    SELF_BILLED_INVOICE = "389"


class VatCategory(StrEnum):
    """BT-118/BT-151 VAT category codes (UNCL 5305) of EN 16931."""

    STANDARD = "S"
    ZERO_RATED = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    INTRA_COMMUNITY = "K"
    EXPORT = "G"
    NOT_SUBJECT = "O"
    CANARY_IGIC = "L"
    CEUTA_MELILLA_IPSI = "M"


class Profile(StrEnum):
    """Factur-X profiles; ``facturx`` library level names are the lower-case values."""

    MINIMUM = "minimum"
    BASIC_WL = "basicwl"
    BASIC = "basic"
    EN16931 = "en16931"
    EXTENDED = "extended"


class OperationCategory(StrEnum):
    """French mandatory mention: nature of the operation (goods, services or both)."""

    GOODS = "goods"
    SERVICES = "services"
    MIXED = "mixed"


@dataclass
class Address:
    """BG-5 / BG-8 / BG-15 postal address."""

    line1: str = ""  # BT-35 / BT-50 / BT-75
    line2: str = ""  # BT-36 / BT-51 / BT-76
    line3: str = ""  # BT-162 / BT-163 / BT-165
    city: str = ""  # BT-37 / BT-52 / BT-77
    postcode: str = ""  # BT-38 / BT-53 / BT-78
    subdivision: str = ""  # BT-39 / BT-54 / BT-79
    country: str = ""  # BT-40 / BT-55 / BT-80 (ISO 3166-1 alpha-2)


@dataclass
class ElectronicAddress:
    """BT-34 / BT-49 electronic address with its scheme (EAS code list: 0225 = French SIREN routing,
    0009 = SIRET, EM = e-mail)."""

    value: str
    scheme: str = "0225"


@dataclass
class Party:
    """BG-4 seller or BG-7 buyer."""

    name: str  # BT-27 / BT-44
    trading_name: str = ""  # BT-28 / BT-45
    siren: str = ""  # BT-30 / BT-47 legal registration id, scheme 0002 (SIREN)
    siret: str = ""  # BT-29 / BT-46 identifier, scheme 0009 (SIRET)
    vat_id: str = ""  # BT-31 / BT-48
    tax_registration_id: str = ""  # BT-32 (seller only, "FC")
    legal_form: str = ""  # BT-33 additional legal information (capital, RCS...)
    address: Address = field(default_factory=Address)
    electronic_address: ElectronicAddress | None = None  # BT-34 / BT-49
    contact_name: str = ""  # BT-41 / BT-56
    contact_phone: str = ""  # BT-42 / BT-57
    contact_email: str = ""  # BT-43 / BT-58
    # Imported invoices: BT-30/BT-47 when its scheme is not SIREN (0002), e.g. a foreign register.
    legal_id: str = ""
    legal_id_scheme: str = ""
    # Imported invoices: BT-29/BT-46 identifiers other than SIRET, as (value, scheme) (e.g. GLN 0088).
    other_ids: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class AllowanceCharge:
    """BG-20/BG-21 (document level) or BG-27/BG-28 (line level) allowance or charge."""

    is_charge: bool
    amount: Decimal  # BT-92 / BT-99 / BT-136 / BT-141
    base_amount: Decimal | None = None  # BT-93 / BT-100 / BT-137 / BT-142
    percent: Decimal | None = None  # BT-94 / BT-101 / BT-138 / BT-143
    reason: str = ""  # BT-97 / BT-104 / BT-139 / BT-144
    reason_code: str = ""  # BT-98 / BT-105 / BT-140 / BT-145 (UNCL 5189 / UNCL 7161)
    # Document level only: the VAT the allowance or charge falls under (BT-95/96, BT-102/103).
    vat_category: str = ""
    vat_rate: Decimal | None = None


@dataclass
class Line:
    """BG-25 invoice line."""

    id: str  # BT-126
    name: str  # BT-153 item name
    quantity: Decimal  # BT-129
    unit_code: str  # BT-130 (UN/ECE rec 20, e.g. C62 one, HUR hour, DAY)
    net_price: Decimal  # BT-146 item net price
    vat_category: str  # BT-151
    vat_rate: Decimal | None  # BT-152 (None for category O)
    description: str = ""  # BT-154
    gross_price: Decimal | None = None  # BT-148
    price_base_quantity: Decimal | None = None  # BT-149
    allowances: list[AllowanceCharge] = field(default_factory=list)
    charges: list[AllowanceCharge] = field(default_factory=list)
    net_amount: Decimal = ZERO  # BT-131, computed
    note: str = ""  # BT-127
    seller_item_id: str = ""  # BT-155
    buyer_item_id: str = ""  # BT-156
    standard_item_id: str = ""  # BT-157 (GTIN, scheme 0160)
    origin_country: str = ""  # BT-159
    period_start: dt.date | None = None  # BT-134
    period_end: dt.date | None = None  # BT-135
    order_line_ref: str = ""  # BT-132
    object_ref: str = ""  # BT-128 invoice line object identifier
    accounting_ref: str = ""  # BT-133 buyer accounting reference
    classifications: list[tuple[str, str]] = field(default_factory=list)  # BT-158 (code, list id)
    attributes: list[tuple[str, str]] = field(default_factory=list)  # BG-32 item attributes (name, value)


@dataclass
class VatBreakdown:
    """BG-23 VAT breakdown, one per category and rate."""

    category: str  # BT-118
    rate: Decimal | None  # BT-119
    taxable_amount: Decimal  # BT-116
    tax_amount: Decimal  # BT-117
    exemption_reason: str = ""  # BT-120
    exemption_reason_code: str = ""  # BT-121 (VATEX code list)


@dataclass
class Totals:
    """BG-22 document totals."""

    line_total: Decimal = ZERO  # BT-106
    allowance_total: Decimal = ZERO  # BT-107
    charge_total: Decimal = ZERO  # BT-108
    tax_exclusive: Decimal = ZERO  # BT-109
    tax_total: Decimal = ZERO  # BT-110 in invoice currency
    tax_total_accounting: Decimal | None = None  # BT-111 in VAT accounting currency (BT-6)
    tax_inclusive: Decimal = ZERO  # BT-112
    prepaid: Decimal = ZERO  # BT-113
    rounding: Decimal = ZERO  # BT-114
    amount_due: Decimal = ZERO  # BT-115


@dataclass
class Payment:
    """BG-16 payment instructions and BT-20 payment terms."""

    means_code: str = "58"  # BT-81 (UNCL 4461: 30 credit transfer, 58 SEPA credit transfer, ...)
    means_text: str = ""  # BT-82
    remittance_info: str = ""  # BT-83
    iban: str = ""  # BT-84
    account_name: str = ""  # BT-85
    bic: str = ""  # BT-86
    terms: str = ""  # BT-20
    mandate_ref: str = ""  # BT-89
    creditor_id: str = ""  # BT-90
    debited_iban: str = ""  # BT-91


@dataclass
class Note:
    """BG-1 invoice note; ``subject`` is the UNTDID 4451 code (PMT, PMD, AAB, REG, ABL, TXD...)."""

    text: str  # BT-22
    subject: str = ""  # BT-21


@dataclass
class PrecedingInvoice:
    """BG-3 preceding invoice reference (credit notes, corrective invoices)."""

    number: str  # BT-25
    issue_date: dt.date | None = None  # BT-26


@dataclass
class Delivery:
    """BG-13 delivery information."""

    date: dt.date | None = None  # BT-72 actual delivery date
    party_name: str = ""  # BT-70
    location_id: str = ""  # BT-71
    address: Address | None = None  # BG-15
    location_scheme: str = ""  # BT-71-1 (ICD, e.g. 0009 SIRET, 0088 GLN); BR-FR-CO-10 requires one


@dataclass
class InvoiceDocument:
    """One invoice or credit note, as EN 16931 models it."""

    number: str  # BT-1
    type_code: str  # BT-3
    issue_date: dt.date  # BT-2
    currency: str  # BT-5
    seller: Party  # BG-4
    buyer: Party  # BG-7
    lines: list[Line]  # BG-25
    profile: str = Profile.EN16931  # selects the Factur-X guideline (BT-24)
    tax_currency: str = ""  # BT-6, when VAT is accounted in another currency (e.g. EUR)
    # BT-111 needs an exchange rate when BT-6 differs from BT-5: amount_in_tax_currency = x * rate.
    tax_exchange_rate: Decimal | None = None
    due_date: dt.date | None = None  # BT-9
    tax_point_date: dt.date | None = None  # BT-7
    # BT-8 VAT point date code (UNTDID 2475): "5" issue date, "29" payment date, "3" invoice date.
    # France: "option pour le paiement de la TVA d'après les débits" is BT-8 = 5 (debits).
    tax_point_code: str = ""
    buyer_reference: str = ""  # BT-10
    project_ref: str = ""  # BT-11
    contract_ref: str = ""  # BT-12
    purchase_order_ref: str = ""  # BT-13
    sales_order_ref: str = ""  # BT-14
    receiving_advice_ref: str = ""  # BT-15
    delivery_note_ref: str = ""  # BT-16 despatch advice reference
    accounting_ref: str = ""  # BT-19
    tender_ref: str = ""  # BT-17 tender or lot reference
    invoiced_object_ref: str = ""  # BT-18
    invoiced_object_scheme: str = ""  # BT-18-1 (UNTDID 1153)
    payee: Party | None = None  # BG-10, when the payee differs from the seller
    tax_representative: Party | None = None  # BG-11 seller tax representative
    # BT-23 business process type. France (BR-FR-08): B1 goods, S1 services, M1 mixed, with
    # variants B2/S2/M2 (already paid), B4/S4/M4 (final after down payment), S3/B7/S5/S6/B8/M8...
    business_process: str = ""
    notes: list[Note] = field(default_factory=list)
    preceding_invoices: list[PrecedingInvoice] = field(default_factory=list)
    delivery: Delivery | None = None
    invoice_period_start: dt.date | None = None  # BT-73
    invoice_period_end: dt.date | None = None  # BT-74
    payment: Payment = field(default_factory=Payment)
    allowances: list[AllowanceCharge] = field(default_factory=list)
    charges: list[AllowanceCharge] = field(default_factory=list)
    vat_breakdown: list[VatBreakdown] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    # VAT exemption reasons by category, used to fill BT-120/121 of the breakdown (E, AE, K, G, O...).
    exemption_reasons: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Sandbox documents carry a visible "SANDBOX – no legal value" mark.
    sandbox: bool = False
