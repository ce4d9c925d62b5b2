"""E-mails of the signing flow: the invitation and reminders (each with the signer's unique link), the
notice to the sender at each step, and the final documents to everybody once the request completed.

Links are minted by the services (only their hashes are stored) and passed here through the actor's
message; this module never creates or reads a token."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from signatures.models import SignatureRequest, Signer

logger = logging.getLogger(__name__)

SUBJECTS = {
    "invitation": {
        "fr": "{sender} vous invite à signer « {title} »",
        "en": "{sender} invites you to sign “{title}”",
    },
    "reminder": {
        "fr": "Rappel : « {title} » attend votre signature",
        "en": "Reminder: “{title}” awaits your signature",
    },
    "signed": {"fr": "{name} a signé « {title} »", "en": "{name} signed “{title}”"},
    "locked": {"fr": "Lien de {name} bloqué pour « {title} »", "en": "{name}'s link is locked for “{title}”"},
    "ended": {"fr": "« {title} » : demande {status}", "en": "“{title}”: request {status}"},
    "completed": {"fr": "« {title} » est signé par tous", "en": "“{title}” is signed by everybody"},
}


def _sender_name(request: SignatureRequest) -> str:
    return request.sub_tenant.legal_name if request.sub_tenant else request.tenant.legal_name


def _send(
    *, to: list[str], kind: str, request: SignatureRequest, context: dict[str, Any], attachments=()
) -> None:
    lang = request.locale if request.locale in ("fr", "en") else "en"
    base = {
        "request": request,
        "sender": _sender_name(request),
        "sandbox": not request.livemode,
        "lang": lang,
        "site_url": settings.SITE_URL.rstrip("/"),
        **context,
    }
    subject = SUBJECTS[kind][lang].format(
        sender=base["sender"],
        title=request.title,
        name=context.get("name", ""),
        status=context.get("status", ""),
    )
    if not request.livemode:
        subject = f"[SANDBOX] {subject}"
    with translation.override(lang):
        text = render_to_string(f"signatures/email/{kind}.txt", base)
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    for name, content, mimetype in attachments:
        message.attach(name, content, mimetype)
    message.send()


def notify(*, kind: str, signer_ids: list[str], request_id: str | None, extra: dict[str, Any]) -> None:
    request = SignatureRequest.objects.select_related("tenant", "sub_tenant").get(pk=request_id)
    signers = list(Signer.objects.filter(pk__in=signer_ids).order_by("position"))
    if kind in ("invitation", "reminder"):
        links = extra.get("links", {})
        for signer in signers:
            if signer.status != Signer.Status.PENDING:
                continue  # it moved on between the decision and this e-mail
            _send(
                to=[signer.email],
                kind=kind,
                request=request,
                context={"signer": signer, "link": links.get(str(signer.id), ""), "name": signer.name},
            )
        return
    if kind == "sender_step":
        if request.notify_email:
            for signer in signers:
                step = extra.get("step", "signed")
                _send(
                    to=[request.notify_email],
                    kind=step,
                    request=request,
                    context={"signer": signer, "name": signer.name},
                )
        return
    if kind == "ended":
        status = extra.get("status", request.status)
        if request.notify_email:
            _send(to=[request.notify_email], kind="ended", request=request, context={"status": status})
        return
    if kind == "completed":
        attachments = []
        if request.final_file:
            with request.final_file.open("rb") as handle:
                attachments.append(
                    (f"{request.title[:80] or 'document'} - signed.pdf", handle.read(), "application/pdf")
                )
        recipients = [s.email for s in request.signers.order_by("position")]
        if request.notify_email:
            recipients.append(request.notify_email)
        for email in dict.fromkeys(recipients):
            _send(to=[email], kind="completed", request=request, context={}, attachments=attachments)
        return
    logger.warning("signatures: unknown notification kind %r", kind)
