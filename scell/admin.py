"""Django admin for support staff: tenants, members and keys (never a secret)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from scell.models import ApiKey, Membership, SubTenant, Tenant, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["legal_name", "identifier", "siren", "archive_status", "is_active", "created_at"]
    search_fields = ["legal_name", "identifier", "siren", "siret", "vat_id"]
    list_filter = ["archive_status", "is_active"]
    # The identifier prefixes issued invoice numbers: changing it would break the sequence's meaning.
    readonly_fields = ["id", "created_at", "archive_status"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "identifier"] if obj else fields


@admin.register(SubTenant)
class SubTenantAdmin(admin.ModelAdmin):
    list_display = ["legal_name", "identifier", "tenant", "siren", "is_active"]
    search_fields = ["legal_name", "identifier", "siren"]
    list_select_related = ["tenant"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "display_prefix",
        "kind",
        "livemode",
        "tenant",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["kind", "livemode"]
    search_fields = ["display_prefix", "tenant__identifier"]
    # The hash is not a secret, but support has no use for it; keys are created where they can be shown.
    exclude = ["key_hash"]
    readonly_fields = [
        "tenant",
        "kind",
        "livemode",
        "display_prefix",
        "created_at",
        "created_by",
        "last_used_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        from scell.services import api_key_revoke

        for key in queryset:
            api_key_revoke(api_key=key)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [MembershipInline]
