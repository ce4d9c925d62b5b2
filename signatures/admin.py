"""Support's view of signature requests: the request, its signers and its evidence log, read-only, and
the "Cancel" action (the same service as the API and the dashboard). Signing links are never shown (only
their hashes exist, and support has no use for them)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from scell.admin_base import ReadOnlyAdmin
from scell.errors import Conflict
from scell.tenancy import Scope
from signatures.models import SignatureEvent, SignatureRequest, Signer
from signatures.services import signature_request_cancel

SUPPORT_CANCEL_REASON = "Cancelled by Scell support"


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SignerInline(_ReadOnlyInline):
    model = Signer
    fields = [
        "position",
        "name",
        "email",
        "phone",
        "status",
        "notified_at",
        "reminder_count",
        "failed_attempts",
        "signed_at",
        "declined_at",
        "decline_reason",
        "ip",
        "phone_erased_at",
    ]
    readonly_fields = fields


class SignatureEventInline(_ReadOnlyInline):
    model = SignatureEvent
    fields = ["at", "action", "actor", "signer", "ip", "user_agent", "data"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("signer").order_by("at", "id")


@admin.register(SignatureRequest)
class SignatureRequestAdmin(ReadOnlyAdmin):
    list_display = ["title", "tenant", "livemode", "status", "created_at", "expires_at"]
    list_filter = ["status", "livemode"]
    search_fields = ["id", "title", "tenant__identifier", "signers__email"]
    fields = [
        "id",
        "tenant",
        "sub_tenant",
        "livemode",
        "status",
        "title",
        "message",
        "order",
        "external_ref",
        "notify_email",
        "locale",
        "original_filename",
        "original_sha256",
        "original_size",
        "page_count",
        "final_sha256",
        "evidence_sha256",
        "expires_at",
        "reminder_interval_days",
        "max_reminders",
        "charged_amount",
        "created_at",
        "created_by",
        "completed_at",
        "ended_at",
        "end_reason",
    ]
    readonly_fields = fields
    inlines = [SignerInline, SignatureEventInline]
    actions = ["cancel_requests"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant", "sub_tenant", "created_by")

    @admin.action(description="Cancel (pending requests only)", permissions=["cancel"])
    def cancel_requests(self, request: HttpRequest, queryset: QuerySet[SignatureRequest]) -> None:
        actor = f"support ({request.user.email})"
        cancelled, refused = 0, []
        for signature_request in queryset.select_related("tenant", "sub_tenant"):
            scope = Scope(
                tenant=signature_request.tenant,
                livemode=signature_request.livemode,
                sub_tenant=signature_request.sub_tenant,
            )
            try:
                signature_request_cancel(
                    scope=scope, request=signature_request, reason=SUPPORT_CANCEL_REASON, actor=actor
                )
            except Conflict as exc:
                refused.append(f"{signature_request.title} ({signature_request.pk}): {exc}")
                continue
            cancelled += 1
        if cancelled:
            messages.success(request, f"{cancelled} signature request(s) cancelled; the signers are told.")
        for line in refused:
            messages.warning(request, line)

    # Cancelling ends a tenant's request for every signer: it needs the model's change permission
    # (granted to support staff explicitly), not just the view permission of a read-only screen.
    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("signatures.change_signaturerequest")
