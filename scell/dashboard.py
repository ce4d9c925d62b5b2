"""Dashboard shell: sign-in with optional TOTP, tenant switcher, sandbox/live switch, home, security."""

from __future__ import annotations

import base64
from io import BytesIO

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from scell.forms import LoginForm, TokenForm
from scell.models import ApiKey, Membership
from scell.tenancy import SESSION_LIVEMODE, SESSION_TENANT

PENDING_USER = "scell_pending_user_id"
PENDING_NEXT = "scell_pending_next"


def _safe_next(request: HttpRequest, default: str = "dashboard:home") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, {request.get_host()}, request.is_secure()):
        return candidate
    from django.urls import reverse

    return reverse(default)


def _confirmed_devices(user) -> list:
    return list(devices_for_user(user, confirmed=True))


def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    form = LoginForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.user
        if _confirmed_devices(user):
            # Password is right; the session is opened only after the second factor.
            request.session[PENDING_USER] = user.pk
            request.session[PENDING_NEXT] = _safe_next(request)
            return redirect("dashboard:login-verify")
        login(request, user)
        return redirect(_safe_next(request))
    return render(request, "dashboard/login.html", {"form": form, "next": request.GET.get("next", "")})


def login_verify_view(request: HttpRequest) -> HttpResponse:
    from scell.models import User

    user = User.objects.filter(pk=request.session.get(PENDING_USER), is_active=True).first()
    if user is None:
        return redirect("dashboard:login")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"].replace(" ", "")
        for device in _confirmed_devices(user):
            if device.verify_token(token):
                next_url = request.session.get(PENDING_NEXT) or "/"
                login(request, user)
                otp_login(request, device)
                return redirect(next_url)
        form.add_error("token", _("This code is not valid."))
    return render(request, "dashboard/login_verify.html", {"form": form})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("dashboard:login")


@login_required
def home_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    keys = ApiKey.objects.scoped(scope).filter(revoked_at__isnull=True).order_by("kind", "created_at")
    return render(request, "dashboard/home.html", {"keys": keys})


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


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@login_required
def security_view(request: HttpRequest) -> HttpResponse:
    """Enrol or remove a TOTP authenticator (django-otp)."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    form = TokenForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "start" and confirmed is None:
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
            return redirect("dashboard:security")
        if action == "confirm" and pending is not None and form.is_valid():
            if pending.verify_token(form.cleaned_data["token"].replace(" ", "")):
                pending.confirmed = True
                pending.save(update_fields=["confirmed"])
                otp_login(request, pending)
                messages.success(request, _("Two-factor authentication is on."))
                return redirect("dashboard:security")
            form.add_error("token", _("This code is not valid."))
        if action == "remove" and confirmed is not None:
            TOTPDevice.objects.filter(user=user).delete()
            messages.success(request, _("Two-factor authentication is off."))
            return redirect("dashboard:security")
    context = {"confirmed": confirmed, "pending": pending, "form": form}
    if pending is not None and confirmed is None:
        context["qr"] = _qr_svg(pending.config_url)
        context["secret"] = base64.b32encode(pending.bin_key).decode()
    return render(request, "dashboard/security.html", context)


urlpatterns = [
    path("", home_view, name="home"),
    path("login/", login_view, name="login"),
    path("login/verify/", login_verify_view, name="login-verify"),
    path("logout/", logout_view, name="logout"),
    path("switch-tenant/", switch_tenant_view, name="switch-tenant"),
    path("switch-mode/", switch_mode_view, name="switch-mode"),
    path("settings/security/", security_view, name="security"),
]
