"""Support's view of invoices: read-only. Fiscal records change only through the services (and the
database refuses changes to issued invoices anyway)."""

from django.contrib import admin

from invoicing.models import Invoice, InvoiceEvent, InvoiceLine


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
class InvoiceAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
