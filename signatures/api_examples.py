"""Examples of the signature API in the OpenAPI schema (attached by ``scell.schema.examples_hook``): Acme
SAS sends a one-page contract to two signers, one after the other."""

from __future__ import annotations

from typing import Any

from scell.schema import Example, OperationExamples

REQUEST_ID = "def232b6-65c6-4b71-913d-626396a4b3c2"
SIGNER_1 = "15491f3b-8f5a-4bba-b28e-5ad8da40bc38"
SIGNER_2 = "7c2e9f4a-1b3d-4e5f-8a6b-9c0d1e2f3a4b"
ORIGINAL_SHA256 = "b3e44df802e407df3d586bb3d4b3a7db17bc868565f04a061077f7d8de3e44bd"
SIGNED_SHA256 = "4b1d9e7f2a3c5b6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
EVIDENCE_SHA256 = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"

# A real one-page blank PDF (431 bytes), so the example can be sent as it is.
BLANK_PDF_BASE64 = (
    "JVBERi0xLjMKJeLjz9MKMSAwIG9iago8PAovUHJvZHVjZXIgKHB5cGRmKQo+PgplbmRvYmoKMiAwIG9iago8PAovVHlwZSAv"
    "UGFnZXMKL0NvdW50IDEKL0tpZHMgWyA0IDAgUiBdCj4+CmVuZG9iagozIDAgb2JqCjw8Ci9UeXBlIC9DYXRhbG9nCi9QYWdl"
    "cyAyIDAgUgo+PgplbmRvYmoKNCAwIG9iago8PAovVHlwZSAvUGFnZQovUmVzb3VyY2VzIDw8Cj4+Ci9NZWRpYUJveCBbIDAu"
    "MCAwLjAgNTk1IDg0MiBdCi9QYXJlbnQgMiAwIFIKPj4KZW5kb2JqCnhyZWYKMCA1CjAwMDAwMDAwMDAgNjU1MzUgZiAKMDAw"
    "MDAwMDAxNSAwMDAwMCBuIAowMDAwMDAwMDU0IDAwMDAwIG4gCjAwMDAwMDAxMTMgMDAwMDAgbiAKMDAwMDAwMDE2MiAwMDAw"
    "MCBuIAp0cmFpbGVyCjw8Ci9TaXplIDUKL1Jvb3QgMyAwIFIKL0luZm8gMSAwIFIKPj4Kc3RhcnR4cmVmCjI1NgolJUVPRgo="
)

CREATE_BODY: dict[str, Any] = {
    "title": "Contrat de prestation 2027",
    "message": "Merci de signer le contrat de prestation.",
    "signers": [
        {"name": "Élodie Martin", "email": "elodie.martin@client.example", "phone": "+33612345678"},
        {"name": "Karim Benali", "email": "karim.benali@acme.example", "phone": "+33798765432"},
    ],
    "order": "sequential",
    "expires_at": "2026-12-24T23:00:00Z",
    "external_ref": "CTR-2027-014",
    "locale": "fr",
    "document_base64": BLANK_PDF_BASE64,
    "document_filename": "contrat-2027.pdf",
}
CREATED_AT = "2026-11-24T10:02:32.666687Z"


def _signer(id: str, position: int, index: int, **fields: Any) -> dict[str, Any]:
    given = CREATE_BODY["signers"][index]
    return {
        "id": id,
        "position": position,
        "name": given["name"],
        "email": given["email"],
        "phone": given["phone"],
        "status": "waiting",
        "placement": None,
        "notified_at": None,
        "reminder_count": 0,
        "signed_at": None,
        "declined_at": None,
        "decline_reason": "",
    } | fields


SIGNERS = [
    _signer(SIGNER_1, 1, 0, status="pending", notified_at=CREATED_AT),
    _signer(SIGNER_2, 2, 1),
]
PENDING: dict[str, Any] = {
    "id": REQUEST_ID,
    "status": "pending",
    "livemode": False,
    "sub_tenant": None,
    "title": CREATE_BODY["title"],
    "message": CREATE_BODY["message"],
    "order": "sequential",
    "external_ref": "CTR-2027-014",
    "locale": "fr",
    "notify_email": "facturation@acme.example",
    "document": {"filename": "contrat-2027.pdf", "sha256": ORIGINAL_SHA256, "size": 431, "page_count": 1},
    "signed_document_sha256": "",
    "evidence_sha256": "",
    "expires_at": "2026-12-24T23:00:00Z",
    "reminder_interval_days": 3,
    "max_reminders": 3,
    "charged_amount": "0.00",  # sandbox; a live key is charged 2 × 1.20 = 2.40
    "created_at": CREATED_AT,
    "completed_at": None,
    "ended_at": None,
    "end_reason": "",
    "signers": SIGNERS,
}
CREATED = PENDING | {
    "signers": [
        SIGNERS[0]
        | {"signing_url": "https://app.scell.example/sign/DevjhnwjTZHaGltPca2ujDW_P7cgSmaXxzsg26BBEXY/"},
        SIGNERS[1]
        | {"signing_url": "https://app.scell.example/sign/q8LZ1m0Vx3cK7bN2wR5tY9uJ4hG6fD1sA0pO3iE8kWc/"},
    ]
}
COMPLETED = PENDING | {
    "status": "completed",
    "signed_document_sha256": SIGNED_SHA256,
    "evidence_sha256": EVIDENCE_SHA256,
    "completed_at": "2026-11-25T16:47:03.201554Z",
    "ended_at": "2026-11-25T16:47:03.201554Z",
    "signers": [
        SIGNERS[0] | {"status": "signed", "signed_at": "2026-11-24T11:20:45.004417Z"},
        SIGNERS[1]
        | {
            "status": "signed",
            "notified_at": "2026-11-24T11:20:45.310982Z",
            "signed_at": "2026-11-25T16:47:02.877120Z",
        },
    ],
}
CANCEL_REASON = "Mauvaise version du contrat."
CANCELLED = PENDING | {
    "status": "cancelled",
    "ended_at": "2026-11-24T10:30:12.717383Z",
    "end_reason": CANCEL_REASON,
    "signers": [signer | {"status": "ended"} for signer in SIGNERS],
}
REMINDED = PENDING | {
    "signers": [SIGNERS[0] | {"reminder_count": 1, "notified_at": "2026-11-27T10:02:40.114530Z"}, SIGNERS[1]]
}

EXAMPLES: dict[str, OperationExamples] = {
    "signature_requests_create": OperationExamples(
        request=Example(
            "sequential",
            "Two signers in turn, the PDF as base64",
            CREATE_BODY,
            "Multipart bodies send the PDF as `document` and these fields as the JSON string `payload`.",
        ),
        responses={
            "201": Example(
                "sent",
                "Sent to the first signer; each signing_url is shown in this answer only",
                CREATED,
            )
        },
    ),
    "signature_requests_list": OperationExamples(
        responses={"200": Example("page", "Newest first", {"data": [COMPLETED], "next_cursor": None})}
    ),
    "signature_requests_retrieve": OperationExamples(
        responses={"200": Example("completed", "Every signer signed; the sealed PDF is ready", COMPLETED)}
    ),
    "signature_requests_cancel_create": OperationExamples(
        request=Example("wrong_version", "Cancel with a reason", {"reason": CANCEL_REASON}),
        responses={"200": Example("cancelled", "Cancelled: the links stop working", CANCELLED)},
    ),
    "signature_requests_remind_create": OperationExamples(
        responses={"200": Example("reminded", "The first signer got a new link", REMINDED)}
    ),
    "signature_requests_events_list": OperationExamples(
        responses={
            "200": Example(
                "evidence_log",
                "The evidence log, oldest first",
                {
                    "data": [
                        {
                            "id": 1,
                            "at": CREATED_AT,
                            "action": "request.created",
                            "actor": "sender (sk_test_VLDnpe)",
                            "signer": None,
                            "ip": None,
                            "data": {
                                "title": CREATE_BODY["title"],
                                "order": "sequential",
                                "charged": "0.00",
                                "page_count": 1,
                                "document_sha256": ORIGINAL_SHA256,
                            },
                        },
                        {
                            "id": 2,
                            "at": "2026-11-24T10:02:32.673936Z",
                            "action": "signer.notified",
                            "actor": "system",
                            "signer": SIGNER_1,
                            "ip": None,
                            "data": {"email": "elodie.martin@client.example", "position": 1},
                        },
                    ],
                    "next_cursor": None,
                },
            )
        }
    ),
    "signature_requests_document_retrieve": OperationExamples(
        media={
            "200": "The signed and sealed PDF (`application/pdf`), once every signer signed; its SHA-256 "
            "is in the `X-Content-SHA256` header and in `signed_document_sha256`."
        }
    ),
    "signature_requests_evidence_retrieve": OperationExamples(
        media={
            "200": "The evidence file, a sealed PDF (`application/pdf`). Before the request ends it is an "
            "interim file, marked by the header `X-Scell-Evidence: interim`."
        }
    ),
}
