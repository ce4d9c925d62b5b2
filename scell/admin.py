"""Django admin for support staff: tenants, members and keys (never a secret), and the log of what
support did (``SupportAction``), read-only for everyone."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from scell.admin_base import SUPPORT_ACTIONS, ReadOnlyAdmin, action_with_reason, support_action_record
from scell.models import ApiKey, Membership, SubTenant, SupportAction, Tenant, User


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
    list_select_related = ["tenant"]
    # The hash is not a secret, but support has no use for it; keys are created where they can be shown.
    exclude = ["key_hash"]
    # Revoking goes through the action (with a reason), never by editing the date.
    readonly_fields = [
        "tenant",
        "kind",
        "livemode",
        "display_prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request, obj=None):
        return False

    @action_with_reason(
        description=_("Revoke the selected keys"),
        permissions=["change"],
        note=_("Keys already revoked are left as they are. A revoked key stops working at once."),
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey], reason: str) -> None:
        from scell.services import api_key_revoke

        done = 0
        for key in queryset.select_related("tenant"):
            if key.revoked_at is not None:
                continue
            with transaction.atomic():
                api_key_revoke(api_key=key)
                support_action_record(
                    actor=request.user,
                    action="api_key.revoke",
                    obj=key,
                    reason=reason,
                    details={"kind": key.kind, "livemode": key.livemode, "prefix": key.display_prefix},
                )
            done += 1
        self.message_user(
            request, ngettext("%d key revoked.", "%d keys revoked.", done) % done, messages.SUCCESS
        )


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [MembershipInline]


class ActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return list(SUPPORT_ACTIONS.items())

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(SupportAction)
class SupportActionAdmin(ReadOnlyAdmin):
    """Who did what, to what and why: the audit trail of support, for support and its managers."""

    list_display = ["created_at", "actor", "action_label", "tenant", "reason", "object_link"]
    list_filter = [
        ActionFilter,
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    search_fields = [
        "reason",
        "object_id",
        "object_repr",
        "actor__email",
        "tenant__identifier",
        "tenant__legal_name",
    ]
    list_select_related = ["actor", "tenant"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor",
        "action_label",
        "tenant",
        "object_type",
        "object_id",
        "object_link",
        "reason",
        "details",
    ]
    readonly_fields = fields

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, obj: SupportAction) -> str:
        return str(SUPPORT_ACTIONS.get(obj.action, obj.action))

    @admin.display(description=_("object"))
    def object_link(self, obj: SupportAction) -> str:
        app_label, _dot, model_name = obj.object_type.partition(".")
        text = Truncator(obj.object_repr or obj.object_id).chars(48)
        try:
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[obj.object_id])
        except NoReverseMatch:
            return text
        return format_html('<a href="{}" title="{}">{}</a>', url, obj.object_repr, text)
