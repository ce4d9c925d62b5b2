"""Daily closures of the hash chains: services (create, timestamp, upgrade) and selectors (closures,
per-invoice proof bundles).

A closure seals one business day of one chain: the Merkle root (archive.merkle) of the hashes of the
entries ``first_seq..last_seq``, submitted to OpenTimestamps calendars and later upgraded to a Bitcoin
attestation. Closures of a chain are contiguous: each starts right after the previous one, so every
entry is sealed exactly once even when a transaction that began before midnight committed after it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import zipfile
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min, QuerySet
from django.utils import timezone

from archive import merkle, timestamping
from archive.models import ChainEntry, Closure
from scell.tenancy import Scope, ScopedQuerySet

logger = logging.getLogger("scell.archive")

INVOICE_TABLE = "invoicing_invoice"


class ClosureError(Exception):
    """A closure that cannot be made as asked (day not over, later day already closed, broken seq)."""


def business_tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.BUSINESS_TIME_ZONE)


def business_today() -> date:
    return timezone.now().astimezone(business_tz()).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of a business day, as aware datetimes (23 or 25 hours on DST days)."""
    tz = business_tz()
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(
        day + timedelta(days=1), time.min, tzinfo=tz
    )


def closure_leaves(closure: Closure) -> list[bytes]:
    hashes = (
        ChainEntry.objects.filter(
            chain_key=closure.chain_key, seq__gte=closure.first_seq, seq__lte=closure.last_seq
        )
        .order_by("seq")
        .values_list("hash", flat=True)
    )
    return [bytes(h) for h in hashes.iterator(chunk_size=5000)]


# --- Services ---------------------------------------------------------------------------------------
def closure_create(*, chain_key: str, day: date) -> Closure | None:
    """Seal ``day`` of the chain: the entries after the previous closure up to the last one created
    that day. Idempotent (the same closure is returned); None when the chain has nothing to seal. The
    day must be over in the business time zone, and no later day of the chain may be closed already."""
    existing = Closure.objects.filter(chain_key=chain_key, day=day).first()
    if existing is not None:
        return existing
    if day >= business_today():
        raise ClosureError(f"{day} is not over yet in {settings.BUSINESS_TIME_ZONE}")
    if Closure.objects.filter(chain_key=chain_key, day__gt=day).exists():
        raise ClosureError(f"a later day of {chain_key} is closed already; its closure covers {day}")
    previous = Closure.objects.filter(chain_key=chain_key, day__lt=day).order_by("-day").first()
    after = previous.last_seq if previous else None
    _start, end = day_bounds(day)
    entries = ChainEntry.objects.filter(chain_key=chain_key)
    if after is not None:
        entries = entries.filter(seq__gt=after)
    # The last entry created before midnight ends the day; anything before it in seq order is sealed
    # with it, even if its own transaction started after midnight (appends are serialised per chain,
    # so every seq below a visible one is committed).
    bounds = entries.filter(created_at__lt=end).aggregate(first=Min("seq"), last=Max("seq"))
    if bounds["last"] is None:
        return None
    first_seq = after + 1 if after is not None else bounds["first"]
    rows = list(
        entries.filter(seq__gte=first_seq, seq__lte=bounds["last"])
        .order_by("seq")
        .values_list("seq", "hash", "tenant_id", "sub_tenant_id", "livemode")
    )
    expected = list(range(first_seq, bounds["last"] + 1))
    if [row[0] for row in rows] != expected:
        raise ClosureError(f"{chain_key}: entries {first_seq}..{bounds['last']} are not contiguous")
    leaves = [bytes(row[1]) for row in rows]
    _seq, _hash, tenant_id, sub_tenant_id, livemode = rows[0]
    try:
        with transaction.atomic():
            closure = Closure.objects.create(
                chain_key=chain_key,
                tenant_id=tenant_id,
                sub_tenant_id=sub_tenant_id,
                livemode=livemode,
                day=day,
                root=merkle.merkle_root(leaves),
                first_seq=first_seq,
                last_seq=bounds["last"],
                leaf_count=len(leaves),
                meta={"merkle": "sha256, odd node promoted", "timezone": settings.BUSINESS_TIME_ZONE},
            )
    except IntegrityError:  # a concurrent run sealed it first; same entries, same root
        return Closure.objects.get(chain_key=chain_key, day=day)
    return closure


def closures_due(*, today: date | None = None, lookback_days: int = 31) -> list[Closure]:
    """Close every finished day with unsealed entries, for every chain with recent entries, oldest day
    first (a missed cron run is caught up, each day keeping its own closure)."""
    today = today or business_today()
    since, _end = day_bounds(today - timedelta(days=lookback_days))
    made: list[Closure] = []
    chains = ChainEntry.objects.filter(created_at__gte=since).values_list("chain_key", flat=True).distinct()
    for chain_key in sorted(set(chains)):
        last = Closure.objects.filter(chain_key=chain_key).order_by("-day").first()
        while True:
            pending = ChainEntry.objects.filter(chain_key=chain_key)
            if last is not None:
                pending = pending.filter(seq__gt=last.last_seq)
            first = pending.order_by("seq").values_list("created_at", flat=True).first()
            if first is None:
                break
            day = first.astimezone(business_tz()).date()
            if last is not None and day <= last.day:
                day = last.day + timedelta(days=1)
            if day >= today:
                break
            closure = closure_create(chain_key=chain_key, day=day)
            if closure is None:
                break
            made.append(closure)
            last = closure
    return made


def _claim_fields(closure: Closure, **fields: Any) -> None:
    Closure.objects.filter(pk=closure.pk).update(**fields)
    for name, value in fields.items():
        setattr(closure, name, value)


def closure_timestamp(closure: Closure) -> Closure:
    """Submit the root to the calendars and store the pending ``.ots``; with settings.TSA_URL, also get
    an RFC 3161 token. Raises TimestampingError (closure left pending, attempt recorded) when too few
    calendars answer, for the actor to retry. No transaction is held during network calls."""
    closure.refresh_from_db()
    root = bytes(closure.root)
    meta = dict(closure.meta)
    if settings.TSA_URL and not closure.tsa_token:
        try:
            token = timestamping.tsa_timestamp(root, url=settings.TSA_URL, timeout=settings.TSA_TIMEOUT)
            _claim_fields(closure, tsa_token=token)
            meta.pop("tsa_error", None)
        except timestamping.TimestampingError as exc:
            # RFC 3161 is a second, optional seal: its failure does not hold the OpenTimestamps one.
            meta["tsa_error"] = str(exc)
    if closure.ots_proof:
        _claim_fields(closure, meta=meta)
        return closure
    meta["ots_attempts"] = int(meta.get("ots_attempts", 0)) + 1
    try:
        submission = timestamping.submit(
            root,
            calendar_urls=settings.OTS_CALENDAR_URLS,
            timeout=settings.OTS_TIMEOUT,
            minimum=settings.OTS_MIN_CALENDARS,
        )
    except timestamping.TimestampingError as exc:
        meta["ots_error"] = str(exc)
        _claim_fields(closure, meta=meta)
        raise
    meta.pop("ots_error", None)
    meta["calendars"] = submission.answered
    if submission.errors:
        meta["calendar_errors"] = submission.errors
    # Only a closure without a proof takes one: two racing workers cannot overwrite each other.
    updated = Closure.objects.filter(pk=closure.pk, ots_proof__isnull=True).update(
        ots_proof=timestamping.dump(submission.timestamp), meta=meta
    )
    closure.refresh_from_db()
    if not updated:
        logger.info("Closure %s was timestamped concurrently", closure.pk)
    return closure


def closure_upgrade(closure: Closure) -> Closure:
    """Ask the calendars of the pending commitments for their Bitcoin attestation (``ots upgrade``);
    complete when one is present. The block header itself is not checked against a Bitcoin node here:
    ``ots verify`` does that, for whoever verifies."""
    closure.refresh_from_db()
    if not closure.ots_proof or closure.ots_status == Closure.OtsStatus.COMPLETE:
        return closure
    detached = timestamping.load(closure.ots_proof)
    whitelist = timestamping.calendar_whitelist(settings.OTS_CALENDAR_URLS)
    changed = timestamping.upgrade(detached.timestamp, whitelist=whitelist, timeout=settings.OTS_TIMEOUT)
    if not changed:
        return closure
    heights = timestamping.bitcoin_heights(detached.timestamp)
    fields: dict[str, Any] = {
        "ots_proof": timestamping.dump(detached.timestamp),
        "upgraded_at": timezone.now(),
    }
    if heights:
        fields |= {"ots_status": Closure.OtsStatus.COMPLETE, "bitcoin_block": heights[0]}
    # Conditional on the proof we read, so a concurrent upgrade is not lost (last writer would win).
    Closure.objects.filter(pk=closure.pk, ots_proof=closure.ots_proof).update(**fields)
    closure.refresh_from_db()
    return closure


# --- Selectors --------------------------------------------------------------------------------------
def closures(*, scope: Scope) -> QuerySet[Closure]:
    """The caller's closures (tenant, mode and, for a partner acting on one, sub-tenant)."""
    return ScopedQuerySet(model=Closure).scoped(scope)


def closure_get(*, scope: Scope, pk: Any) -> Closure | None:
    try:
        return closures(scope=scope).filter(pk=pk).first()
    except (ValueError, TypeError):
        return None


def closure_filename(closure: Closure) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in closure.chain_key)
    return f"{safe}-{closure.day.isoformat()}.ots"


@dataclass
class ProofBundle:
    """Everything needed to prove, offline, that an invoice's chain entry existed at a closure's time."""

    entry: ChainEntry
    closure: Closure | None
    path: list[merkle.PathStep]
    ots: bytes | None

    def as_dict(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "entry": {
                "chain": entry.chain_key,
                "seq": entry.seq,
                "hash": bytes(entry.hash).hex(),
                "prev_hash": bytes(entry.prev_hash).hex(),
                "payload_sha256": hashlib.sha256(bytes(entry.payload)).hexdigest(),
                "source_table": entry.source_table,
                "source_id": entry.source_id,
                "created_at": entry.created_at.isoformat(),
            },
            "merkle_path": [step.as_dict() for step in self.path],
            "closure": None
            if self.closure is None
            else {
                "id": self.closure.pk,
                "day": self.closure.day.isoformat(),
                "root": bytes(self.closure.root).hex(),
                "first_seq": self.closure.first_seq,
                "last_seq": self.closure.last_seq,
                "leaf_count": self.closure.leaf_count,
                "status": self.closure.ots_status,
                "bitcoin_block": self.closure.bitcoin_block,
            },
            "ots": base64.b64encode(self.ots).decode() if self.ots else None,
        }

    def as_zip(self) -> bytes:
        """``entry.bin`` (prev_hash || payload: its SHA-256 is the entry hash), ``entry.bin.ots``,
        ``proof.json`` and a README, so that ``ots verify entry.bin.ots`` works as is."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("entry.bin", bytes(self.entry.prev_hash) + bytes(self.entry.payload))
            if self.ots:
                archive.writestr("entry.bin.ots", self.ots)
            archive.writestr("proof.json", json.dumps(self.as_dict(), indent=2))
            archive.writestr("README.txt", BUNDLE_README)
        return buffer.getvalue()


BUNDLE_README = """Scell proof of existence of one invoice in the fiscal hash chain.

entry.bin      previous entry hash (32 bytes) followed by the canonical bytes of the invoice row;
               sha256(entry.bin) is the chain entry hash (proof.json: entry.hash).
entry.bin.ots  OpenTimestamps proof on that hash: the Merkle path to the day's closure root, then the
               calendars' (and, once upgraded, Bitcoin's) attestations of the root.
proof.json     the same facts in JSON (path siblings, closure day and root).

Verify:  ots verify entry.bin.ots        (https://opentimestamps.org, needs a Bitcoin node or
         ots --no-bitcoin verify ... to see the attestations without checking the block)
"""


def proof_bundle(*, scope: Scope, invoice: Any) -> ProofBundle | None:
    """The proof of ``invoice`` (an Invoice of the caller's scope), None if it has no chain entry
    (drafts are not chained). Before its day is closed and timestamped, closure and ots are empty."""
    if invoice.tenant_id != scope.tenant.pk or invoice.livemode != scope.livemode:
        return None
    entry = (
        ChainEntry.objects.filter(tenant=scope.tenant, source_table=INVOICE_TABLE, source_id=str(invoice.pk))
        .order_by("seq")
        .first()
    )
    if entry is None:
        return None
    closure = (
        Closure.objects.filter(chain_key=entry.chain_key, first_seq__lte=entry.seq, last_seq__gte=entry.seq)
        .order_by("day")
        .first()
    )
    if closure is None:
        return ProofBundle(entry=entry, closure=None, path=[], ots=None)
    leaves = closure_leaves(closure)
    if merkle.merkle_root(leaves) != bytes(closure.root):
        # The entries no longer give the sealed root: the chain was tampered with after closing.
        raise ClosureError(f"closure {closure.pk}: the entries do not match the sealed root")
    path = merkle.merkle_path(leaves, entry.seq - closure.first_seq)
    ots = None
    if closure.ots_proof:
        root_timestamp = timestamping.load(closure.ots_proof).timestamp
        ots = timestamping.dump(timestamping.path_timestamp(bytes(entry.hash), path, root_timestamp))
    return ProofBundle(entry=entry, closure=closure, path=path, ots=ots)
