"""Dashboard → Settings: the legal profile, the team (members, roles, invitations, two-factor policy), the
sub-tenants, privacy and data (DPA, exports, erasure of one's account), and the page of an invitation
link. Views are thin: reads through ``scell.selectors``, writes through ``scell.services``.

Every settings page is readable by every member of the tenant; writes are for its admins (403 for
others). Objects of another tenant are 404."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.forms import Form
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from scell import selectors, services
from scell.errors import ScellError
from scell.forms import (
    NOTE_SUBJECTS,
    AcceptInvitationForm,
    DpaAcceptForm,
    EraseAccountForm,
    InviteForm,
    LegalProfileForm,
    RoleForm,
    SubTenantForm,
)
from scell.models import Invitation, LegalProfile, Membership, SubTenant, Tenant, User
from scell.tenancy import SESSION_TENANT, dashboard_page

View = Callable[..., HttpResponse]


def dpa_version() -> str:
    return settings.DPA_VERSION


# --- Helpers ------------------------------------------------------------------------------------------
def _is_admin(request: HttpRequest) -> bool:
    return request.scope.role == Membership.Role.ADMIN


def _forbidden(request: HttpRequest, message: str | None = None) -> HttpResponse:
    message = message or _("Only an admin of the tenant can change this.")
    return render(request, "account/forbidden.html", {"message": message}, status=403)


def admin_only(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _is_admin(request):
            return _forbidden(request)
        return view(request, *args, **kwargs)

    return wrapper


def _add_errors(form: Form, exc: ValidationError | ScellError) -> None:
    """A service's refusal, placed on the field it names when the form has it."""
    if isinstance(exc, ScellError):
        placed = False
        for detail in exc.details:
            field = str(detail.get("field") or "")
            if field in form.fields:
                form.add_error(field, detail.get("message") or exc.message)
                placed = True
        if not placed:
            form.add_error(None, exc.message)
        return
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _standard_notes() -> dict[str, str]:
    from invoicing.mapping import DEFAULT_NOTES

    return {name: DEFAULT_NOTES[subject] for name, subject in NOTE_SUBJECTS.items()}


def _logo_response(profile: LegalProfile) -> HttpResponse:
    if not profile.logo:
        raise Http404
    try:
        handle = profile.logo.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    content_type = mimetypes.guess_type(profile.logo.name)[0] or "application/octet-stream"
    if content_type not in {"image/png", "image/jpeg"}:
        raise Http404
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


# --- Legal profile -------------------------------------------------------------------------------------
@dashboard_page
def profile_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    # A fresh row: a rejected form must not leave its values on the tenant the page header shows.
    tenant = Tenant.objects.get(pk=scope.tenant.pk)
    is_admin = _is_admin(request)
    form = None
    if request.method == "POST":
        if not is_admin:
            return _forbidden(request)
        form = LegalProfileForm(request.POST, request.FILES, instance=tenant)
        if form.is_valid():
            try:
                services.tenant_profile_update(tenant=scope.tenant, **form.profile_changes())
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Legal profile saved."))
                return redirect("account:profile")
        tenant = Tenant.objects.get(pk=scope.tenant.pk)
    elif is_admin:
        form = LegalProfileForm(instance=tenant)
    context = {
        "profile": tenant,
        "form": form,
        "is_admin": is_admin,
        "standard_notes": _standard_notes(),
        "logo_url": _versioned("account:logo", tenant) if tenant.logo else "",
    }
    return render(request, "account/profile.html", context, status=422 if form and form.errors else 200)


def _versioned(name: str, profile: LegalProfile, *args: Any) -> str:
    # The file name changes with every upload (uuid): a new logo is never hidden by the browser cache.
    return reverse(name, args=args) + "?v=" + profile.logo.name.rsplit("/", 1)[-1].split(".", 1)[0]


@dashboard_page
@require_GET
def logo_view(request: HttpRequest) -> HttpResponse:
    return _logo_response(Tenant.objects.get(pk=request.scope.tenant.pk))


# --- Team -----------------------------------------------------------------------------------------------
def _team_context(request: HttpRequest, invite_form: InviteForm | None = None) -> dict[str, Any]:
    scope = request.scope
    members = list(selectors.membership_list(scope=scope))
    with_2fa = selectors.users_with_two_factor(users=[m.user for m in members])
    admins = selectors.admin_count(scope=scope)
    rows = [
        {
            "membership": m,
            # Its controls are not offered: the services would refuse (the team keeps an admin).
            "last_admin": admins <= 1 and m.role == Membership.Role.ADMIN and m.user.is_active,
            "two_factor": m.user_id in with_2fa,
            "is_me": m.user_id == request.user.pk,
            "role_form": RoleForm(initial={"role": m.role}, auto_id=f"id_role_{m.pk}_%s"),
        }
        for m in members
    ]
    return {
        "rows": rows,
        "admins": admins,
        "invitations": list(selectors.invitation_list(scope=scope)),
        "invite_form": invite_form or InviteForm(),
        "is_admin": _is_admin(request),
        "tenant": scope.tenant,
        "without_2fa": sum(1 for r in rows if not r["two_factor"] and r["membership"].user.is_active),
        "has_2fa": request.user.pk in with_2fa,
        "now": timezone.now(),
    }


@dashboard_page
def team_view(request: HttpRequest) -> HttpResponse:
    form = None
    if request.method == "POST":
        if not _is_admin(request):
            return _forbidden(request)
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                issued = services.invitation_create(
                    tenant=request.scope.tenant,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,
                )
            except ScellError as exc:
                _add_errors(form, exc)
            else:
                messages.success(
                    request, _("Invitation sent to %(email)s.") % {"email": issued.invitation.email}
                )
                return redirect("account:team")
    context = _team_context(request, form)
    return render(request, "account/team.html", context, status=422 if form and form.errors else 200)


def _membership_or_404(request: HttpRequest, pk: int) -> Membership:
    membership = selectors.membership_get(scope=request.scope, pk=pk)
    if membership is None:
        raise Http404
    return membership


def _invitation_or_404(request: HttpRequest, pk: UUID) -> Invitation:
    invitation = selectors.invitation_get(scope=request.scope, pk=str(pk))
    if invitation is None:
        raise Http404
    return invitation


@dashboard_page
@require_POST
@admin_only
def member_role_view(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _membership_or_404(request, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("account:team")
    try:
        services.membership_role_change(membership=membership, role=form.cleaned_data["role"])
    except ScellError as exc:
        messages.error(request, exc.message)
        return redirect("account:team")
    messages.success(request, _("%(email)s is now %(role)s.") % _who(membership, form.cleaned_data["role"]))
    return redirect("account:team")


def _who(membership: Membership, role: str) -> dict[str, str]:
    return {"email": membership.user.email, "role": str(Membership.Role(role).label)}


@dashboard_page
@require_POST
@admin_only
def member_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _membership_or_404(request, pk)
    try:
        services.membership_remove(membership=membership)
    except ScellError as exc:
        messages.error(request, exc.message)
        return redirect("account:team")
    if membership.user_id == request.user.pk:
        # They left this tenant: the dashboard falls back to another of their tenants, if any.
        request.session.pop(SESSION_TENANT, None)
        messages.success(request, _("You left %(tenant)s.") % {"tenant": request.scope.tenant.legal_name})
        return redirect("dashboard:home")
    messages.success(request, _("%(email)s was removed from the team.") % {"email": membership.user.email})
    return redirect("account:team")


@dashboard_page
@require_POST
@admin_only
def invitation_revoke_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    invitation = _invitation_or_404(request, pk)
    try:
        services.invitation_revoke(invitation=invitation)
    except ScellError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Invitation to %(email)s revoked.") % {"email": invitation.email})
    return redirect("account:team")


@dashboard_page
@require_POST
@admin_only
def invitation_resend_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    invitation = _invitation_or_404(request, pk)
    try:
        services.invitation_resend(invitation=invitation)
    except ScellError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("A new link was sent to %(email)s; the previous one no longer works.")
            % {"email": invitation.email},
        )
    return redirect("account:team")


@dashboard_page
@require_POST
@admin_only
def two_factor_policy_view(request: HttpRequest) -> HttpResponse:
    required = request.POST.get("require_2fa") == "on"
    try:
        services.tenant_require_2fa_set(tenant=request.scope.tenant, required=required, user=request.user)
    except ScellError as exc:
        messages.error(request, exc.message)
        return redirect("account:team")
    if required:
        messages.success(request, _("Every member must now use an authenticator app."))
    else:
        messages.success(request, _("The authenticator app is now optional."))
    return redirect("account:team")


# --- Invitation link ------------------------------------------------------------------------------------
def _invitation_problem(invitation: Invitation | None) -> tuple[str, int] | None:
    if invitation is None:
        return _("This invitation link is not valid. Check that you copied all of it."), 404
    if invitation.accepted_at is not None:
        return _("This invitation has already been used."), 410
    if invitation.revoked_at is not None:
        return _("This invitation was revoked. Ask an admin to invite you again."), 410
    if invitation.expires_at <= timezone.now():
        return _("This invitation has expired. Ask an admin to send it again."), 410
    if not invitation.tenant.is_active:
        return _("This tenant is closed."), 410
    return None


@never_cache
def invite_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link of an invitation e-mail. A new e-mail sets a name and a password; an existing account
    signs in first (as that account) and confirms."""
    invitation = selectors.invitation_by_token(token=token)
    problem = _invitation_problem(invitation)
    if problem is not None or invitation is None:
        message, status = problem or ("", 404)
        return render(request, "account/invite_invalid.html", {"message": message}, status=status)
    user = request.user if request.user.is_authenticated else None
    account_exists = User.objects.filter(email__iexact=invitation.email).exists()
    context: dict[str, Any] = {"invitation": invitation, "tenant": invitation.tenant}
    if user is not None and user.email.lower() != invitation.email.lower():
        return render(request, "account/invite_accept.html", {**context, "state": "wrong_user"}, status=403)
    if user is None and account_exists:
        login_url = reverse("dashboard:login") + "?" + _query(next=request.path)
        return render(
            request, "account/invite_accept.html", {**context, "state": "sign_in", "login_url": login_url}
        )
    form = None if user is not None else AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            if form is None:
                membership = services.invitation_accept(token=token, user=user)
            else:
                membership = services.invitation_accept(
                    token=token,
                    full_name=form.cleaned_data["full_name"],
                    password=form.cleaned_data["password1"],
                )
        except ScellError as exc:
            if form is None:
                return render(request, "account/invite_invalid.html", {"message": exc.message}, status=409)
            _add_errors(form, exc)
        else:
            if form is not None:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_TENANT] = str(membership.tenant_id)
            messages.success(request, _("Welcome to %(tenant)s.") % {"tenant": membership.tenant.legal_name})
            return redirect("dashboard:home")
    context.update({"state": "join" if user is not None else "create", "form": form})
    return render(request, "account/invite_accept.html", context, status=422 if form and form.errors else 200)


def _query(**params: str) -> str:
    query = QueryDict(mutable=True)
    query.update(params)
    return query.urlencode()


# --- Sub-tenants ----------------------------------------------------------------------------------------
def _sub_tenant_or_404(request: HttpRequest, pk: UUID) -> SubTenant:
    sub = selectors.sub_tenant_list(scope=request.scope).filter(pk=pk).first()
    if sub is None:
        raise Http404
    return sub


@dashboard_page
def sub_tenants_view(request: HttpRequest) -> HttpResponse:
    subs = selectors.sub_tenant_list(scope=request.scope).order_by("-is_active", "legal_name")
    return render(request, "account/sub_tenants.html", {"sub_tenants": subs, "is_admin": _is_admin(request)})


@dashboard_page
@admin_only
def sub_tenant_create_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    form = SubTenantForm(request.POST or None, request.FILES or None, tenant=scope.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            sub = services.sub_tenant_create(scope=scope, **form.profile_changes())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Sub-tenant %(name)s created.") % {"name": sub.legal_name})
            return redirect("account:sub-tenant", pk=sub.pk)
    context = {"form": form, "sub": None, "is_admin": True, "standard_notes": _standard_notes()}
    return render(request, "account/sub_tenant.html", context, status=422 if form.errors else 200)


@dashboard_page
def sub_tenant_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    scope = request.scope
    sub = _sub_tenant_or_404(request, pk)
    is_admin = _is_admin(request)
    form = None
    if request.method == "POST":
        if not is_admin:
            return _forbidden(request)
        form = SubTenantForm(request.POST, request.FILES, instance=sub, tenant=scope.tenant)
        if form.is_valid():
            try:
                services.sub_tenant_update(
                    sub_tenant=_sub_tenant_or_404(request, pk), **form.profile_changes()
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Sub-tenant saved."))
                return redirect("account:sub-tenant", pk=sub.pk)
        sub = _sub_tenant_or_404(request, pk)
    elif is_admin:
        form = SubTenantForm(instance=sub, tenant=scope.tenant)
    context = {
        "form": form,
        "sub": sub,
        "profile": sub,
        "is_admin": is_admin,
        "standard_notes": _standard_notes(),
        "logo_url": _versioned("account:sub-tenant-logo", sub, sub.pk) if sub.logo else "",
    }
    return render(request, "account/sub_tenant.html", context, status=422 if form and form.errors else 200)


@dashboard_page
@require_POST
@admin_only
def sub_tenant_active_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    sub = _sub_tenant_or_404(request, pk)
    active = request.POST.get("active") == "1"
    services.sub_tenant_update(sub_tenant=sub, is_active=active)
    if active:
        messages.success(request, _("%(name)s is active again.") % {"name": sub.legal_name})
    else:
        messages.success(request, _("%(name)s is deactivated.") % {"name": sub.legal_name})
    return redirect("account:sub-tenant", pk=sub.pk)


@dashboard_page
@require_GET
def sub_tenant_logo_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _logo_response(_sub_tenant_or_404(request, pk))


# --- Privacy and data -----------------------------------------------------------------------------------
@dashboard_page
@require_GET
def privacy_view(request: HttpRequest) -> HttpResponse:
    return _render_privacy(request)


def _render_privacy(
    request: HttpRequest,
    *,
    dpa_form: DpaAcceptForm | None = None,
    erase_form: EraseAccountForm | None = None,
) -> HttpResponse:
    tenant = Tenant.objects.select_related("dpa_accepted_by").get(pk=request.scope.tenant.pk)
    version = dpa_version()
    context = {
        "tenant": tenant,
        "is_admin": _is_admin(request),
        "dpa_version": version,
        "dpa_current": tenant.dpa_version == version and tenant.dpa_accepted_at is not None,
        "dpa_form": dpa_form or DpaAcceptForm(),
        "erase_form": erase_form or EraseAccountForm(user=request.user),
        "formats": [("pdf", _("PDF/A documents (Factur-X)")), ("json", _("JSON with the hash chain"))],
    }
    failed = (dpa_form and dpa_form.errors) or (erase_form and erase_form.errors)
    return render(request, "account/privacy.html", context, status=422 if failed else 200)


@dashboard_page
@require_POST
@admin_only
def dpa_accept_view(request: HttpRequest) -> HttpResponse:
    form = DpaAcceptForm(request.POST)
    if not form.is_valid():
        return _render_privacy(request, dpa_form=form)
    version = dpa_version()
    services.tenant_dpa_accept(tenant=request.scope.tenant, user=request.user, version=version)
    messages.success(request, _("Data processing agreement %(version)s accepted.") % {"version": version})
    return redirect("account:privacy")


@dashboard_page
@require_GET
def archive_export_view(request: HttpRequest) -> HttpResponse:
    """The same zip as ``GET /api/v1/archive/export``, for the dashboard's tenant and mode."""
    from archive.exports import FORMATS, export_filename, export_zip

    scope = request.scope
    fmt = request.GET.get("format", "pdf")
    if fmt not in FORMATS:
        raise Http404
    response = StreamingHttpResponse(export_zip(scope=scope, fmt=fmt), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(scope=scope, fmt=fmt)}"'
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response


@dashboard_page
@require_GET
@admin_only
def personal_data_export_view(request: HttpRequest) -> HttpResponse:
    """GDPR art. 15 and 20: every personal datum Scell holds for the tenant, as JSON."""
    from archive.gdpr import personal_data_export

    tenant = request.scope.tenant
    data = personal_data_export(tenant=tenant)
    body = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=1)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = f"scell-personal-data-{tenant.identifier}-{timezone.now():%Y%m%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@dashboard_page
@require_POST
def erase_account_view(request: HttpRequest) -> HttpResponse:
    """GDPR art. 17: the signed-in user erases their own account (any role)."""
    form = EraseAccountForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render_privacy(request, erase_form=form)
    try:
        services.user_erase(user=request.user)
    except ScellError as exc:
        form.add_error(None, exc.message)
        return _render_privacy(request, erase_form=form)
    # The erasure deleted the user's sessions; this one gets a fresh, anonymous one.
    logout(request)
    messages.success(request, _("Your account was erased."))
    return redirect("dashboard:login")


urlpatterns = [
    path("settings/", profile_view, name="profile"),
    path("settings/logo/", logo_view, name="logo"),
    path("settings/team/", team_view, name="team"),
    path("settings/team/two-factor/", two_factor_policy_view, name="two-factor-policy"),
    path("settings/team/members/<int:pk>/role/", member_role_view, name="member-role"),
    path("settings/team/members/<int:pk>/remove/", member_remove_view, name="member-remove"),
    path("settings/team/invitations/<uuid:pk>/revoke/", invitation_revoke_view, name="invitation-revoke"),
    path("settings/team/invitations/<uuid:pk>/resend/", invitation_resend_view, name="invitation-resend"),
    path("invite/<str:token>/", invite_accept_view, name="invite-accept"),
    path("settings/sub-tenants/", sub_tenants_view, name="sub-tenants"),
    path("settings/sub-tenants/new/", sub_tenant_create_view, name="sub-tenant-create"),
    path("settings/sub-tenants/<uuid:pk>/", sub_tenant_view, name="sub-tenant"),
    path("settings/sub-tenants/<uuid:pk>/active/", sub_tenant_active_view, name="sub-tenant-active"),
    path("settings/sub-tenants/<uuid:pk>/logo/", sub_tenant_logo_view, name="sub-tenant-logo"),
    path("settings/privacy/", privacy_view, name="privacy"),
    path("settings/privacy/dpa/", dpa_accept_view, name="dpa-accept"),
    path("settings/privacy/archive-export/", archive_export_view, name="archive-export"),
    path("settings/privacy/personal-data/", personal_data_export_view, name="personal-data-export"),
    path("settings/privacy/erase-account/", erase_account_view, name="erase-account"),
]
