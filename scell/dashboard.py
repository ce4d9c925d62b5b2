"""Dashboard shell: sign-in with optional TOTP (mandatory when the tenant says so), password reset, tenant
switcher, sandbox/live switch, home, security."""

from __future__ import annotations

import base64
import time
from io import BytesIO
from typing import Any

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from scell.errors import error_body
from scell.forms import LoginForm, TokenForm
from scell.home import home_view
from scell.models import Membership, Tenant, User
from scell.tenancy import SESSION_LIVEMODE, SESSION_TENANT, dashboard_scope

PENDING_USER = "scell_pending_user_id"
PENDING_NEXT = "scell_pending_next"
PENDING_AT = "scell_pending_at"
# Between the password and the code: long enough to open the app, short enough that a forgotten
# half-signed-in browser does not stay one code away from a session.
PENDING_SECONDS = 300


def _safe_next(request: HttpRequest, default: str = "dashboard:home") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, {request.get_host()}, request.is_secure()):
        return candidate
    return reverse(default)


def _confirmed_devices(user) -> list:
    return list(devices_for_user(user, confirmed=True))


def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_safe_next(request))
    form = LoginForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.user
        if _confirmed_devices(user):
            # Password is right; the session is opened only after the second factor.
            request.session[PENDING_USER] = user.pk
            request.session[PENDING_NEXT] = _safe_next(request)
            request.session[PENDING_AT] = time.time()
            return redirect("dashboard:login-verify")
        login(request, user)
        return redirect(_safe_next(request))
    return render(
        request,
        "dashboard/login.html",
        {"form": form, "next": request.GET.get("next", "")},
        status=200 if not form.errors else 422,
    )


def _clear_pending(request: HttpRequest) -> None:
    for key in (PENDING_USER, PENDING_NEXT, PENDING_AT):
        request.session.pop(key, None)


def login_verify_view(request: HttpRequest) -> HttpResponse:
    started = request.session.get(PENDING_AT) or 0
    user = None
    if time.time() - started <= PENDING_SECONDS:
        user = User.objects.filter(pk=request.session.get(PENDING_USER), is_active=True).first()
    if user is None:
        _clear_pending(request)
        return redirect("dashboard:login")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"].replace(" ", "")
        for device in _confirmed_devices(user):
            if device.verify_token(token):
                next_url = request.session.get(PENDING_NEXT) or reverse("dashboard:home")
                _clear_pending(request)
                login(request, user)
                otp_login(request, device)
                return redirect(next_url)
        form.add_error("token", _("This code is not valid."))
    return render(request, "dashboard/login_verify.html", {"form": form}, status=422 if form.errors else 200)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("dashboard:login")


@login_required
@require_POST
def switch_tenant_view(request: HttpRequest) -> HttpResponse:
    tenant_id = request.POST.get("tenant")
    if not Membership.objects.filter(user=request.user, tenant_id=tenant_id, tenant__is_active=True).exists():
        return HttpResponseBadRequest(_("You are not a member of this tenant."))
    request.session[SESSION_TENANT] = str(tenant_id)
    return redirect(_safe_next(request))


@login_required
@require_POST
def switch_mode_view(request: HttpRequest) -> HttpResponse:
    request.session[SESSION_LIVEMODE] = request.POST.get("mode") == "live"
    return redirect(_safe_next(request))


# --- Security: the user's authenticator app -------------------------------------------------------------
def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def tenants_requiring_2fa(user: User) -> list[Tenant]:
    """The user's active tenants that make the authenticator app mandatory."""
    return list(
        Tenant.objects.filter(memberships__user=user, is_active=True, require_2fa=True).order_by("legal_name")
    )


@login_required
def security_view(request: HttpRequest) -> HttpResponse:
    """Enrol, verify or remove a TOTP authenticator (django-otp)."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    required_by = tenants_requiring_2fa(user)
    form = TokenForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "start" and confirmed is None:
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
            return redirect(_security_url(request))
        if action == "confirm" and pending is not None and confirmed is None and form.is_valid():
            if pending.verify_token(form.cleaned_data["token"].replace(" ", "")):
                pending.confirmed = True
                pending.save(update_fields=["confirmed"])
                otp_login(request, pending)
                messages.success(request, _("Two-factor authentication is on."))
                return redirect(_after_verification(request))
            form.add_error("token", _("This code is not valid."))
        if action == "verify" and confirmed is not None and form.is_valid():
            # A session opened before the tenant required the second factor proves it here once.
            if confirmed.verify_token(form.cleaned_data["token"].replace(" ", "")):
                otp_login(request, confirmed)
                messages.success(request, _("Code accepted."))
                return redirect(_after_verification(request))
            form.add_error("token", _("This code is not valid."))
        if action == "remove" and confirmed is not None:
            if required_by:
                messages.error(
                    request,
                    _("%(tenant)s requires two-factor authentication: it cannot be turned off.")
                    % {"tenant": required_by[0].legal_name},
                )
                return redirect("dashboard:security")
            TOTPDevice.objects.filter(user=user).delete()
            messages.success(request, _("Two-factor authentication is off."))
            return redirect("dashboard:security")
    context: dict[str, Any] = {
        "confirmed": confirmed,
        "pending": pending,
        "form": form,
        "required_by": required_by,
        "verified": user.is_verified(),
        "next": request.GET.get("next", ""),
    }
    if pending is not None and confirmed is None:
        context["qr"] = _qr_svg(pending.config_url)
        context["secret"] = base64.b32encode(pending.bin_key).decode()
    return render(request, "dashboard/security.html", context, status=422 if form.errors else 200)


def _security_url(request: HttpRequest) -> str:
    url = reverse("dashboard:security")
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        query = QueryDict(mutable=True)
        query["next"] = wanted
        url += "?" + query.urlencode()
    return url


def _after_verification(request: HttpRequest) -> str:
    # Back to the page the two-factor policy interrupted, if any.
    return _safe_next(request, default="dashboard:security")


# --- Mandatory second factor ------------------------------------------------------------------------------
# Pages a member of a tenant that requires 2FA may open before proving the second factor: the way to
# enrol or verify, to leave, and pages that are not the tenant's dashboard (public signing links, the
# PDP's endpoints, support's admin).
TWO_FACTOR_OPEN_VIEWS = {
    ("dashboard", "security"),
    ("dashboard", "login"),
    ("dashboard", "login-verify"),
    ("dashboard", "logout"),
    ("dashboard", "switch-tenant"),
    ("dashboard", "password-reset"),
    ("dashboard", "password-reset-done"),
    ("dashboard", "password-reset-confirm"),
    ("dashboard", "password-reset-complete"),
    ("i18n", "language"),
    ("account", "invite-accept"),
    ("", "schema"),
    ("", "docs"),
}
TWO_FACTOR_OPEN_NAMESPACES = {"admin", "signatures", "pdp", "pdp_simulator"}
API_KEY_HEADERS = ("HTTP_X_API_KEY", "HTTP_X_PUBLISHABLE_KEY", "HTTP_X_TENANT_KEY")


def two_factor_missing(request: HttpRequest, scope: Any) -> bool:
    """The scope's tenant requires the authenticator app and this session has not proved it."""
    user = getattr(request, "user", None)
    if scope is None or user is None or not user.is_authenticated or not scope.tenant.require_2fa:
        return False
    is_verified = getattr(user, "is_verified", None)
    return not (is_verified is not None and is_verified())


class RequireTwoFactorMiddleware:
    """When a tenant requires two-factor authentication, its members' sessions that have not proved the
    second factor reach only the security page (to enrol or verify) until they do; the dashboard's own
    API calls (session cookie, no key) get 403 ``two_factor_required``. Runs after django-otp's
    ``OTPMiddleware`` and ``scell.tenancy.DashboardTenantMiddleware``."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        match = request.resolver_match
        if match is None or match.namespace in TWO_FACTOR_OPEN_NAMESPACES:
            return None
        if (match.namespace, match.url_name) in TWO_FACTOR_OPEN_VIEWS:
            return None
        if request.path_info.startswith("/api/"):
            if any(request.META.get(header) for header in API_KEY_HEADERS):
                return None  # a key authenticates this call, not the session
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return None
            if two_factor_missing(request, dashboard_scope(request)):
                body = error_body(
                    type="authentication_error",
                    code="two_factor_required",
                    message="This tenant requires two-factor authentication: verify it in the dashboard.",
                )
                return JsonResponse(body, status=403)
            return None
        if not two_factor_missing(request, getattr(request, "scope", None)):
            return None
        target = reverse("dashboard:security") + "?" + _next_query(request)
        if getattr(request, "htmx", False):
            return HttpResponse(status=204, headers={"HX-Redirect": target})
        return redirect(target)


def _next_query(request: HttpRequest) -> str:
    query = QueryDict(mutable=True)
    query["next"] = request.get_full_path() if request.method == "GET" else reverse("dashboard:home")
    return query.urlencode()


# --- Password reset (Django's views, our templates) --------------------------------------------------------
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    email_template_name = "email/account/password_reset_email.txt"
    subject_template_name = "email/account/password_reset_subject.txt"
    success_url = reverse_lazy("dashboard:password-reset-done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("dashboard:password-reset-complete")
    # The new password does not open a session: signing in again asks for the second factor too.
    post_reset_login = False


urlpatterns = [
    path("", home_view, name="home"),
    path("login/", login_view, name="login"),
    path("login/verify/", login_verify_view, name="login-verify"),
    path("logout/", logout_view, name="logout"),
    path("switch-tenant/", switch_tenant_view, name="switch-tenant"),
    path("switch-mode/", switch_mode_view, name="switch-mode"),
    path("settings/security/", security_view, name="security"),
    path("password-reset/", PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html"),
        name="password-reset-done",
    ),
    path(
        "password-reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(), name="password-reset-confirm"
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_complete.html"
        ),
        name="password-reset-complete",
    ),
]
