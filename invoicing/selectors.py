"""Invoice reads; each takes the caller's ``scope``."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from scell.tenancy import Scope


def _transmissions() -> Prefetch:
    from pdp.models import Flow

    # The outgoing invoice flow (its transmission to the PDP), without its file.
    flows = Flow.objects.filter(direction=Flow.Direction.OUT, kind=Flow.Kind.INVOICE).defer("content")
    return Prefetch("flows", queryset=flows.order_by("created_at"), to_attr="transmission_flows")


def invoice_list(*, scope: Scope) -> QuerySet[Invoice]:
    return (
        Invoice.objects.scoped(scope)
        .select_related("sub_tenant", "lifecycle")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")), _transmissions()
        )
        .defer("cii_xml", "source_file")
    )


def invoice_get(*, scope: Scope, pk: Any) -> Invoice:
    return invoice_list(scope=scope).get(pk=pk)


def invoice_events(*, scope: Scope, invoice: Invoice) -> QuerySet[InvoiceEvent]:
    return InvoiceEvent.objects.scoped(scope).filter(invoice=invoice)


def invoice_prefetch(invoice: Invoice) -> Invoice:
    """Attach the lines (in order) and the sub-tenant to an invoice loaded without them."""
    prefetch_related_objects(
        [invoice],
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")),
        "sub_tenant",
        "lifecycle",
        _transmissions(),
    )
    return invoice
