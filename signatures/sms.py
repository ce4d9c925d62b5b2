"""Text messages (the signers' one-time codes) sent through a pluggable backend.

Like Django's e-mail backends: ``settings.SIGNATURE_SMS_BACKEND`` names the class, the console backend
is the development default, the locmem backend collects messages for tests and the HTTP backend posts
to the operator's SMS gateway. Services call :func:`send_sms` and never a backend directly.

A message body holds a signing code: it is written out by the console backend only (a development
tool) and never logged by the others, and neither is the gateway key.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "signatures.sms.ConsoleSmsBackend"
USER_AGENT = "Scell-SMS/1.0"
# At most this much of a gateway's answer is read: the id, or the reason of a refusal.
MAX_RESPONSE_BYTES = 16 * 1024
REASON_CHARS = 200

E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")

# ITU-T E.164 country calling codes of one or two digits; every other code has three. Enough to
# split the country code off a number without a numbering-plan library.
_COUNTRY_CODES_1 = frozenset({"1", "7"})
_COUNTRY_CODES_2 = frozenset(
    str(code)
    for code in (
        *(20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49),
        *(51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66),
        *(81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98),
    )
)
BULLET = "•"


class SmsError(Exception):
    """The gateway refused the message or could not be reached; the message is safe to log."""


@dataclass(frozen=True)
class SmsMessage:
    """One text message to one E.164 number."""

    to: str  # E.164, e.g. "+33612345678"
    body: str
    reference: str = ""  # our id for the message (e.g. the OTP challenge id), for the gateway's logs

    def __post_init__(self) -> None:
        # A malformed number is a bug upstream, not a gateway failure: fail before anything is sent.
        if not E164_RE.match(self.to):
            raise ValueError(f"Not an E.164 phone number: {mask_phone(self.to)!r}")
        if not self.body:
            raise ValueError("An SMS needs a body")


class BaseSmsBackend:
    """Sends one message; returns the gateway's message id ("" if there is none)."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def send(self, message: SmsMessage) -> str:
        raise NotImplementedError("subclasses of BaseSmsBackend must override send()")


class ConsoleSmsBackend(BaseSmsBackend):
    """Development default: writes each message, code included, to ``stream`` (stdout)."""

    def __init__(self, *, stream: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream = stream or sys.stdout
        # Several request threads may write at once (runserver): keep each message on its own lines.
        self._lock = threading.Lock()

    def send(self, message: SmsMessage) -> str:
        with self._lock:
            self.stream.write(f"SMS to {message.to}: {message.body}\n")
            self.stream.flush()
        # The log line leaves the body out: logs are shipped and kept, the console is not.
        logger.info("SMS (console) to %s, reference %r", mask_phone(message.to), message.reference)
        return ""


# Messages sent through LocmemSmsBackend; tests empty it (``outbox.clear()``) before they send.
outbox: list[SmsMessage] = []


class LocmemSmsBackend(BaseSmsBackend):
    """For tests: keeps every message in the module-level ``outbox``."""

    def send(self, message: SmsMessage) -> str:
        outbox.append(message)
        return f"locmem_{len(outbox)}"


class HttpGatewaySmsBackend(BaseSmsBackend):
    """POSTs ``{"to", "body", "reference", "sender"}`` as JSON to ``SIGNATURE_SMS_GATEWAY_URL`` with
    ``Authorization: Bearer SIGNATURE_SMS_GATEWAY_KEY``; a 2xx answer's JSON ``"id"`` is returned."""

    def __init__(
        self,
        *,
        url: str | None = None,
        key: str | None = None,
        sender: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url if url is not None else getattr(settings, "SIGNATURE_SMS_GATEWAY_URL", "")
        self.key = key if key is not None else getattr(settings, "SIGNATURE_SMS_GATEWAY_KEY", "")
        self.sender = sender if sender is not None else getattr(settings, "SIGNATURE_SMS_SENDER", "Scell")
        self.timeout = float(
            timeout if timeout is not None else getattr(settings, "SIGNATURE_SMS_TIMEOUT", 10)
        )

    def _check_url(self) -> None:
        if not self.url:
            raise SmsError("SMS gateway not configured (SIGNATURE_SMS_GATEWAY_URL is empty)")
        if not self.key:
            raise SmsError("SMS gateway not configured (SIGNATURE_SMS_GATEWAY_KEY is empty)")
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise SmsError("SMS gateway URL is malformed") from None
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SmsError("SMS gateway URL must be an http(s) URL with a host")
        # The request carries the gateway key and a signing code: plain HTTP is for development and
        # for a gateway on this very machine only.
        if parts.scheme == "http" and not settings.DEBUG and not _is_loopback(parts.hostname):
            raise SmsError(f"SMS gateway URL must use https (got http://{parts.hostname})")

    def send(self, message: SmsMessage) -> str:
        self._check_url()
        payload = {
            "to": message.to,
            "body": message.body,
            "reference": message.reference,
            "sender": self.sender,
        }
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            response = _http().request(
                "POST",
                self.url,
                body=json.dumps(payload, ensure_ascii=False).encode(),
                headers=headers,
                # total: one deadline for connect and read, so a slow gateway holds a worker no longer.
                timeout=urllib3.Timeout(total=self.timeout),
                # Never retried here: a read timeout may follow a message the gateway did send, and a
                # second code to the signer's phone is worse than a "try again" on screen. Redirects are
                # not followed either (a 3xx is a misconfiguration, reported as such).
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                content = response.read(MAX_RESPONSE_BYTES)
            finally:
                response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = _describe(exc)
            logger.warning(
                "SMS to %s (reference %r) not sent: %s", mask_phone(message.to), message.reference, reason
            )
            raise SmsError(f"SMS gateway did not answer: {reason}") from None
        if not 200 <= response.status < 300:
            reason = self._reason(content, message)
            logger.warning(
                "SMS to %s (reference %r) refused: HTTP %s %s",
                mask_phone(message.to),
                message.reference,
                response.status,
                reason,
            )
            raise SmsError(f"SMS gateway answered HTTP {response.status}: {reason}")
        gateway_id = _message_id(content)
        logger.info(
            "SMS to %s (reference %r) accepted by the gateway, id %r",
            mask_phone(message.to),
            message.reference,
            gateway_id,
        )
        return gateway_id

    def _reason(self, content: bytes, message: SmsMessage) -> str:
        text = " ".join(content.decode("utf-8", errors="replace").split())
        # A gateway may echo the request in its error: never let the code or the key reach a log.
        for secret in (message.body, self.key):
            if secret:
                text = text.replace(secret, "[redacted]")
        if len(text) > REASON_CHARS:
            text = text[: REASON_CHARS - 1] + "…"
        return text or "(empty answer)"


_pool_manager: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def _http() -> urllib3.PoolManager:
    # One pool per process: keeps the TLS connection to the gateway alive between codes.
    global _pool_manager
    with _pool_lock:
        if _pool_manager is None:
            _pool_manager = urllib3.PoolManager(num_pools=4, maxsize=4, headers={"User-Agent": USER_AGENT})
        return _pool_manager


def _is_loopback(hostname: str) -> bool:
    if hostname.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _message_id(content: bytes) -> str:
    try:
        answer = json.loads(content)
    except ValueError:
        return ""
    if not isinstance(answer, dict) or answer.get("id") is None:
        return ""
    return str(answer["id"])


def _describe(exc: BaseException) -> str:
    # MaxRetryError wraps the real cause when retries are disabled.
    cause = getattr(exc, "reason", None)
    if isinstance(cause, BaseException):
        exc = cause
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or host unreachable"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {exc}"[:REASON_CHARS]
    return f"{type(exc).__name__}: {exc}"[:REASON_CHARS]


def get_sms_backend(path: str | None = None, **kwargs: Any) -> BaseSmsBackend:
    """An instance of ``path`` (default ``settings.SIGNATURE_SMS_BACKEND``)."""
    backend_class = import_string(path or getattr(settings, "SIGNATURE_SMS_BACKEND", DEFAULT_BACKEND))
    return backend_class(**kwargs)


def send_sms(*, to: str, body: str, reference: str = "") -> str:
    """Send one SMS through the configured backend; return the gateway's id. Raises ``SmsError``."""
    return get_sms_backend().send(SmsMessage(to=to, body=body, reference=reference))


def mask_phone(phone: str) -> str:
    """``"+33612345678"`` → ``"+33 6•• ••• •78"``: the country code, the first national digit and the
    last two digits stay readable (enough for a signer to recognise the number), the rest is hidden."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    if not phone.strip().startswith("+") or len(digits) < 5:
        # Not E.164: no country code to keep, only the last two digits.
        return BULLET * max(len(digits) - 2, 1) + digits[-2:]
    if digits[:1] in _COUNTRY_CODES_1:
        cc_len = 1
    elif digits[:2] in _COUNTRY_CODES_2:
        cc_len = 2
    else:
        cc_len = 3
    country, national = digits[:cc_len], digits[cc_len:]
    if len(national) < 4:
        shown = national[:1] + BULLET * (len(national) - 1)
    else:
        shown = national[:1] + BULLET * (len(national) - 3) + national[-2:]
    # Groups of three from the left; a lone trailing digit joins the group before it.
    groups = [shown[i : i + 3] for i in range(0, len(shown), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        last = groups.pop()
        groups[-1] += last
    return f"+{country} " + " ".join(groups)
