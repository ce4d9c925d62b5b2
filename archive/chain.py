"""The hash chain: verification (every database) and, on SQLite only, the writer.

Each tenant (and each sub-tenant) has one chain per mode, keyed ``<tenant_id>/<sub_tenant_id or ->/
<live|test>``. Every link is ``hash = sha256(prev_hash || payload)``, the payload being the canonical bytes
of the fiscal row (an issued or received invoice, its lines, its lifecycle events) or of an entry of a
signature request's evidence log (``signatures_signatureevent``, signatures migration 0002).

On PostgreSQL the chain is written by triggers (migration 0002) in the transaction that makes the row
fiscal, and the chain tables refuse UPDATE, DELETE and TRUNCATE: these are the documented guarantees.
On SQLite (the embedded default) the same chain is written from Django signals (``connect_sqlite_writer``,
called by ``ArchiveConfig.ready``) with a Python canonical payload, and checked the same way — but
nothing stops raw SQL from bypassing or rewriting it, so the guarantees are PostgreSQL-only.

``verify_chain`` streams a chain in ``seq`` order through a server-side cursor (bounded memory),
recomputes every hash in Python from the previous hash and the stored payload, checks that ``seq`` has no
gap, that the head matches the last link, and that each payload still describes the current source row
(a row edited behind the triggers' back, or deleted, breaks its link).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import queue
import threading
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connections, models, transaction

from archive.models import GENESIS_HASH, ChainEntry, ChainHead

# Rows fetched per round trip when streaming a chain: large enough to amortise the round trip, small
# enough that memory stays flat whatever the chain's length.
CHUNK_SIZE = 5_000

# Source-row state as computed next to each entry.
SOURCE_SAME, SOURCE_DIFFERS, SOURCE_MISSING = 0, 1, 2

# The chained tables the verifier looks up directly; another table (chained by a later trigger)
# goes through scell_chain_current(), slower dynamic SQL.
PG_CURRENT_SQL = """CASE e.source_table
    WHEN 'invoicing_invoice' THEN
        (SELECT scell_chain_payload(t) FROM invoicing_invoice t WHERE t.id = e.source_id::uuid)
    WHEN 'invoicing_invoiceline' THEN
        (SELECT scell_chain_payload(t) FROM invoicing_invoiceline t WHERE t.id = e.source_id::bigint)
    WHEN 'invoicing_invoiceevent' THEN
        (SELECT scell_chain_payload(t) FROM invoicing_invoiceevent t WHERE t.id = e.source_id::uuid)
    WHEN 'signatures_signatureevent' THEN
        (SELECT scell_chain_payload(t) FROM signatures_signatureevent t WHERE t.id = e.source_id::bigint)
    ELSE scell_chain_current(e.source_table, e.source_id)
END"""

# Built from constants only; every value is a bound parameter. OFFSET 0 keeps the lateral subquery
# from being flattened, which would evaluate the source lookup twice per link.
PG_STREAM_SQL = f"""
SELECT e.seq, e.prev_hash, e.hash, e.payload,
       CASE WHEN c.cur IS NULL THEN {SOURCE_MISSING}
            WHEN e.payload = c.cur OR scell_chain_same(e.payload, c.cur) THEN {SOURCE_SAME}
            ELSE {SOURCE_DIFFERS} END
FROM archive_chainentry e
CROSS JOIN LATERAL (SELECT {PG_CURRENT_SQL} AS cur OFFSET 0) c
WHERE e.chain_key = %s AND e.seq <= %s
ORDER BY e.seq
"""  # noqa: S608

SIMPLE_STREAM_SQL = """
SELECT e.seq, e.prev_hash, e.hash, e.payload, e.source_table, e.source_id
FROM archive_chainentry e
WHERE e.chain_key = %s AND e.seq <= %s
ORDER BY e.seq
"""


def chain_key_for(*, tenant_id: Any, sub_tenant_id: Any | None, livemode: bool) -> str:
    """The same key as the SQL function scell_chain_append builds."""
    return f"{tenant_id}/{sub_tenant_id or '-'}/{'live' if livemode else 'test'}"


def link_hash(prev_hash: bytes, payload: bytes) -> bytes:
    return hashlib.sha256(bytes(prev_hash) + bytes(payload)).digest()


@dataclass(frozen=True)
class ChainCheckResult:
    """The outcome of one chain's verification; a broken one names its first bad link."""

    chain_key: str
    ok: bool
    entries_checked: int
    head_seq: int
    first_broken_seq: int | None = None
    reason: str = ""


# --- Verification -----------------------------------------------------------------------------------
Link = tuple[int, bytes, bytes, bytes, int]  # seq, prev_hash, hash, payload, source state


def check_links(
    links: Iterable[Link],
    *,
    chain_key: str,
    head_seq: int,
    head_hash: bytes,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = CHUNK_SIZE,
) -> ChainCheckResult:
    """Walk the links in seq order and stop at the first one that does not hold.

    Pure: it sees only what the database returned, so it can be fed by PostgreSQL, SQLite or a test."""
    expected_seq = 1
    running = GENESIS_HASH
    checked = 0

    def broken(seq: int, reason: str) -> ChainCheckResult:
        return ChainCheckResult(chain_key, False, checked, head_seq, seq, reason)

    for seq, prev_hash, stored_hash, payload, source_state in links:
        if seq != expected_seq:
            # A missing seq is a deleted link; report the first seq that is not there.
            return broken(expected_seq, f"link {expected_seq} is missing (next link found is {seq})")
        if bytes(prev_hash) != running:
            return broken(seq, "prev_hash is not the hash of the previous link")
        recomputed = link_hash(running, payload)
        if recomputed != bytes(stored_hash):
            return broken(seq, "hash does not match sha256(prev_hash || payload)")
        if source_state == SOURCE_MISSING:
            return broken(seq, "the chained row no longer exists")
        if source_state != SOURCE_SAME:
            return broken(seq, "the chained row was changed after it was chained")
        running = recomputed
        checked += 1
        expected_seq += 1
        if progress is not None and checked % progress_every == 0:
            progress(checked, head_seq)
    if progress is not None:
        progress(checked, head_seq)
    if checked != head_seq:
        return broken(expected_seq, f"the head says {head_seq} links, the chain has {checked}")
    if running != bytes(head_hash):
        return broken(head_seq, "the head hash is not the hash of the last link")
    return ChainCheckResult(chain_key, True, checked, head_seq)


def _stream(cursor: Any, sql: str, params: list[Any]) -> Iterator[tuple]:
    cursor.execute(sql, params)
    while True:
        rows = cursor.fetchmany(CHUNK_SIZE)
        if not rows:
            return
        yield from rows


def verify_chain(
    chain_key: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    using: str = "default",
) -> ChainCheckResult:
    """Recompute one chain from its first link to its head and report the first broken link.

    Links appended while the check runs are beyond the head read first and are left for the next run."""
    connection = connections[using]
    head = ChainHead.objects.using(using).filter(chain_key=chain_key).first()
    if head is None:
        exists = ChainEntry.objects.using(using).filter(chain_key=chain_key).exists()
        if exists:
            return ChainCheckResult(chain_key, False, 0, 0, 1, "the chain has links but no head")
        return ChainCheckResult(chain_key, True, 0, 0)
    head_seq, head_hash = head.last_seq, bytes(head.last_hash)
    # A transaction for the server-side cursor (PostgreSQL) and one consistent read per statement.
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as setup:
                # JIT: the planner's cost for a long chain triggers a compilation that costs more
                # (~150 ms) than it saves on this index-driven scan. TimeZone: scell_chain_payload
                # prints timestamps in the session's zone, and the triggers wrote payloads under UTC.
                setup.execute("SET LOCAL jit = off; SET LOCAL TimeZone = 'UTC'")
            # A server-side cursor in binary format (bytea arrives as bytes, not hex text), read
            # ahead by one thread while this one hashes: PostgreSQL rebuilding the source rows and
            # Python recomputing hashes overlap instead of taking turns.
            raw = connection.connection
            with raw.cursor(name=f"scell_verify_{uuid.uuid4().hex}", binary=True) as cursor:
                rows = _read_ahead(cursor, PG_STREAM_SQL, [chain_key, head_seq])
                try:
                    return check_links(
                        rows, chain_key=chain_key, head_seq=head_seq, head_hash=head_hash, progress=progress
                    )
                finally:
                    rows.close()  # stops the reader before the cursor closes
        cursor = connection.chunked_cursor()
        try:
            links = _python_links(_stream(cursor, SIMPLE_STREAM_SQL, [chain_key, head_seq]), using)
            return check_links(
                links, chain_key=chain_key, head_seq=head_seq, head_hash=head_hash, progress=progress
            )
        finally:
            cursor.close()


def _read_ahead(cursor: Any, sql: str, params: list[Any], depth: int = 2) -> Generator[tuple, None, None]:
    """Rows of ``sql``, fetched CHUNK_SIZE at a time by a reader thread at most ``depth`` chunks ahead
    (so memory stays bounded). Closing the generator stops the reader."""
    chunks: queue.Queue[list[tuple] | BaseException] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            cursor.execute(sql, params)
            while not stop.is_set():
                rows = cursor.fetchmany(CHUNK_SIZE)
                chunks.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # handed over to the consumer, which raises it
            chunks.put(exc)

    reader = threading.Thread(target=read, name="verify-chain-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield from item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)
        reader.join()


def _python_links(rows: Iterable[tuple], using: str) -> Iterator[Link]:
    """SQLite: compare each stored payload with the Python canonical bytes of the current row."""
    for seq, prev_hash, stored_hash, payload, source_table, source_id in rows:
        current = current_payload(source_table, source_id, using=using)
        if current is None:
            state = SOURCE_MISSING
        elif payload_same(bytes(payload), current):
            state = SOURCE_SAME
        else:
            state = SOURCE_DIFFERS
        yield seq, bytes(prev_hash), bytes(stored_hash), bytes(payload), state


# --- Python canonical payload (SQLite) ---------------------------------------------------------------
def _canonical_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def canonical_payload(instance: models.Model) -> bytes:
    """Canonical bytes of a row, in Python: every concrete column by its column name, keys sorted,
    compact UTF-8 JSON; datetimes in UTC ISO 8601, decimals and UUIDs as strings, binary columns by
    their SHA-256 (the same substitution the SQL side makes, so entries stay small)."""
    doc = {
        field.column: _canonical_value(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_same(stored: bytes, current: bytes) -> bool:
    """Byte equality, or (a column added since) every stored key still holds the same value."""
    if stored == current:
        return True
    try:
        old, new = json.loads(stored), json.loads(current)
    except ValueError:
        return False
    return (
        isinstance(old, dict)
        and isinstance(new, dict)
        and all(k in new and new[k] == v for k, v in old.items())
    )


def _source_models() -> dict[str, type[models.Model]]:
    from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
    from signatures.models import SignatureEvent

    return {m._meta.db_table: m for m in (Invoice, InvoiceLine, InvoiceEvent, SignatureEvent)}


def current_payload(source_table: str, source_id: str, *, using: str = "default") -> bytes | None:
    model = _source_models().get(source_table)
    if model is None:
        return None
    instance = model._default_manager.using(using).filter(pk=source_id).first()
    return None if instance is None else canonical_payload(instance)


# --- SQLite writer ----------------------------------------------------------------------------------
def chain_append(
    *,
    tenant_id: Any,
    sub_tenant_id: Any | None,
    livemode: bool,
    source_table: str,
    source_id: str,
    payload: bytes,
    using: str = "default",
) -> ChainEntry:
    """Append one link from Python (SQLite only; on PostgreSQL the triggers do it and refuse this).

    Must run inside the transaction that makes the row fiscal. SQLite has one writer at a time, which
    is what serialises appends here; select_for_update keeps the code right on other backends."""
    key = chain_key_for(tenant_id=tenant_id, sub_tenant_id=sub_tenant_id, livemode=livemode)
    with transaction.atomic(using=using):
        head, _ = ChainHead.objects.using(using).get_or_create(
            chain_key=key,
            defaults={
                "tenant_id": tenant_id,
                "sub_tenant_id": sub_tenant_id,
                "livemode": livemode,
                "last_seq": 0,
                "last_hash": GENESIS_HASH,
            },
        )
        head = ChainHead.objects.using(using).select_for_update().get(pk=head.pk)
        prev = bytes(head.last_hash)
        entry = ChainEntry.objects.using(using).create(
            chain_key=key,
            tenant_id=tenant_id,
            sub_tenant_id=sub_tenant_id,
            livemode=livemode,
            seq=head.last_seq + 1,
            source_table=source_table,
            source_id=str(source_id),
            payload=payload,
            prev_hash=prev,
            hash=link_hash(prev, payload),
        )
        ChainHead.objects.using(using).filter(pk=key).update(
            last_seq=entry.seq, last_hash=entry.hash, updated_at=entry.created_at
        )
    return entry


def _append_row(instance: models.Model, owner: Any, using: str) -> None:
    """Chain ``instance`` in the chain of ``owner`` (the invoice or signature request it belongs to)."""
    # Reload: the canonical bytes must be those of the stored row (what verification will reread),
    # not of the Python object (Decimal('900') in memory is 900.00 in the database).
    fresh = type(instance)._default_manager.using(using).get(pk=instance.pk)
    chain_append(
        tenant_id=owner.tenant_id,
        sub_tenant_id=owner.sub_tenant_id,
        livemode=owner.livemode,
        source_table=instance._meta.db_table,
        source_id=str(instance.pk),
        payload=canonical_payload(fresh),
        using=using,
    )


def _chained_ids(table: str, ids: Iterable[str], using: str) -> set[str]:
    return set(
        ChainEntry.objects.using(using)
        .filter(source_table=table, source_id__in=list(ids))
        .values_list("source_id", flat=True)
    )


def _append_missing_lines(invoice: Any, using: str) -> None:
    """Lines not chained yet, in position order. Received invoices store their lines with
    bulk_create, which sends no signal: they are caught up before the invoice's next link."""
    from invoicing.models import InvoiceLine

    lines = list(InvoiceLine.objects.using(using).filter(invoice_id=invoice.pk).order_by("position", "id"))
    done = _chained_ids(InvoiceLine._meta.db_table, [str(line.pk) for line in lines], using)
    for line in lines:
        if str(line.pk) not in done:
            _append_row(line, invoice, using)


def _is_sqlite(using: str) -> bool:
    return connections[using].vendor == "sqlite"


def _invoice_pre_save(sender: Any, instance: Any, raw: bool, using: str, **kwargs: Any) -> None:
    if not _is_sqlite(using) or instance._state.adding:
        instance._chain_previous_status = None
        return
    instance._chain_previous_status = (
        sender._default_manager.using(using).filter(pk=instance.pk).values_list("status", flat=True).first()
    )


def _invoice_post_save(
    sender: Any, instance: Any, created: bool, raw: bool, using: str, **kwargs: Any
) -> None:
    if raw or not _is_sqlite(using):
        return
    previous = getattr(instance, "_chain_previous_status", None)
    if created and instance.status in ("issued", "received"):
        _append_row(instance, instance, using)
    elif previous == "draft" and instance.status == "issued":
        _append_row(instance, instance, using)
        _append_missing_lines(instance, using)


def _child_post_save(sender: Any, instance: Any, created: bool, raw: bool, using: str, **kwargs: Any) -> None:
    if raw or not created or not _is_sqlite(using):
        return
    from invoicing.models import Invoice

    invoice = Invoice.objects.using(using).filter(pk=instance.invoice_id).first()
    if invoice is None or invoice.status == "draft":
        return
    _append_missing_lines(invoice, using)
    if sender._meta.db_table != "invoicing_invoiceline":
        _append_row(instance, invoice, using)


def _signature_event_post_save(
    sender: Any, instance: Any, created: bool, raw: bool, using: str, **kwargs: Any
) -> None:
    # Every evidence entry is chained as soon as it is written (the PostgreSQL trigger's rule): the
    # log is the proof whatever the request's status. Events are never updated (SQLite triggers).
    if raw or not created or not _is_sqlite(using):
        return
    from signatures.models import SignatureRequest

    request = (
        SignatureRequest.objects.using(using)
        .only("tenant_id", "sub_tenant_id", "livemode")
        .get(pk=instance.request_id)
    )
    _append_row(instance, request, using)


def connect_sqlite_writer() -> None:
    """Connect the Python writer; each handler acts only for a SQLite connection."""
    from django.db.models.signals import post_save, pre_save

    from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
    from signatures.models import SignatureEvent

    pre_save.connect(_invoice_pre_save, sender=Invoice, dispatch_uid="archive_chain_invoice_pre")
    post_save.connect(_invoice_post_save, sender=Invoice, dispatch_uid="archive_chain_invoice")
    post_save.connect(_child_post_save, sender=InvoiceLine, dispatch_uid="archive_chain_line")
    post_save.connect(_child_post_save, sender=InvoiceEvent, dispatch_uid="archive_chain_event")
    post_save.connect(
        _signature_event_post_save, sender=SignatureEvent, dispatch_uid="archive_chain_signature_event"
    )
