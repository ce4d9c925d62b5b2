"""Signature requests: creation (and its charge), the signing flow (consent, SMS code, signing act,
decline), reminders, cancellation, expiry, and the final sealed document with its evidence file.

Every write is one transaction that also appends the evidence log (``SignatureEvent``, chained by the
database) and records the webhook event (outbox). E-mails and SMS leave only after the transaction that
decided them has committed; the sealing work runs in an actor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from billing.services import credits_charge
from scell.errors import Conflict, UnprocessableEntity
from scell.tenancy import Scope
from signatures import pdf as pdf_tools
from signatures.models import OtpChallenge, SignatureEvent, SignatureRequest, Signer
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

CONSENT_TEXT = {
    "fr": (
        "J'ai lu le document « {title} » ({pages} page(s), empreinte SHA-256 {sha256}) et j'accepte de le "
        "signer électroniquement. Je reconnais que la saisie du code à usage unique reçu par SMS au "
        "{phone} vaut signature électronique simple au sens de l'article 3(10) du règlement (UE) "
        "n° 910/2014 (eIDAS) et manifeste mon consentement au contenu de ce document."
    ),
    "en": (
        "I have read the document “{title}” ({pages} page(s), SHA-256 fingerprint {sha256}) and I agree to "
        "sign it electronically. I acknowledge that entering the one-time code sent by SMS to {phone} is "
        "a simple electronic signature within the meaning of article 3(10) of Regulation (EU) 910/2014 "
        "(eIDAS) and expresses my consent to the content of this document."
    ),
}


class SigningUnavailable(Exception):
    """The signing link cannot be used now (not this signer's turn, locked, request ended...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SigningRefused(Exception):
    """A signing step was refused (wrong code, cooldown, cap...); the page shows the message."""

    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


# --- Helpers ----------------------------------------------------------------------------------------
def _scope_of(request: SignatureRequest) -> Scope:
    return Scope(tenant=request.tenant, livemode=request.livemode, sub_tenant=request.sub_tenant)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signing_url(token: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/sign/{token}/"


def verification_url(request: SignatureRequest) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/verify/?request={request.id}"


def _code_hash(challenge_id: Any, code: str) -> str:
    # Keyed (SECRET_KEY) and bound to the challenge: a leaked table gives neither the codes nor a way to
    # test guesses offline.
    return salted_hmac("scell.signatures.otp", f"{challenge_id}:{code}", algorithm="sha256").hexdigest()


def _mask(phone: str) -> str:
    from signatures.sms import mask_phone

    return mask_phone(phone) if phone else ""


def consent_text(signer: Signer) -> str:
    request = signer.request
    template = CONSENT_TEXT.get(request.locale, CONSENT_TEXT["en"])
    return template.format(
        title=request.title,
        pages=request.page_count,
        sha256=request.original_sha256,
        phone=_mask(signer.phone),
    )


def _log(
    request: SignatureRequest,
    action: str,
    *,
    actor: str = "system",
    signer: Signer | None = None,
    ip: str | None = None,
    user_agent: str = "",
    at: dt.datetime | None = None,
    **data: Any,
) -> SignatureEvent:
    return SignatureEvent.objects.create(
        request=request,
        signer=signer,
        at=at or timezone.now(),
        action=action,
        actor=actor,
        ip=ip or None,
        user_agent=user_agent[:1000],
        data=data,
    )


def event_data(request: SignatureRequest) -> dict[str, Any]:
    """The request as the API shows it (the body of every signature webhook event)."""
    from signatures.api.serializers import SignatureRequestSerializer

    return dict(SignatureRequestSerializer(request).data)


def _emit(request: SignatureRequest, type: str, **extra: Any) -> None:
    data = event_data(request)
    data.update(extra)
    event_emit(scope=_scope_of(request), type=type, data=data)


def _notify_on_commit(
    kind: str, signer_ids: Iterable[Any] = (), request_id: Any = None, **extra: Any
) -> None:
    from signatures import tasks

    ids = [str(s) for s in signer_ids]
    rid = str(request_id) if request_id is not None else None

    def send() -> None:
        tasks.send_notification.send(kind, ids, rid, extra)

    transaction.on_commit(send)


# --- Creation ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignerInput:
    name: str
    email: str
    phone: str
    page: int | None = None
    x: float | None = None
    y: float | None = None


@dataclass(frozen=True)
class CreatedRequest:
    request: SignatureRequest
    links: dict[str, str]  # signer id -> signing URL (shown once: only hashes are kept)


def signature_request_create(
    *,
    scope: Scope,
    document: bytes,
    filename: str,
    title: str,
    signers: list[SignerInput],
    order: str = SignatureRequest.Order.SEQUENTIAL,
    message: str = "",
    expires_at: dt.datetime | None = None,
    reminder_interval_days: int = 3,
    max_reminders: int = 3,
    notify_email: str = "",
    external_ref: str = "",
    locale: str = "fr",
    created_by: Any = None,
) -> CreatedRequest:
    """Check the PDF and the signers, charge €1.20 per signer (live), store the request and invite the
    first signers once committed. Nothing is stored, charged or sent when any of it fails."""
    try:
        info = pdf_tools.inspect_pdf(document)
    except pdf_tools.PdfRejected as exc:
        raise UnprocessableEntity(
            exc.message, code=f"document_{exc.code}", details=[{"field": "document", "message": exc.message}]
        ) from exc
    now = timezone.now()
    _check_signers(signers, info)
    expires_at = _check_expiry(expires_at, now)
    request = SignatureRequest(
        tenant=scope.tenant,
        livemode=scope.livemode,
        sub_tenant=scope.sub_tenant,
        title=title,
        message=message,
        order=order,
        external_ref=external_ref,
        notify_email=notify_email or scope.tenant.email,
        locale=locale if locale in CONSENT_TEXT else "en",
        original_filename=(filename or "document.pdf")[:200],
        original_sha256=info.sha256,
        original_size=info.size,
        page_count=info.page_count,
        page_sizes=[list(size) for size in info.page_sizes],
        expires_at=expires_at,
        reminder_interval_days=reminder_interval_days,
        max_reminders=max_reminders,
        created_at=now,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    stored = ""
    try:
        with transaction.atomic():
            # Charged first: a 402 leaves nothing behind. Any failure below rolls the charge back with
            # the rows, and the stored file is removed.
            charge = credits_charge(
                tenant=scope.tenant,
                livemode=scope.livemode,
                operation="signature_signer",
                quantity=len(signers),
                reference=str(request.id),
                sub_tenant=scope.sub_tenant,
            )
            request.charged_amount = charge.amount
            request.original_file.save(f"{request.id}/original.pdf", ContentFile(document), save=False)
            stored = request.original_file.name
            return _create_rows(request, scope=scope, signers=signers, created_by=created_by)
    except BaseException:
        if stored:
            request.original_file.storage.delete(stored)
        raise


def _create_rows(
    request: SignatureRequest, *, scope: Scope, signers: list[SignerInput], created_by: Any
) -> CreatedRequest:
    title, order, expires_at, now = request.title, request.order, request.expires_at, request.created_at
    request.save(force_insert=True)
    links: dict[str, str] = {}
    created: list[Signer] = []
    for position, spec in enumerate(signers, start=1):
        token = secrets.token_urlsafe(32)
        signer = Signer.objects.create(
            request=request,
            position=position,
            name=spec.name,
            email=spec.email,
            phone=spec.phone,
            placement_page=spec.page,
            placement_x=spec.x,
            placement_y=spec.y,
            token_hash=token_hash(token),
        )
        links[str(signer.id)] = signing_url(token)
        created.append(signer)
    actor = getattr(created_by, "email", "") or (scope.api_key.display_prefix if scope.api_key else "api")
    _log(
        request,
        "request.created",
        actor=f"sender ({actor})",
        title=title,
        order=order,
        document_sha256=request.original_sha256,
        page_count=request.page_count,
        signers=[{"position": s.position, "name": s.name, "email": s.email} for s in created],
        expires_at=expires_at.isoformat(),
        charged=str(request.charged_amount),
    )
    first = created if order == SignatureRequest.Order.PARALLEL else created[:1]
    _invite(request, first, now=now, links=links)
    _emit(request, "signature_request.sent")
    return CreatedRequest(request=request, links=links)


def _check_signers(signers: list[SignerInput], info: pdf_tools.PdfInfo) -> None:
    if not signers:
        raise UnprocessableEntity(
            "A signature request needs at least one signer.",
            details=[{"field": "signers", "message": "empty"}],
        )
    limit = int(settings.SIGNATURE_MAX_SIGNERS)
    if len(signers) > limit:
        raise UnprocessableEntity(
            f"A signature request has at most {limit} signers.",
            details=[{"field": "signers", "message": f"more than {limit}"}],
        )
    seen: set[str] = set()
    for i, spec in enumerate(signers):
        if spec.email.lower() in seen:
            raise UnprocessableEntity(
                "Each signer must have their own e-mail address.",
                details=[{"field": f"signers.{i}.email", "message": "duplicate"}],
            )
        seen.add(spec.email.lower())
        if spec.page is not None:
            if not 1 <= spec.page <= info.page_count:
                raise UnprocessableEntity(
                    f"The document has {info.page_count} page(s).",
                    details=[{"field": f"signers.{i}.page", "message": "out of the document"}],
                )
            width, height = info.page_sizes[spec.page - 1]
            x, y = spec.x or 0.0, spec.y or 0.0
            if not (0 <= x <= width and 0 <= y <= height):
                raise UnprocessableEntity(
                    f"The placement is outside page {spec.page} ({width:.0f} x {height:.0f} points).",
                    details=[{"field": f"signers.{i}.x", "message": "outside the page"}],
                )


def _check_expiry(expires_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if expires_at is None:
        return now + timedelta(days=int(settings.SIGNATURE_DEFAULT_EXPIRY_DAYS))
    if expires_at <= now + timedelta(minutes=10):
        raise UnprocessableEntity(
            "expires_at must be at least 10 minutes in the future.",
            details=[{"field": "expires_at", "message": "too soon"}],
        )
    if expires_at > now + timedelta(days=int(settings.SIGNATURE_MAX_EXPIRY_DAYS)):
        raise UnprocessableEntity(
            f"expires_at must be within {settings.SIGNATURE_MAX_EXPIRY_DAYS} days.",
            details=[{"field": "expires_at", "message": "too far"}],
        )
    return expires_at


def _invite(
    request: SignatureRequest, signers: list[Signer], *, now: dt.datetime, links: dict[str, str] | None = None
) -> None:
    """Open the link of these signers and e-mail them once committed. The creation knows the tokens;
    later invitations (the next signer in sequence) cannot, and mint a fresh token instead."""
    links = dict(links or {})
    for signer in signers:
        if str(signer.id) not in links:
            token = secrets.token_urlsafe(32)
            signer.token_hash = token_hash(token)
            links[str(signer.id)] = signing_url(token)
        signer.status = Signer.Status.PENDING
        signer.notified_at = now
        signer.save(update_fields=["status", "notified_at", "token_hash"])
        _log(request, "signer.notified", signer=signer, email=signer.email, position=signer.position)
    if signers:
        _notify_on_commit(
            "invitation",
            [s.id for s in signers],
            request.id,
            links={str(s.id): links[str(s.id)] for s in signers},
        )


# --- Signing flow -------------------------------------------------------------------------------------
def signer_from_token(token: str) -> Signer:
    """The signer of a link, or SigningUnavailable("not_found")."""
    signer = (
        Signer.objects.select_related("request", "request__tenant", "request__sub_tenant")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if signer is None:
        raise SigningUnavailable("not_found", "This signing link is not valid.")
    return signer


def signer_state(signer: Signer, *, now: dt.datetime | None = None) -> str | None:
    """Why this signer cannot act now (a code), or None when they can."""
    now = now or timezone.now()
    request = signer.request
    if request.status == SignatureRequest.Status.PENDING and request.expires_at <= now:
        return "expired"
    if request.status != SignatureRequest.Status.PENDING:
        return {
            SignatureRequest.Status.FINALIZING: "signed",
            SignatureRequest.Status.COMPLETED: "signed",
        }.get(request.status, request.status)
    if signer.status == Signer.Status.WAITING:
        return "not_your_turn"
    if signer.status != Signer.Status.PENDING:
        return signer.status
    return None


UNAVAILABLE_MESSAGES = {
    "not_your_turn": (
        "It is not your turn yet: you will receive an e-mail once the previous signers have signed."
    ),
    "signed": "You have signed this document.",
    "declined": "This signature request was declined.",
    "locked": "This link is locked after too many wrong codes. Please contact the sender.",
    "expired": "This signature request has expired.",
    "cancelled": "This signature request was cancelled by its sender.",
    "ended": "This signature request has ended.",
}


def _require_can_act(signer: Signer, now: dt.datetime) -> None:
    state = signer_state(signer, now=now)
    if state is not None:
        raise SigningUnavailable(state, UNAVAILABLE_MESSAGES.get(state, "This link cannot be used."))


def _lock_signer(signer: Signer) -> Signer:
    # Lock order everywhere: the request row, then the signer row.
    SignatureRequest.objects.select_for_update().get(pk=signer.request_id)
    return Signer.objects.select_for_update().select_related("request", "request__tenant").get(pk=signer.pk)


def signer_view_document(*, signer: Signer, ip: str | None, user_agent: str) -> None:
    """Record that the signer opened the document (first view only, to keep the log readable)."""
    if signer.events.filter(action="document.viewed").exists():
        return
    with transaction.atomic():
        # Under the signer's row lock: two first views at once log one entry.
        signer = _lock_signer(signer)
        if signer.events.filter(action="document.viewed").exists():
            return
        _log(
            signer.request,
            "document.viewed",
            actor=signer.name,
            signer=signer,
            ip=ip,
            user_agent=user_agent,
            document_sha256=signer.request.original_sha256,
        )


def otp_send(*, signer: Signer, ip: str | None, user_agent: str = "") -> OtpChallenge:
    """Send a new 6-digit code by SMS (the previous one stops working). Refused during the 60 s
    cooldown and beyond the hourly caps per phone number and per IP address."""
    now = timezone.now()
    code = f"{secrets.randbelow(1_000_000):06d}"
    with transaction.atomic():
        signer = _lock_signer(signer)
        _require_can_act(signer, now)
        _check_otp_limits(signer, ip, now)
        superseded = list(
            signer.challenges.filter(used_at__isnull=True, invalidated_at__isnull=True, expires_at__gt=now)
        )
        OtpChallenge.objects.filter(pk__in=[c.pk for c in superseded]).update(invalidated_at=now)
        challenge = OtpChallenge(
            signer=signer,
            phone=signer.phone,
            ip=ip or None,
            created_at=now,
            expires_at=now + timedelta(seconds=int(settings.SIGNATURE_OTP_TTL_SECONDS)),
        )
        challenge.code_hash = _code_hash(challenge.id, code)
        challenge.save(force_insert=True)
        _log(
            signer.request,
            "otp.sent",
            actor=signer.name,
            signer=signer,
            ip=ip,
            user_agent=user_agent,
            challenge=str(challenge.id),
            phone=_mask(signer.phone),
            expires_at=challenge.expires_at.isoformat(),
            superseded=[str(c.pk) for c in superseded],
        )
    # After commit: the code exists before it is sent, and a rolled-back send never texts anybody.
    from signatures.sms import SmsError, send_sms

    body = (
        f"Scell : votre code de signature est {code}. Valable 10 minutes. Ne le communiquez à personne."
        if signer.request.locale == "fr"
        else f"Scell: your signing code is {code}. Valid for 10 minutes. Never share it."
    )
    try:
        gateway_id = send_sms(to=signer.phone, body=body, reference=str(challenge.id))
    except SmsError as exc:
        with transaction.atomic():
            OtpChallenge.objects.filter(pk=challenge.pk).update(invalidated_at=timezone.now())
            _log(
                signer.request,
                "otp.send_failed",
                signer=signer,
                challenge=str(challenge.id),
                error=str(exc)[:200],
            )
        raise SigningRefused(
            "sms_failed", "The SMS could not be sent. Please try again in a minute."
        ) from exc
    if gateway_id:
        OtpChallenge.objects.filter(pk=challenge.pk).update(gateway_id=gateway_id[:100])
    return challenge


def _check_otp_limits(signer: Signer, ip: str | None, now: dt.datetime) -> None:
    last = signer.challenges.order_by("-created_at").first()
    cooldown = int(settings.SIGNATURE_OTP_RESEND_COOLDOWN_SECONDS)
    if last is not None and last.created_at > now - timedelta(seconds=cooldown):
        wait = cooldown - int((now - last.created_at).total_seconds())
        raise SigningRefused(
            "cooldown",
            f"A code was sent less than a minute ago. Try again in {wait} s.",
            retry_after=max(wait, 1),
        )
    hour_ago = now - timedelta(hours=1)
    if OtpChallenge.objects.filter(phone=signer.phone, created_at__gt=hour_ago).count() >= int(
        settings.SIGNATURE_OTP_MAX_PER_PHONE_HOUR
    ):
        raise SigningRefused(
            "phone_cap", "Too many codes were sent to this number in the last hour.", retry_after=3600
        )
    if ip and OtpChallenge.objects.filter(ip=ip, created_at__gt=hour_ago).count() >= int(
        settings.SIGNATURE_OTP_MAX_PER_IP_HOUR
    ):
        raise SigningRefused(
            "ip_cap", "Too many codes were requested from this network in the last hour.", retry_after=3600
        )


def signer_sign(*, signer: Signer, code: str, consent: bool, ip: str | None, user_agent: str = "") -> Signer:
    """The signing act: consent given, code right, in time, unused. Records everything the evidence
    needs; when the last signer signs, the request is sealed by an actor."""
    now = timezone.now()
    if not consent:
        raise SigningRefused("consent_required", "Please read the document and accept the consent text.")
    code = (code or "").strip().replace(" ", "")
    refusal: SigningRefused | None = None
    with transaction.atomic():
        signer = _lock_signer(signer)
        _require_can_act(signer, now)
        challenge = (
            signer.challenges.filter(used_at__isnull=True, invalidated_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if challenge is None:
            raise SigningRefused("no_code", "Ask for a code first.")
        expected = challenge.code_hash
        given = _code_hash(challenge.id, code) if code.isdigit() and len(code) == 6 else ""
        if challenge.expires_at <= now:
            # Recorded (evidence, otp_expired event) and committed before the refusal is raised.
            _record_expiry(challenge, now)
            refusal = SigningRefused("code_expired", "This code has expired. Ask for a new one.")
        elif not hmac.compare_digest(expected, given or "0" * 64):
            # The wrong attempt counts even though the call fails: committed, then raised.
            refusal = _wrong_code(signer, challenge, ip, user_agent)
        else:
            _sign(signer, challenge, now=now, ip=ip, user_agent=user_agent)
    if refusal is not None:
        raise refusal
    return signer


def _sign(
    signer: Signer, challenge: OtpChallenge, *, now: dt.datetime, ip: str | None, user_agent: str
) -> None:
    request = signer.request
    challenge.used_at = now
    challenge.save(update_fields=["used_at"])
    text = consent_text(signer)
    signer.status = Signer.Status.SIGNED
    signer.consent_text = text
    signer.consent_at = now
    signer.signed_at = now
    signer.ip = ip or None
    signer.user_agent = user_agent[:1000]
    signer.document_sha256_seen = request.original_sha256
    signer.save()
    _log(
        request,
        "consent.accepted",
        actor=signer.name,
        signer=signer,
        ip=ip,
        user_agent=user_agent,
        at=now,
        text=text,
    )
    _log(
        request,
        "otp.verified",
        actor=signer.name,
        signer=signer,
        ip=ip,
        user_agent=user_agent,
        at=now,
        challenge=str(challenge.id),
    )
    _log(
        request,
        "signer.signed",
        actor=signer.name,
        signer=signer,
        ip=ip,
        user_agent=user_agent,
        at=now,
        name=signer.name,
        email=signer.email,
        phone=_mask(signer.phone),
        consent_text=text,
        consent_at=now.isoformat(),
        document_sha256=request.original_sha256,
        challenge=str(challenge.id),
        otp_sent_at=challenge.created_at.isoformat(),
    )
    _emit(request, "signer.signed", signer_id=str(signer.id))
    _notify_on_commit("sender_step", [signer.id], request.id, step="signed")
    _advance(request, now)


def _wrong_code(signer: Signer, challenge: OtpChallenge, ip: str | None, user_agent: str) -> SigningRefused:
    signer.failed_attempts += 1
    limit = int(settings.SIGNATURE_OTP_MAX_ATTEMPTS)
    locked = signer.failed_attempts >= limit
    if locked:
        signer.status = Signer.Status.LOCKED
        OtpChallenge.objects.filter(pk=challenge.pk).update(invalidated_at=timezone.now())
    signer.save(update_fields=["failed_attempts", "status"])
    _log(
        signer.request,
        "otp.failed",
        actor=signer.name,
        signer=signer,
        ip=ip,
        user_agent=user_agent,
        challenge=str(challenge.id),
        attempt=signer.failed_attempts,
    )
    if locked:
        _log(signer.request, "signer.locked", signer=signer, attempts=signer.failed_attempts)
        _notify_on_commit("sender_step", [signer.id], signer.request_id, step="locked")
    return SigningRefused(
        "locked" if locked else "wrong_code",
        UNAVAILABLE_MESSAGES["locked"]
        if locked
        else f"Wrong code. {limit - signer.failed_attempts} attempt(s) left.",
    )


def _advance(request: SignatureRequest, now: dt.datetime) -> None:
    signers = list(request.signers.select_for_update().order_by("position"))
    if all(s.status == Signer.Status.SIGNED for s in signers):
        request.status = SignatureRequest.Status.FINALIZING
        request.save(update_fields=["status"])
        _log(request, "request.all_signed")
        rid = str(request.id)

        def finalize() -> None:
            from signatures import tasks

            tasks.finalize_request.send(rid)

        transaction.on_commit(finalize)
        return
    if request.order == SignatureRequest.Order.SEQUENTIAL:
        nxt = next((s for s in signers if s.status == Signer.Status.WAITING), None)
        if nxt is not None and not any(s.status == Signer.Status.PENDING for s in signers):
            _invite(request, [nxt], now=now)


def signer_decline(*, signer: Signer, reason: str, ip: str | None, user_agent: str = "") -> Signer:
    """The signer refuses to sign: the request ends for everybody."""
    now = timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise SigningRefused("reason_required", "Please give a reason.")
    with transaction.atomic():
        signer = _lock_signer(signer)
        _require_can_act(signer, now)
        request = signer.request
        signer.status = Signer.Status.DECLINED
        signer.declined_at = now
        signer.decline_reason = reason[:2000]
        signer.ip = ip or None
        signer.user_agent = user_agent[:1000]
        signer.save()
        _log(
            request,
            "signer.declined",
            actor=signer.name,
            signer=signer,
            ip=ip,
            user_agent=user_agent,
            reason=reason[:2000],
        )
        _emit(request, "signer.declined", signer_id=str(signer.id), reason=reason[:2000])
        _end(
            request, SignatureRequest.Status.DECLINED, now=now, reason=f"Declined by {signer.name}: {reason}"
        )
    return signer


# --- Sender actions -----------------------------------------------------------------------------------
def _lock_request(scope: Scope, request: SignatureRequest) -> SignatureRequest:
    return SignatureRequest.objects.scoped(scope).select_for_update().get(pk=request.pk)


def signature_request_cancel(
    *, scope: Scope, request: SignatureRequest, reason: str = "", actor: str = "sender"
) -> SignatureRequest:
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(scope, request)
        if request.status != SignatureRequest.Status.PENDING:
            raise Conflict(
                f"This signature request is {request.status}; only a pending one can be cancelled.",
                code="signature_request_not_pending",
            )
        _end(
            request,
            SignatureRequest.Status.CANCELLED,
            now=now,
            reason=reason or "Cancelled by the sender.",
            actor=actor,
        )
    return request


def signature_request_remind(
    *, scope: Scope, request: SignatureRequest, actor: str = "sender"
) -> list[Signer]:
    """E-mail the signers whose turn it is again, with a fresh link (the old one stops working)."""
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(scope, request)
        if request.status != SignatureRequest.Status.PENDING or request.expires_at <= now:
            raise Conflict(
                f"This signature request is {request.status}; there is nobody to remind.",
                code="signature_request_not_pending",
            )
        signers = list(request.signers.select_for_update().filter(status=Signer.Status.PENDING))
        if not signers:
            raise Conflict("No signer is waiting for a reminder.", code="nothing_to_remind")
        recent = [s for s in signers if s.last_reminded_at and s.last_reminded_at > now - timedelta(hours=1)]
        if len(recent) == len(signers):
            raise Conflict("These signers were reminded less than an hour ago.", code="reminded_recently")
        _remind(request, [s for s in signers if s not in recent], now=now, actor=actor)
    return signers


# A resend to one signer is a person's deliberate act (the sender, support), unlike the hourly guard of
# the bulk reminder; a short pause is enough to stop a double click from mailing twice.
RESEND_PAUSE = timedelta(minutes=2)


def signer_notification_resend(*, scope: Scope, signer: Signer, actor: str = "sender") -> Signer:
    """E-mail one signer whose turn it is their link again, a fresh one (the old link stops working):
    for the signer who never got or lost the invitation. The dashboard and support's admin call it."""
    now = timezone.now()
    with transaction.atomic():
        request = _lock_request(scope, signer.request)
        if request.status != SignatureRequest.Status.PENDING or request.expires_at <= now:
            raise Conflict(
                f"This signature request is {request.status}; there is nobody to remind.",
                code="signature_request_not_pending",
            )
        signer = request.signers.select_for_update().get(pk=signer.pk)
        if signer.status != Signer.Status.PENDING:
            raise Conflict(
                f"{signer.name} is not waiting to sign ({signer.get_status_display()}).",
                code="signer_not_pending",
            )
        if signer.last_reminded_at and signer.last_reminded_at > now - RESEND_PAUSE:
            raise Conflict(
                f"{signer.name} was sent a link less than two minutes ago.", code="reminded_recently"
            )
        _remind(request, [signer], now=now, actor=actor)
    return signer


def _remind(request: SignatureRequest, signers: list[Signer], *, now: dt.datetime, actor: str) -> None:
    links = {}
    for signer in signers:
        token = secrets.token_urlsafe(32)
        signer.token_hash = token_hash(token)
        signer.last_reminded_at = now
        signer.reminder_count += 1
        signer.save(update_fields=["token_hash", "last_reminded_at", "reminder_count"])
        links[str(signer.id)] = signing_url(token)
        _log(request, "signer.reminded", actor=actor, signer=signer, count=signer.reminder_count)
    _notify_on_commit("reminder", [s.id for s in signers], request.id, links=links)


def reminders_send(*, now: dt.datetime | None = None) -> int:
    """Scheduled reminders: every ``reminder_interval_days`` after the invitation, up to ``max_reminders``."""
    now = now or timezone.now()
    due = Signer.objects.filter(
        status=Signer.Status.PENDING,
        request__status=SignatureRequest.Status.PENDING,
        request__expires_at__gt=now,
        request__reminder_interval_days__gt=0,
    ).select_related("request")
    count = 0
    for signer in due.iterator():
        request = signer.request
        if signer.reminder_count >= request.max_reminders:
            continue
        since = signer.last_reminded_at or signer.notified_at
        if since is None or since > now - timedelta(days=request.reminder_interval_days):
            continue
        with transaction.atomic():
            locked = Signer.objects.select_for_update().get(pk=signer.pk)
            if (
                locked.status != Signer.Status.PENDING
                or (locked.last_reminded_at or locked.notified_at) != since
            ):
                continue  # somebody else reminded or it moved on meanwhile
            _remind(request, [locked], now=now, actor="system")
            count += 1
    return count


def _end(
    request: SignatureRequest, status: str, *, now: dt.datetime, reason: str, actor: str = "system"
) -> None:
    request.status = status
    request.ended_at = now
    request.end_reason = reason[:2000]
    request.save(update_fields=["status", "ended_at", "end_reason"])
    request.signers.filter(
        status__in=[Signer.Status.WAITING, Signer.Status.PENDING, Signer.Status.LOCKED]
    ).update(status=Signer.Status.ENDED)
    _log(request, f"request.{status}", actor=actor, reason=reason[:2000])
    event_type = {
        SignatureRequest.Status.EXPIRED: "signature_request.expired",
        SignatureRequest.Status.CANCELLED: "signature_request.cancelled",
    }.get(status)
    if event_type:
        _emit(request, event_type)
    _notify_on_commit("ended", [], request.id, status=status)
    rid = str(request.id)

    def evidence() -> None:
        from signatures import tasks

        tasks.finalize_request.send(rid)

    transaction.on_commit(evidence)


def signature_requests_expire(*, now: dt.datetime | None = None) -> int:
    """Scheduled: end the pending requests whose expiry has passed."""
    now = now or timezone.now()
    count = 0
    for pk in SignatureRequest.objects.filter(
        status=SignatureRequest.Status.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = (
                SignatureRequest.objects.select_for_update()
                .filter(pk=pk, status=SignatureRequest.Status.PENDING)
                .first()
            )
            if request is None:
                continue
            _end(
                request,
                SignatureRequest.Status.EXPIRED,
                now=now,
                reason="The request reached its expiry date.",
            )
            count += 1
    return count


def _record_expiry(challenge: OtpChallenge, now: dt.datetime) -> bool:
    """Record once that an unused code expired (evidence log + ``signer.otp_expired``)."""
    if not OtpChallenge.objects.filter(
        pk=challenge.pk, used_at__isnull=True, invalidated_at__isnull=True, expiry_recorded_at__isnull=True
    ).update(expiry_recorded_at=now):
        return False
    signer = challenge.signer
    request = signer.request
    _log(
        request,
        "otp.expired",
        signer=signer,
        challenge=str(challenge.id),
        expired_at=challenge.expires_at.isoformat(),
    )
    _emit(request, "signer.otp_expired", signer_id=str(signer.id))
    return True


def otp_expiries_record(*, now: dt.datetime | None = None) -> int:
    """Scheduled (every minute): record the codes that expired unused."""
    now = now or timezone.now()
    count = 0
    pending = OtpChallenge.objects.filter(
        used_at__isnull=True,
        invalidated_at__isnull=True,
        expiry_recorded_at__isnull=True,
        expires_at__lte=now,
    ).select_related("signer__request__tenant", "signer__request__sub_tenant")
    for challenge in pending.iterator():
        with transaction.atomic():
            count += _record_expiry(challenge, now)
    return count


# --- Finalisation ---------------------------------------------------------------------------------------
def signature_request_finalize(*, request_id: str) -> SignatureRequest:
    """Produce what an ended request leaves: for a completed one the stamped and sealed PDF, and for
    every one the sealed evidence file; archive both (WORM). Idempotent (an actor may run it twice)."""
    request = SignatureRequest.objects.select_related("tenant", "sub_tenant").get(pk=request_id)
    if request.status == SignatureRequest.Status.PENDING:
        return request
    if request.status == SignatureRequest.Status.FINALIZING and not request.final_sha256:
        _seal_document(request)
        request.refresh_from_db()
    if not request.evidence_sha256:
        _seal_evidence(request)
        request.refresh_from_db()
    _archive(request)
    return request


def _stamps(request: SignatureRequest) -> list[pdf_tools.Stamp]:
    stamps = []
    for signer in request.signers.order_by("position"):
        stamps.append(
            pdf_tools.Stamp(
                name=signer.name,
                signed_at=signer.signed_at,
                page=signer.placement_page,
                x=signer.placement_x,
                y=signer.placement_y,
                detail=f"SMS {_mask(signer.phone)} · {request.id}",
            )
        )
    return stamps


def _seal_document(request: SignatureRequest) -> None:
    with request.original_file.open("rb") as handle:
        original = handle.read()
    if hashlib.sha256(original).hexdigest() != request.original_sha256:
        raise RuntimeError(f"The stored original of {request.id} does not match its SHA-256.")
    stamped = pdf_tools.stamp_pdf(original, _stamps(request), title=request.title, reference=str(request.id))
    sealed = pdf_tools.seal_pdf(
        stamped,
        reason=f"Scell: signed by {request.signers.count()} signer(s), request {request.id}",
        location="Scell",
    )
    digest = hashlib.sha256(sealed).hexdigest()
    with transaction.atomic():
        locked = SignatureRequest.objects.select_for_update().get(pk=request.pk)
        if locked.final_sha256:
            return  # a concurrent run got there first
        locked.final_file.save(f"{locked.id}/signed.pdf", ContentFile(sealed), save=False)
        locked.final_sha256 = digest
        locked.save(update_fields=["final_file", "final_sha256"])
        cert = pdf_tools.seal_certificate_info()
        _log(locked, "document.sealed", sha256=digest, certificate=cert.get("sha256_fingerprint", ""))


def _seal_evidence(request: SignatureRequest) -> None:
    from signatures.evidence import render_evidence_pdf

    with transaction.atomic():
        locked = SignatureRequest.objects.select_for_update().get(pk=request.pk)
        if locked.evidence_sha256:
            return
        completing = locked.status == SignatureRequest.Status.FINALIZING
        now = timezone.now()
        if completing:
            locked.status = SignatureRequest.Status.COMPLETED
            locked.completed_at = now
            locked.ended_at = now
            locked.save(update_fields=["status", "completed_at", "ended_at"])
            _log(locked, "request.completed", final_sha256=locked.final_sha256)
        data = evidence_data(locked, generated_at=now)
        sealed = pdf_tools.seal_pdf(
            render_evidence_pdf(data), reason=f"Scell evidence file, request {locked.id}", location="Scell"
        )
        digest = hashlib.sha256(sealed).hexdigest()
        locked.evidence_file.save(f"{locked.id}/evidence.pdf", ContentFile(sealed), save=False)
        locked.evidence_sha256 = digest
        locked.save(update_fields=["evidence_file", "evidence_sha256"])
        _log(locked, "evidence.sealed", sha256=digest)
        if completing:
            _emit(locked, "signature_request.completed")
            _notify_on_commit("completed", [], locked.id)


def evidence_data(request: SignatureRequest, *, generated_at: dt.datetime | None = None) -> Any:
    from signatures.evidence import EvidenceData, EvidenceEvent, EvidenceSigner

    events = list(request.events.select_related("signer").order_by("at", "id"))

    def as_event(e: SignatureEvent) -> EvidenceEvent:
        detail = ", ".join(
            f"{k}={v}"
            for k, v in e.data.items()
            if k not in {"consent_text", "text", "signers"} and v not in ("", None, [])
        )
        return EvidenceEvent(at=e.at, actor=e.actor, action=e.action, detail=detail[:500], ip=e.ip or "")

    signers = []
    for signer in request.signers.order_by("position"):
        signers.append(
            EvidenceSigner(
                position=signer.position,
                name=signer.name,
                email=signer.email,
                phone_masked=_mask(signer.phone),
                status=signer.status,
                signed_at=signer.signed_at,
                ip=signer.ip or "",
                user_agent=signer.user_agent,
                consent_text=signer.consent_text,
                consent_at=signer.consent_at,
                document_sha256_seen=signer.document_sha256_seen,
                otp_events=tuple(
                    as_event(e) for e in events if e.signer_id == signer.id and e.action.startswith("otp.")
                ),
                decline_reason=signer.decline_reason,
            )
        )
    return EvidenceData(
        request_id=str(request.id),
        title=request.title,
        tenant_name=(request.sub_tenant.legal_name if request.sub_tenant else request.tenant.legal_name),
        livemode=request.livemode,
        status=request.status,
        created_at=request.created_at,
        completed_at=request.completed_at,
        order=request.order,
        verification_url=verification_url(request),
        original_sha256=request.original_sha256,
        final_sha256=request.final_sha256,
        original_filename=request.original_filename,
        page_count=request.page_count,
        signers=tuple(signers),
        events=tuple(as_event(e) for e in events),
        seal_certificate=pdf_tools.seal_certificate_info(),
        generated_at=generated_at or timezone.now(),
    )


def _archive(request: SignatureRequest) -> None:
    from archive.signatures import archive_signature_request

    if request.status in SignatureRequest.ENDED and request.evidence_sha256:
        archive_signature_request(request=request)


# --- Verification --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    request: SignatureRequest | None
    matched: str  # "final" | "evidence" | "original" | ""


def verify_hash(sha256: str) -> Verification:
    """Which request (any tenant: the public verification page) holds a document with this SHA-256.
    Only someone who has the document can know its hash, so the answer reveals nothing new."""
    sha256 = (sha256 or "").strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return Verification(None, "")
    found = (
        SignatureRequest.objects.filter(
            Q(final_sha256=sha256) | Q(evidence_sha256=sha256) | Q(original_sha256=sha256)
        )
        .select_related("tenant", "sub_tenant")
        .order_by("-created_at")
        .first()
    )
    if found is None:
        return Verification(None, "")
    matched = (
        "final"
        if found.final_sha256 == sha256
        else "evidence"
        if found.evidence_sha256 == sha256
        else "original"
    )
    return Verification(found, matched)


def finalize_stalled(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Scheduled: enqueue again the finalisation of requests whose actor message was lost (a worker
    killed mid-way): ended without an evidence file, or still finalising, for a while."""
    from signatures import tasks

    cutoff = timezone.now() - older_than
    stalled = SignatureRequest.objects.filter(
        Q(status=SignatureRequest.Status.FINALIZING)
        | Q(status__in=SignatureRequest.ENDED, evidence_sha256=""),
    ).filter(
        Q(ended_at__lte=cutoff)
        | Q(ended_at__isnull=True, events__action="request.all_signed", events__at__lte=cutoff)
    )
    ids = list(stalled.values_list("pk", flat=True).distinct()[:100])
    for pk in ids:
        tasks.finalize_request.send(str(pk))
    return len(ids)


def evidence_interim(*, request: SignatureRequest) -> tuple[bytes, str]:
    """A sealed evidence file of what happened so far, for a request that has not ended (not stored,
    not archived: the final one is produced when the request ends)."""
    from signatures.evidence import render_evidence_pdf

    sealed = pdf_tools.seal_pdf(
        render_evidence_pdf(evidence_data(request)),
        reason=f"Scell interim evidence file, request {request.id}",
        location="Scell",
    )
    return sealed, hashlib.sha256(sealed).hexdigest()
