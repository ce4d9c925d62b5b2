"""Examples of the archive API in the OpenAPI schema (attached by ``scell.schema.examples_hook``): Acme
SAS's sandbox chain, its daily closure of 24 November 2026 anchored in Bitcoin, and the proof of
invoice ACME1-202611-00001."""

from __future__ import annotations

from typing import Any

from scell.schema import Example, OperationExamples

TENANT_ID = "5af90799-4aca-4ec1-8390-058c9dd8a42c"  # scell/api_examples.py
INVOICE_ID = "3f2b8c1e-7d4a-4e52-9b1f-6a0c2d8e4f71"  # invoicing/api_examples.py
CHAIN_KEY = f"{TENANT_ID}/-/test"
HEAD_HASH = "f85d2d65d786a4a31b7fc501c6e770649855985b896d79fcb2bf53560dde1ed5"
ENTRY_HASH = "21eec5f442bf899d7df22078b24efde172493528ff410eb4baa9993392a2d20f"
PREV_HASH = "8d3c6a1f0e9b2d4c7a5e8f1b3d6c9a2e5f8b1d4c7a0e3f6b9d2c5a8e1f4b7d0c"
ROOT = "c4a8e2f6b0d4a8c2e6f0b4d8a2c6e0f4b8d2a6c0e4f8b2d6a0c4e8f2b6d0a4c8"
CLOSURE_ID = 118

CHAIN_HEAD: dict[str, Any] = {
    "chain_key": CHAIN_KEY,
    "sub_tenant": None,
    "livemode": False,
    "seq": 42,
    "hash": HEAD_HASH,
    "updated_at": "2026-11-24T09:15:41.906489Z",
    "status": "intact",
    "last_check": {"result": "ok", "finished_at": "2026-11-24T03:00:12.337105Z", "first_broken_seq": None},
}
CLOSURE: dict[str, Any] = {
    "id": CLOSURE_ID,
    "chain": CHAIN_KEY,
    "livemode": False,
    "day": "2026-11-24",
    "root": ROOT,
    "first_seq": 40,
    "last_seq": 42,
    "leaf_count": 3,
    "status": "complete",
    "bitcoin_block": 925114,
    "tsa_token": None,
    "created_at": "2026-11-25T00:05:02.118530Z",
    "upgraded_at": "2026-11-25T04:12:47.902214Z",
    "links": {"ots": f"/api/v1/archive/closures/{CLOSURE_ID}/ots"},
}

EXAMPLES: dict[str, OperationExamples] = {
    "archive_chain_retrieve": OperationExamples(
        responses={
            "200": Example(
                "healthy",
                "One chain, intact at its last check",
                {"archive_status": "healthy", "data": [CHAIN_HEAD]},
            )
        }
    ),
    "archive_chain_verify_retrieve": OperationExamples(
        responses={
            "200": Example(
                "ok",
                "Every link recomputed: nothing broken",
                {
                    "ok": True,
                    "result": "ok",
                    "entries_checked": 42,
                    "first_broken_seq": None,
                    "chains": [
                        {
                            "chain_key": CHAIN_KEY,
                            "ok": True,
                            "entries_checked": 42,
                            "seq": 42,
                            "first_broken_seq": None,
                            "reason": "",
                        }
                    ],
                },
            )
        }
    ),
    "archive_closures_list": OperationExamples(
        responses={"200": Example("page", "Newest day first", {"data": [CLOSURE], "next_cursor": None})}
    ),
    "archive_closures_retrieve": OperationExamples(
        responses={"200": Example("anchored", "A closure anchored in a Bitcoin block", CLOSURE)}
    ),
    "archive_closures_ots_retrieve": OperationExamples(
        media={
            "200": "The OpenTimestamps proof (`.ots`, `application/octet-stream`) on the closure's Merkle "
            "root; `ots verify` checks it."
        }
    ),
    "archive_proofs_retrieve": OperationExamples(
        responses={
            "200": Example(
                "anchored",
                "The invoice's chain entry, its Merkle path and its day's closure",
                {
                    "entry": {
                        "chain": CHAIN_KEY,
                        "seq": 41,
                        "hash": ENTRY_HASH,
                        "prev_hash": PREV_HASH,
                        "payload_sha256": "527fef92666d02665ad7f6aa9a4db975a4face3a0af9dc94a1ba2bf2fe9d926b",
                        "source_table": "invoicing_invoice",
                        "source_id": INVOICE_ID,
                        "created_at": "2026-11-24T09:15:41.906489+00:00",
                    },
                    "merkle_path": [
                        {
                            "side": "left",
                            "sibling": "9b0e4d2a7c1f5e8b3a6d9c2f5b8e1a4d7c0f3b6e9a2d5c8f1b4e7a0d3c6f9b2e",
                        },
                        {"side": "right", "sibling": HEAD_HASH},
                    ],
                    "closure": {
                        key: CLOSURE[key]
                        for key in (
                            "id",
                            "day",
                            "root",
                            "first_seq",
                            "last_seq",
                            "leaf_count",
                            "status",
                            "bitcoin_block",
                        )
                    },
                    "ots": "AE9wZW5UaW1lc3RhbXBzAABQcm9vZgC/ieLohOiSlAEI…",
                },
                "`ots` (base64) is shortened here.",
            )
        },
        media={
            "200": "JSON (`application/json`), or with `?format=zip` a zip (`application/zip`) holding "
            "`entry.bin`, `entry.bin.ots`, `proof.json` and a README, for `ots verify` offline."
        },
    ),
    "archive_export": OperationExamples(
        media={
            "200": "A zip (`application/zip`) streamed: with `format=pdf` every issued invoice and credit "
            "note as its Factur-X PDF/A-3, with `format=json` as the API returns them with their chain "
            "entries; `manifest.json` lists every file's SHA-256."
        }
    ),
}
