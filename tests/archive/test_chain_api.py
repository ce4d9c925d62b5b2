"""GET /api/v1/archive/chain and /archive/chain/verify, for the caller's scope only."""

from __future__ import annotations

import pytest

from archive.models import ChainCheck, ChainHead
from tests.archive.conftest import chain_key, issue_via_api, raw_insert_received, triggers_disabled

pytestmark = pytest.mark.usefixtures("pg")


def test_chain_heads_and_verify(seller, draft_body) -> None:
    client = seller.client("sk_test")
    issued = issue_via_api(client, draft_body)
    key = chain_key(seller.tenant)
    head = ChainHead.objects.get(chain_key=key)

    body = client.get("/api/v1/archive/chain").json()
    assert body["archive_status"] == "healthy"
    assert len(body["data"]) == 1
    chain = body["data"][0]
    assert chain["chain_key"] == key
    assert (chain["seq"], chain["hash"]) == (3, bytes(head.last_hash).hex())
    assert (chain["livemode"], chain["sub_tenant"]) == (False, None)
    assert (chain["status"], chain["last_check"]) == ("unchecked", None)

    verify = client.get("/api/v1/archive/chain/verify")
    assert verify.status_code == 200
    result = verify.json()
    assert result["ok"] is True and result["result"] == "ok"
    assert (result["entries_checked"], result["first_broken_seq"]) == (3, None)
    assert result["chains"] == [
        {"chain_key": key, "ok": True, "entries_checked": 3, "seq": 3, "first_broken_seq": None, "reason": ""}
    ]
    chain = client.get("/api/v1/archive/chain").json()["data"][0]
    assert chain["status"] == "intact" and chain["last_check"]["result"] == "ok"

    with triggers_disabled() as cursor:
        cursor.execute("UPDATE invoicing_invoice SET total_vat = 0 WHERE id = %s", [issued["id"]])
    result = client.get("/api/v1/archive/chain/verify").json()
    assert (result["ok"], result["result"], result["first_broken_seq"]) == (False, "broken", 1)
    assert result["chains"][0]["reason"] == "the chained row was changed after it was chained"
    body = client.get("/api/v1/archive/chain").json()
    assert body["archive_status"] == "compromised"
    assert body["data"][0]["status"] == "broken"
    assert body["data"][0]["last_check"]["first_broken_seq"] == 1


def test_scope_isolation(tenant_a, tenant_b) -> None:
    raw_insert_received(tenant_a.tenant, livemode=False)
    raw_insert_received(tenant_a.tenant, livemode=True, number="L-1")
    # Another tenant sees no chain and checks nothing of tenant A's.
    assert tenant_b.client("sk_test").get("/api/v1/archive/chain").json()["data"] == []
    verify = tenant_b.client("sk_test").get("/api/v1/archive/chain/verify").json()
    assert (verify["ok"], verify["entries_checked"], verify["chains"]) == (True, 0, [])
    assert not ChainCheck.objects.exists()
    # Sandbox and live chains never mix.
    test_keys = [
        c["chain_key"] for c in tenant_a.client("sk_test").get("/api/v1/archive/chain").json()["data"]
    ]
    assert test_keys == [chain_key(tenant_a.tenant)]
    live = tenant_a.client("sk_live").get("/api/v1/archive/chain/verify").json()
    assert [c["chain_key"] for c in live["chains"]] == [chain_key(tenant_a.tenant, livemode=True)]


def test_requires_authentication(db) -> None:
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/archive/chain")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
