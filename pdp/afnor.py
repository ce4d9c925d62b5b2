"""Shared constants of the AFNOR XP Z12-013 Flow Service (``pdp/spec/flow-service-1.3.0.swagger.json``)
and the signature of its webhook callbacks.

Used by both sides: Scell's client (``pdp.client``) and the built-in simulator (``pdp.simulator``), so the
two can never disagree on an enumerated value or on how a callback is signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

# --- Enumerations of the spec (components/schemas), in the spec's order -----------------------------------
FlowSyntax: tuple[str, ...] = ("CII", "UBL", "Factur-X", "CDAR", "FRR")
FlowProfile: tuple[str, ...] = ("Basic", "CIUS", "Extended-CTC-FR", "Undefined")
FlowType: tuple[str, ...] = (
    "CustomerInvoice",
    "SupplierInvoice",
    "CustomerInvoiceLC",
    "SupplierInvoiceLC",
    "StateCustomerInvoiceLC",
    "StateSupplierInvoiceLC",
    "AggregatedCustomerTransactionReport",
    "UnitaryCustomerTransactionReport",
    "AggregatedCustomerPaymentReport",
    "UnitaryCustomerPaymentReport",
    "UnitarySupplierTransactionReport",
    "MultiFlowReport",
    "StateCustomerInvoice",
    "StateSupplierInvoice",
    "StateTransactionReport",
    "StateTransactionReportLC",
    "StatePaymentReport",
    "StatePaymentReportLC",
    "Undefined",
)
FlowDirection: tuple[str, ...] = ("In", "Out")
FlowAckStatus: tuple[str, ...] = ("Pending", "Ok", "Error")
ProcessingRule: tuple[str, ...] = (
    "B2B",
    "B2BInt",
    "B2C",
    "B2G",
    "B2GInt",
    "OutOfScope",
    "B2GOutOfScope",
    "ArchiveOnly",
    "NotApplicable",
    "Undefined",
)
ProcessingRuleSource: tuple[str, ...] = ("Input", "Computed")
ReasonCodeEnum: tuple[str, ...] = (
    "EmptyAttachement",  # sic: the spec's spelling
    "AttachmentTypeError",
    "EmptyFlow",
    "OtherTechnicalError",
    "InvalidSchema",
    "FileSizeExceeded",
    "FlowTypeError",
    "AlreadyExistingFlow",
    "VirusFound",
    "ChecksumMismatch",
    "InvoiceLCInvalidStatus",
    "InvoiceLCStatusError",
    "InvoiceLCRuleError",
    "InvoiceLCAccessDenied",
    "InvoiceLCAmountError",
)
AckDetailLevel: tuple[str, ...] = ("Error", "Warning")
DocType: tuple[str, ...] = ("Metadata", "Original", "Converted", "ReadableView")

# Syntaxes of an invoice (the others are lifecycle messages and e-reporting).
INVOICE_SYNTAXES: tuple[str, ...] = ("CII", "UBL", "Factur-X")

# --- ReasonCodeEnum -> CDAR status reason (MDT-113) -------------------------------------------------------
# As the spec's ReasonCodeEnum description gives them ("ie IRR_..."), with one correction: the spec writes
# IRR_VID_F for EmptyFlow, but the CDAR code list (BR-FR-CDV-CL-09, in the BR-FR-CDV Schematron) only has
# IRR_VIDE_F, so a CDAR carrying IRR_VID_F would be invalid. Codes the spec maps to nothing ("N/A", or no
# "ie") are absent.
REASON_TO_CDAR: dict[str, str] = {
    "EmptyAttachement": "IRR_VID_PJ",
    "AttachmentTypeError": "IRR_EXT_DOC",
    "EmptyFlow": "IRR_VIDE_F",
    "OtherTechnicalError": "AUTRE",
    "InvalidSchema": "IRR_SYNTAX",
    "FileSizeExceeded": "IRR_TAILLE_F",
    "FlowTypeError": "IRR_TYPE_F",
    "VirusFound": "IRR_ANTIVIRUS",
}

# The reasons a 501 "Irrecevable" status accepts (BR-FR-CDV-CL-09 for status 501): IRR_* codes only.
IRRECEVABLE_REASONS: tuple[str, ...] = (
    "IRR_VIDE_F",
    "IRR_TYPE_F",
    "IRR_SYNTAX",
    "IRR_TAILLE_PJ",
    "IRR_NOM_PJ",
    "IRR_VID_PJ",
    "IRR_EXT_DOC",
    "IRR_TAILLE_F",
    "IRR_ANTIVIRUS",
    "IRR_NOM_F",
)


def irrecevable_reason(reason_code: str) -> str:
    """The CDAR reason of the 501 (Irrecevable) status for a flow refused with ``reason_code``.

    The direct mapping when it gives an IRR_* code; otherwise IRR_SYNTAX: a 501 only accepts IRR_* codes
    and what remains (an EN 16931 / BR-FR rule id, ChecksumMismatch, OtherTechnicalError whose mapping AUTRE
    a 501 refuses) is a file that does not conform to its declared format, which is what IRR_SYNTAX says.
    """
    mapped = REASON_TO_CDAR.get(reason_code, "")
    return mapped if mapped in IRRECEVABLE_REASONS else "IRR_SYNTAX"


# --- Webhook callback signature ---------------------------------------------------------------------------
SIGNATURE_HEADER = "Afnor-Signature"
TIMESTAMP_HEADER = "Afnor-Signature-Timestamp"


def signing_key_bytes(signing_key: str) -> bytes:
    """The HMAC key of a webhook: its ``signingKey`` (OpenAPI ``format: byte``, i.e. base64) decoded."""
    return base64.b64decode(signing_key, validate=True)


def _fingerprint(payload: bytes, timestamp: int) -> str:
    return hashlib.sha256(bytes(payload) + b"@" + str(int(timestamp)).encode("ascii")).hexdigest()


def sign_callback(payload: bytes, key: bytes, timestamp: int) -> str:
    """The ``Afnor-Signature`` header of a callback whose body is ``payload``, sent at ``timestamp``
    (epoch seconds, sent as ``Afnor-Signature-Timestamp``).

    Per the spec (createWebhook): fingerprint = SHA-256 of ``payload + b"@" + str(timestamp)``; signature =
    HMAC-SHA256 of the fingerprint with the signing key, base64-encoded. The spec does not say whether the
    HMAC is computed over the fingerprint's raw 32 bytes or its hex form: this implementation uses the
    **lowercase hex digest string** (64 ASCII characters) as the HMAC message. ``key`` is the raw key, i.e.
    the webhook's base64 ``signingKey`` decoded (``signing_key_bytes``).
    """
    mac = hmac.new(bytes(key), _fingerprint(payload, timestamp).encode("ascii"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def verify_callback(
    payload: bytes,
    signature: str,
    timestamp: str | int,
    key: bytes,
    *,
    tolerance: int = 300,
    now: int | None = None,
) -> bool:
    """Whether ``signature`` (the ``Afnor-Signature`` header) signs ``payload`` at ``timestamp`` (the
    ``Afnor-Signature-Timestamp`` header) with ``key`` (raw bytes, see ``sign_callback``).

    Refuses a timestamp more than ``tolerance`` seconds away from ``now`` (default: the current time), in
    the past (a replayed callback) or in the future. The comparison is constant-time.
    """
    try:
        ts = int(str(timestamp).strip())
        received = base64.b64decode(str(signature).strip().encode("ascii"), validate=True)
    except (ValueError, UnicodeError, binascii.Error):
        return False
    current = int(time.time()) if now is None else int(now)
    if abs(current - ts) > tolerance:
        return False
    expected = base64.b64decode(sign_callback(payload, key, ts))
    return hmac.compare_digest(expected, received)
