"""Support's admin: endpoints without their secrets, deliveries with their attempts, the replay action
(asks for a reason first, then logs who replayed what and why)."""

from __future__ import annotations

import pytest

from scell.models import SupportAction
from tests.webhooks.test_api_webhooks import create_endpoint, make_delivery
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_admin_shows_no_secret_and_lists_attempts(admin_client, tenant_a) -> None:
    created = create_endpoint(tenant_a.client("sk_test"))
    client = tenant_a.client("sk_test")
    rotated = client.post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret").json()["secret"]
    delivery = make_delivery(created["id"], attempts=2)

    for path in (
        "/admin/webhooks/webhookendpoint/",
        f"/admin/webhooks/webhookendpoint/{created['id']}/change/",
    ):
        page = admin_client.get(path)
        assert page.status_code == 200
        text = page.content.decode()
        assert created["url"] in text
        assert created["secret"] not in text and rotated not in text

    page = admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "busy" in page and "503" in page
    assert admin_client.get("/admin/webhooks/event/").status_code == 200


def test_admin_replay_action(admin_client, admin_user, tenant_a) -> None:
    created = create_endpoint(tenant_a.client("sk_test"))
    delivery = make_delivery(created["id"])
    action = {"action": "replay_deliveries", "_selected_action": [str(delivery.pk)]}

    # First the reason page; nothing is replayed until a reason is given.
    page = admin_client.post("/admin/webhooks/webhookdelivery/", action)
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    blank = admin_client.post(
        "/admin/webhooks/webhookdelivery/", {**action, "support_reason_step": "1", "reason": "  "}
    )
    assert blank.status_code == 200 and "This field is required." in blank.content.decode()
    assert not WebhookDelivery.objects.filter(replay_of=delivery).exists()

    response = admin_client.post(
        "/admin/webhooks/webhookdelivery/",
        {**action, "support_reason_step": "1", "reason": "Ticket 77: receiver was down"},
    )
    assert response.status_code == 302
    replay = WebhookDelivery.objects.get(replay_of=delivery)
    assert replay.event_id == delivery.event_id
    assert WebhookEndpoint.objects.get().secret  # untouched
    logged = SupportAction.objects.get()
    assert (logged.actor, logged.action, logged.tenant) == (
        admin_user,
        "webhook_delivery.replay",
        tenant_a.tenant,
    )
    assert (logged.object_type, logged.object_id) == ("webhooks.webhookdelivery", str(delivery.pk))
    assert logged.reason == "Ticket 77: receiver was down"
    assert logged.details["replay"] == str(replay.pk)
