"""Support's view of signature requests: the request, its signers and its evidence log, read-only for
everyone (the evidence is a fiscal-grade record), and two support actions, each with a reason and logged:
"Cancel" (the same service as the API and the dashboard) and "Resend the invitation" to a signer whose
turn it is. Signing links are never shown (only their hashes exist, and support has no use for them)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from scell.admin_base import ReadOnlyAdmin, ReadOnlyInline, action_with_reason, support_action_record
from scell.errors import Conflict
from scell.tenancy import Scope
from signatures.models import SignatureEvent, SignatureRequest, Signer
from signatures.services import signature_request_cancel, signer_notification_resend

# What the signers read (the request's end reason); support's own reason stays in the support log.
SUPPORT_CANCEL_REASON = "Cancelled by Scell support"

SIGNER_FIELDS = [
    "position",
    "name",
    "email",
    "phone",
    "status",
    "notified_at",
    "last_reminded_at",
    "reminder_count",
    "failed_attempts",
    "signed_at",
    "declined_at",
    "decline_reason",
    "ip",
    "phone_erased_at",
]


def _scope(signature_request: SignatureRequest) -> Scope:
    return Scope(
        tenant=signature_request.tenant,
        livemode=signature_request.livemode,
        sub_tenant=signature_request.sub_tenant,
    )


def _resend(request: HttpRequest, signers: list[Signer], reason: str) -> None:
    """Send each signer a fresh link, one transaction and one log line per signer; say what was refused."""
    actor = f"support ({request.user.email})"
    sent, refused = 0, []
    for signer in signers:
        try:
            with transaction.atomic():
                signer_notification_resend(scope=_scope(signer.request), signer=signer, actor=actor)
                support_action_record(
                    actor=request.user,
                    action="signer.notification_resend",
                    obj=signer,
                    tenant=signer.request.tenant,
                    reason=reason,
                    details={"request": str(signer.request_id), "email": signer.email},
                )
        except Conflict as exc:
            refused.append(f"{signer.name} <{signer.email}>: {exc}")
            continue
        sent += 1
    if sent:
        messages.success(
            request,
            ngettext(
                "%d signer was sent a fresh link by e-mail.",
                "%d signers were sent a fresh link by e-mail.",
                sent,
            )
            % sent,
        )
    if not sent and not refused:
        messages.warning(request, _("No selected signer is waiting to sign."))
    for line in refused:
        messages.warning(request, line)


def _has_resend_permission(request: HttpRequest) -> bool:
    return request.user.has_perm("signatures.resend_signer_notification")


class SignerInline(ReadOnlyInline):
    model = Signer
    fields = SIGNER_FIELDS
    readonly_fields = fields
    show_change_link = True


class SignatureEventInline(ReadOnlyInline):
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
    actions = ["cancel_requests", "resend_notifications"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant", "sub_tenant", "created_by")

    @action_with_reason(
        description=_("Cancel (pending requests only)"),
        permissions=["cancel"],
        note=_("Pending requests end at once and their signers are told; the others are left as they are."),
    )
    def cancel_requests(
        self, request: HttpRequest, queryset: QuerySet[SignatureRequest], reason: str
    ) -> None:
        actor = f"support ({request.user.email})"
        cancelled, refused = 0, []
        for signature_request in queryset.select_related("tenant", "sub_tenant"):
            try:
                with transaction.atomic():
                    signature_request_cancel(
                        scope=_scope(signature_request),
                        request=signature_request,
                        reason=SUPPORT_CANCEL_REASON,
                        actor=actor,
                    )
                    support_action_record(
                        actor=request.user,
                        action="signature_request.cancel",
                        obj=signature_request,
                        reason=reason,
                        details={"title": signature_request.title},
                    )
            except Conflict as exc:
                refused.append(f"{signature_request.title} ({signature_request.pk}): {exc}")
                continue
            cancelled += 1
        if cancelled:
            messages.success(request, f"{cancelled} signature request(s) cancelled; the signers are told.")
        for line in refused:
            messages.warning(request, line)

    @action_with_reason(
        description=_("Resend the invitation to the signers whose turn it is"),
        permissions=["resend"],
        note=_("Each signer whose turn it is gets a fresh link by e-mail; the previous link stops working."),
    )
    def resend_notifications(
        self, request: HttpRequest, queryset: QuerySet[SignatureRequest], reason: str
    ) -> None:
        signers = Signer.objects.filter(request__in=queryset, status=Signer.Status.PENDING).select_related(
            "request", "request__tenant", "request__sub_tenant"
        )
        _resend(request, list(signers.order_by("request__created_at", "position")), reason)

    # Cancelling ends a tenant's request for every signer: it needs the model's change permission
    # (granted to a person explicitly), not just the view permission of a read-only screen.
    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("signatures.change_signaturerequest")

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return _has_resend_permission(request)


@admin.register(Signer)
class SignerAdmin(ReadOnlyAdmin):
    """One line per signer, to find the person who calls support ("I never got the e-mail")."""

    list_display = ["name", "email", "status", "request", "notified_at", "last_reminded_at", "reminder_count"]
    list_filter = ["status"]
    search_fields = ["email", "name", "request__id", "request__title", "request__tenant__identifier"]
    list_select_related = ["request"]
    fields = ["request", *SIGNER_FIELDS]
    readonly_fields = fields
    actions = ["resend_notification"]

    @action_with_reason(
        description=_("Resend the invitation (signers whose turn it is)"),
        permissions=["resend"],
        note=_("Each signer whose turn it is gets a fresh link by e-mail; the previous link stops working."),
    )
    def resend_notification(self, request: HttpRequest, queryset: QuerySet[Signer], reason: str) -> None:
        signers = queryset.select_related("request", "request__tenant", "request__sub_tenant")
        _resend(request, list(signers.order_by("request__created_at", "position")), reason)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return _has_resend_permission(request)
