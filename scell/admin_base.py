"""Base classes of support's admin screens: read-only admins for the records that change only through the
services, the "action with a reason" pattern every support action goes through, the log of those actions
(``SupportAction``) and the permissions of the "Support" group.

A support action asks for a reason on a confirmation page first (like Django's delete confirmation),
then calls the app's service and writes one ``SupportAction`` row per object in the same transaction:
what was done, to what, by whom and why."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.apps import apps as global_apps
from django.contrib import admin
from django.contrib.admin import helpers
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that change only through the services (fiscal rows, ledger, deliveries): support reads.
    Superusers included: the admin is no way around the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """The rows of a fiscal record (invoice lines, events, evidence): shown, never edited."""

    extra = 0
    can_delete = False
    show_change_link = False

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


# --- The log of support actions -----------------------------------------------------------------------
# Every action code written to SupportAction.action, with its label for the admin's filter.
SUPPORT_ACTIONS: dict[str, Any] = {
    "credits.adjust": _("Credit adjustment"),
    "webhook_delivery.replay": _("Replay a webhook delivery"),
    "chain.check": _("Re-run a chain check"),
    "chain_check.acknowledge": _("Acknowledge a chain check"),
    "signer.notification_resend": _("Resend a signer's invitation"),
    "signature_request.cancel": _("Cancel a signature request"),
    "api_key.revoke": _("Revoke an API key"),
    "flow.retransmit": _("Retransmit a PDP flow"),
}


def support_action_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    reason: str,
    tenant: Any = None,
    details: dict[str, Any] | None = None,
):
    """Write what a support agent did to ``obj`` and why. Call it inside the transaction of the action,
    so the log and the change are committed (or rolled back) together."""
    from scell.models import SupportAction, Tenant

    if action not in SUPPORT_ACTIONS:
        raise ValueError(f"Unknown support action {action!r}.")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A support action needs a reason.")
    if tenant is None:
        tenant = obj if isinstance(obj, Tenant) else getattr(obj, "tenant", None)
    return SupportAction.objects.create(
        actor=actor,
        action=action,
        tenant=tenant,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        reason=reason,
        details=details or {},
    )


# --- Actions with a reason ----------------------------------------------------------------------------
# Present only in the POST of the confirmation page: the first POST (from the change list) shows it.
REASON_STEP = "support_reason_step"
SHOWN_OBJECTS = 100


class SupportReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        help_text=_("Required. Say why (a ticket number helps); it is kept with your name."),
    )


def action_with_reason(
    *, description: Any, permissions: list[str] | None = None, note: Any = ""
) -> Callable[[Callable[..., None]], Callable[..., HttpResponse | None]]:
    """Decorate ``perform(modeladmin, request, queryset, reason)`` as an admin action that first asks for
    a reason. Nothing runs until a non-blank reason is given; ``note`` says on the confirmation page
    which of the selected objects the action applies to."""

    def decorator(perform: Callable[..., None]) -> Callable[..., HttpResponse | None]:
        @functools.wraps(perform)
        def action(
            modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
        ) -> HttpResponse | None:
            form = SupportReasonForm(request.POST if REASON_STEP in request.POST else None)
            if form.is_bound and form.is_valid():
                perform(modeladmin, request, queryset, form.cleaned_data["reason"])
                return None
            return _reason_page(modeladmin, request, queryset, form=form, description=description, note=note)

        return admin.action(description=description, permissions=permissions)(action)

    return decorator


def _reason_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    form: SupportReasonForm,
    description: Any,
    note: Any,
) -> TemplateResponse:
    opts = modeladmin.model._meta
    pks = list(queryset.values_list("pk", flat=True))
    objects = list(queryset[:SHOWN_OBJECTS])
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": description,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "objects": objects,
        "more": max(len(pks) - len(objects), 0),
        "pks": pks,
        "count": len(pks),
        "note": note,
        "form": form,
        "action_name": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "reason_step": REASON_STEP,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/scell/action_reason.html", context)


# --- The Support group --------------------------------------------------------------------------------
SUPPORT_GROUP = "Support"

# What support may look at: (app label, model name).
SUPPORT_VIEW = [
    ("scell", "tenant"),
    ("scell", "subtenant"),
    ("scell", "user"),
    ("scell", "membership"),
    ("scell", "apikey"),
    ("scell", "supportaction"),
    ("invoicing", "invoice"),
    ("invoicing", "invoiceline"),
    ("invoicing", "invoiceevent"),
    ("signatures", "signaturerequest"),
    ("signatures", "signer"),
    ("signatures", "signatureevent"),
    ("billing", "creditaccount"),
    ("billing", "creditlot"),
    ("billing", "ledgerentry"),
    ("billing", "purchase"),
    ("billing", "creditadjustment"),
    ("webhooks", "webhookendpoint"),
    ("webhooks", "webhookdelivery"),
    ("webhooks", "webhookattempt"),
    ("webhooks", "event"),
    ("archive", "chaincheck"),
    ("archive", "chainhead"),
    ("pdp", "flow"),
]

# The permissions of the support actions that are not add/change/delete/view of a model:
# (app label, model name, codename, name). Managers grant the ones support lacks to a person.
ACTION_PERMISSIONS = [
    ("webhooks", "webhookdelivery", "replay_webhookdelivery", "Can replay a webhook delivery"),
    ("archive", "chaincheck", "rerun_chaincheck", "Can re-run a chain check"),
    ("archive", "chaincheck", "acknowledge_chaincheck", "Can acknowledge a chain check"),
    ("signatures", "signer", "resend_signer_notification", "Can resend a signer's invitation"),
    ("pdp", "flow", "retransmit_flow", "Can retransmit a failed PDP flow"),
]

# What support may do besides looking: (app label, model name, codename).
SUPPORT_DO = [
    ("billing", "creditadjustment", "add_creditadjustment"),
    ("webhooks", "webhookdelivery", "replay_webhookdelivery"),
    ("archive", "chaincheck", "rerun_chaincheck"),
    ("signatures", "signer", "resend_signer_notification"),
]


def support_group_sync(*, apps: Any = None, using: str = DEFAULT_DB_ALIAS):
    """Create the action permissions and give the Support group exactly the permissions above
    (idempotent). Run by migration scell 0004 (with the historical models) and by
    ``manage.py support_user sync``; a missing model permission fails loudly."""
    apps = apps or global_apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, model, codename, name in ACTION_PERMISSIONS:
        content_type, _created = ContentType.objects.using(using).get_or_create(
            app_label=app_label, model=model
        )
        Permission.objects.using(using).get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    wanted = [(app, model, f"view_{model}") for app, model in SUPPORT_VIEW] + SUPPORT_DO
    permissions = []
    for app_label, model, codename in wanted:
        try:
            permissions.append(
                Permission.objects.using(using).get(
                    content_type__app_label=app_label, content_type__model=model, codename=codename
                )
            )
        except Permission.DoesNotExist:
            raise LookupError(f"Permission {app_label}.{codename} does not exist (run migrate).") from None
    group, _created = Group.objects.using(using).get_or_create(name=SUPPORT_GROUP)
    group.permissions.set(permissions)
    return group
