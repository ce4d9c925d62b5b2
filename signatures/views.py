"""The signer's page (read the document, accept the consent text, confirm with an SMS code, or decline)
and the public verification page. Server-rendered forms that work without JavaScript, on a phone, in the
request's language (French or English).

The token in a signing URL is the signer's only credential: no answer under ``/sign/<token>/`` lets the URL
leave for another origin (``Referrer-Policy``), none is stored by a cache (``Cache-Control: no-store``,
images aside) and none is indexed (``X-Robots-Tag: noindex``). Pages refuse to be framed, except by the
widget (``static/scell/widget.js``), which adds ``?embed=1&pk=<publishable key>&origin=<its page's
origin>``: only the allowed origins of a publishable key of the request's own tenant and mode may then
frame the page (``Content-Security-Policy: frame-ancestors``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from scell.models import ApiKey, hash_key
from scell.ratelimit import client_ip
from signatures import services
from signatures.models import SignatureRequest, Signer
from signatures.pdf import SealCheck, check_seal, render_page_images, seal_certificate_info
from signatures.services import SigningRefused, SigningUnavailable
from signatures.sms import mask_phone

# Page images: 900 px wide is sharp on a phone and readable on a desktop; rendered in chunks of
# PAGE_CHUNK because render_page_images always starts at page 1 (page n costs n renders), and the
# browser asks for the pages one by one as the signer scrolls (loading="lazy").
PAGE_WIDTH = 900
PAGE_CHUNK = 10
PAGE_CACHE_SECONDS = 24 * 3600

VERIFY_MAX_BYTES = 20 * 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# An allowed origin goes verbatim into a CSP header: anything else than scheme://host[:port] is ignored,
# so a stray ";" or space stored on a key cannot add directives.
ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")

# Why a link cannot act (signer_state) → the status of the page that says so.
UNAVAILABLE_STATUS = {
    "not_found": 404,
    "not_your_turn": 409,
    "ended": 409,
    "declined": 410,
    "expired": 410,
    "cancelled": 410,
    "locked": 423,
    "signed": 200,
}
# States in which the signer may still read the document (and download it).
DOCUMENT_STATES = {None, "signed"}
THROTTLED = {"cooldown", "phone_cap", "ip_cap"}

UNAVAILABLE_EN = {**services.UNAVAILABLE_MESSAGES, "not_found": "This signing link is not valid."}
UNAVAILABLE_FR = {
    "not_found": "Ce lien de signature n'est pas valide.",
    "not_your_turn": (
        "Ce n'est pas encore votre tour : vous recevrez un e-mail quand les signataires précédents "
        "auront signé."
    ),
    "signed": "Vous avez signé ce document.",
    "declined": "Cette demande de signature a été refusée.",
    "locked": "Ce lien est bloqué après trop de codes erronés. Contactez l'expéditeur.",
    "expired": "Cette demande de signature a expiré.",
    "cancelled": "Cette demande de signature a été annulée par son expéditeur.",
    "ended": "Cette demande de signature est terminée.",
}
# The services speak English; a French page says the same in French (same codes).
REFUSED_FR = {
    "consent_required": "Veuillez lire le document et accepter le texte de consentement.",
    "no_code": "Demandez d'abord un code.",
    "code_expired": "Ce code a expiré. Demandez-en un nouveau.",
    "wrong_code": "Code erroné. Il vous reste {left} essai(s).",
    "cooldown": "Un code a été envoyé il y a moins d'une minute. Réessayez dans {wait} s.",
    "phone_cap": "Trop de codes ont été envoyés à ce numéro au cours de la dernière heure.",
    "ip_cap": "Trop de codes ont été demandés depuis ce réseau au cours de la dernière heure.",
    "sms_failed": "Le SMS n'a pas pu être envoyé. Réessayez dans une minute.",
    "reason_required": "Veuillez indiquer un motif.",
}
STATUS_LABELS = {
    "pending": ("waiting for signers", "en attente des signataires"),
    "finalizing": ("being sealed", "scellement en cours"),
    "completed": ("signed by everybody", "signée par tous"),
    "declined": ("declined", "refusée"),
    "expired": ("expired", "expirée"),
    "cancelled": ("cancelled", "annulée"),
}


# --- Framing, headers, CSRF --------------------------------------------------------------------------
@dataclass(frozen=True)
class Embed:
    """The signing page framed by the widget on a page of one of the key's allowed origins."""

    key: str
    origins: tuple[str, ...]
    origin: str  # the host page's origin, where events are posted ("" when the widget did not say)

    def params(self) -> dict[str, str]:
        params = {"embed": "1", "pk": self.key}
        if self.origin:
            params["origin"] = self.origin
        return params


def _embedding(request: HttpRequest, signature: SignatureRequest) -> Embed | None:
    """The framing the widget asked for, if its publishable key may frame this request's pages."""
    if request.GET.get("embed") != "1":
        return None
    raw = request.GET.get("pk", "").strip()
    if not raw.startswith("pk_"):
        return None
    # The lookup of scell.authentication (hash, kind, revoked, active tenant), without its DRF
    # exceptions: a bad key here just means "not framable".
    key = (
        ApiKey.objects.select_related("tenant")
        .filter(key_hash=hash_key(raw), kind=ApiKey.Kind.PUBLISHABLE)
        .first()
    )
    if (
        key is None
        or key.revoked_at is not None
        or not key.tenant.is_active
        or key.tenant_id != signature.tenant_id
        or key.livemode != signature.livemode
    ):
        return None
    origins = tuple(
        dict.fromkeys(
            o.rstrip("/")
            for o in key.allowed_origins or []
            if isinstance(o, str) and ORIGIN_RE.match(o.rstrip("/"))
        )
    )
    origin = request.GET.get("origin", "").rstrip("/")
    if not origins or (origin and origin not in origins):
        return None
    return Embed(key=raw, origins=origins, origin=origin)


def _query(embed: Embed | None, **extra: str) -> str:
    params = {**(embed.params() if embed else {}), **{k: v for k, v in extra.items() if v}}
    return f"?{urlencode(params)}" if params else ""


def _harden(
    response: HttpResponse,
    *,
    embed: Embed | None,
    nonce: str = "",
    cache_control: str = "no-store",
    page: bool = True,
) -> HttpResponse:
    # Files and redirects: no-referrer. Pages: same-origin, because under no-referrer browsers send
    # ``Origin: null`` with a form's POST (Fetch standard), which Django's CSRF check rightly refuses;
    # same-origin still never sends the URL, token and all, to another origin.
    response["Referrer-Policy"] = "same-origin" if page else "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = cache_control
    if embed is not None:
        ancestors = " ".join(embed.origins)
        response.xframe_options_exempt = True  # type: ignore[attr-defined]
    else:
        ancestors = "'none'"
        response["X-Frame-Options"] = "DENY"
    if page:
        # A page with legal weight: no script but ours (nonce), no foreign images, styles or forms.
        script = f"'nonce-{nonce}'" if nonce else "'none'"
        response["Content-Security-Policy"] = (
            f"default-src 'none'; img-src 'self'; style-src 'self'; script-src {script}; "
            f"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
        )
    else:
        # Files (PDF, PNG): only the framing rule; a strict CSP would break the browser's PDF viewer.
        response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response


class _EmbeddableCsrfMiddleware(CsrfViewMiddleware):
    """Django's CSRF check, with the cookie set ``SameSite=None; Secure`` on framed pages: a browser
    withholds a ``Lax`` cookie inside a cross-site iframe, so every form of the widget would fail the
    check. Over HTTPS only (browsers refuse ``SameSite=None`` without ``Secure``)."""

    def _set_csrf_cookie(self, request: HttpRequest, response: HttpResponse) -> None:
        super()._set_csrf_cookie(request, response)
        morsel = response.cookies.get(settings.CSRF_COOKIE_NAME)
        if morsel is not None and getattr(request, "signing_embed", None) and request.is_secure():
            morsel["samesite"] = "None"
            morsel["secure"] = True


embeddable_csrf = decorator_from_middleware(_EmbeddableCsrfMiddleware)


def _client(request: HttpRequest) -> tuple[str | None, str]:
    # The evidence's IP: the peer, or what the configured trusted proxies saw (never a client-written
    # X-Forwarded-For hop; scell.ratelimit.client_ip).
    return client_ip(request) or None, request.META.get("HTTP_USER_AGENT", "")


# --- Rendering helpers ----------------------------------------------------------------------------------
def _lang(signature: SignatureRequest) -> str:
    return "fr" if signature.locale == "fr" else "en"


def _sender(signature: SignatureRequest) -> str:
    return signature.sub_tenant.legal_name if signature.sub_tenant else signature.tenant.legal_name


def _render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    lang: str,
    status: int = 200,
    embed: Embed | None = None,
    scripts: bool = False,
) -> HttpResponse:
    # Scripts: the signing form's code request and the framed page's messenger to the widget. A page
    # with neither gets ``script-src 'none'``.
    nonce = secrets.token_urlsafe(16) if scripts or (embed is not None and embed.origin) else ""
    # The request's language, not the browser's: dates and month names follow the page.
    with translation.override(lang):
        response = render(
            request,
            template,
            {**context, "fr": lang == "fr", "lang": lang, "nonce": nonce, "embed": embed},
            status=status,
        )
    return _harden(response, embed=embed, nonce=nonce)


def _load(token: str) -> Signer | None:
    try:
        return services.signer_from_token(token)
    except SigningUnavailable:
        return None


def _not_found(request: HttpRequest) -> HttpResponse:
    # The project's handler404 answers JSON under /api/ and Django's page elsewhere; a signer who
    # mistyped a link deserves the signing page's look and language.
    lang = "fr" if (getattr(request, "LANGUAGE_CODE", "") or "").startswith("fr") else "en"
    messages = UNAVAILABLE_FR if lang == "fr" else UNAVAILABLE_EN
    context = {"state": "not_found", "message": messages["not_found"], "signature": None}
    return _render(request, "signatures/sign_unavailable.html", context, lang=lang, status=404)


def _unavailable(
    request: HttpRequest, token: str, signer: Signer, state: str, embed: Embed | None, *, done: str = ""
) -> HttpResponse:
    signature = signer.request
    lang = _lang(signature)
    declined_by_me = state == "declined" and signer.status == Signer.Status.DECLINED
    status = 200 if declined_by_me else UNAVAILABLE_STATUS.get(state, 409)
    messages = UNAVAILABLE_FR if lang == "fr" else UNAVAILABLE_EN
    completed = signature.status == SignatureRequest.Status.COMPLETED and bool(signature.final_file)
    # The widget hears of the outcome once, right after the act (the redirect says ``done=``), not on
    # every later visit of the link.
    event = ""
    if embed is not None and embed.origin:
        if done == "signed" and state == "signed":
            event = "signer.signed"
        elif done == "declined" and declined_by_me:
            event = "signer.declined"
    context = {
        "state": state,
        "message": messages.get(state, messages["ended"]),
        "signature": signature,
        "signer": signer,
        "sender": _sender(signature),
        "declined_by_me": declined_by_me,
        "signed_pdf_url": reverse("signatures:signed", args=[token])
        if state == "signed" and completed
        else "",
        "event": event,
    }
    return _render(
        request, "signatures/sign_unavailable.html", context, lang=lang, status=status, embed=embed
    )


def _sign_form(
    request: HttpRequest,
    token: str,
    signer: Signer,
    embed: Embed | None,
    *,
    errors: dict[str, str] | None = None,
    consent: bool = False,
    reason: str = "",
    status: int = 200,
) -> HttpResponse:
    signature = signer.request
    now = timezone.now()
    # The code in force, if any: "Code sent to …" survives a reload and works without JavaScript.
    live_code = (
        signer.challenges.filter(used_at__isnull=True, invalidated_at__isnull=True, expires_at__gt=now)
        .order_by("-created_at")
        .first()
    )
    pages = []
    for number in range(1, signature.page_count + 1):
        size = signature.page_sizes[number - 1] if number <= len(signature.page_sizes) else None
        height = round(PAGE_WIDTH * size[1] / size[0]) if size and size[0] else None
        pages.append(
            {
                "number": number,
                "url": reverse("signatures:page", args=[token, number]),
                "width": PAGE_WIDTH,
                "height": height,
            }
        )
    q = _query(embed)
    context = {
        "signature": signature,
        "signer": signer,
        "sender": _sender(signature),
        "pages": pages,
        "consent_text": services.consent_text(signer),
        "phone": mask_phone(signer.phone),
        "live_code": live_code,
        "errors": errors or {},
        "consent": consent,
        "reason": reason,
        "document_url": reverse("signatures:document", args=[token]),
        "code_action": reverse("signatures:code", args=[token]) + q,
        "sign_action": reverse("signatures:do-sign", args=[token]) + q,
        "decline_action": reverse("signatures:decline", args=[token]) + q,
    }
    return _render(
        request,
        "signatures/sign.html",
        context,
        lang=_lang(signature),
        status=status,
        embed=embed,
        scripts=True,
    )


def _refused(
    request: HttpRequest,
    token: str,
    signer: Signer,
    embed: Embed | None,
    exc: SigningRefused,
    *,
    form: str,
    consent: bool = False,
    reason: str = "",
) -> HttpResponse:
    signer.refresh_from_db()
    if exc.code == "locked":
        return _unavailable(request, token, signer, "locked", embed)
    message = exc.message
    if _lang(signer.request) == "fr" and exc.code in REFUSED_FR:
        left = max(int(settings.SIGNATURE_OTP_MAX_ATTEMPTS) - signer.failed_attempts, 0)
        message = REFUSED_FR[exc.code].format(left=left, wait=exc.retry_after or 60)
    throttled = exc.code in THROTTLED or exc.retry_after is not None
    # A gateway failure is not the signer's fault: "try again later" rather than "bad request".
    status = 429 if throttled else 503 if exc.code == "sms_failed" else 400
    response = _sign_form(
        request, token, signer, embed, errors={form: message}, consent=consent, reason=reason, status=status
    )
    if throttled:
        response["Retry-After"] = str(exc.retry_after or 3600)
    elif status == 503:
        response["Retry-After"] = "60"
    return response


def _back_to_page(token: str, embed: Embed | None, *, done: str = "", anchor: str = "") -> HttpResponse:
    # 303: the browser GETs the page, so a reload never posts the form (and a code) again.
    url = (
        reverse("signatures:sign", args=[token]) + _query(embed, done=done) + (f"#{anchor}" if anchor else "")
    )
    response = HttpResponseRedirect(url, status=303)
    return _harden(response, embed=embed, page=False)


def _signer_and_embed(request: HttpRequest, token: str) -> tuple[Signer | None, Embed | None]:
    signer = _load(token)
    if signer is None:
        return None, None
    embed = _embedding(request, signer.request)
    request.signing_embed = embed  # type: ignore[attr-defined] # read by _EmbeddableCsrfMiddleware
    return signer, embed


# --- Signing page ---------------------------------------------------------------------------------------
@require_safe
@embeddable_csrf
def sign_page(request: HttpRequest, token: str) -> HttpResponse:
    signer, embed = _signer_and_embed(request, token)
    if signer is None:
        return _not_found(request)
    state = services.signer_state(signer)
    if state is not None:
        return _unavailable(request, token, signer, state, embed, done=request.GET.get("done", ""))
    if request.method == "GET":  # a HEAD shows nothing to anybody
        ip, user_agent = _client(request)
        services.signer_view_document(signer=signer, ip=ip, user_agent=user_agent)
    return _sign_form(request, token, signer, embed)


@require_POST
@embeddable_csrf
def send_code(request: HttpRequest, token: str) -> HttpResponse:
    signer, embed = _signer_and_embed(request, token)
    if signer is None:
        return _not_found(request)
    ip, user_agent = _client(request)
    try:
        services.otp_send(signer=signer, ip=ip, user_agent=user_agent)
    except SigningUnavailable as exc:
        return _unavailable(request, token, signer, exc.code, embed)
    except SigningRefused as exc:
        return _refused(request, token, signer, embed, exc, form="code")
    return _back_to_page(token, embed, anchor="sign")


@require_POST
@embeddable_csrf
def sign(request: HttpRequest, token: str) -> HttpResponse:
    signer, embed = _signer_and_embed(request, token)
    if signer is None:
        return _not_found(request)
    ip, user_agent = _client(request)
    consent = request.POST.get("consent") in {"1", "on", "true", "yes"}
    try:
        services.signer_sign(
            signer=signer, code=request.POST.get("code", ""), consent=consent, ip=ip, user_agent=user_agent
        )
    except SigningUnavailable as exc:
        return _unavailable(request, token, signer, exc.code, embed)
    except SigningRefused as exc:
        return _refused(request, token, signer, embed, exc, form="sign", consent=consent)
    return _back_to_page(token, embed, done="signed")


@require_POST
@embeddable_csrf
def decline(request: HttpRequest, token: str) -> HttpResponse:
    signer, embed = _signer_and_embed(request, token)
    if signer is None:
        return _not_found(request)
    ip, user_agent = _client(request)
    reason = request.POST.get("reason", "")[:2000]
    try:
        services.signer_decline(signer=signer, reason=reason, ip=ip, user_agent=user_agent)
    except SigningUnavailable as exc:
        return _unavailable(request, token, signer, exc.code, embed)
    except SigningRefused as exc:
        return _refused(request, token, signer, embed, exc, form="decline", reason=reason)
    return _back_to_page(token, embed, done="declined")


# --- The document -----------------------------------------------------------------------------------------
def _read_original(signature: SignatureRequest) -> bytes:
    with signature.original_file.open("rb") as handle:
        return handle.read()


def _page_png(signature: SignatureRequest, number: int) -> bytes:
    def key(n: int) -> str:
        # The SHA-256 in the key: a cached image can only ever show the document the signer accepts.
        return f"scell:sign-page:{signature.id}:{signature.original_sha256}:{PAGE_WIDTH}:{n}"

    png = cache.get(key(number))
    if png is None:
        upto = min(signature.page_count, -(-number // PAGE_CHUNK) * PAGE_CHUNK)
        images = render_page_images(_read_original(signature), width=PAGE_WIDTH, max_pages=upto)
        cache.set_many({key(i): image for i, image in enumerate(images, start=1)}, PAGE_CACHE_SECONDS)
        png = images[number - 1]
    return png


@require_safe
def page_image(request: HttpRequest, token: str, number: int) -> HttpResponse:
    signer = _load(token)
    if signer is None:
        return _not_found(request)
    state = services.signer_state(signer)
    if state not in DOCUMENT_STATES:
        return _unavailable(request, token, signer, state or "ended", None)
    signature = signer.request
    if not 1 <= number <= signature.page_count:
        return _not_found(request)
    response = HttpResponse(_page_png(signature, number), content_type="image/png")
    return _harden(response, embed=None, cache_control="private, max-age=300", page=False)


@require_safe
def original_document(request: HttpRequest, token: str) -> HttpResponse:
    signer = _load(token)
    if signer is None:
        return _not_found(request)
    state = services.signer_state(signer)
    if state not in DOCUMENT_STATES:
        return _unavailable(request, token, signer, state or "ended", None)
    signature = signer.request
    response = FileResponse(
        signature.original_file.open("rb"),
        content_type="application/pdf",
        filename=signature.original_filename or "document.pdf",
    )
    return _harden(response, embed=None, cache_control="private, no-store", page=False)


@require_safe
def signed_document(request: HttpRequest, token: str) -> HttpResponse:
    signer = _load(token)
    if signer is None:
        return _not_found(request)
    signature = signer.request
    if (
        services.signer_state(signer) != "signed"
        or signature.status != SignatureRequest.Status.COMPLETED
        or not signature.final_file
    ):
        return _not_found(request)
    stem = (signature.original_filename or "document.pdf").removesuffix(".pdf").removesuffix(".PDF")
    response = FileResponse(
        signature.final_file.open("rb"), content_type="application/pdf", filename=f"{stem}-signed.pdf"
    )
    return _harden(response, embed=None, cache_control="private, no-store", page=False)


# --- Public verification ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What the verification page says about a document or a fingerprint."""

    # "valid": sealed by Scell and intact; "modified": sealed, changed since; "not_sealed": a file that
    # carries no Scell seal; "known": a fingerprint of a Scell signed document or evidence file;
    # "unknown": a fingerprint Scell never sealed.
    outcome: str
    sha256: str
    matched: str  # verify_hash: "final" | "evidence" | "original" | ""
    signature: SignatureRequest | None
    seal: SealCheck | None = None


def _seal_verdict(sha256: str, data: bytes) -> Verdict:
    found = services.verify_hash(sha256)
    seal = check_seal(data)
    ours = seal_certificate_info().get("sha256_fingerprint", "")
    if seal.valid:
        outcome = "valid"
    elif not seal.sealed or (seal.intact and seal.certificate_sha256 and seal.certificate_sha256 != ours):
        # An intact seal by another certificate under Scell's field name is an impostor, not a
        # modified Scell document.
        outcome = "not_sealed"
    else:
        outcome = "modified"
    return Verdict(outcome, sha256, found.matched, found.request, seal)


def _hash_verdict(sha256: str) -> Verdict:
    found = services.verify_hash(sha256)
    outcome = "known" if found.matched in ("final", "evidence") else "unknown"
    return Verdict(outcome, sha256, found.matched, found.request)


def _public_request(raw: str) -> SignatureRequest | None:
    # Public on purpose, across tenants: the id is a random UUID printed in the evidence file, and the
    # page shows nothing personal (no title, name, e-mail or phone).
    try:
        pk = uuid.UUID(raw.strip())
    except ValueError:
        return None
    return SignatureRequest.objects.filter(pk=pk).annotate(signer_count=Count("signers")).first()


@require_http_methods(["GET", "HEAD", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    lang = "fr" if (getattr(request, "LANGUAGE_CODE", "") or "").startswith("fr") else "en"
    fr = lang == "fr"
    context: dict[str, Any] = {"max_mb": VERIFY_MAX_BYTES // (1024 * 1024)}
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("document")
        digest = request.POST.get("sha256", "").strip().lower()
        if upload is not None:
            if upload.size is None or upload.size > VERIFY_MAX_BYTES:
                status = 413
                context["error"] = "Le fichier dépasse 20 Mo." if fr else "The file is larger than 20 MB."
            else:
                data = upload.read()
                context["verdict"] = _seal_verdict(hashlib.sha256(data).hexdigest(), data)
        elif digest:
            if SHA256_RE.match(digest):
                context["verdict"] = _hash_verdict(digest)
            else:
                status = 400
                context["error"] = (
                    "Une empreinte SHA-256 compte 64 caractères hexadécimaux."
                    if fr
                    else "A SHA-256 fingerprint is 64 hexadecimal characters."
                )
                context["sha256"] = digest[:200]
        else:
            status = 400
            context["error"] = (
                "Choisissez un PDF ou collez une empreinte SHA-256."
                if fr
                else "Choose a PDF or paste a SHA-256 fingerprint."
            )
    elif request.GET.get("request"):
        found = _public_request(request.GET["request"])
        context["lookup"] = found
        context["lookup_missing"] = found is None
        if found is None:
            status = 404
    verdict = context.get("verdict")
    shown = context.get("lookup") or (verdict.signature if verdict else None)
    if shown is not None:
        labels = STATUS_LABELS.get(shown.status, (shown.status, shown.status))
        context["status_label"] = labels[1] if fr else labels[0]
        context["signer_count"] = getattr(shown, "signer_count", None) or shown.signers.count()
        context["shown"] = shown
        context["signature"] = shown  # the sandbox banner
    if shown is not None or (verdict and verdict.seal and verdict.seal.sealed):
        context["certificate"] = seal_certificate_info()
    return _render(request, "signatures/verify.html", context, lang=lang, status=status)
