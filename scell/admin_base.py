"""Base classes of support's admin screens."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that change only through the services (fiscal rows, ledger, deliveries): support reads."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def tenant_by_ref(ref: str):
    """A tenant by identifier (case-insensitive) or id, for support commands; None when unknown."""
    from django.core.exceptions import ValidationError

    from scell.models import Tenant

    tenant = Tenant.objects.filter(identifier=ref.upper()).first()
    if tenant is None:
        try:
            tenant = Tenant.objects.filter(pk=ref).first()
        except (ValueError, ValidationError):
            return None
    return tenant
