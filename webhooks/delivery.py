"""The HTTP side of webhooks: the payload bytes, the SSRF guard and one POST to a vetted address.

A webhook URL is chosen by the tenant, so Scell's servers would otherwise POST wherever a customer
points them: the cloud metadata service, the database, an internal admin. In live mode the host must
resolve to public addresses only (unless the operator allow-listed it), and the connection goes to the
very address that was checked: a second DNS lookup by the HTTP client could answer differently (DNS
rebinding). Sandbox endpoints may target private addresses, since integrators test against localhost.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3
from django.conf import settings

from webhooks.models import Event

USER_AGENT = "Scell-Webhooks/1.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL is refused (scheme, syntax, or an address Scell must not reach)."""


# --- Payload ------------------------------------------------------------------------------------------
def _canonical(value: Any) -> Any:
    # jsonb returns keys in its own order and SQLite in insertion order: sort them, so the body of an
    # event is the same bytes on every attempt, every replay and every database.
    if isinstance(value, dict):
        return {str(k): _canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def format_created(event: Event) -> str:
    """ISO 8601 in UTC with a ``Z``, as DRF renders datetimes in the rest of the API."""
    text = event.created_at.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def event_payload(event: Event) -> bytes:
    """The request body (public contract, API.md): ``{"id", "type", "created", "livemode", "data"}``."""
    body = {
        "id": event.public_id,
        "type": event.type,
        "created": format_created(event),
        "livemode": event.livemode,
        "data": _canonical(event.data),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# --- SSRF guard ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A URL taken apart, with the addresses it may be sent to (already vetted)."""

    scheme: str
    hostname: str  # IDNA-encoded, lower case, without brackets
    port: int
    path: str  # path and query, as sent on the request line
    addresses: tuple[str, ...]
    authorization: str | None

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _blocked(ip: IPAddress) -> bool:
    # An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 host: judge that one.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        # not global covers the rest of the special ranges (100.64.0.0/10 carrier-grade NAT...).
        or not ip.is_global
    )


def _allowed(hostname: str, ip: IPAddress) -> bool:
    hosts = {h.lower().rstrip(".") for h in settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS}
    if hostname.rstrip(".") in hosts:
        return True
    return any(
        ip in ipaddress.ip_network(cidr, strict=False) for cidr in settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS
    )


def _parse(url: str) -> tuple[str, str, int, str, str | None]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"Invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise UnsafeURL("The webhook URL must use http or https.")
    if not parts.hostname:
        raise UnsafeURL("The webhook URL has no host.")
    try:
        hostname = parts.hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeURL("The webhook URL host is not a valid domain name.") from None
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    authorization = None
    if parts.username is not None:
        # https://user:pass@host/ is how many receivers take basic auth; it goes in a header, never to
        # the host name resolution.
        userpass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(userpass.encode()).decode()
    return scheme, hostname, port, path, authorization


def resolve_target(url: str, *, livemode: bool) -> Target:
    """Parse ``url``, resolve its host once and vet every address; raise ``UnsafeURL`` if refused."""
    scheme, hostname, port, path, authorization = _parse(url)
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {hostname} does not resolve ({exc}).") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone index
        if address not in addresses:
            addresses.append(address)
    if livemode:
        for address in addresses:
            ip = ipaddress.ip_address(address)
            # Every address must pass, not just the first: a host answering one public and one private
            # address would otherwise reach the private one on a later connection.
            if _blocked(ip) and not _allowed(hostname, ip):
                raise UnsafeURL(
                    f"The host {hostname} resolves to {address}, a private, loopback, link-local or reserved "
                    "address: live webhooks only go to public addresses."
                )
    return Target(scheme, hostname, port, path, tuple(addresses), authorization)


def validate_endpoint_url(url: str, *, livemode: bool) -> None:
    """Check an endpoint URL when it is created or changed; raise ``ValueError`` with a message for the
    user. Live URLs are resolved and vetted now (and again at each delivery: DNS answers change)."""
    if livemode:
        resolve_target(url, livemode=True)
    else:
        _parse(url)


# --- One POST -----------------------------------------------------------------------------------------
@dataclass
class Response:
    """What one attempt got: a status and (capped) body, or an error."""

    status_code: int | None
    body: bytes
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pool(target: Target, address: str, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    common = {"port": target.port, "timeout": timeout, "maxsize": 1, "retries": False}
    if target.scheme == "https":
        # The connection goes to the vetted IP, while TLS still checks the certificate of the host
        # name (SNI and hostname verification), as a normal client would.
        return urllib3.HTTPSConnectionPool(
            address,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.hostname,
            assert_hostname=target.hostname,
            **common,
        )
    return urllib3.HTTPConnectionPool(address, **common)


def post(url: str, *, livemode: bool, body: bytes, headers: dict[str, str]) -> Response:
    """POST ``body`` to ``url``: SSRF guard, no redirect followed (a 3xx is an answer, hence a failure),
    a deadline of WEBHOOK_TIMEOUT for the whole exchange and at most WEBHOOK_MAX_RESPONSE_BYTES read."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = resolve_target(url, livemode=livemode)
    except UnsafeURL as exc:
        return Response(None, b"", f"refused: {exc}", elapsed_ms())
    timeout_s = float(settings.WEBHOOK_TIMEOUT)
    deadline = started + timeout_s
    request_headers = {**headers, "Host": target.host_header}
    if target.authorization:
        request_headers["Authorization"] = target.authorization
    error = "no address"
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            error = "timeout"
            break
        pool = _pool(target, address, urllib3.Timeout(connect=remaining, read=remaining))
        try:
            try:
                response = pool.urlopen(
                    "POST",
                    target.path,
                    body=body,
                    headers=request_headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                    release_conn=False,
                )
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
                # Try the host's next address, as any client would (localhost is ::1, then 127.0.0.1).
                error = _describe(exc)
                continue
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return Response(None, b"", _describe(exc), elapsed_ms())
            try:
                content = _read_capped(response, deadline)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return Response(response.status, b"", _describe(exc), elapsed_ms())
            finally:
                response.release_conn()
            return Response(response.status, content, "", elapsed_ms())
        finally:
            pool.close()
    return Response(None, b"", error, elapsed_ms())


def _read_capped(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    # A receiver that streams an endless body, or drips it byte by byte, must not hold a worker: read
    # at most the cap, and stop at the deadline (the read timeout alone restarts on every byte).
    cap = int(settings.WEBHOOK_MAX_RESPONSE_BYTES)
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        if time.monotonic() > deadline:
            break
        chunk = response.read(min(8192, cap - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {exc}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]
