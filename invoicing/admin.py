"""Support's view of invoices, issued and received, with their lines and events: read-only for everyone,
superusers included. Fiscal records change only through the services (and the database refuses changes
to issued invoices anyway); drafts belong to the tenant and stay out of reach too."""

from django.contrib import admin

from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from scell.admin_base import ReadOnlyAdmin, ReadOnlyInline


class LineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = [
        "position",
        "description",
        "quantity",
        "unit_code",
        "unit_price",
        "vat_category",
        "vat_rate",
        "net_amount",
    ]
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = InvoiceEvent
    fields = ["created_at", "type", "status_code", "data"]
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "tenant",
        "livemode",
        "status",
        "type",
        "issue_date",
        "buyer_name",
        "total_with_vat",
        "currency",
    ]
    list_filter = ["status", "type", "livemode", "format"]
    search_fields = ["number", "buyer_name", "buyer_siren", "tenant__identifier"]
    list_select_related = ["tenant"]
    exclude = ["cii_xml", "source_file"]
    inlines = [LineInline, EventInline]
