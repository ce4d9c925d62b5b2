"""OpenTimestamps and RFC 3161 plumbing: submit a digest to calendars, upgrade pending proofs, turn a
Merkle path into a timestamp, ask a TSA for a token. No database access here (see archive.closures).

The proofs follow ``ots stamp`` (otsclient/cmds.py) so that the standard ``ots info``, ``ots upgrade``
and ``ots verify`` read them: the digest gets a random nonce appended and is hashed again before it is
sent (calendars are public: without the nonce they would learn, and publish, our Merkle root), each
calendar's answer is merged under that commitment, and the file is a ``DetachedTimestampFile`` whose
header says SHA256 and whose file digest is the committed hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field

from opentimestamps.calendar import (
    DEFAULT_CALENDAR_WHITELIST,
    CommitmentNotFoundError,
    RemoteCalendar,
    UrlWhitelist,
)
from opentimestamps.core.notary import BitcoinBlockHeaderAttestation, PendingAttestation
from opentimestamps.core.op import OpAppend, OpPrepend, OpSHA256
from opentimestamps.core.serialize import BytesDeserializationContext, BytesSerializationContext
from opentimestamps.core.timestamp import DetachedTimestampFile, Timestamp

from archive.merkle import PathStep

logger = logging.getLogger("scell.archive")

USER_AGENT = "Scell-archive (python-opentimestamps)"
NONCE_LENGTH = 16  # as ots stamp


class TimestampingError(Exception):
    """Too few calendars (or the TSA) answered; the caller keeps the closure pending and retries."""


@dataclass
class Submission:
    """The outcome of one submission: the timestamp on the digest and who answered."""

    timestamp: Timestamp
    answered: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def submit(digest: bytes, *, calendar_urls: Sequence[str], timeout: float, minimum: int) -> Submission:
    """Timestamp ``digest`` with the calendars, in parallel; at least ``minimum`` must answer within
    ``timeout`` seconds, else :class:`TimestampingError` (no partial proof is kept: the retry submits
    again with a fresh nonce)."""
    if minimum > len(calendar_urls):
        raise TimestampingError(f"{minimum} calendars required, only {len(calendar_urls)} configured")
    timestamp = Timestamp(digest)
    commitment = timestamp.ops.add(OpAppend(os.urandom(NONCE_LENGTH))).ops.add(OpSHA256())
    result = Submission(timestamp=timestamp)

    def one(url: str) -> Timestamp:
        return RemoteCalendar(url, user_agent=USER_AGENT).submit(commitment.msg, timeout=timeout)

    pool = ThreadPoolExecutor(max_workers=len(calendar_urls), thread_name_prefix="ots-submit")
    futures = {pool.submit(one, url): url for url in calendar_urls}
    try:
        for future in as_completed(futures, timeout=timeout + 1):
            url = futures[future]
            try:
                commitment.merge(future.result())
                result.answered.append(url)
            except Exception as exc:  # a calendar down, slow or talking nonsense is one missing vote
                result.errors[url] = f"{type(exc).__name__}: {exc}"
    except FuturesTimeout:
        for future, url in futures.items():
            if not future.done():
                result.errors[url] = "timeout"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if len(result.answered) < minimum:
        raise TimestampingError(
            f"{len(result.answered)} of {len(calendar_urls)} calendars answered, {minimum} required: "
            + "; ".join(f"{u}: {e}" for u, e in result.errors.items())
        )
    return result


def walk(timestamp: Timestamp) -> Iterator[Timestamp]:
    yield timestamp
    for sub in timestamp.ops.values():
        yield from walk(sub)


def pending_commitments(timestamp: Timestamp) -> list[tuple[Timestamp, PendingAttestation]]:
    return [
        (stamp, attestation)
        for stamp in walk(timestamp)
        for attestation in stamp.attestations
        if isinstance(attestation, PendingAttestation)
    ]


def bitcoin_heights(timestamp: Timestamp) -> list[int]:
    return sorted(
        att.height
        for _msg, att in timestamp.all_attestations()
        if isinstance(att, BitcoinBlockHeaderAttestation)
    )


def calendar_whitelist(calendar_urls: Iterable[str]) -> UrlWhitelist:
    # A pending attestation names the calendar to ask; only known calendars are asked, so that a
    # proof cannot make the worker fetch arbitrary (internal) URLs.
    whitelist = UrlWhitelist(list(calendar_urls))
    for pattern in DEFAULT_CALENDAR_WHITELIST:
        whitelist.add(pattern.geturl())
    return whitelist


def upgrade(timestamp: Timestamp, *, whitelist: UrlWhitelist, timeout: float) -> bool:
    """Ask each pending commitment's calendar for its upgrade (``ots upgrade``); True if anything new
    was merged. Calendars still waiting for a block answer 404, which is not an error."""
    changed = False
    for stamp, attestation in pending_commitments(timestamp):
        if attestation.uri not in whitelist:
            logger.warning("Ignoring pending attestation of unknown calendar %s", attestation.uri)
            continue
        calendar = RemoteCalendar(attestation.uri, user_agent=USER_AGENT)
        try:
            upgraded = calendar.get_timestamp(stamp.msg, timeout=timeout)
        except CommitmentNotFoundError:
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            logger.warning("Calendar %s: %s", attestation.uri, exc)
            continue
        before = {att for _m, att in timestamp.all_attestations()}
        stamp.merge(upgraded)
        if {att for _m, att in timestamp.all_attestations()} - before:
            changed = True
    return changed


def dump(timestamp: Timestamp) -> bytes:
    """The ``.ots`` file of ``timestamp`` (its message is the file digest, SHA256)."""
    ctx = BytesSerializationContext()
    DetachedTimestampFile(OpSHA256(), timestamp).serialize(ctx)
    return ctx.getbytes()


def load(data: bytes) -> DetachedTimestampFile:
    return DetachedTimestampFile.deserialize(BytesDeserializationContext(bytes(data)))


def path_timestamp(leaf: bytes, path: Sequence[PathStep], root_timestamp: Timestamp) -> Timestamp:
    """A timestamp on ``leaf``: the Merkle path as OpenTimestamps operations up to the root, then the
    root's own proof. ``ots verify`` replays the operations, so the leaf alone is enough."""
    timestamp = Timestamp(bytes(leaf))
    node = timestamp
    for step in path:
        op = OpPrepend(step.sibling) if step.side == "left" else OpAppend(step.sibling)
        node = node.ops.add(op).ops.add(OpSHA256())
    if node.msg != root_timestamp.msg:
        raise ValueError("the path does not lead to the closure's root")
    node.merge(root_timestamp)
    return timestamp


# --- RFC 3161 ---------------------------------------------------------------------------------------
def tsa_timestamp(digest: bytes, *, url: str, timeout: float) -> bytes:
    """An RFC 3161 time-stamp token (DER) over ``digest`` from the TSA at ``url``. The request imprint
    is SHA-256 of ``digest`` (rfc3161-client hashes what it is given). The token's signature is kept
    for later verification against the TSA's certificate; here we check status, imprint and nonce."""
    import urllib.request

    from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

    if not url.startswith(("https://", "http://")):
        raise TimestampingError(f"TSA URL must be http(s): {url!r}")
    request = TimestampRequestBuilder().data(digest).hash_algorithm(HashAlgorithm.SHA256).build()
    http = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:  # noqa: S310 - idem
            body = answer.read(1_000_000)
    except (urllib.error.URLError, OSError) as exc:
        raise TimestampingError(f"TSA {url}: {exc}") from exc
    try:
        response = decode_timestamp_response(body)
    except Exception as exc:  # the parser raises its own (Rust) error types
        raise TimestampingError(f"TSA {url}: unreadable response ({exc})") from exc
    if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampingError(f"TSA {url}: status {response.status} {response.status_string}")
    info = response.tst_info
    if info.message_imprint.message != hashlib.sha256(digest).digest():
        raise TimestampingError(f"TSA {url}: the token does not cover our digest")
    if request.nonce is not None and info.nonce != request.nonce:
        raise TimestampingError(f"TSA {url}: nonce mismatch (replayed answer?)")
    return response.time_stamp_token()
