"""Developers → Webhooks in the dashboard: the secret shown once, the delivery log with its attempts,
replay and test buttons, live-mode URL checks, roles, and nothing of another tenant."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from scell.models import Membership, User
from tests.webhooks.test_api_webhooks import make_delivery
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

INDEX = "/developers/webhooks/"


@pytest.fixture
def browser(tenant_a) -> Client:
    client = Client()
    client.force_login(tenant_a.owner)
    return client


def create(browser: Client, **fields) -> WebhookEndpoint:
    data = {"url": "http://127.0.0.1:8765/hook", "description": "ERP", "enabled": "on", **fields}
    response = browser.post(INDEX, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.latest("created_at")
    assert response["Location"] == f"{INDEX}{endpoint.pk}/"
    return endpoint


def test_nav_link_and_empty_page(browser) -> None:
    home = browser.get("/").content.decode()
    assert f'href="{INDEX}"' in home
    page = browser.get(INDEX)
    assert page.status_code == 200
    assert "No endpoint yet." in page.content.decode() and "invoice.issued" in page.content.decode()


def test_create_shows_the_secret_once(browser, tenant_a) -> None:
    endpoint = create(browser, event_types=["invoice.issued", "signer.signed"])
    assert endpoint.tenant == tenant_a.tenant and endpoint.livemode is False
    assert endpoint.event_types == ["invoice.issued", "signer.signed"] and endpoint.enabled
    first = browser.get(f"{INDEX}{endpoint.pk}/").content.decode()
    assert re.search(r'data-testid="secret">whsec_', first)
    assert endpoint.secret in first
    second = browser.get(f"{INDEX}{endpoint.pk}/").content.decode()
    assert endpoint.secret not in second and 'data-testid="secret"' not in second
    assert endpoint.secret not in browser.get(INDEX).content.decode()
    assert "http://127.0.0.1:8765/hook" in browser.get(INDEX).content.decode()


def test_live_mode_refuses_a_private_url_in_the_form(browser) -> None:
    browser.post("/switch-mode/", {"mode": "live"})
    response = browser.post(INDEX, {"url": "http://127.0.0.1:8765/hook", "enabled": "on"})
    assert response.status_code == 422
    assert 'data-testid="url-error"' in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    endpoint = create(browser, url="https://93.184.215.14/hook")
    assert endpoint.livemode is True


def test_edit_disable_enable_and_delete(browser) -> None:
    endpoint = create(browser)
    page = f"{INDEX}{endpoint.pk}/"
    response = browser.post(
        page, {"url": "http://localhost:9/new", "description": "New", "event_types": ["invoice.paid"]}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "http://localhost:9/new" and endpoint.event_types == ["invoice.paid"]
    assert endpoint.enabled is False  # the box was not ticked

    browser.post(f"{page}enable/", {"enabled": "1"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_at is None
    browser.post(f"{page}enable/", {"enabled": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_at is not None
    assert "disabled" in browser.get(page).content.decode()

    assert browser.post(f"{page}delete/").status_code == 302
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert browser.get(page).status_code == 404


def test_rotation_shows_the_new_secret_once(browser) -> None:
    endpoint = create(browser)
    browser.get(f"{INDEX}{endpoint.pk}/")  # the creation secret, consumed
    old = endpoint.secret
    response = browser.post(f"{INDEX}{endpoint.pk}/rotate-secret/")
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    page = browser.get(f"{INDEX}{endpoint.pk}/").content.decode()
    assert endpoint.secret in page and old not in page
    assert endpoint.secret not in browser.get(f"{INDEX}{endpoint.pk}/").content.decode()


def test_delivery_log_lists_attempts_and_replay_works(browser) -> None:
    endpoint = create(browser)
    delivery = make_delivery(str(endpoint.pk), attempts=3)
    page = browser.get(f"{INDEX}{endpoint.pk}/").content.decode()
    assert delivery.event.public_id in page and "invoice.issued" in page
    assert page.count('data-testid="attempt"') == 3
    assert "HTTP 503" in page and "HTTP 200" in page and "busy" in page
    assert f"/developers/webhooks/deliveries/{delivery.pk}/replay/" in page
    assert delivery.event.public_id in browser.get(INDEX).content.decode()  # recent deliveries

    response = browser.post(f"/developers/webhooks/deliveries/{delivery.pk}/replay/")
    assert response.status_code == 302 and response["Location"] == f"{INDEX}{endpoint.pk}/"
    replay = WebhookDelivery.objects.get(replay_of=delivery)
    assert replay.event_id == delivery.event_id and replay.endpoint_id == endpoint.pk
    page = browser.get(f"{INDEX}{endpoint.pk}/").content.decode()
    assert page.count('data-testid="delivery"') == 2


def test_send_test_event(browser) -> None:
    endpoint = create(browser)
    response = browser.post(f"{INDEX}{endpoint.pk}/test/")
    assert response.status_code == 302
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event.type == "test.webhook"
    assert delivery.event.public_id in browser.get(f"{INDEX}{endpoint.pk}/").content.decode()


def test_read_only_member_sees_but_cannot_change(browser, tenant_a) -> None:
    endpoint = create(browser)
    delivery = make_delivery(str(endpoint.pk))
    reader = User.objects.create_user("reader@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=reader, tenant=tenant_a.tenant, role=Membership.Role.READ_ONLY)
    client = Client()
    client.force_login(reader)
    page = client.get(f"{INDEX}{endpoint.pk}/").content.decode()
    assert "http://127.0.0.1:8765/hook" in page and endpoint.secret not in page
    assert 'data-testid="replay"' not in page and 'data-testid="rotate"' not in page
    writes = [
        (INDEX, {"url": "http://localhost:1/x", "enabled": "on"}),
        (f"{INDEX}{endpoint.pk}/", {"url": "http://localhost:1/x", "enabled": "on"}),
        (f"{INDEX}{endpoint.pk}/rotate-secret/", {}),
        (f"{INDEX}{endpoint.pk}/enable/", {"enabled": "0"}),
        (f"{INDEX}{endpoint.pk}/delete/", {}),
        (f"{INDEX}{endpoint.pk}/test/", {}),
        (f"/developers/webhooks/deliveries/{delivery.pk}/replay/", {}),
    ]
    for url, data in writes:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert endpoint.secret not in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:8765/hook"
    assert WebhookEndpoint.objects.get().enabled
    assert WebhookEndpoint.objects.get().secret == endpoint.secret
    assert WebhookDelivery.objects.count() == 1


def test_other_tenant_gets_404_and_an_empty_page(browser, tenant_b) -> None:
    endpoint = create(browser)
    delivery = make_delivery(str(endpoint.pk))
    outsider = Client()
    outsider.force_login(tenant_b.owner)
    assert "http://127.0.0.1:8765/hook" not in outsider.get(INDEX).content.decode()
    assert outsider.get(f"{INDEX}{endpoint.pk}/").status_code == 404
    for path in ("rotate-secret/", "delete/", "test/", "enable/"):
        assert outsider.post(f"{INDEX}{endpoint.pk}/{path}").status_code == 404
    assert outsider.post(f"/developers/webhooks/deliveries/{delivery.pk}/replay/").status_code == 404
    assert WebhookEndpoint.objects.get().secret == endpoint.secret
    assert WebhookDelivery.objects.count() == 1


def test_sandbox_endpoints_are_not_shown_in_live_mode(browser) -> None:
    endpoint = create(browser)
    browser.post("/switch-mode/", {"mode": "live"})
    assert endpoint.url not in browser.get(INDEX).content.decode()
    assert browser.get(f"{INDEX}{endpoint.pk}/").status_code == 404


def test_member_can_test_and_replay_but_not_manage(browser, tenant_a) -> None:
    endpoint = create(browser)
    delivery = make_delivery(str(endpoint.pk))
    user = User.objects.create_user("member@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=user, tenant=tenant_a.tenant, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(user)
    assert client.post(f"{INDEX}{endpoint.pk}/test/").status_code == 302
    assert client.post(f"/developers/webhooks/deliveries/{delivery.pk}/replay/").status_code == 302
    assert WebhookDelivery.objects.count() == 3
    response = client.post(f"{INDEX}{endpoint.pk}/rotate-secret/")
    assert response.status_code == 403
    assert "Only an admin of the tenant can manage webhook endpoints." in response.content.decode()


def test_delivery_log_filter_shows_failures(browser) -> None:
    endpoint = create(browser)
    ok = make_delivery(str(endpoint.pk), attempts=1)
    failed = make_delivery(str(endpoint.pk), event_type="invoice.paid", attempts=1)
    WebhookDelivery.objects.filter(pk=failed.pk).update(
        status=WebhookDelivery.Status.FAILED, last_status_code=500
    )
    retrying = make_delivery(str(endpoint.pk), event_type="signer.signed", attempts=1)
    WebhookDelivery.objects.filter(pk=retrying.pk).update(status=WebhookDelivery.Status.RETRYING)

    def shown(**params) -> set[str]:
        page = browser.get(INDEX, params).content.decode()
        return set(re.findall(r'data-testid="delivery" id="delivery-([^"]+)"', page))

    assert shown() == {str(ok.pk), str(failed.pk), str(retrying.pk)}
    assert shown(status="failing") == {str(failed.pk), str(retrying.pk)}
    assert shown(status="succeeded") == {str(ok.pk)}
    assert shown(status="not-a-status") == {str(ok.pk), str(failed.pk), str(retrying.pk)}
    page = browser.get(INDEX, {"status": "failing"}).content.decode()
    assert '<option value="failing" selected>' in page
    # Each event links to its page in the event log.
    assert f'href="/developers/events/{failed.event.public_id}/"' in page


def test_anonymous_is_sent_to_login() -> None:
    response = Client().get(INDEX)
    assert response.status_code == 302 and "/login/" in response["Location"]
