"""Examples of the webhook API in the OpenAPI schema (attached by ``scell.schema.examples_hook``): Acme
SAS's ERP receives the invoice events; one delivery failed once, then succeeded."""

from __future__ import annotations

from typing import Any

from scell.schema import Example, OperationExamples

ENDPOINT_ID = "00e9a4ac-22e9-4a75-bfb9-d84aa73cd9e0"
DELIVERY_ID = "9a663fc0-346e-4447-b59c-9372e4aafbc8"
REPLAY_ID = "2b7c4e1f-9d3a-4f8b-a6c5-e0d1f2a3b4c5"
EVENT_ID = "evt_505b508b9666491ebefb61c1e969f9f7"
INVOICE_ID = "3f2b8c1e-7d4a-4e52-9b1f-6a0c2d8e4f71"  # invoicing/api_examples.py

CREATE_BODY: dict[str, Any] = {
    "url": "https://erp.acme.example/scell/webhooks",
    "description": "ERP: invoices",
    "event_types": ["invoice.issued", "invoice.status_changed", "invoice.paid"],
    "enabled": True,
}
ENDPOINT: dict[str, Any] = {
    "id": ENDPOINT_ID,
    "url": CREATE_BODY["url"],
    "description": CREATE_BODY["description"],
    "event_types": CREATE_BODY["event_types"],
    "enabled": True,
    "livemode": False,
    "failing_since": None,
    "disabled_at": None,
    "disabled_reason": "",
    "secret_rotation_ends_at": None,
    "created_at": "2026-11-24T08:50:32.800792Z",
    "updated_at": "2026-11-24T08:50:32.800792Z",
}
UPDATE_BODY = {"event_types": [*CREATE_BODY["event_types"], "invoice.transmission_failed"]}

EVENT: dict[str, Any] = {
    "id": EVENT_ID,
    "type": "invoice.issued",
    "created": "2026-11-24T09:15:41.913772Z",
    "livemode": False,
    "data": {
        "id": INVOICE_ID,
        "number": "ACME1-202611-00001",
        "type": "invoice",
        "status": "issued",
        "issue_date": "2026-11-24",
        "currency": "EUR",
        "total_with_vat": "1080.00",
        "amount_due": "1080.00",
        "buyer": {"name": "Client SARL", "siren": "552100554"},
    },
}
DELIVERY: dict[str, Any] = {
    "id": DELIVERY_ID,
    "endpoint": ENDPOINT_ID,
    "event": EVENT_ID,
    "event_type": "invoice.issued",
    "status": "succeeded",
    "livemode": False,
    "attempt_count": 2,
    "next_attempt_at": None,
    "last_status_code": 200,
    "replay_of": None,
    "created_at": "2026-11-24T09:15:41.921884Z",
    "completed_at": "2026-11-24T09:16:42.402117Z",
    "attempts": [
        {
            "attempted_at": "2026-11-24T09:15:42.030511Z",
            "status_code": 503,
            "duration_ms": 212,
            "succeeded": False,
            "error": "",
            "response_body": "Service Unavailable",
        },
        {
            "attempted_at": "2026-11-24T09:16:42.380263Z",
            "status_code": 200,
            "duration_ms": 48,
            "succeeded": True,
            "error": "",
            "response_body": '{"ok": true}',
        },
    ],
}
PENDING = {
    "status": "pending",
    "attempt_count": 0,
    "next_attempt_at": "2026-11-24T17:05:10.815120Z",
    "last_status_code": None,
    "completed_at": None,
    "attempts": [],
    "created_at": "2026-11-24T17:05:10.815884Z",
}
REPLAY = DELIVERY | PENDING | {"id": REPLAY_ID, "replay_of": DELIVERY_ID}
TEST_DELIVERY = (
    DELIVERY
    | PENDING
    | {"id": REPLAY_ID, "event": "evt_7e1d4c9a2b3f4e5d8c6b0a1f2e3d4c5b", "event_type": "test.webhook"}
)

EXAMPLES: dict[str, OperationExamples] = {
    "webhook_endpoints_list": OperationExamples(
        responses={
            "200": Example("page", "The endpoints of this mode", {"data": [ENDPOINT], "next_cursor": None})
        }
    ),
    "webhook_endpoints_create": OperationExamples(
        request=Example("erp", "Invoice events to the ERP", CREATE_BODY),
        responses={
            "201": Example(
                "created",
                "The signing secret is in this answer only",
                ENDPOINT | {"secret": "whsec_a7yM0K2XSB6wUhmtPdWxUcCzK6A2wXjjgc6QklSIQIM"},
            )
        },
    ),
    "webhook_endpoints_retrieve": OperationExamples(
        responses={"200": Example("erp", "An endpoint (never its secret)", ENDPOINT)}
    ),
    "webhook_endpoints_partial_update": OperationExamples(
        request=Example("more_types", "Also receive failed transmissions", UPDATE_BODY),
        responses={
            "200": Example(
                "updated",
                "The endpoint with its new event types",
                ENDPOINT | UPDATE_BODY | {"updated_at": "2026-11-24T17:01:44.209318Z"},
            )
        },
    ),
    "webhook_endpoints_rotate_secret_create": OperationExamples(
        responses={
            "200": Example(
                "rotated",
                "A new secret; the old one also signs for 24 h",
                {
                    "id": ENDPOINT_ID,
                    "secret": "whsec_OvM6T35lQJqbbhTaxMdL5NQU9zuk0FXHRXOpraaCEBQ",
                    "previous_secret_expires_at": "2026-11-25T17:03:32.809854Z",
                },
            )
        }
    ),
    "webhook_endpoints_test_create": OperationExamples(
        responses={"202": Example("queued", "A test.webhook event, queued for delivery", TEST_DELIVERY)}
    ),
    "webhook_deliveries_list": OperationExamples(
        responses={
            "200": Example(
                "page",
                "Deliveries with their attempts, newest first",
                {"data": [DELIVERY], "next_cursor": None},
            )
        }
    ),
    "webhook_deliveries_retrieve": OperationExamples(
        responses={"200": Example("retried", "Failed once (503), then delivered", DELIVERY)}
    ),
    "webhook_deliveries_replay_create": OperationExamples(
        responses={"202": Example("replayed", "A new delivery of the same event, queued", REPLAY)}
    ),
    "events_list": OperationExamples(
        responses={
            "200": Example(
                "page",
                "Newest first",
                {"data": [EVENT], "next_cursor": "cD0yMDI2LTExLTI0KzA5JTNBMTUlM0E0MS45MTM"},
            )
        }
    ),
    "events_retrieve": OperationExamples(
        responses={"200": Example("invoice_issued", "The body a webhook of this event carries", EVENT)}
    ),
}
