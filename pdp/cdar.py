"""Invoice lifecycle statuses as CDAR messages (UN/CEFACT Cross Domain Acknowledgement And Response
D22B, French profile ``urn.cpro.gouv.fr:1p0:CDV:invoice``, AFNOR XP Z12-012 annex B), checked against
the BR-FR-CDV Schematron (``invoicing/validation/rules/fr-ctc/BR-FR-CDV-Schematron-CDAR.xslt``).

* ``status_message()`` assembles a ``StatusMessage`` with the parties and roles the rules want and
  refuses up front what the rules would reject (missing or foreign reason, 212 without amounts, …);
* ``build()`` writes it in the element order of the XP Z12-012 annex B examples;
* ``parse()`` reads any CDAR (other element order, extra elements) with a hardened parser;
* ``validate()`` runs the official rules on the bytes.

The code lists below are copied from the XSLT's custom functions and asserts;
``tests/pdp/test_cdar.py`` re-reads the XSLT and fails if they drift apart.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from lxml import etree

from invoicing.formats.parse import safe_parser
from invoicing.validation import validate_cdar

GUIDELINE = "urn.cpro.gouv.fr:1p0:CDV:invoice"

RSM_NS = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT_NS = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT_NS = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM_NS, "ram": RAM_NS, "udt": UDT_NS, "qdt": QDT_NS}
ROOT_TAG = f"{{{RSM_NS}}}CrossDomainAcknowledgementAndResponse"

PHASE_TRANSMISSION = "305"  # MDT-77: platform statuses (sender and issuer role WK)
PHASE_PROCESSING = "23"  # MDT-77: business statuses (buyer, seller…)
EMITTERS = ("buyer", "seller", "platform")


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# custom:is-valid-document-type-code (BR-FR-04, MDT-91).
DOCUMENT_TYPE_CODES = _codes("380 389 393 501 386 500 384 471 472 473 261 262 381 396 502 503")
# BR-FR-CDV-CL-11 (MDT-207).
CHARACTERISTIC_TYPE_CODES = _codes("MEN MPA RAP ESC RAB REM MAP MAPTTC MNA MNATTC CBB DIV DVA MAJ")
# custom:is-valid-invoice-status-code (BR-FR-CDV-CL-06). The rules also accept 250, 251, 300, 301,
# 400, 401, 500 and 601, whose meaning and phase neither the rules nor XP Z12-012 annex B give: they
# are listed here (``parse`` reads them) but have no ``STATUSES`` entry, so they cannot be built.
RULE_STATUS_CODES = _codes(
    "200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 220 221 224 225 226 227 228 "
    "250 251 300 301 400 401 500 501 601"
)


class CdarError(ValueError):
    """The bytes are not a CDAR status message we can read (message says what is wrong)."""


@dataclass(frozen=True)
class StatusInfo:
    """One status of the French lifecycle (XP Z12-012)."""

    code: str  # "200" … "228", "501"
    slug: str  # "deposited", "received", "made_available", "in_hand", "approved", …
    label_fr: str  # "Déposée"
    label_en: str  # "Deposited"
    phase: str  # "305" transmission (platforms, role WK) or "23" processing (buyer/seller)
    emitter: str  # who normally emits it: "platform", "buyer" or "seller"
    reason_required: bool
    reasons: tuple[str, ...]  # allowed reason codes (MDT-113) for this status; () = any listed code
    status_code: str = ""  # MDT-88 (UNTDID 4343 subset) written with it, "" = none


# Reason lists per status: the BR-FR-CDV-CL-09_MDT-113_<status> asserts.
_REASONS_206 = (
    "AUTRE CMD_ERR SIRET_ERR CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR ART_ERR "
    "MODPAI_ERR QUALITE_ERR LIVR_INCOMP"
)
_REASONS_207 = (
    "AUTRE COORD_BANC_ERR TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_INC DEST_ERR "
    "TRANSAC_INC EMMET_INC CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR SIRET_ERR CODE_ROUTAGE_ERR "
    "REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR ART_ERR MODPAI_ERR QUALITE_ERR LIVR_INCOMP"
)
_REASONS_208 = "JUSTIF_ABS COORD_BANC_ERR CMD_ERR SIRET_ERR CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR"
# The non-B2G list; a 210 sent by the PPF for Chorus Pro (sender GlobalID 9999, scheme 0238) has its own.
_REASONS_210 = (
    "TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_ERR TRANSAC_INC EMMET_INC "
    "CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR REF_CT_ABSENT"
)
_REASONS_213 = (
    "MONTANTTOTAL_ERR CALCUL_ERR DOUBLON DEST_INC ADR_ERR REJ_SEMAN REJ_UNI REJ_COH REJ_ADR REJ_CONT_B2G "
    "REJ_REF_PJ REJ_ASS_PJ"
)
_REASONS_501 = (
    "IRR_VIDE_F IRR_TYPE_F IRR_SYNTAX IRR_TAILLE_PJ IRR_NOM_PJ IRR_VID_PJ IRR_EXT_DOC IRR_TAILLE_F "
    "IRR_ANTIVIRUS IRR_NOM_F"
)


def _status(
    code: str,
    slug: str,
    label_fr: str,
    label_en: str,
    emitter: str,
    *,
    reasons: str = "",
    required: bool = False,
    status_code: str = "",
) -> StatusInfo:
    phase = PHASE_TRANSMISSION if emitter == "platform" else PHASE_PROCESSING
    return StatusInfo(
        code, slug, label_fr, label_en, phase, emitter, required, tuple(reasons.split()), status_code
    )


# BR-FR-CDV-15 demands a reason for 206, 207, 208, 210, 213 and 501. 221 is not in that assert, but
# its only allowed reason (CL-09_MDT-113_221) is the routing error itself, so we require it too.
# MDT-88 values are within BR-FR-CDV-CL-05's phase-23 list; it is optional and left out for phase 305.
STATUSES: dict[str, StatusInfo] = {
    info.code: info
    for info in (
        _status("200", "deposited", "Déposée", "Deposited", "platform", reasons="NON_TRANSMISE"),
        _status("201", "issued_by_platform", "Émise par la plateforme", "Issued by the platform", "platform"),
        _status("202", "received", "Reçue par la plateforme", "Received by the platform", "platform"),
        _status("203", "made_available", "Mise à disposition", "Made available", "platform"),
        _status("204", "in_hand", "Prise en charge", "In hand", "buyer", status_code="45"),
        _status("205", "approved", "Approuvée", "Approved", "buyer", status_code="1"),
        _status(
            "206",
            "partially_approved",
            "Approuvée partiellement",
            "Partially approved",
            "buyer",
            reasons=_REASONS_206,
            required=True,
            status_code="49",
        ),
        _status(
            "207",
            "disputed",
            "En litige",
            "Disputed",
            "buyer",
            reasons=_REASONS_207,
            required=True,
            status_code="46",
        ),
        _status(
            "208",
            "suspended",
            "Suspendue",
            "Suspended",
            "buyer",
            reasons=_REASONS_208,
            required=True,
            status_code="39",
        ),
        _status("209", "completed", "Complétée", "Completed", "seller"),
        _status(
            "210",
            "refused",
            "Refusée",
            "Refused",
            "buyer",
            reasons=_REASONS_210,
            required=True,
            status_code="50",
        ),
        _status(
            "211",
            "payment_transmitted",
            "Paiement transmis",
            "Payment transmitted",
            "buyer",
            status_code="47",
        ),
        _status("212", "cashed", "Encaissée", "Cashed", "seller", status_code="47"),
        _status("213", "rejected", "Rejetée", "Rejected", "platform", reasons=_REASONS_213, required=True),
        _status("214", "endorsed", "Visée", "Endorsed (visa)", "buyer"),
        _status("220", "cancelled", "Annulée", "Cancelled", "seller"),
        _status(
            "221",
            "routing_error",
            "Erreur de routage",
            "Routing error",
            "platform",
            reasons="ROUTAGE_ERR",
            required=True,
        ),
        # 224–228: accepted by BR-FR-CDV-CL-06 but named nowhere in the rules: neutral labels.
        *(
            _status(code, f"status_{code}", f"Statut {code}", f"Status {code}", "buyer")
            for code in ("224", "225", "226", "227", "228")
        ),
        _status(
            "501",
            "inadmissible",
            "Irrecevable",
            "Inadmissible",
            "platform",
            reasons=_REASONS_501,
            required=True,
        ),
    )
}  # code -> StatusInfo, every code of BR-FR-CDV-CL-06 from 200 to 228, plus 501

# custom:is-valid-status-reason-code (BR-FR-CDV-CL-09), with short French labels.
REASONS: dict[str, str] = {
    "RETRAIT_MAN_SERV": "Retrait manuel par le service",
    "ST_CT_NON_DECLAR": "Sous-traitant ou cotraitant non déclaré",
    "SUPPR_COMP_AVOIR": "Suppression compensée par un avoir",
    "TRANSF_PMNT_REGIE": "Paiement transféré à une régie",
    "CONTACT_ACHTR": "Contacter l'acheteur",
    "NON_TRANSMISE": "Destinataire non connecté",
    "JUSTIF_ABS": "Justificatif absent ou insuffisant",
    "ROUTAGE_ERR": "Erreur de routage",
    "AUTRE": "Autre",
    "COORD_BANC_ERR": "Coordonnées bancaires erronées",
    "TX_TVA_ERR": "Taux de TVA erroné",
    "MONTANTTOTAL_ERR": "Montant total erroné",
    "CALCUL_ERR": "Erreur de calcul",
    "NON_CONFORME": "Mention légale manquante",
    "DOUBLON": "Facture en doublon",
    "DEST_INC": "Destinataire inconnu",
    "DEST_ERR": "Erreur de destinataire",
    "TRANSAC_INC": "Transaction inconnue",
    "EMMET_INC": "Émetteur inconnu",
    "CONTRAT_TERM": "Contrat terminé",
    "DOUBLE_FACT": "Double facturation",
    "CMD_ERR": "Référence de commande erronée",
    "ADR_ERR": "Adresse erronée",
    "SIRET_ERR": "SIRET erroné ou absent",
    "CODE_ROUTAGE_ERR": "Code de routage erroné ou absent",
    "REF_CT_ABSENT": "Référence contractuelle absente",
    "REF_ERR": "Référence erronée",
    "PU_ERR": "Prix unitaire erroné",
    "REM_ERR": "Remise erronée",
    "QTE_ERR": "Quantité erronée",
    "ART_ERR": "Article erroné",
    "MODPAI_ERR": "Modalités de paiement erronées",
    "QUALITE_ERR": "Qualité non conforme",
    "LIVR_INCOMP": "Livraison incomplète",
    "REJ_SEMAN": "Rejet sémantique",
    "REJ_UNI": "Rejet pour non-unicité",
    "REJ_COH": "Rejet pour incohérence",
    "REJ_ADR": "Rejet pour erreur d'adressage",
    "REJ_CONT_B2G": "Rejet sur contrôles B2G",
    "REJ_REF_PJ": "Rejet : pièce jointe référencée absente",
    "REJ_ASS_PJ": "Rejet : pièce jointe associée erronée",
    "IRR_VIDE_F": "Fichier vide",
    "IRR_TYPE_F": "Type de fichier non accepté",
    "IRR_SYNTAX": "Erreur de syntaxe",
    "IRR_TAILLE_PJ": "Pièce jointe trop volumineuse",
    "IRR_NOM_PJ": "Nom de pièce jointe invalide",
    "IRR_VID_PJ": "Pièce jointe vide",
    "IRR_EXT_DOC": "Extension de document non acceptée",
    "IRR_TAILLE_F": "Fichier trop volumineux",
    "IRR_ANTIVIRUS": "Fichier refusé par l'antivirus",
    "IRR_NOM_F": "Nom de fichier invalide",
}  # reason code (MDT-113) -> French label


@dataclass(frozen=True)
class Party:
    role: str  # UNTDID 3035: "SE", "BY", "WK", "DFH"…
    global_id: str = ""  # SIREN (scheme 0002) or platform number (scheme 0238)
    scheme: str = "0002"
    name: str = ""
    uri: str = ""  # electronic address (URIUniversalCommunication/URIID)
    uri_scheme: str = "0225"


@dataclass(frozen=True)
class Amount:
    """A characteristic of the status (MDG-43), e.g. the amount cashed per VAT rate for 212."""

    amount: Decimal
    vat_rate: Decimal | None = None
    currency: str = "EUR"
    type_code: str = "MEN"


@dataclass(frozen=True)
class StatusMessage:
    message_id: str  # ExchangedDocument/ID (MDT-4)
    issued_at: dt.datetime  # aware; IssueDateTime format 204
    status_code: str  # ReferenceReferencedDocument/ProcessConditionCode (MDT-105)
    invoice_number: str  # IssuerAssignedID (MDT-87)
    invoice_issue_date: dt.date | None  # FormattedIssueDateTime (MDG-35), None only for 501
    seller_siren: str  # ReferenceReferencedDocument/IssuerTradeParty GlobalID, role SE (MDT-129)
    sender: Party  # ExchangedDocument/SenderTradeParty
    issuer: Party  # ExchangedDocument/IssuerTradeParty
    recipients: tuple[Party, ...]
    invoice_type_code: str = "380"
    reason_code: str = ""
    reason: str = ""
    amounts: tuple[Amount, ...] = field(default_factory=tuple)
    business_process: str = "REGULATED"

    @property
    def info(self) -> StatusInfo:
        return STATUSES[self.status_code]


# --- status_message ------------------------------------------------------------------------------


def _status_info(code: str) -> StatusInfo:
    info = STATUSES.get(code)
    if info is None:
        raise CdarError(f"Unknown invoice status {code!r} (BR-FR-CDV-CL-06); known: {', '.join(STATUSES)}.")
    return info


def _check_reason(info: StatusInfo, reason_code: str) -> None:
    if not reason_code:
        if info.reason_required:
            rule = "BR-FR-CDV-CL-09" if info.code == "221" else "BR-FR-CDV-15"
            raise CdarError(
                f"Status {info.code} ({info.label_fr}) needs a reason code ({rule}): one of "
                f"{', '.join(info.reasons)}."
            )
        return
    if reason_code not in REASONS:
        raise CdarError(f"Unknown status reason code {reason_code!r} (BR-FR-CDV-CL-09).")
    if info.reasons and reason_code not in info.reasons:
        raise CdarError(
            f"Reason {reason_code} is not allowed for status {info.code} ({info.label_fr}) "
            f"(BR-FR-CDV-CL-09_MDT-113_{info.code}): use one of {', '.join(info.reasons)}."
        )


def _two_decimals(value: Decimal, what: str) -> str:
    """``value`` written with exactly 2 decimals; refuses to round money or a rate silently."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise CdarError(f"{what} must be a finite Decimal, not {value!r}.")
    rounded = value.quantize(Decimal("0.01"))
    if rounded != value:
        raise CdarError(f"{what} {value} has more than 2 decimals.")
    return f"{rounded:f}"


def _check_amounts(info: StatusInfo, amounts: tuple[Amount, ...]) -> None:
    for item in amounts:
        if item.type_code not in CHARACTERISTIC_TYPE_CODES:
            raise CdarError(f"Characteristic type {item.type_code!r} is not allowed (BR-FR-CDV-CL-11).")
        if not re.fullmatch(r"[A-Z]{3}", item.currency):
            raise CdarError(f"Currency {item.currency!r} is not an ISO 4217 code.")
        _two_decimals(item.amount, "Amount")
        if item.vat_rate is not None:
            _two_decimals(item.vat_rate, "VAT rate")
    if info.code == "212":
        cashed = [item for item in amounts if item.type_code == "MEN"]
        # BR-FR-CDV-14: at least one MEN characteristic, each with an amount and a VAT rate.
        if not cashed:
            raise CdarError("Status 212 (Encaissée) needs the amount cashed per VAT rate (BR-FR-CDV-14).")
        if any(item.vat_rate is None for item in cashed):
            raise CdarError("Every amount cashed of a 212 (Encaissée) needs its VAT rate (BR-FR-CDV-14).")


def status_message(
    code: str,
    *,
    invoice_number: str,
    invoice_issue_date: dt.date | None,
    seller_siren: str,
    buyer_siren: str,
    emitter: str,
    message_id: str,
    issued_at: dt.datetime,
    invoice_type_code: str = "380",
    reason_code: str = "",
    reason: str = "",
    amounts: tuple[Amount, ...] = (),
    seller_name: str = "",
    buyer_name: str = "",
    platform_id: str = "9998",
    platform_name: str = "",
) -> StatusMessage:
    """A status message with the parties and roles the BR-FR-CDV rules want for ``code`` sent by
    ``emitter`` ("buyer", "seller" or "platform"); raises ``CdarError`` for a status that needs a reason
    without one, a reason not allowed for it, or 212 without amounts.

    Sender and issuer are the emitter; the recipient is the other trading party (the seller for buyer
    and platform statuses, the buyer for seller statuses) with its SIREN as electronic address
    (scheme 0225, BR-FR-CDV-08). Without ``reason`` the French label of ``reason_code`` is written.
    """
    info = _status_info(code)
    if emitter not in EMITTERS:
        raise CdarError(f"Emitter must be one of {', '.join(EMITTERS)}, not {emitter!r}.")
    if info.phase == PHASE_TRANSMISSION and emitter != "platform":
        raise CdarError(
            f"Status {code} ({info.label_fr}) belongs to the transmission phase (305): only a platform "
            "(role WK) sends it (BR-FR-CDV-CL-02, BR-FR-CDV-CL-03)."
        )
    if info.phase == PHASE_PROCESSING and emitter == "platform":
        raise CdarError(
            f"Status {code} ({info.label_fr}) belongs to the processing phase (23): its issuer is a "
            "trading party, never a platform (BR-FR-CDV-CL-03, BR-FR-CDV-07)."
        )
    _check_reason(info, reason_code)
    _check_amounts(info, amounts)
    if invoice_issue_date is None and code != "501":
        raise CdarError(f"Status {code} needs the invoice issue date (BR-FR-CDV-11).")
    if invoice_type_code not in DOCUMENT_TYPE_CODES:
        raise CdarError(f"Invoice type code {invoice_type_code!r} is not allowed (BR-FR-04).")
    if not invoice_number:
        raise CdarError("The invoice number is required (BR-FR-CDV-10).")
    if not message_id:
        raise CdarError("The message id is required (BR-FR-CDV-03).")
    if issued_at.tzinfo is None or issued_at.utcoffset() is None:
        raise CdarError("issued_at must be an aware datetime.")
    if not seller_siren:
        # Recipient address of buyer and platform statuses (BR-FR-CDV-08), MDT-129 (BR-FR-CDV-13).
        raise CdarError("The seller SIREN is required (BR-FR-CDV-08, BR-FR-CDV-13).")
    if emitter != "platform" and not buyer_siren:
        raise CdarError("The buyer SIREN is required for a buyer or seller status (BR-FR-CDV-07/08).")

    seller = Party("SE", seller_siren, "0002", seller_name)
    buyer = Party("BY", buyer_siren, "0002", buyer_name)
    if emitter == "platform":
        sender = Party("WK", platform_id, "0238" if platform_id else "0002", platform_name)
        issuer = Party("WK", name=platform_name)  # no GlobalID in phase 305 (BR-FR-CDV-07_MDT-38_no)
        recipient = seller
    elif emitter == "buyer":
        sender = issuer = buyer
        recipient = seller
    else:
        sender = issuer = seller
        recipient = buyer
    if code == "210":
        # BR-FR-CDV-CL-09_MDT-113_210B2G fires on every 210 whose sender has a GlobalID outside scheme
        # 0238 (its "!= '9999'" test is false on an empty node set): the sender goes without one.
        sender = Party(sender.role, name=sender.name)
    recipient = Party(
        recipient.role, recipient.global_id, recipient.scheme, recipient.name, recipient.global_id, "0225"
    )
    return StatusMessage(
        message_id=message_id,
        issued_at=issued_at,
        status_code=code,
        invoice_number=invoice_number,
        invoice_issue_date=invoice_issue_date,
        seller_siren=seller_siren,
        sender=sender,
        issuer=issuer,
        recipients=(recipient,),
        invoice_type_code=invoice_type_code,
        reason_code=reason_code,
        reason=reason or REASONS.get(reason_code, ""),
        amounts=tuple(amounts),
    )


# --- build ---------------------------------------------------------------------------------------


def _sub(
    parent: etree._Element, prefix: str, name: str, text: str | None = None, **attrs: str
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _ascii_name(label: str) -> str:
    """The label as an ASCII name ("Mise à disposition" -> "Mise_a_disposition"), as in annex B."""
    folded = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "_", folded).strip("_")


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CdarError("Datetimes must be aware.")
    return moment.astimezone(dt.UTC)


def _party_element(parent: etree._Element, name: str, party: Party) -> None:
    element = _sub(parent, "ram", name)
    if party.global_id:
        attrs = {"schemeID": party.scheme} if party.scheme else {}
        _sub(element, "ram", "GlobalID", party.global_id, **attrs)
    if party.name:
        _sub(element, "ram", "Name", party.name)
    _sub(element, "ram", "RoleCode", party.role)
    if party.uri:
        attrs = {"schemeID": party.uri_scheme} if party.uri_scheme else {}
        _sub(_sub(element, "ram", "URIUniversalCommunication"), "ram", "URIID", party.uri, **attrs)


def build(message: StatusMessage) -> bytes:
    """The CDAR XML (UTF-8, with declaration) of ``message``."""
    info = _status_info(message.status_code)
    if not message.recipients:
        raise CdarError("A status message needs at least one recipient (RecipientTradeParty).")
    issued = _utc(message.issued_at).strftime("%Y%m%d%H%M%S")

    root = etree.Element(ROOT_TAG, nsmap=NSMAP)
    context = _sub(root, "rsm", "ExchangedDocumentContext")
    if message.business_process:
        _sub(
            _sub(context, "ram", "BusinessProcessSpecifiedDocumentContextParameter"),
            "ram",
            "ID",
            message.business_process,
        )
    _sub(_sub(context, "ram", "GuidelineSpecifiedDocumentContextParameter"), "ram", "ID", GUIDELINE)

    document = _sub(root, "rsm", "ExchangedDocument")
    _sub(document, "ram", "ID", message.message_id)
    _sub(document, "ram", "Name", f"CDV-{info.code}_{_ascii_name(info.label_fr)}")
    _sub(_sub(document, "ram", "IssueDateTime"), "udt", "DateTimeString", issued, format="204")
    _party_element(document, "SenderTradeParty", message.sender)
    _party_element(document, "IssuerTradeParty", message.issuer)
    for recipient in message.recipients:
        _party_element(document, "RecipientTradeParty", recipient)

    acknowledgement = _sub(root, "rsm", "AcknowledgementDocument")
    _sub(_sub(acknowledgement, "ram", "MultipleReferencesIndicator"), "udt", "IndicatorString", "false")
    _sub(acknowledgement, "ram", "TypeCode", info.phase)
    _sub(_sub(acknowledgement, "ram", "IssueDateTime"), "udt", "DateTimeString", issued, format="204")

    reference = _sub(acknowledgement, "ram", "ReferenceReferencedDocument")
    _sub(reference, "ram", "IssuerAssignedID", message.invoice_number)
    if info.status_code:
        _sub(reference, "ram", "StatusCode", info.status_code)
    if message.invoice_type_code:
        _sub(reference, "ram", "TypeCode", message.invoice_type_code)
    if message.invoice_issue_date is not None:
        _sub(
            _sub(reference, "ram", "FormattedIssueDateTime"),
            "qdt",
            "DateTimeString",
            message.invoice_issue_date.strftime("%Y%m%d"),
            format="102",
        )
    _sub(reference, "ram", "ProcessConditionCode", info.code)
    _sub(reference, "ram", "ProcessCondition", info.label_fr)
    seller = _sub(reference, "ram", "IssuerTradeParty")
    if message.seller_siren:
        _sub(seller, "ram", "GlobalID", message.seller_siren, schemeID="0002")
    _sub(seller, "ram", "RoleCode", "SE")  # BR-FR-CDV-CL-07

    if message.reason_code or message.reason or message.amounts:
        status = _sub(reference, "ram", "SpecifiedDocumentStatus")
        if message.reason_code:
            _sub(status, "ram", "ReasonCode", message.reason_code)
        if message.reason:
            _sub(status, "ram", "Reason", message.reason)
        _sub(status, "ram", "SequenceNumeric", "1")  # BR-FR-CDV-16
        for item in message.amounts:
            characteristic = _sub(status, "ram", "SpecifiedDocumentCharacteristic")
            _sub(characteristic, "ram", "TypeCode", item.type_code)
            _sub(_sub(characteristic, "ram", "ValueChangedIndicator"), "udt", "IndicatorString", "false")
            _sub(
                characteristic,
                "ram",
                "ValueAmount",
                _two_decimals(item.amount, "Amount"),
                currencyID=item.currency,
            )
            if item.vat_rate is not None:
                _sub(characteristic, "ram", "ValuePercent", _two_decimals(item.vat_rate, "VAT rate"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- parse ---------------------------------------------------------------------------------------


def _read_root(data: bytes) -> etree._Element:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CdarError("A CDAR message must be bytes.")
    try:
        tree = etree.parse(io.BytesIO(bytes(data)), safe_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise CdarError(f"Not well-formed XML: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise CdarError("DOCTYPE declarations are not allowed in a CDAR message.")
    root = tree.getroot()
    if root.tag != ROOT_TAG:
        raise CdarError(f"Root element {root.tag} is not rsm:CrossDomainAcknowledgementAndResponse.")
    return root


def _find(element: etree._Element | None, path: str) -> etree._Element | None:
    return None if element is None else element.find(path, NSMAP)


def _text(element: etree._Element | None, path: str = "") -> str:
    found = element if not path else _find(element, path)
    return (found.text or "").strip() if found is not None else ""


def _moment(element: etree._Element | None) -> dt.datetime | None:
    """The moment in a date/time element, as written (naive when it carries no offset).

    Reads ``DateTimeString`` children of any namespace (udt or qdt) with format 204 (CCYYMMDDHHMMSS),
    203 (CCYYMMDDHHMM) or 102 (CCYYMMDD), digits of those lengths, or ISO 8601 text.
    """
    if element is None:
        return None
    holder = next((child for child in element if etree.QName(child).localname == "DateTimeString"), element)
    text = (holder.text or "").strip()
    if not text:
        return None
    layouts = {"204": "%Y%m%d%H%M%S", "203": "%Y%m%d%H%M", "102": "%Y%m%d"}
    by_length = {14: "204", 12: "203", 8: "102"}
    layout = layouts.get(holder.get("format", "")) or (
        layouts[by_length[len(text)]] if text.isdigit() and len(text) in by_length else None
    )
    try:
        if layout:
            return dt.datetime.strptime(text, layout)  # as written; parse() makes it UTC
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CdarError(f"Unreadable date/time {text!r} in {etree.QName(element).localname}.") from exc


def _read_party(element: etree._Element) -> Party:
    global_id = _find(element, "ram:GlobalID")
    uri = _find(element, "ram:URIUniversalCommunication/ram:URIID")
    return Party(
        role=_text(element, "ram:RoleCode"),
        global_id=_text(global_id),
        scheme=(global_id.get("schemeID", "").strip() if global_id is not None else "0002"),
        name=_text(element, "ram:Name"),
        uri=_text(uri),
        uri_scheme=(uri.get("schemeID", "").strip() if uri is not None else "0225"),
    )


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise CdarError(f"{what} {text!r} is not a number.") from exc
    if not value.is_finite():
        raise CdarError(f"{what} {text!r} is not a number.")
    return value


def _read_amounts(statuses: list[etree._Element]) -> tuple[Amount, ...]:
    amounts: list[Amount] = []
    for status in statuses:
        for characteristic in status.iterfind("ram:SpecifiedDocumentCharacteristic", NSMAP):
            value = _find(characteristic, "ram:ValueAmount")
            if value is None:  # a characteristic without an amount (e.g. a quantity) is not an Amount
                continue
            percent = _text(characteristic, "ram:ValuePercent")
            amounts.append(
                Amount(
                    amount=_decimal(_text(value), "ValueAmount"),
                    vat_rate=_decimal(percent, "ValuePercent") if percent else None,
                    currency=value.get("currencyID", "EUR").strip(),
                    type_code=_text(characteristic, "ram:TypeCode"),
                )
            )
    return tuple(amounts)


def parse(data: bytes) -> StatusMessage:
    """Read a CDAR status message (safe parser: no DTD, no entities, no network); ``CdarError`` if not one.

    Elements are looked up by name, so other element orders and extra elements are fine. A CDAR may
    acknowledge several documents: only the FIRST ``ReferenceReferencedDocument`` is read. Its status
    details (``SpecifiedDocumentStatus``) give the first reason code present (with its text) and every
    characteristic carrying a ``ValueAmount``. Datetimes come back aware, in UTC (text without offset
    is taken as UTC); amounts and rates as ``Decimal``. Codes outside ``STATUSES`` are read as they are
    (``message.info`` then raises ``KeyError``).
    """
    root = _read_root(data)
    document = _find(root, "rsm:ExchangedDocument")
    acknowledgement = _find(root, "rsm:AcknowledgementDocument")
    reference = _find(acknowledgement, "ram:ReferenceReferencedDocument")
    if reference is None:
        raise CdarError("No AcknowledgementDocument/ReferenceReferencedDocument: no invoice status to read.")
    status_code = _text(reference, "ram:ProcessConditionCode")
    if not status_code:
        raise CdarError("The status code (ProcessConditionCode, MDT-105) is missing (BR-FR-CDV-12).")
    invoice_number = _text(reference, "ram:IssuerAssignedID")
    if not invoice_number:
        raise CdarError("The invoice number (IssuerAssignedID, MDT-87) is missing (BR-FR-CDV-10).")

    issued = _moment(_find(document, "ram:IssueDateTime")) or _moment(
        _find(acknowledgement, "ram:IssueDateTime")
    )
    if issued is None:
        raise CdarError(
            "The message date (ExchangedDocument/IssueDateTime, MDG-4) is missing (BR-FR-CDV-04)."
        )
    issued_at = issued.replace(tzinfo=dt.UTC) if issued.tzinfo is None else issued.astimezone(dt.UTC)
    invoice_date = _moment(_find(reference, "ram:FormattedIssueDateTime"))

    sender = _find(document, "ram:SenderTradeParty")
    issuer = _find(document, "ram:IssuerTradeParty")
    statuses = reference.findall("ram:SpecifiedDocumentStatus", NSMAP)
    with_reason = next((s for s in statuses if _text(s, "ram:ReasonCode")), None)
    reason_source = (
        with_reason
        if with_reason is not None
        else next((s for s in statuses if _text(s, "ram:Reason")), None)
    )
    return StatusMessage(
        message_id=_text(document, "ram:ID"),
        issued_at=issued_at,
        status_code=status_code,
        invoice_number=invoice_number,
        invoice_issue_date=invoice_date.date() if invoice_date is not None else None,
        seller_siren=_text(reference, "ram:IssuerTradeParty/ram:GlobalID"),
        sender=_read_party(sender) if sender is not None else Party(role=""),
        issuer=_read_party(issuer) if issuer is not None else Party(role=""),
        recipients=tuple(
            _read_party(element)
            for element in (
                document.iterfind("ram:RecipientTradeParty", NSMAP) if document is not None else ()
            )
        ),
        invoice_type_code=_text(reference, "ram:TypeCode"),
        reason_code=_text(with_reason, "ram:ReasonCode"),
        reason=_text(reason_source, "ram:Reason"),
        amounts=_read_amounts(statuses),
        business_process=_text(
            root, "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"
        ),
    )


# --- validate ------------------------------------------------------------------------------------


def validate(data: bytes) -> list[dict[str, str]]:
    """Blocking issues of a CDAR under the BR-FR-CDV rules (each ``{"rule", "message", …}``), [] if valid.

    Only blocking issues: the rules flag BR-FR-CDV-CL-06 (unknown status code) as a mere warning.
    """
    report = validate_cdar(data)
    return [issue.to_dict() for issue in report.errors]
