"""Invoice writes: drafts, issue (validation, gapless number, charge, freeze), credit notes, import,
rendering. Called alike by the API, the dashboard, the admin and the actors."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import io
import logging
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.services import credits_charge
from invoicing import computation, mapping
from invoicing.document import InvoiceDocument
from invoicing.formats.cii import to_cii
from invoicing.formats.ubl import to_ubl
from invoicing.models import Invoice, InvoiceEvent, InvoiceLine, NumberSequence, RenderedDocument
from scell.errors import Conflict, UnprocessableEntity
from scell.models import SubTenant, Tenant
from scell.tenancy import Scope
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

LINE_FIELDS = frozenset(InvoiceLine.EDITABLE_FIELDS)
HEADER_FIELDS = {
    "type",
    "format",
    "profile",
    "issue_date",
    "due_date",
    "currency",
    "tax_currency",
    "tax_exchange_rate",
    "operation_category",
    "vat_on_debits",
    "buyer_reference",
    "purchase_order_ref",
    "delivery_note_ref",
    "contract_ref",
    "project_ref",
    "buyer",
    "delivery",
    "payment",
    "notes",
    "allowances",
    "charges",
    "vat_exemptions",
    "prepaid_amount",
}


def business_today() -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(settings.BUSINESS_TIME_ZONE)).date()


def _jsonable(value: Any) -> Any:
    """Decimals and dates inside JSON blocks are stored as strings (exact, never float)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _next_value(*, scope: Scope, sub_tenant: SubTenant | None, kind: str) -> NumberSequence:
    """Lock the sequence row (created on first use) and return it; the caller increments it."""
    key = {"tenant": scope.tenant, "sub_tenant": sub_tenant, "livemode": scope.livemode, "kind": kind}
    sequence = NumberSequence.objects.select_for_update().filter(**key).first()
    if sequence is not None:
        return sequence
    try:
        with transaction.atomic():
            NumberSequence.objects.create(**key)
    except IntegrityError:
        pass  # created by a concurrent first use: fine, we lock it below
    return NumberSequence.objects.select_for_update().get(**key)


def _resolve_sub_tenant(scope: Scope, ref: str | None) -> SubTenant | None:
    if scope.sub_tenant is not None:
        if ref and ref.upper() not in {scope.sub_tenant.identifier, str(scope.sub_tenant.id)}:
            raise UnprocessableEntity(
                "sub_tenant differs from the X-Sub-Tenant the request acts on.",
                details=[{"field": "sub_tenant", "message": "must match X-Sub-Tenant"}],
            )
        return scope.sub_tenant
    if not ref:
        return None
    from scell.selectors import sub_tenant_get

    sub = sub_tenant_get(scope=scope, ref=ref)
    if sub is None:
        raise UnprocessableEntity(
            "No such sub-tenant.", details=[{"field": "sub_tenant", "message": f"unknown sub-tenant {ref!r}"}]
        )
    return sub


def _write_lines(invoice: Invoice, lines: list[dict[str, Any]]) -> list[InvoiceLine]:
    invoice.lines.all().delete()
    rows = [
        InvoiceLine(invoice=invoice, position=index, **_jsonable_line(line))
        for index, line in enumerate(lines, start=1)
    ]
    return InvoiceLine.objects.bulk_create(rows)


def _jsonable_line(line: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in line.items() if k in LINE_FIELDS}
    out["allowances"] = _jsonable(out.get("allowances") or [])
    out["charges"] = _jsonable(out.get("charges") or [])
    return out


def _refresh_totals(invoice: Invoice, lines: list[InvoiceLine], doc: InvoiceDocument | None = None) -> None:
    """Compute EN 16931 totals of a draft for display (the issue recomputes them from scratch)."""
    if doc is None:
        profile = invoice.sub_tenant or invoice.tenant
        doc = mapping.build_document(invoice, lines=lines, seller=mapping.seller_snapshot(profile))
        try:
            computation.compute(doc)
        except (ArithmeticError, TypeError, ValueError):
            return  # an incomplete draft: totals stay as they were, the issue will report what is wrong
    for line, computed in zip(lines, doc.lines, strict=True):
        line.net_amount = computed.net_amount
    invoice.total_without_vat = doc.totals.tax_exclusive
    invoice.total_vat = doc.totals.tax_total
    invoice.total_with_vat = doc.totals.tax_inclusive
    invoice.amount_due = doc.totals.amount_due
    invoice.totals = mapping.totals_to_dict(doc)
    invoice.vat_breakdown = mapping.breakdown_to_list(doc)


def _apply_header(invoice: Invoice, data: dict[str, Any], *, scope: Scope) -> None:
    for name in HEADER_FIELDS & data.keys():
        value = data[name]
        if name in {"buyer", "delivery", "payment", "notes", "allowances", "charges", "vat_exemptions"}:
            value = _jsonable(value) if value is not None else ({} if name != "delivery" else None)
            if name in {"notes", "allowances", "charges"} and value == {}:
                value = []
        if value is None and name in {
            "tax_currency",
            "operation_category",
            "buyer_reference",
            "purchase_order_ref",
            "delivery_note_ref",
            "contract_ref",
            "project_ref",
        }:
            value = ""
        setattr(invoice, name, value)
    if data.get("preceding_invoice"):
        # BG-3 of a corrective invoice (384) or credit note: an issued invoice of the same scope.
        original = (
            Invoice.objects.scoped(scope)
            .filter(pk=data["preceding_invoice"], status=Invoice.Status.ISSUED)
            .first()
        )
        if original is None:
            raise UnprocessableEntity(
                "preceding_invoice must be an issued invoice of yours.",
                details=[{"field": "preceding_invoice", "message": "unknown or not issued"}],
            )
        invoice.preceding_invoice = original
        invoice.preceding_number = original.number
        invoice.preceding_issue_date = original.issue_date
    elif "preceding_number" in data:
        invoice.preceding_invoice = None
        invoice.preceding_number = data["preceding_number"] or ""
        invoice.preceding_issue_date = data.get("preceding_issue_date")
    invoice.buyer_name = (invoice.buyer or {}).get("name", "")[:200]
    invoice.buyer_siren = ((invoice.buyer or {}).get("siren") or "")[:9]


@transaction.atomic
def invoice_create_draft(*, scope: Scope, data: dict[str, Any]) -> Invoice:
    """A new draft numbered ``DRAFT-NNNNN`` (its own sequence per tenant and mode; gaps do not matter)."""
    sub_tenant = _resolve_sub_tenant(scope, data.get("sub_tenant"))
    sequence = _next_value(scope=scope, sub_tenant=None, kind=NumberSequence.Kind.DRAFT)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    invoice = Invoice(
        tenant=scope.tenant,
        livemode=scope.livemode,
        sub_tenant=sub_tenant,
        number=f"DRAFT-{sequence.last_value:05d}",
    )
    _apply_header(invoice, data, scope=scope)
    invoice.save()
    lines = _write_lines(invoice, data.get("lines") or [])
    _refresh_totals(invoice, lines)
    invoice.save()
    InvoiceLine.objects.bulk_update(lines, ["net_amount"])
    InvoiceEvent.objects.create(invoice=invoice, tenant=scope.tenant, livemode=scope.livemode, type="created")
    event_emit(scope=scope, type="invoice.created", data={"id": str(invoice.id), "number": invoice.number})
    return invoice


def _lock_draft(scope: Scope, invoice: Invoice) -> Invoice:
    locked = Invoice.objects.scoped(scope).select_for_update().get(pk=invoice.pk)
    if locked.status != Invoice.Status.DRAFT:
        raise Conflict(
            f"Invoice {locked.number} is {locked.status}: only drafts can change.", code="invoice_not_draft"
        )
    return locked


@transaction.atomic
def invoice_update_draft(*, scope: Scope, invoice: Invoice, data: dict[str, Any]) -> Invoice:
    invoice = _lock_draft(scope, invoice)
    if "sub_tenant" in data:
        invoice.sub_tenant = _resolve_sub_tenant(scope, data["sub_tenant"])
    _apply_header(invoice, data, scope=scope)
    lines = _write_lines(invoice, data["lines"]) if "lines" in data else list(invoice.lines.all())
    _refresh_totals(invoice, lines)
    invoice.updated_at = timezone.now()
    invoice.save()
    InvoiceLine.objects.bulk_update(lines, ["net_amount"])
    return invoice


@transaction.atomic
def invoice_delete_draft(*, scope: Scope, invoice: Invoice) -> None:
    _lock_draft(scope, invoice).delete()


def invoice_preview(*, scope: Scope, data: dict[str, Any], invoice: Invoice | None = None) -> InvoiceDocument:
    """The computed document a draft would have with ``data`` (the validated draft body; on top of
    ``invoice`` when editing one): what the dashboard shows while a draft is typed, by the computation
    that saving and issuing use. Nothing is written; a draft too incomplete to compute raises
    ``UnprocessableEntity``."""
    draft = (
        copy.copy(invoice) if invoice is not None else Invoice(tenant=scope.tenant, livemode=scope.livemode)
    )
    if "sub_tenant" in data or invoice is None:
        draft.sub_tenant = _resolve_sub_tenant(scope, data.get("sub_tenant"))
    _apply_header(draft, data, scope=scope)
    if "lines" in data:
        source = data["lines"]
    else:
        source = [_line_dict(line) for line in invoice.lines.all()] if invoice is not None else []
    lines = [
        InvoiceLine(position=index, **_jsonable_line(line)) for index, line in enumerate(source, start=1)
    ]
    profile = draft.sub_tenant or scope.tenant
    doc = mapping.build_document(draft, lines=lines, seller=mapping.seller_snapshot(profile))
    try:
        return computation.compute(doc)
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise UnprocessableEntity(
            "The totals cannot be computed yet.", details=[{"field": "lines", "message": str(exc)}]
        ) from exc


# --- Issue ----------------------------------------------------------------------------------------


def render_xml(doc: InvoiceDocument, fmt: str) -> bytes:
    return to_ubl(doc) if fmt == Invoice.Format.UBL else to_cii(doc)


def validate_xml(xml: bytes, *, fmt: str, profile: str) -> list[dict[str, Any]]:
    """Blocking issues of ``xml`` under the XSD, EN 16931, Factur-X profile and BR-FR rules."""
    from invoicing.validation import validate_cii, validate_ubl

    report = validate_ubl(xml) if fmt == Invoice.Format.UBL else validate_cii(xml, profile=profile)
    return [issue.to_dict() for issue in report.errors]


def _invalid(details: list[dict[str, Any]]) -> UnprocessableEntity:
    rules = ", ".join(sorted({d.get("rule") or d.get("field") or "?" for d in details})[:10])
    return UnprocessableEntity(
        f"The invoice breaks {len(details)} rule(s): {rules}.", code="invoice_invalid", details=details
    )


@dataclass
class _Prepared:
    doc: InvoiceDocument
    seller: dict[str, Any]
    issue_date: dt.date
    due_date: dt.date | None
    payment: dict[str, Any]
    identifier: str
    updated_at: dt.datetime
    lines: list[InvoiceLine]


# The logo as printed: flattened on white and without ICC profile (PDF/A-3b with an sRGB output intent
# and no soft masks), at most this many pixels, stored under its own hash so that it never changes.
LOGO_PIXELS = (1200, 400)
LOGO_MAX_SOURCE_PIXELS = 40_000_000
_frozen_logos: dict[tuple[str, str], str] = {}


def _freeze_logo(profile: Tenant | SubTenant) -> str:
    """The storage name of the frozen copy of ``profile``'s logo ("" without a usable logo).

    Profile logos are replaced at will; an issued invoice keeps the copy it was issued with. The copy is
    content-addressed, so issuing again with the same logo writes nothing."""
    if not profile.logo:
        return ""
    tenant_id = str(getattr(profile, "tenant_id", None) or profile.pk)
    key = (tenant_id, profile.logo.name)
    if key in _frozen_logos:
        return _frozen_logos[key]
    from PIL import Image, ImageOps

    try:
        with profile.logo.open("rb") as handle:
            image = Image.open(io.BytesIO(handle.read()))
            if image.width * image.height > LOGO_MAX_SOURCE_PIXELS:
                raise ValueError(f"{image.width}x{image.height} pixels")
            image.load()
        image = ImageOps.exif_transpose(image).convert("RGBA")
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        flat.thumbnail(LOGO_PIXELS)
        out = io.BytesIO()
        flat.save(out, format="PNG", optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # A logo must never block an invoice: it is issued without one, and the owner is told in the logs.
        logger.warning("Logo %s of %s cannot be used: %s", profile.logo.name, profile, exc)
        return ""
    content = out.getvalue()
    name = f"logos/frozen/{tenant_id}/{hashlib.sha256(content).hexdigest()}.png"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(content))
    _frozen_logos[key] = name
    return name


def _payment_defaults(
    issuer: Tenant | SubTenant, invoice: Invoice, issue_date: dt.date
) -> tuple[dt.date | None, dict[str, Any]]:
    """BT-9 and BT-20 of a draft that gives neither: the legal profile's payment term (days after the
    issue date) and terms text. BR-CO-25 wants one of them whenever an amount is due."""
    payment = dict(invoice.payment or {})
    if invoice.due_date is not None or (payment.get("terms") or "").strip():
        return invoice.due_date, payment
    if issuer.payment_terms:
        payment["terms"] = issuer.payment_terms
    return issue_date + dt.timedelta(days=issuer.payment_days), payment


def invoice_validate_draft(*, scope: Scope, invoice: Invoice) -> None:
    """The checks of ``invoice_issue`` on a draft (EN 16931, BR-FR, dates, profile), without taking a number,
    spending credits or changing the invoice: raises what issuing would raise."""
    _prepare(scope, invoice)


def _prepare(scope: Scope, invoice: Invoice) -> _Prepared:
    """Everything that can fail before a number is taken: build, compute, check, render, validate."""
    if invoice.status != Invoice.Status.DRAFT:
        raise Conflict(f"Invoice {invoice.number} is already {invoice.status}.", code="invoice_not_draft")
    issuer = invoice.sub_tenant or scope.tenant
    today = business_today()
    issue_date = invoice.issue_date or today
    if issue_date > today:
        raise UnprocessableEntity(
            "An invoice cannot be issued with a future date.",
            details=[{"field": "issue_date", "message": f"{issue_date} is after today ({today})"}],
        )
    seller = mapping.seller_snapshot(issuer, logo=_freeze_logo(issuer))
    lines = list(invoice.lines.all())
    due_date, payment = _payment_defaults(issuer, invoice, issue_date)
    # What is validated is what gets frozen: the draft as it will be issued, defaults included.
    draft = copy.copy(invoice)
    draft.due_date, draft.payment = due_date, payment
    # A number of the definitive shape: the rules see exactly what the issued document will carry.
    provisional = f"{issuer.identifier}-{issue_date:%Y%m}-00000"
    doc = mapping.build_document(draft, lines=lines, seller=seller, number=provisional, issue_date=issue_date)
    problems = computation.check(doc)
    if problems:
        raise _invalid([{"rule": rule, "message": message} for rule, message in problems])
    computation.compute(doc)
    details = validate_xml(render_xml(doc, invoice.format), fmt=invoice.format, profile=invoice.profile)
    if details:
        raise _invalid(details)
    return _Prepared(
        doc=doc,
        seller=seller,
        issue_date=issue_date,
        due_date=due_date,
        payment=payment,
        identifier=issuer.identifier,
        updated_at=invoice.updated_at,
        lines=lines,
    )


def invoice_issue(*, scope: Scope, invoice: Invoice) -> Invoice:
    """Validate, number, charge and freeze a draft.

    Validation (tens of milliseconds) runs before the transaction, so the sequence lock is held only for
    the few milliseconds of numbering and writing: issuing stays fast under concurrency. A draft edited
    meanwhile is refused (409), so what was validated is what gets issued."""
    prepared = _prepare(scope, invoice)
    with transaction.atomic():
        locked = _lock_draft(scope, invoice)
        if locked.updated_at != prepared.updated_at:
            raise Conflict(
                "The draft changed while it was being issued; issue it again.", code="draft_changed"
            )
        sequence = _next_value(scope=scope, sub_tenant=locked.sub_tenant, kind=NumberSequence.Kind.ISSUED)
        if sequence.last_issue_date and prepared.issue_date < sequence.last_issue_date:
            # CGI art. 242 nonies A: numbers follow dates; an older date after a newer one would break it.
            raise Conflict(
                f"Invoice {sequence.last_value} of this sequence is dated {sequence.last_issue_date}; "
                f"an invoice dated {prepared.issue_date} cannot follow it.",
                code="issue_date_before_last_issued",
            )
        sequence.last_value += 1
        sequence.last_issue_date = prepared.issue_date
        sequence.save(update_fields=["last_value", "last_issue_date"])
        doc = prepared.doc
        doc.number = f"{prepared.identifier}-{prepared.issue_date:%Y%m}-{sequence.last_value:05d}"
        cii = to_cii(doc)
        # Spending credits is the last step that can refuse (402): it rolls everything above back,
        # the number included.
        credits_charge(
            tenant=scope.tenant,
            livemode=scope.livemode,
            operation="invoice_issue",
            reference=doc.number,
            sub_tenant=locked.sub_tenant,
        )
        # The lines validated are the lines issued: any change to a draft moves its updated_at (checked
        # above under the row lock), so the ones read before the lock are still current.
        lines = prepared.lines
        _refresh_totals(locked, lines, doc)
        # Lines first: once the invoice row says "issued", the triggers freeze its lines too.
        InvoiceLine.objects.bulk_update(lines, ["net_amount"])
        locked.number = doc.number
        locked.issue_date = prepared.issue_date
        locked.due_date = prepared.due_date
        locked.payment = prepared.payment
        locked.seller = prepared.seller
        locked.cii_xml = cii
        locked.document_sha256 = hashlib.sha256(cii).hexdigest()
        locked.status = Invoice.Status.ISSUED
        locked.issued_at = timezone.now()
        locked.updated_at = locked.issued_at
        locked.save()
        InvoiceEvent.objects.create(
            invoice=locked,
            tenant=scope.tenant,
            livemode=scope.livemode,
            type="issued",
            data={"number": locked.number, "sha256": locked.document_sha256},
        )
        event_emit(scope=scope, type="invoice.issued", data=_event_data(locked))
        # The outbox row of its transmission to the PDP (the simulator for sandbox invoices), written in
        # this transaction so that an issued invoice is never left untransmitted.
        from pdp.services import transmission_queue

        transmission_queue(invoice=locked)
        invoice_id = str(locked.id)
        transaction.on_commit(lambda: _enqueue_render(invoice_id))
    return locked


def _event_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "type": invoice.type,
        "status": invoice.status,
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "currency": invoice.currency,
        "total_with_vat": str(invoice.total_with_vat),
        "amount_due": str(invoice.amount_due),
        "buyer": {"name": invoice.buyer_name, "siren": invoice.buyer_siren},
    }


def _enqueue_render(invoice_id: str) -> None:
    from invoicing.tasks import render_invoice_documents

    render_invoice_documents.send(invoice_id)


# --- Credit notes -------------------------------------------------------------------------------


@transaction.atomic
def invoice_create_credit_note(
    *,
    scope: Scope,
    original: Invoice,
    lines: list[dict[str, Any]] | None = None,
    data: dict[str, Any] | None = None,
) -> Invoice:
    """A draft credit note (381) referencing an issued invoice: in full, or ``lines`` (each
    ``{"line": position, "quantity": q}`` or a full line) for a partial one."""
    if original.status != Invoice.Status.ISSUED or original.type == Invoice.Type.CREDIT_NOTE:
        raise Conflict("Only an issued invoice can be credited.", code="invoice_not_creditable")
    by_position = {line.position: line for line in original.lines.all()}
    chosen: list[dict[str, Any]] = []
    if not lines:
        chosen = [_line_dict(line) for line in by_position.values()]
    else:
        for index, item in enumerate(lines):
            if "line" in item:
                source = by_position.get(int(item["line"]))
                if source is None:
                    raise UnprocessableEntity(
                        "No such line in the original invoice.",
                        details=[
                            {"field": f"lines[{index}].line", "message": f"unknown line {item['line']}"}
                        ],
                    )
                quantity = Decimal(str(item.get("quantity", source.quantity)))
                if quantity <= 0 or quantity > source.quantity:
                    raise UnprocessableEntity(
                        "A credited quantity must be positive and at most the invoiced one.",
                        details=[
                            {"field": f"lines[{index}].quantity", "message": f"0 < q ≤ {source.quantity}"}
                        ],
                    )
                chosen.append(_line_dict(source) | {"quantity": quantity})
            else:
                chosen.append(item)
    body = {
        name: copy.deepcopy(getattr(original, name))
        for name in HEADER_FIELDS - {"type", "issue_date", "due_date", "prepaid_amount"}
    }
    if lines:
        # A partial credit note credits the chosen lines only: the original's document-level
        # allowances and charges (BG-20/BG-21) were for the whole invoice and are not credited again.
        body["allowances"], body["charges"] = [], []
    body |= data or {}
    body["type"] = Invoice.Type.CREDIT_NOTE
    body["lines"] = chosen
    if original.sub_tenant is not None:
        body["sub_tenant"] = str(original.sub_tenant.id)
    credit = invoice_create_draft(scope=scope, data=body)
    credit.preceding_invoice = original
    credit.preceding_number = original.number
    credit.preceding_issue_date = original.issue_date
    credit.save(update_fields=["preceding_invoice", "preceding_number", "preceding_issue_date"])
    return credit


def _line_dict(line: InvoiceLine) -> dict[str, Any]:
    return {name: getattr(line, name) for name in LINE_FIELDS}


# --- Documents ----------------------------------------------------------------------------------


def issued_document(invoice: Invoice) -> InvoiceDocument:
    """The computed semantic document of an issued invoice, rebuilt from its frozen rows."""
    doc = mapping.build_document(invoice)
    return computation.compute(doc)


CONTENT_TYPES = {
    "facturx": ("application/pdf", "pdf"),
    "pdf": ("application/pdf", "pdf"),
    "cii": ("application/xml", "xml"),
    "ubl": ("application/xml", "xml"),
}


def invoice_render(*, invoice: Invoice, fmt: str) -> RenderedDocument:
    """The stored document of ``invoice`` in ``fmt``, rendered now if it was not yet (idempotent)."""
    existing = RenderedDocument.objects.filter(invoice=invoice, format=fmt).first()
    if existing is not None:
        return existing
    if invoice.status == Invoice.Status.DRAFT:
        raise Conflict("Drafts have no documents yet; issue the invoice first.", code="invoice_not_issued")
    if fmt not in CONTENT_TYPES:
        raise UnprocessableEntity(f"Unknown format {fmt!r}.", details=[{"field": "format", "message": fmt}])
    # The documents actor, the PDP transmission and a download often ask for the same document at once,
    # just after the issue: the invoice's row lock makes the others wait for the first render and take
    # its result instead of rendering it again (a Factur-X PDF is the costliest step of the worker).
    with transaction.atomic():
        list(Invoice.objects.select_for_update().filter(pk=invoice.pk).values_list("pk", flat=True))
        existing = RenderedDocument.objects.filter(invoice=invoice, format=fmt).first()
        if existing is not None:
            return existing
        return _render_and_store(invoice, fmt)


def _render_and_store(invoice: Invoice, fmt: str) -> RenderedDocument:
    doc = issued_document(invoice)
    if fmt == "cii":
        content = bytes(invoice.cii_xml)
    elif fmt == "ubl":
        content = to_ubl(doc)
    elif fmt == "pdf":
        from invoicing.formats.pdf import render_invoice_pdf

        content = render_invoice_pdf(doc, branding=_branding(invoice.seller))
    else:  # facturx
        from invoicing.formats.facturx import to_facturx_pdf

        content = to_facturx_pdf(
            doc, bytes(invoice.cii_xml), branding=_branding(invoice.seller), check_xsd=False
        )
    content_type, extension = CONTENT_TYPES[fmt]
    document = RenderedDocument(
        invoice=invoice, format=fmt, content_type=content_type, sha256=hashlib.sha256(content).hexdigest()
    )
    document.file.save(f"{invoice.number}-{fmt}.{extension}", ContentFile(content), save=False)
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:
        # Stored meanwhile by a process that did not wait for the lock (SQLite has none): keep the first.
        document.file.delete(save=False)
        return RenderedDocument.objects.get(invoice=invoice, format=fmt)
    return document


def _branding(seller: dict[str, Any]) -> dict[str, str]:
    """The PDF's footer and logo from the seller frozen at issue (none for invoices issued before
    legal profiles had them). The logo goes in as a data URI: the renderer reads no file itself."""
    presentation = (seller or {}).get("presentation") or {}
    branding = {"footer_text": str(presentation.get("footer") or "")}
    name = presentation.get("logo") or ""
    if name:
        try:
            with default_storage.open(name, "rb") as handle:
                encoded = base64.b64encode(handle.read()).decode("ascii")
        except OSError:
            logger.error("The frozen logo %s is missing: the document is rendered without it.", name)
        else:
            branding["logo_url"] = f"data:image/png;base64,{encoded}"
    return branding


# --- Validation and import of files -----------------------------------------------------------


def document_validate(*, data: bytes) -> dict[str, Any]:
    """Validate any CII/UBL/Factur-X file; 422 with the broken rules when it fails, the report when not."""
    from invoicing.validation import validate_document

    report = validate_document(data)
    if not report.valid:
        error = _invalid([issue.to_dict() for issue in report.errors])
        error.message = f"The {report.syntax} document breaks {len(report.errors)} rule(s): " + ", ".join(
            sorted(report.rules())[:10]
        )
        raise error
    return report.to_dict()


TYPE_BY_CODE = {"381": Invoice.Type.CREDIT_NOTE, "384": Invoice.Type.CORRECTIVE}
FORMAT_BY_SYNTAX = {"facturx": "facturx", "cii": "cii", "ubl_invoice": "ubl", "ubl_creditnote": "ubl"}


@transaction.atomic
def invoice_import(*, scope: Scope, data: bytes) -> Invoice:
    """Store an incoming invoice as a received invoice, with its lines, its totals as the file states
    them and the validation report (an invalid invoice is kept so that it can be disputed or refused)."""
    from invoicing.formats.parse import ImportFormatError, detect_syntax, parse_invoice
    from invoicing.validation import validate_document

    try:
        syntax = detect_syntax(data)
        parsed = parse_invoice(data)
    except ImportFormatError as exc:
        raise UnprocessableEntity(
            f"The file cannot be imported: {exc}",
            code="import_failed",
            details=[{"field": "file", "message": str(exc)}],
        ) from exc
    report = validate_document(data)
    doc = parsed.document
    t = doc.totals
    invoice = Invoice.objects.create(
        tenant=scope.tenant,
        livemode=scope.livemode,
        sub_tenant=scope.sub_tenant,
        status=Invoice.Status.RECEIVED,
        type=TYPE_BY_CODE.get(doc.type_code, Invoice.Type.INVOICE),
        number=doc.number[:40],
        format=FORMAT_BY_SYNTAX.get(syntax, "cii"),
        profile=parsed.profile or Invoice.Profile.EN16931,
        issue_date=doc.issue_date,
        due_date=doc.due_date,
        currency=doc.currency,
        tax_currency=doc.tax_currency,
        seller=_jsonable(mapping.party_to_dict(doc.seller)),
        buyer=_jsonable(mapping.party_to_dict(doc.buyer)),
        buyer_name=doc.buyer.name[:200],
        buyer_siren=doc.buyer.siren[:9],
        buyer_reference=doc.buyer_reference[:100],
        purchase_order_ref=doc.purchase_order_ref[:100],
        delivery_note_ref=doc.delivery_note_ref[:100],
        contract_ref=doc.contract_ref[:100],
        project_ref=doc.project_ref[:100],
        notes=[{"subject": n.subject, "text": n.text} for n in doc.notes],
        payment=_jsonable(
            {
                "means_code": doc.payment.means_code,
                "iban": doc.payment.iban,
                "bic": doc.payment.bic,
                "terms": doc.payment.terms,
            }
        ),
        preceding_number=doc.preceding_invoices[0].number[:40] if doc.preceding_invoices else "",
        preceding_issue_date=doc.preceding_invoices[0].issue_date if doc.preceding_invoices else None,
        prepaid_amount=t.prepaid,
        total_without_vat=t.tax_exclusive,
        total_vat=t.tax_total,
        total_with_vat=t.tax_inclusive,
        amount_due=t.amount_due,
        totals=mapping.totals_to_dict(doc),
        vat_breakdown=mapping.breakdown_to_list(doc),
        source_syntax=syntax,
        source_file=data,
        import_report=report.to_dict(),
        document_sha256=hashlib.sha256(data).hexdigest(),
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=index,
            description=(line.name or line.description or "-")[:500],
            detail=line.description if line.name else "",
            quantity=line.quantity,
            unit_code=line.unit_code or "C62",
            unit_price=line.net_price,
            price_base_quantity=line.price_base_quantity,
            vat_category=line.vat_category,
            vat_rate=line.vat_rate,
            seller_item_id=line.seller_item_id[:100],
            period_start=line.period_start,
            period_end=line.period_end,
            net_amount=line.net_amount,
        )
        for index, line in enumerate(doc.lines, start=1)
    )
    InvoiceEvent.objects.create(
        invoice=invoice,
        tenant=scope.tenant,
        livemode=scope.livemode,
        type="received",
        data={"syntax": syntax, "valid": report.valid, "sha256": invoice.document_sha256},
    )
    event_emit(scope=scope, type="invoice.received", data=_event_data(invoice))
    return invoice
