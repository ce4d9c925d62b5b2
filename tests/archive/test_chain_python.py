"""The Python side of the chain (SQLite's writer and every database's verifier), without a database:
canonical bytes, link hashing, and the walk that finds the first broken link."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

from archive.chain import (
    SOURCE_DIFFERS,
    SOURCE_MISSING,
    SOURCE_SAME,
    canonical_payload,
    chain_key_for,
    check_links,
    link_hash,
    payload_same,
)
from archive.models import GENESIS_HASH
from invoicing.models import Invoice, InvoiceLine

TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


def build(payloads: list[bytes]) -> list[list]:
    links, prev = [], GENESIS_HASH
    for seq, body in enumerate(payloads, start=1):
        digest = hashlib.sha256(prev + body).digest()
        links.append([seq, prev, digest, body, SOURCE_SAME])
        prev = digest
    return links


def check(links: list[list], head_seq: int | None = None, head_hash: bytes | None = None):
    return check_links(
        [tuple(link) for link in links],
        chain_key="k",
        head_seq=len(links) if head_seq is None else head_seq,
        head_hash=links[-1][2] if head_hash is None else head_hash,
    )


def test_chain_key_matches_the_sql_function() -> None:
    assert chain_key_for(tenant_id=TENANT, sub_tenant_id=None, livemode=True) == f"{TENANT}/-/live"
    sub = uuid.uuid4()
    assert chain_key_for(tenant_id=TENANT, sub_tenant_id=sub, livemode=False) == f"{TENANT}/{sub}/test"


def test_link_hash_is_sha256_of_prev_and_payload() -> None:
    assert link_hash(GENESIS_HASH, b"abc") == hashlib.sha256(bytes(32) + b"abc").digest()
    assert link_hash(memoryview(GENESIS_HASH), memoryview(b"abc")) == link_hash(GENESIS_HASH, b"abc")


def test_canonical_payload_is_deterministic_and_hashes_binaries() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    issued_at = dt.datetime(2026, 11, 24, 13, 0, tzinfo=paris)
    kwargs = {
        "id": uuid.UUID("11111111-1111-1111-1111-111111111111"),
        "tenant_id": TENANT,
        "livemode": False,
        "status": "issued",
        "number": "ACME1-202611-00001",
        "issue_date": dt.date(2026, 11, 24),
        "total_with_vat": Decimal("1080.00"),
        "buyer": {"name": "Client", "address": {"city": "Paris", "country": "FR"}},
        "cii_xml": b"<rsm:CrossIndustryInvoice/>",
        "issued_at": issued_at,
        "created_at": issued_at,
        "updated_at": issued_at,
    }
    first = canonical_payload(Invoice(**kwargs))
    # Same row, dict keys in another order: the same bytes.
    kwargs["buyer"] = {"address": {"country": "FR", "city": "Paris"}, "name": "Client"}
    assert canonical_payload(Invoice(**kwargs)) == first
    doc = json.loads(first)
    assert list(doc) == sorted(doc)  # keys sorted: no dependence on field order
    assert doc["id"] == "11111111-1111-1111-1111-111111111111"
    assert doc["tenant_id"] == str(TENANT)  # column names, as the SQL side
    assert doc["total_with_vat"] == "1080.00"
    assert doc["issue_date"] == "2026-11-24"
    assert doc["issued_at"] == "2026-11-24T12:00:00+00:00"  # UTC
    assert doc["cii_xml"] == hashlib.sha256(b"<rsm:CrossIndustryInvoice/>").hexdigest()
    assert doc["source_file"] is None
    assert b" " not in first.replace(b"Client", b"").replace(b"ACME1", b"")  # compact separators
    # Any change of a fiscal value changes the bytes.
    kwargs["total_with_vat"] = Decimal("1080.01")
    assert canonical_payload(Invoice(**kwargs)) != first


def test_canonical_payload_of_a_line() -> None:
    line = InvoiceLine(
        id=7,
        invoice_id=uuid.UUID(int=1),
        position=1,
        description="Consulting — jour",
        quantity=Decimal("2.000000"),
        unit_price=Decimal("450.000000"),
        vat_category="S",
        vat_rate=Decimal("20.00"),
    )
    doc = json.loads(canonical_payload(line))
    assert doc["invoice_id"] == str(uuid.UUID(int=1))
    assert doc["quantity"] == "2.000000" and doc["vat_rate"] == "20.00"
    assert doc["description"] == "Consulting — jour"  # UTF-8, not escaped


def test_intact_chain() -> None:
    links = build([b"a", b"b", b"c"])
    progress: list[tuple[int, int]] = []
    result = check_links(
        [tuple(x) for x in links],
        chain_key="k",
        head_seq=3,
        head_hash=links[-1][2],
        progress=lambda done, total: progress.append((done, total)),
        progress_every=2,
    )
    assert (result.ok, result.entries_checked, result.first_broken_seq) == (True, 3, None)
    assert progress == [(2, 3), (3, 3)]
    empty = check_links([], chain_key="k", head_seq=0, head_hash=GENESIS_HASH)
    assert empty.ok and empty.entries_checked == 0


def test_first_broken_link_is_reported() -> None:
    # A payload edited in place: its own hash no longer matches.
    links = build([b"a", b"b", b"c", b"d"])
    links[2][3] = b"C"
    result = check(links)
    assert (result.ok, result.first_broken_seq, result.entries_checked) == (False, 3, 2)
    assert "sha256" in result.reason

    # A link rewritten with a consistent hash: the next link's prev_hash gives it away.
    links = build([b"a", b"b", b"c"])
    links[1][3] = b"B"
    links[1][2] = hashlib.sha256(links[1][1] + b"B").digest()
    assert check(links).first_broken_seq == 3
    assert "prev_hash" in check(links).reason

    # A missing link.
    links = build([b"a", b"b", b"c"])
    del links[1]
    result = check(links, head_seq=3)
    assert (result.first_broken_seq, result.entries_checked) == (2, 1)
    assert "missing" in result.reason

    # The source row changed or vanished.
    links = build([b"a", b"b", b"c"])
    links[1][4] = SOURCE_DIFFERS
    assert (check(links).first_broken_seq, check(links).reason) == (
        2,
        "the chained row was changed after it was chained",
    )
    links[1][4] = SOURCE_SAME
    links[2][4] = SOURCE_MISSING
    assert (check(links).first_broken_seq, check(links).reason) == (3, "the chained row no longer exists")


def test_head_must_match_the_last_link() -> None:
    links = build([b"a", b"b", b"c"])
    # Tail removed: the head still counts 3.
    result = check(links[:2], head_seq=3, head_hash=links[2][2])
    assert (result.ok, result.first_broken_seq) == (False, 3)
    # Head hash rewritten.
    result = check(links, head_hash=bytes(32))
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "head hash" in result.reason


def test_payload_same_tolerates_added_columns_only() -> None:
    stored = b'{"a":1,"b":"x"}'
    assert payload_same(stored, stored)
    assert payload_same(stored, b'{"a":1,"b":"x","new_column":null}')
    assert not payload_same(stored, b'{"a":2,"b":"x"}')
    assert not payload_same(stored, b'{"a":1}')  # a chained column dropped
    assert not payload_same(stored, b"not json")
