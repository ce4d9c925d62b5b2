"""Dashboard language: the user's own choice, else the cookie of the language switcher, else the tenant's
(French for French tenants), else what the browser asks for (``LocaleMiddleware``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

SUPPORTED = {code for code, _name in settings.LANGUAGES}


def language_for(request: HttpRequest) -> str | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.language in SUPPORTED:
        return user.language
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if cookie in SUPPORTED:
        return cookie
    scope = getattr(request, "scope", None)
    if scope is not None:
        return scope.tenant.default_language
    return None


class DashboardLanguageMiddleware:
    """Runs after ``DashboardTenantMiddleware``: the tenant is known, so is its default language."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return self.get_response(request)
        language = language_for(request)
        if language is None:
            return self.get_response(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


@require_POST
def language_view(request: HttpRequest) -> HttpResponse:
    """The language switcher: Django's ``set_language`` (safe ``next``, the language cookie as configured),
    and the choice remembered on the user for every device."""
    response = set_language(request)
    language = request.POST.get("language", "")
    user = request.user
    if language in SUPPORTED and user.is_authenticated and user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    return response


urlpatterns = [path("language/", language_view, name="language")]
