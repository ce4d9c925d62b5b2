"""Fixtures of the archive tests: issuing through the API, raw SQL inserts that bypass Django, tampering
with the triggers disabled, and an independent Python recomputation of a chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, transaction

from archive.models import GENESIS_HASH, ChainEntry, ChainHead
from tests.invoicing.conftest import DRAFT, SELLER_PROFILE, draft_body, seller  # noqa: F401


def chain_key(tenant: Any, *, livemode: bool = False, sub_tenant: Any = None) -> str:
    return f"{tenant.pk}/{sub_tenant.pk if sub_tenant else '-'}/{'live' if livemode else 'test'}"


def issue_via_api(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    draft = client.post("/api/v1/invoices", body, format="json")
    assert draft.status_code == 201, draft.content
    issued = client.post(f"/api/v1/invoices/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.content
    return issued.json()


def entries(key: str) -> list[ChainEntry]:
    return list(ChainEntry.objects.filter(chain_key=key).order_by("seq"))


def recompute(key: str) -> bytes:
    """Walk a chain with nothing but hashlib: seq 1..n, each prev_hash the previous hash, each hash
    sha256(prev_hash || payload); returns the last hash, which must be the head's."""
    running = GENESIS_HASH
    for expected_seq, entry in enumerate(entries(key), start=1):
        assert entry.seq == expected_seq
        assert bytes(entry.prev_hash) == running
        running = hashlib.sha256(running + bytes(entry.payload)).digest()
        assert bytes(entry.hash) == running
    head = ChainHead.objects.get(chain_key=key)
    assert bytes(head.last_hash) == running
    return running


def payload(entry: ChainEntry) -> dict[str, Any]:
    return json.loads(bytes(entry.payload))


def raw_insert_received(
    tenant: Any, *, livemode: bool = False, number: str = "SUP-0001", total: str = "120.00", lines: int = 1
) -> str:
    """A received invoice written with plain SQL, bypassing Django (models, signals, services): the
    database must chain it all the same. Returns its id."""
    invoice_id = str(uuid.uuid4())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO invoicing_invoice (
                id, tenant_id, livemode, sub_tenant_id, status, type, number, format, profile,
                issue_date, currency, tax_currency, operation_category, vat_on_debits, buyer_reference,
                purchase_order_ref, delivery_note_ref, contract_ref, project_ref, seller, buyer,
                buyer_name, buyer_siren, payment, notes, allowances, charges, vat_exemptions,
                preceding_number, prepaid_amount, total_without_vat, total_vat, total_with_vat,
                amount_due, totals, vat_breakdown, cii_xml, document_sha256, source_syntax, source_file,
                created_at, updated_at
            ) VALUES (
                %s, %s, %s, NULL, 'received', 'invoice', %s, 'cii', 'en16931',
                DATE '2026-11-20', 'EUR', '', '', false, '',
                '', '', '', '', '{"name": "Supplier SA"}', '{"name": "Us"}',
                'Us', '', '{}', '[]', '[]', '[]', '{}',
                '', 0, 100.00, 20.00, %s,
                %s, '{}', '[]', NULL, '', 'cii', %s,
                now(), now()
            )
            """,
            [invoice_id, str(tenant.pk), livemode, number, total, total, b"<Invoice/>"],
        )
        for position in range(1, lines + 1):
            cursor.execute(
                """
                INSERT INTO invoicing_invoiceline (
                    invoice_id, position, description, detail, quantity, unit_code, unit_price,
                    vat_category, allowances, charges, seller_item_id, net_amount
                ) VALUES (%s, %s, %s, '', 1, 'C62', 100, 'S', '[]', '[]', '', 100.00)
                """,
                [invoice_id, position, f"Line {position}"],
            )
    return invoice_id


def raw_insert_event(invoice_id: str, tenant: Any, *, livemode: bool = False, type: str = "paid") -> str:
    event_id = str(uuid.uuid4())
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO invoicing_invoiceevent (id, invoice_id, tenant_id, livemode, type, status_code,
                                                   data, created_at)
               VALUES (%s, %s, %s, %s, %s, '', '{}', now())""",
            [event_id, invoice_id, str(tenant.pk), livemode, type],
        )
    return event_id


@contextmanager
def triggers_disabled():
    """What a superuser (or the tables' owner) could do behind the application's back: edit rows with
    every trigger off. Only the health check can catch it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        yield cursor
        cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def pg(require_postgres) -> None:
    """Every chain test is a PostgreSQL test: the triggers are the guarantee."""
