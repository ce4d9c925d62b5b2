"""UN/CEFACT Cross Industry Invoice (CII D16B) writer, as Factur-X 1.0.07 profiles it.

``to_cii`` turns a computed ``InvoiceDocument`` into ``rsm:CrossIndustryInvoice`` bytes. The element
order follows the Factur-X XSDs (sequence order matters); what a profile does not allow is left out:
MINIMUM carries only the header and totals, BASIC WL has no lines, BASIC has lines without the item
details, contacts, BIC, rounding... of EN 16931. EXTENDED is written like EN 16931 (a superset).

All user data goes through lxml element text and attributes, never through string building, so it
is always escaped.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from invoicing.document import (
    Address,
    AllowanceCharge,
    InvoiceDocument,
    Line,
    Party,
    Profile,
)

NS_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NS_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": NS_RSM, "qdt": NS_QDT, "ram": NS_RAM, "udt": NS_UDT}

# BT-24 specification identifiers of Factur-X 1.0.07 for each profile.
GUIDELINES: dict[str, str] = {
    Profile.MINIMUM: "urn:factur-x.eu:1p0:minimum",
    Profile.BASIC_WL: "urn:factur-x.eu:1p0:basicwl",
    Profile.BASIC: "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    Profile.EN16931: "urn:cen.eu:en16931:2017",
    Profile.EXTENDED: "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
}

# Scheme identifiers: SIREN (ICD 0002) for BT-30/BT-47, SIRET (ICD 0009) for BT-29/BT-46 (BR-FR-09/10),
# GTIN (ICD 0160) for BT-157.
SCHEME_SIREN = "0002"
SCHEME_SIRET = "0009"
SCHEME_GTIN = "0160"


def _ram(tag: str) -> str:
    return f"{{{NS_RAM}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """Append ``ram:<tag>`` to ``parent`` with optional text and attributes."""
    element = etree.SubElement(parent, _ram(tag), {k: v for k, v in attrs.items() if v})
    if text is not None:
        element.text = text
    return element


def fmt_amount(value: Decimal) -> str:
    """Monetary amounts: exactly 2 decimals (BR-DEC-*, BR-FR-DEC-01)."""
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def fmt_decimal(value: Decimal) -> str:
    """Quantities and prices: as given, without exponent or trailing zeros (BR-FR-DEC-02/03 cap decimals)."""
    text = f"{Decimal(value).normalize():f}"
    return text


def fmt_rate(value: Decimal) -> str:
    """VAT rates and percentages with 2 decimals: '20.00', '5.50' are in the BR-FR-16 list."""
    return fmt_amount(value)


def _date(parent: etree._Element, tag: str, value: dt.date, *, ns: str = NS_UDT) -> etree._Element:
    """``<ram:tag><udt:DateTimeString format="102">YYYYMMDD</...>`` (format 102 = CCYYMMDD)."""
    wrapper = _sub(parent, tag)
    inner = etree.SubElement(wrapper, f"{{{ns}}}DateTimeString", format="102")
    inner.text = value.strftime("%Y%m%d")
    return wrapper


class _Writer:
    def __init__(self, doc: InvoiceDocument) -> None:
        self.doc = doc
        self.profile = str(doc.profile or Profile.EN16931)
        if self.profile not in GUIDELINES:
            raise ValueError(f"Unknown Factur-X profile {self.profile!r}")
        self.minimum = self.profile == Profile.MINIMUM
        # Lines exist from BASIC up; EN 16931 and EXTENDED carry the full semantic model.
        self.lines = self.profile in (Profile.BASIC, Profile.EN16931, Profile.EXTENDED)
        self.full = self.profile in (Profile.EN16931, Profile.EXTENDED)
        self.extended = self.profile == Profile.EXTENDED

    # -- document -------------------------------------------------------------------------------

    def build(self) -> etree._Element:
        doc = self.doc
        root = etree.Element(f"{{{NS_RSM}}}CrossIndustryInvoice", nsmap=NSMAP)

        context = etree.SubElement(root, f"{{{NS_RSM}}}ExchangedDocumentContext")
        if doc.business_process:
            # BT-23: France puts the billing framework (B1/S1/M1...) here (BR-FR-08).
            _sub(
                _sub(context, "BusinessProcessSpecifiedDocumentContextParameter"), "ID", doc.business_process
            )
        _sub(_sub(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINES[self.profile])

        header = etree.SubElement(root, f"{{{NS_RSM}}}ExchangedDocument")
        _sub(header, "ID", doc.number)
        _sub(header, "TypeCode", str(doc.type_code))
        _date(header, "IssueDateTime", doc.issue_date)
        if not self.minimum:
            for note in doc.notes:
                included = _sub(header, "IncludedNote")
                _sub(included, "Content", note.text)
                if note.subject:
                    _sub(included, "SubjectCode", note.subject)

        transaction = etree.SubElement(root, f"{{{NS_RSM}}}SupplyChainTradeTransaction")
        if self.lines:
            for line in doc.lines:
                self.line(transaction, line)
        self.agreement(transaction)
        self.delivery(transaction)
        self.settlement(transaction)
        return root

    # -- lines ----------------------------------------------------------------------------------

    def line(self, parent: etree._Element, line: Line) -> None:
        item = _sub(parent, "IncludedSupplyChainTradeLineItem")
        document = _sub(item, "AssociatedDocumentLineDocument")
        _sub(document, "LineID", line.id)
        if line.note:
            _sub(_sub(document, "IncludedNote"), "Content", line.note)

        product = _sub(item, "SpecifiedTradeProduct")
        if line.standard_item_id:
            _sub(product, "GlobalID", line.standard_item_id, schemeID=SCHEME_GTIN)
        if self.full and line.seller_item_id:
            _sub(product, "SellerAssignedID", line.seller_item_id)
        if self.full and line.buyer_item_id:
            _sub(product, "BuyerAssignedID", line.buyer_item_id)
        _sub(product, "Name", line.name)
        if self.full and line.description:
            _sub(product, "Description", line.description)
        if self.full and line.origin_country:
            _sub(_sub(product, "OriginTradeCountry"), "ID", line.origin_country)

        agreement = _sub(item, "SpecifiedLineTradeAgreement")
        if self.full and line.order_line_ref:
            _sub(_sub(agreement, "BuyerOrderReferencedDocument"), "LineID", line.order_line_ref)
        if line.gross_price is not None:
            gross = _sub(agreement, "GrossPriceProductTradePrice")
            _sub(gross, "ChargeAmount", fmt_decimal(line.gross_price))
            self._basis_quantity(gross, line)
            discount = line.gross_price - line.net_price
            if discount > 0:
                # BT-147 item price discount: BT-146 = BT-148 − BT-147.
                applied = _sub(gross, "AppliedTradeAllowanceCharge")
                self._indicator(applied, False)
                _sub(applied, "ActualAmount", fmt_decimal(discount))
        net = _sub(agreement, "NetPriceProductTradePrice")
        _sub(net, "ChargeAmount", fmt_decimal(line.net_price))
        self._basis_quantity(net, line)

        delivery = _sub(item, "SpecifiedLineTradeDelivery")
        _sub(delivery, "BilledQuantity", fmt_decimal(line.quantity), unitCode=line.unit_code)

        settlement = _sub(item, "SpecifiedLineTradeSettlement")
        tax = _sub(settlement, "ApplicableTradeTax")
        _sub(tax, "TypeCode", "VAT")
        _sub(tax, "CategoryCode", line.vat_category)
        if line.vat_rate is not None:  # BR-O-05: no rate for category O.
            _sub(tax, "RateApplicablePercent", fmt_rate(line.vat_rate))
        if line.period_start or line.period_end:
            self._period(settlement, line.period_start, line.period_end)
        for ac in (*line.allowances, *line.charges):
            # The BASIC profile Schematron marks BT-137/138 and BT-142/143 of lines as not used.
            self.allowance_charge(settlement, ac, with_tax=False, with_basis=self.full)
        summation = _sub(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
        _sub(summation, "LineTotalAmount", fmt_amount(line.net_amount))

    def _basis_quantity(self, price: etree._Element, line: Line) -> None:
        if line.price_base_quantity is not None:
            _sub(price, "BasisQuantity", fmt_decimal(line.price_base_quantity), unitCode=line.unit_code)

    @staticmethod
    def _indicator(parent: etree._Element, value: bool) -> None:
        indicator = etree.SubElement(_sub(parent, "ChargeIndicator"), f"{{{NS_UDT}}}Indicator")
        indicator.text = "true" if value else "false"

    def _period(self, parent: etree._Element, start: dt.date | None, end: dt.date | None) -> None:
        period = _sub(parent, "BillingSpecifiedPeriod")
        if start:
            _date(period, "StartDateTime", start)
        if end:
            _date(period, "EndDateTime", end)

    def allowance_charge(
        self, parent: etree._Element, ac: AllowanceCharge, *, with_tax: bool, with_basis: bool = True
    ) -> None:
        element = _sub(parent, "SpecifiedTradeAllowanceCharge")
        self._indicator(element, ac.is_charge)
        if with_basis and ac.percent is not None:
            _sub(element, "CalculationPercent", fmt_rate(ac.percent))
        if with_basis and ac.base_amount is not None:
            _sub(element, "BasisAmount", fmt_amount(ac.base_amount))
        _sub(element, "ActualAmount", fmt_amount(ac.amount))
        if ac.reason_code:
            _sub(element, "ReasonCode", ac.reason_code)
        if ac.reason:
            _sub(element, "Reason", ac.reason)
        if with_tax:
            tax = _sub(element, "CategoryTradeTax")
            _sub(tax, "TypeCode", "VAT")
            _sub(tax, "CategoryCode", ac.vat_category)
            if ac.vat_rate is not None:
                _sub(tax, "RateApplicablePercent", fmt_rate(ac.vat_rate))

    # -- parties --------------------------------------------------------------------------------

    def party(self, parent: etree._Element, tag: str, party: Party, *, seller: bool) -> None:
        element = _sub(parent, tag)
        if self.minimum:
            _sub(element, "Name", party.name)
            if party.siren:
                _sub(_sub(element, "SpecifiedLegalOrganization"), "ID", party.siren, schemeID=SCHEME_SIREN)
            if seller:
                _sub(_sub(element, "PostalTradeAddress"), "CountryID", party.address.country)
                self._tax_registrations(element, party)
            return
        if party.siret:
            # BT-29 / BT-46 with scheme 0009; BR-FR-09 checks it starts with the SIREN.
            _sub(element, "GlobalID", party.siret, schemeID=SCHEME_SIRET)
        _sub(element, "Name", party.name)
        if self.full and seller and party.legal_form:
            _sub(element, "Description", party.legal_form)  # BT-33
        if party.siren or party.trading_name:
            legal = _sub(element, "SpecifiedLegalOrganization")
            if party.siren:
                _sub(legal, "ID", party.siren, schemeID=SCHEME_SIREN)  # BT-30 / BT-47 (BR-FR-10/11)
            if party.trading_name:
                _sub(legal, "TradingBusinessName", party.trading_name)
        if self.full and (party.contact_name or party.contact_phone or party.contact_email):
            contact = _sub(element, "DefinedTradeContact")
            if party.contact_name:
                _sub(contact, "PersonName", party.contact_name)
            if party.contact_phone:
                _sub(_sub(contact, "TelephoneUniversalCommunication"), "CompleteNumber", party.contact_phone)
            if party.contact_email:
                _sub(_sub(contact, "EmailURIUniversalCommunication"), "URIID", party.contact_email)
        self.address(element, party.address)
        if party.electronic_address and party.electronic_address.value:
            # BT-34 / BT-49 (mandatory in France, BR-FR-12/13).
            _sub(
                _sub(element, "URIUniversalCommunication"),
                "URIID",
                party.electronic_address.value,
                schemeID=party.electronic_address.scheme,
            )
        self._tax_registrations(element, party)

    @staticmethod
    def _tax_registrations(element: etree._Element, party: Party) -> None:
        if party.vat_id:
            _sub(_sub(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")
        if party.tax_registration_id:
            _sub(_sub(element, "SpecifiedTaxRegistration"), "ID", party.tax_registration_id, schemeID="FC")

    @staticmethod
    def address(parent: etree._Element, address: Address) -> None:
        element = _sub(parent, "PostalTradeAddress")
        if address.postcode:
            _sub(element, "PostcodeCode", address.postcode)
        if address.line1:
            _sub(element, "LineOne", address.line1)
        if address.line2:
            _sub(element, "LineTwo", address.line2)
        if address.line3:
            _sub(element, "LineThree", address.line3)
        if address.city:
            _sub(element, "CityName", address.city)
        _sub(element, "CountryID", address.country)
        if address.subdivision:
            _sub(element, "CountrySubDivisionName", address.subdivision)

    # -- header agreement, delivery, settlement ------------------------------------------------

    def agreement(self, parent: etree._Element) -> None:
        doc = self.doc
        agreement = _sub(parent, "ApplicableHeaderTradeAgreement")
        if doc.buyer_reference:
            _sub(agreement, "BuyerReference", doc.buyer_reference)
        self.party(agreement, "SellerTradeParty", doc.seller, seller=True)
        self.party(agreement, "BuyerTradeParty", doc.buyer, seller=False)
        if self.full and doc.sales_order_ref:
            _sub(_sub(agreement, "SellerOrderReferencedDocument"), "IssuerAssignedID", doc.sales_order_ref)
        if doc.purchase_order_ref:
            _sub(_sub(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", doc.purchase_order_ref)
        if self.minimum:
            return
        if doc.contract_ref:
            _sub(_sub(agreement, "ContractReferencedDocument"), "IssuerAssignedID", doc.contract_ref)
        if self.full and doc.project_ref:
            project = _sub(agreement, "SpecifiedProcuringProject")
            _sub(project, "ID", doc.project_ref)
            _sub(project, "Name", "Project reference")  # required by the XSD, not part of BT-11

    def delivery(self, parent: etree._Element) -> None:
        doc = self.doc
        delivery = _sub(parent, "ApplicableHeaderTradeDelivery")
        if self.minimum:
            return
        info = doc.delivery
        if info and (info.party_name or info.location_id or info.address):
            ship_to = _sub(delivery, "ShipToTradeParty")
            if info.location_id:
                _sub(ship_to, "ID", info.location_id)
            if info.party_name:
                _sub(ship_to, "Name", info.party_name)
            if info.address:
                self.address(ship_to, info.address)
        if info and info.date:
            _date(_sub(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", info.date)
        if doc.delivery_note_ref:
            _sub(
                _sub(delivery, "DespatchAdviceReferencedDocument"), "IssuerAssignedID", doc.delivery_note_ref
            )
        if self.full and doc.receiving_advice_ref:
            _sub(
                _sub(delivery, "ReceivingAdviceReferencedDocument"),
                "IssuerAssignedID",
                doc.receiving_advice_ref,
            )

    def settlement(self, parent: etree._Element) -> None:
        doc = self.doc
        settlement = _sub(parent, "ApplicableHeaderTradeSettlement")
        other_tax_currency = bool(doc.tax_currency) and doc.tax_currency != doc.currency
        if self.minimum:
            _sub(settlement, "InvoiceCurrencyCode", doc.currency)
            self.summation(settlement, other_tax_currency)
            return

        payment = doc.payment
        if payment.creditor_id:
            _sub(settlement, "CreditorReferenceID", payment.creditor_id)
        if payment.remittance_info:
            _sub(settlement, "PaymentReference", payment.remittance_info)
        if other_tax_currency:
            _sub(settlement, "TaxCurrencyCode", doc.tax_currency)  # BT-6
        _sub(settlement, "InvoiceCurrencyCode", doc.currency)
        if payment.means_code:
            means = _sub(settlement, "SpecifiedTradeSettlementPaymentMeans")
            _sub(means, "TypeCode", payment.means_code)
            if self.full and payment.means_text:
                _sub(means, "Information", payment.means_text)
            if payment.debited_iban:
                _sub(_sub(means, "PayerPartyDebtorFinancialAccount"), "IBANID", payment.debited_iban)
            if payment.iban:
                account = _sub(means, "PayeePartyCreditorFinancialAccount")
                _sub(account, "IBANID", payment.iban)
                if self.full and payment.account_name:
                    _sub(account, "AccountName", payment.account_name)
            if self.full and payment.bic:
                _sub(_sub(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", payment.bic)

        for vb in doc.vat_breakdown:
            tax = _sub(settlement, "ApplicableTradeTax")
            _sub(tax, "CalculatedAmount", fmt_amount(vb.tax_amount))
            _sub(tax, "TypeCode", "VAT")
            if vb.exemption_reason:
                _sub(tax, "ExemptionReason", vb.exemption_reason)
            _sub(tax, "BasisAmount", fmt_amount(vb.taxable_amount))
            _sub(tax, "CategoryCode", vb.category)
            if vb.exemption_reason_code:
                _sub(tax, "ExemptionReasonCode", vb.exemption_reason_code)
            # BT-7 and BT-8 are mutually exclusive (BR-CO-03).
            if self.full and doc.tax_point_date:
                point = _sub(tax, "TaxPointDate")
                inner = etree.SubElement(point, f"{{{NS_UDT}}}DateString", format="102")
                inner.text = doc.tax_point_date.strftime("%Y%m%d")
            elif doc.tax_point_code:
                _sub(tax, "DueDateTypeCode", doc.tax_point_code)
            if vb.rate is not None:
                _sub(tax, "RateApplicablePercent", fmt_rate(vb.rate))

        if doc.invoice_period_start or doc.invoice_period_end:
            self._period(settlement, doc.invoice_period_start, doc.invoice_period_end)
        for ac in (*doc.allowances, *doc.charges):
            self.allowance_charge(settlement, ac, with_tax=True)
        if payment.terms or doc.due_date or payment.mandate_ref:
            terms = _sub(settlement, "SpecifiedTradePaymentTerms")
            if payment.terms:
                _sub(terms, "Description", payment.terms)
            if doc.due_date:
                _date(terms, "DueDateDateTime", doc.due_date)
            if payment.mandate_ref:
                _sub(terms, "DirectDebitMandateID", payment.mandate_ref)
        self.summation(settlement, other_tax_currency)
        references = doc.preceding_invoices if self.extended else doc.preceding_invoices[:1]
        for reference in references:
            referenced = _sub(settlement, "InvoiceReferencedDocument")
            _sub(referenced, "IssuerAssignedID", reference.number)
            if reference.issue_date:
                _date(referenced, "FormattedIssueDateTime", reference.issue_date, ns=NS_QDT)
        if doc.accounting_ref:
            _sub(_sub(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID", doc.accounting_ref)

    def summation(self, settlement: etree._Element, other_tax_currency: bool) -> None:
        doc, totals = self.doc, self.doc.totals
        summation = _sub(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
        if not self.minimum:
            _sub(summation, "LineTotalAmount", fmt_amount(totals.line_total))
            if doc.charges:
                _sub(summation, "ChargeTotalAmount", fmt_amount(totals.charge_total))
            if doc.allowances:
                _sub(summation, "AllowanceTotalAmount", fmt_amount(totals.allowance_total))
        _sub(summation, "TaxBasisTotalAmount", fmt_amount(totals.tax_exclusive))
        _sub(summation, "TaxTotalAmount", fmt_amount(totals.tax_total), currencyID=doc.currency)
        # MINIMUM has no TaxCurrencyCode, so its Schematron rejects a TaxTotalAmount in another currency.
        if other_tax_currency and totals.tax_total_accounting is not None and not self.minimum:
            # BT-111 in the VAT accounting currency (BR-53, BR-FR-CO-12).
            _sub(
                summation,
                "TaxTotalAmount",
                fmt_amount(totals.tax_total_accounting),
                currencyID=doc.tax_currency,
            )
        if self.full and totals.rounding:
            _sub(summation, "RoundingAmount", fmt_amount(totals.rounding))
        _sub(summation, "GrandTotalAmount", fmt_amount(totals.tax_inclusive))
        if not self.minimum and totals.prepaid:
            _sub(summation, "TotalPrepaidAmount", fmt_amount(totals.prepaid))
        _sub(summation, "DuePayableAmount", fmt_amount(totals.amount_due))


def to_cii_tree(doc: InvoiceDocument) -> etree._Element:
    """The CII document as an lxml element (for callers that embed or inspect it)."""
    return _Writer(doc).build()


def to_cii(doc: InvoiceDocument) -> bytes:
    """Serialize a computed ``InvoiceDocument`` as CII D16B for ``doc.profile`` (UTF-8 bytes)."""
    return etree.tostring(to_cii_tree(doc), xml_declaration=True, encoding="UTF-8", pretty_print=True)
