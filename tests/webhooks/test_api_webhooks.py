"""Webhook endpoints, deliveries and events through the API: the secret shown once, validation in the
error object, replay, sandbox/live separation, and tenant B seeing nothing of tenant A (404)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks.events import EVENT_TYPES
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints"
DELIVERIES = "/api/v1/webhook-deliveries"
EVENTS = "/api/v1/events"
# A literal public address: vetted in live mode without any DNS lookup (no network in tests).
PUBLIC_URL = "https://93.184.215.14/scell-hook"
LOCAL_URL = "http://127.0.0.1:8765/hook"


def create_endpoint(client, **body) -> dict:
    body = {"url": LOCAL_URL, "description": "ERP", **body}
    response = client.post(ENDPOINTS, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def make_delivery(
    endpoint_id: str, *, event_type: str = "invoice.issued", attempts: int = 2
) -> WebhookDelivery:
    """An event of the endpoint's tenant and mode, delivered with ``attempts`` attempts (the last one
    succeeding), written directly: the engine is tested on its own."""
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    event = Event.objects.create(
        tenant=endpoint.tenant,
        livemode=endpoint.livemode,
        type=event_type,
        data={"id": "inv_1", "number": "ACME1-202611-00001"},
        dispatched_at=timezone.now(),
    )
    delivery = WebhookDelivery.objects.create(
        tenant=endpoint.tenant,
        livemode=endpoint.livemode,
        endpoint=endpoint,
        event=event,
        status=WebhookDelivery.Status.SUCCEEDED if attempts else WebhookDelivery.Status.PENDING,
        attempt_count=attempts,
        last_status_code=200 if attempts else None,
    )
    start = timezone.now() - timedelta(minutes=5)
    for n in range(attempts):
        last = n == attempts - 1
        WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=start + timedelta(seconds=n * 5),
            status_code=200 if last else 503,
            duration_ms=40 + n,
            response_body="ok" if last else "busy",
            succeeded=last,
        )
    return delivery


# --- Endpoints ----------------------------------------------------------------------------------------
def test_create_shows_the_secret_once(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = create_endpoint(client, event_types=["invoice.issued", "invoice.paid"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["url"] == LOCAL_URL
    assert created["event_types"] == ["invoice.issued", "invoice.paid"]
    assert created["enabled"] is True and created["livemode"] is False
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.secret == created["secret"] and endpoint.tenant == tenant_a.tenant

    detail = client.get(f"{ENDPOINTS}/{created['id']}")
    assert detail.status_code == 200
    assert "secret" not in detail.json() and created["secret"] not in detail.content.decode()
    listed = client.get(ENDPOINTS).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]] and listed["next_cursor"] is None
    assert created["secret"] not in client.get(ENDPOINTS).content.decode()


def test_two_endpoints_get_two_secrets(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    first, second = create_endpoint(client), create_endpoint(client, url="http://localhost:9/other")
    assert first["secret"] != second["secret"]
    assert len(client.get(ENDPOINTS).json()["data"]) == 2


def test_empty_event_types_means_every_type(tenant_a) -> None:
    created = create_endpoint(tenant_a.client("sk_test"))
    assert created["event_types"] == []
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert all(endpoint.accepts(t) for t in EVENT_TYPES)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({}, "url"),
        ({"url": LOCAL_URL, "event_types": ["invoice.issued", "invoice.exploded"]}, "event_types.1"),
        ({"url": LOCAL_URL, "event_types": "invoice.issued"}, "event_types"),
        ({"url": LOCAL_URL, "description": "x" * 301}, "description"),
    ],
)
def test_invalid_endpoint_is_422_with_the_field(tenant_a, body, field) -> None:
    response = tenant_a.client("sk_test").post(ENDPOINTS, body, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in [d["field"] for d in error["details"]]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/h",
        "http://[::1]/h",
    ],
)
def test_live_mode_refuses_private_targets(tenant_a, url) -> None:
    response = tenant_a.client("sk_live").post(ENDPOINTS, {"url": url}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_webhook_url"
    assert [d["field"] for d in error["details"]] == ["url"]
    assert not WebhookEndpoint.objects.exists()


def test_live_mode_accepts_public_and_allow_listed_targets(tenant_a, settings) -> None:
    client = tenant_a.client("sk_live")
    created = create_endpoint(client, url=PUBLIC_URL)
    assert created["livemode"] is True
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = ["127.0.0.0/8"]
    assert create_endpoint(client, url="http://127.0.0.1:8000/hook")["livemode"] is True


def test_sandbox_accepts_localhost(tenant_a) -> None:
    assert (
        create_endpoint(tenant_a.client("sk_test"), url="http://localhost:3000/webhooks")["livemode"] is False
    )


def test_patch_changes_fields_and_validates(tenant_a) -> None:
    client = tenant_a.client("sk_live")
    created = create_endpoint(client, url=PUBLIC_URL)
    path = f"{ENDPOINTS}/{created['id']}"
    response = client.patch(
        path, {"description": "Billing", "event_types": ["credits.low_balance"]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Billing" and body["event_types"] == ["credits.low_balance"]
    assert body["url"] == PUBLIC_URL and "secret" not in body

    refused = client.patch(path, {"url": "http://192.168.1.10/hook"}, format="json")
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "url"
    unknown = client.patch(path, {"event_types": ["nope"]}, format="json")
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "event_types.0"
    assert WebhookEndpoint.objects.get(pk=created["id"]).url == PUBLIC_URL
    assert client.put(path, {"url": PUBLIC_URL}, format="json").status_code == 405


def test_disable_then_reenable_clears_the_failure_state(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = create_endpoint(client)
    path = f"{ENDPOINTS}/{created['id']}"
    disabled = client.patch(path, {"enabled": False}, format="json").json()
    assert disabled["enabled"] is False and disabled["disabled_at"] is not None
    # As the engine leaves an endpoint it disabled after 3 days of failures:
    WebhookEndpoint.objects.filter(pk=created["id"]).update(
        failing_since=timezone.now() - timedelta(days=3), disabled_reason="failing for 72 hours"
    )
    enabled = client.patch(path, {"enabled": True}, format="json").json()
    assert enabled["enabled"] is True
    assert (
        enabled["disabled_at"] is None
        and enabled["failing_since"] is None
        and enabled["disabled_reason"] == ""
    )


def test_delete_is_204_then_404(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = create_endpoint(client)
    make_delivery(created["id"])
    response = client.delete(f"{ENDPOINTS}/{created['id']}")
    assert response.status_code == 204
    assert client.get(f"{ENDPOINTS}/{created['id']}").status_code == 404
    assert client.delete(f"{ENDPOINTS}/{created['id']}").status_code == 404
    assert not WebhookDelivery.objects.exists()
    assert Event.objects.count() == 1  # what happened stays; only the log of this endpoint goes


def test_rotate_secret_shows_the_new_one_once_and_keeps_the_old_for_24h(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = create_endpoint(client)
    response = client.post(f"{ENDPOINTS}/{created['id']}/rotate-secret")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.secret == body["secret"] and endpoint.previous_secret == created["secret"]
    remaining = endpoint.previous_secret_expires_at - timezone.now()
    assert timedelta(hours=23, minutes=59) < remaining <= timedelta(hours=24)
    detail = client.get(f"{ENDPOINTS}/{created['id']}")
    text = detail.content.decode()
    assert body["secret"] not in text and created["secret"] not in text
    assert detail.json()["secret_rotation_ends_at"] is not None


def test_send_test_event_is_202_with_a_delivery(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = create_endpoint(client, event_types=["invoice.paid"])
    response = client.post(f"{ENDPOINTS}/{created['id']}/test")
    assert response.status_code == 202
    body = response.json()
    delivery = WebhookDelivery.objects.get(pk=body["id"])
    assert str(delivery.endpoint_id) == created["id"] and delivery.livemode is False
    assert body["event"] == delivery.event.public_id and body["event_type"] == delivery.event.type
    assert body["status"] == "pending"
    assert client.get(f"{DELIVERIES}/{body['id']}").status_code == 200


# --- Deliveries ---------------------------------------------------------------------------------------
def test_deliveries_list_with_attempts_and_filters(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    first, second = create_endpoint(client), create_endpoint(client, url="http://localhost:9/b")
    done = make_delivery(first["id"], attempts=3)
    waiting = make_delivery(second["id"], event_type="invoice.paid", attempts=0)

    data = client.get(DELIVERIES).json()["data"]
    assert {d["id"] for d in data} == {str(done.id), str(waiting.id)}
    shown = next(d for d in data if d["id"] == str(done.id))
    assert shown["endpoint"] == first["id"] and shown["event"] == done.event.public_id
    assert shown["event_type"] == "invoice.issued" and shown["status"] == "succeeded"
    assert [a["status_code"] for a in shown["attempts"]] == [503, 503, 200]
    assert [a["succeeded"] for a in shown["attempts"]] == [False, False, True]
    assert shown["attempts"][0]["response_body"] == "busy" and shown["attempts"][0]["duration_ms"] == 40

    def ids(query: str) -> set[str]:
        response = client.get(f"{DELIVERIES}?{query}")
        assert response.status_code == 200, response.json()
        return {d["id"] for d in response.json()["data"]}

    assert ids(f"endpoint={second['id']}") == {str(waiting.id)}
    assert ids("status=succeeded") == {str(done.id)}
    assert ids("status=pending") == {str(waiting.id)}
    assert ids(f"event={done.event.public_id}") == {str(done.id)}
    assert ids(f"event={done.event.id}") == {str(done.id)}
    bad = client.get(f"{DELIVERIES}?status=exploded")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "status"
    bad = client.get(f"{DELIVERIES}?event=evt_nothex")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "event"

    detail = client.get(f"{DELIVERIES}/{done.id}").json()
    assert len(detail["attempts"]) == 3 and detail["attempt_count"] == 3
    assert client.get(f"{DELIVERIES}/not-a-uuid").status_code == 404


def test_replay_creates_a_new_delivery_of_the_same_event(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = create_endpoint(client)
    original = make_delivery(created["id"])
    response = client.post(f"{DELIVERIES}/{original.id}/replay")
    assert response.status_code == 202
    body = response.json()
    assert body["id"] != str(original.id)
    assert body["event"] == original.event.public_id and body["replay_of"] == str(original.id)
    assert body["endpoint"] == created["id"] and body["attempts"] == [] and body["status"] == "pending"
    replay = WebhookDelivery.objects.get(pk=body["id"])
    assert replay.event_id == original.event_id and replay.replay_of_id == original.id
    # The original and its attempts are untouched; both appear in the log.
    original.refresh_from_db()
    assert original.status == "succeeded" and original.attempts.count() == 2
    assert {d["id"] for d in client.get(f"{DELIVERIES}?event={original.event.public_id}").json()["data"]} == {
        str(original.id),
        body["id"],
    }
    # A replay can be replayed again: one more delivery, still the same event.
    again = client.post(f"{DELIVERIES}/{original.id}/replay").json()
    assert again["id"] not in {body["id"], str(original.id)} and again["event"] == original.event.public_id


def test_replay_with_idempotency_key_runs_once(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    original = make_delivery(create_endpoint(client)["id"])
    first = client.post(f"{DELIVERIES}/{original.id}/replay", HTTP_IDEMPOTENCY_KEY="replay-1")
    second = client.post(f"{DELIVERIES}/{original.id}/replay", HTTP_IDEMPOTENCY_KEY="replay-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert WebhookDelivery.objects.filter(replay_of=original).count() == 1


# --- Events -------------------------------------------------------------------------------------------
def test_events_list_and_detail(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    issued = Event.objects.create(
        tenant=tenant_a.tenant, livemode=False, type="invoice.issued", data={"id": "x", "total": "12.00"}
    )
    Event.objects.create(
        tenant=tenant_a.tenant,
        livemode=False,
        type="invoice.created",
        data={"id": "x"},
        created_at=timezone.now() - timedelta(minutes=1),
    )
    listed = client.get(EVENTS).json()["data"]
    assert [e["type"] for e in listed] == ["invoice.issued", "invoice.created"]  # newest first
    assert [e["type"] for e in client.get(f"{EVENTS}?type=invoice.created").json()["data"]] == [
        "invoice.created"
    ]
    one = listed[0]
    assert set(one) == {"id", "type", "created", "livemode", "data"}
    assert one["id"] == f"evt_{issued.id.hex}" and one["livemode"] is False
    assert one["data"] == {"id": "x", "total": "12.00"} and one["created"].endswith("Z")
    assert client.get(f"{EVENTS}/{issued.public_id}").json() == one
    assert client.get(f"{EVENTS}/{issued.id}").json() == one
    for missing in ("evt_" + "0" * 32, "evt_zzz", "nothing"):
        response = client.get(f"{EVENTS}/{missing}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_events_body_matches_the_webhook_body(tenant_a) -> None:
    import json

    from webhooks.delivery import event_payload

    event = Event.objects.create(
        tenant=tenant_a.tenant, livemode=False, type="invoice.paid", data={"b": 1, "a": 2}
    )
    shown = tenant_a.client("sk_test").get(f"{EVENTS}/{event.public_id}").json()
    assert shown == json.loads(event_payload(event))


# --- Modes, keys and tenants --------------------------------------------------------------------------
def test_sandbox_and_live_never_mix(tenant_a) -> None:
    test_client, live_client = tenant_a.client("sk_test"), tenant_a.client("sk_live")
    sandbox = create_endpoint(test_client)
    delivery = make_delivery(sandbox["id"])
    assert live_client.get(ENDPOINTS).json()["data"] == []
    assert live_client.get(DELIVERIES).json()["data"] == []
    assert live_client.get(EVENTS).json()["data"] == []
    for path in (
        f"{ENDPOINTS}/{sandbox['id']}",
        f"{DELIVERIES}/{delivery.id}",
        f"{EVENTS}/{delivery.event.public_id}",
    ):
        assert live_client.get(path).status_code == 404
    assert live_client.post(f"{DELIVERIES}/{delivery.id}/replay").status_code == 404
    assert live_client.post(f"{ENDPOINTS}/{sandbox['id']}/test").status_code == 404


@pytest.mark.parametrize("key", ["sk_test", "sk_live"])
def test_other_tenant_sees_nothing(tenant_a, tenant_b, key) -> None:
    owner = tenant_a.client(key)
    url = LOCAL_URL if key == "sk_test" else PUBLIC_URL
    created = create_endpoint(owner, url=url)
    delivery = make_delivery(created["id"])
    outsider = tenant_b.client(key)

    endpoint_path = f"{ENDPOINTS}/{created['id']}"
    for response in (
        outsider.get(endpoint_path),
        outsider.patch(
            endpoint_path, {"url": "https://93.184.215.15/pwned", "enabled": False}, format="json"
        ),
        outsider.delete(endpoint_path),
        outsider.post(f"{endpoint_path}/rotate-secret"),
        outsider.post(f"{endpoint_path}/test"),
        outsider.get(f"{DELIVERIES}/{delivery.id}"),
        outsider.post(f"{DELIVERIES}/{delivery.id}/replay"),
        outsider.get(f"{EVENTS}/{delivery.event.public_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert outsider.get(ENDPOINTS).json()["data"] == []
    assert outsider.get(DELIVERIES).json()["data"] == []
    assert outsider.get(f"{DELIVERIES}?endpoint={created['id']}").json()["data"] == []
    assert outsider.get(EVENTS).json()["data"] == []

    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.url == url and endpoint.enabled and endpoint.secret == created["secret"]
    assert WebhookDelivery.objects.count() == 1 and Event.objects.count() == 1


def test_publishable_and_partner_keys_cannot_manage_endpoints(tenant_a) -> None:
    created = create_endpoint(tenant_a.client("sk_test"))
    publishable = tenant_a.client("pk_test", HTTP_ORIGIN="https://widget.example.com")
    assert publishable.get(ENDPOINTS).status_code == 403
    assert publishable.get(DELIVERIES).status_code == 403
    assert publishable.get(EVENTS).status_code == 403
    partner = tenant_a.client("tenant_key")
    response = partner.post(f"{ENDPOINTS}/{created['id']}/rotate-secret")
    assert response.status_code == 403 and response.json()["error"]["code"] == "secret_key_required"


def test_no_key_is_401(client) -> None:
    for path in (ENDPOINTS, DELIVERIES, EVENTS):
        response = client.get(path)
        assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


# --- The verification helper integrators copy ---------------------------------------------------------
def test_docs_verification_helper_verifies_scell_signatures(settings) -> None:
    import re
    import time
    from pathlib import Path

    from webhooks.signing import signature_header

    doc = (Path(settings.BASE_DIR) / "docs" / "webhooks.md").read_text()
    namespace: dict = {}
    exec(re.findall(r"```python\n(.*?)```", doc, re.S)[0], namespace)  # noqa: S102 - our own docs
    verify = namespace["verify_scell_signature"]
    body, now = b'{"id":"evt_1","type":"invoice.issued"}', int(time.time())
    during_rotation = signature_header(body, now, ["whsec_new", "whsec_old"])
    assert verify(body, during_rotation, ["whsec_new"]) and verify(body, during_rotation, ["whsec_old"])
    assert not verify(body, during_rotation, ["whsec_other"])
    assert not verify(body + b" ", during_rotation, ["whsec_new"])
    assert not verify(body, signature_header(body, now - 301, ["whsec_new"]), ["whsec_new"])
    assert verify(body, signature_header(body, now - 290, ["whsec_new"]), ["whsec_new"])
    assert not verify(body, "v1=abc", ["whsec_new"])
