"""Developers in the dashboard: API keys (list of the mode, created by an admin and shown once, revoked
with a confirmation, a revoked key refused by the API) and the event log (filter, pages, the JSON body
and the deliveries of an event), for the current tenant and mode only."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from scell.models import ApiKey, Membership, User
from tests.scell.test_dashboard_home import by_testid
from tests.webhooks.test_api_webhooks import make_delivery
from webhooks.delivery import event_payload
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

KEYS = "/developers/keys/"
EVENTS = "/developers/events/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(tenant_a) -> Client:
    return signed_in(tenant_a.owner)


def member(tenant, role: str) -> Client:
    user = User.objects.create_user(f"{role}@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return signed_in(user)


def raw_key_on(page: str) -> str | None:
    match = re.search(r'value="([a-z]{2}_(?:test|live)_[^"]+)" readonly data-testid="raw-key"', page)
    return match.group(1) if match else None


def create_key(client: Client, **fields) -> tuple[ApiKey, str]:
    response = client.post(KEYS, {"kind": "secret", "name": "ERP", **fields})
    assert response.status_code == 302 and response["Location"] == KEYS, response.content.decode()[:2000]
    key = ApiKey.objects.latest("created_at")
    page = client.get(KEYS).content.decode()
    raw = raw_key_on(page)
    assert raw is not None
    return key, raw


# --- API keys -----------------------------------------------------------------------------------------
def test_keys_of_the_mode_are_listed_by_prefix(admin, tenant_a, tenant_b) -> None:
    page = admin.get(KEYS).content.decode()
    prefixes = re.findall(r'data-testid="key" data-prefix="([^"]+)"', page)
    mine = ApiKey.objects.filter(tenant=tenant_a.tenant, livemode=False)
    assert sorted(prefixes) == sorted(k.display_prefix for k in mine)
    assert all("_test_" in p for p in prefixes)
    for raw in (*tenant_a.keys.values(), *tenant_b.keys.values()):
        assert raw not in page
    assert "default sk_test" in page and "/api/v1/docs/" in page

    admin.post("/switch-mode/", {"mode": "live"})
    page = admin.get(KEYS).content.decode()
    prefixes = re.findall(r'data-testid="key" data-prefix="([^"]+)"', page)
    assert prefixes and all("_live_" in p for p in prefixes)


def test_created_key_is_shown_once_then_only_its_prefix(admin, tenant_a) -> None:
    response = admin.post(KEYS, {"kind": "secret", "name": "ERP production"})
    assert response.status_code == 302
    key = ApiKey.objects.get(name="ERP production")
    assert (key.tenant, key.livemode, key.kind, key.created_by) == (
        tenant_a.tenant,
        False,
        ApiKey.Kind.SECRET,
        tenant_a.owner,
    )
    first = admin.get(KEYS).content.decode()
    raw = raw_key_on(first)
    assert raw and raw.startswith("sk_test_") and raw.startswith(key.display_prefix)
    assert by_testid(first, "new-key").startswith("New key: ERP production")
    # Only the hash is stored.
    assert key.key_hash != raw and raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())

    second = admin.get(KEYS).content.decode()
    assert raw not in second and 'data-testid="new-key"' not in second
    assert f'data-prefix="{key.display_prefix}"' in second and tenant_a.owner.email in second

    # The key works on the API, in its mode, and its last use shows.
    me = APIClient().get("/api/v1/me", HTTP_X_API_KEY=raw)
    assert me.status_code == 200 and me.json()["tenant"]["identifier"] == "AAAAA"
    assert me.json()["livemode"] is False
    key.refresh_from_db()
    assert key.last_used_at is not None
    row = re.search(rf'data-prefix="{key.display_prefix}">(.*?)</tr>', admin.get(KEYS).content.decode(), re.S)
    assert timezone.localtime(key.last_used_at).strftime("%Y-%m-%d") in row.group(1)


def test_live_mode_creates_live_keys(admin) -> None:
    admin.post("/switch-mode/", {"mode": "live"})
    key, raw = create_key(admin)
    assert key.livemode is True and raw.startswith("sk_live_")
    assert APIClient().get("/api/v1/me", HTTP_X_API_KEY=raw).json()["livemode"] is True


def test_publishable_key_with_origins(admin) -> None:
    key, raw = create_key(
        admin,
        kind="publishable",
        name="Shop",
        allowed_origins="https://shop.example.com\n\nhttps://b.example",
    )
    assert key.kind == ApiKey.Kind.PUBLISHABLE and raw.startswith("pk_test_")
    assert key.allowed_origins == ["https://shop.example.com", "https://b.example"]
    ok = APIClient().get("/api/v1/me", HTTP_X_PUBLISHABLE_KEY=raw, HTTP_ORIGIN="https://shop.example.com")
    assert ok.status_code == 200
    refused = APIClient().get("/api/v1/me", HTTP_X_PUBLISHABLE_KEY=raw, HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403
    # A secret key takes no origins: it is never used from a browser.
    secret, _raw = create_key(admin, kind="secret", allowed_origins="https://shop.example.com")
    assert secret.allowed_origins == []


def test_bad_input_is_explained_and_creates_nothing(admin) -> None:
    before = ApiKey.objects.count()
    response = admin.post(KEYS, {"kind": "publishable", "allowed_origins": "not a url"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "not a url is not a valid origin." in by_testid(page, "allowed_origins-error")
    assert 'aria-describedby="id_allowed_origins_helptext id_allowed_origins_error"' in page
    response = admin.post(KEYS, {"kind": "tenant", "name": "legacy"})
    assert response.status_code == 422 and "Select a valid choice." in response.content.decode()
    assert ApiKey.objects.count() == before


def test_revoke_asks_then_stops_the_key_on_the_api(admin, tenant_a) -> None:
    key, raw = create_key(admin)
    assert APIClient().get("/api/v1/me", HTTP_X_API_KEY=raw).status_code == 200
    confirm = admin.get(f"{KEYS}{key.pk}/revoke/")
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert (
        "Revoke this key?" in page and key.display_prefix in page and 'data-testid="confirm-revoke"' in page
    )
    key.refresh_from_db()
    assert key.revoked_at is None  # asking revokes nothing

    response = admin.post(f"{KEYS}{key.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == KEYS
    key.refresh_from_db()
    assert key.revoked_at is not None
    refused = APIClient().get("/api/v1/me", HTTP_X_API_KEY=raw)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "revoked_api_key"
    page = admin.get(KEYS).content.decode()
    row = re.search(rf'data-prefix="{key.display_prefix}">(.*?)</tr>', page, re.S).group(1)
    assert "revoked" in row and "/revoke/" not in row
    # Revoking again changes nothing.
    revoked_at = key.revoked_at
    admin.post(f"{KEYS}{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at == revoked_at


@pytest.mark.parametrize("role", [Membership.Role.MEMBER, Membership.Role.READ_ONLY])
def test_only_admins_create_and_revoke(tenant_a, role) -> None:
    client = member(tenant_a.tenant, role)
    page = client.get(KEYS)
    assert page.status_code == 200
    assert 'data-testid="create-key"' not in page.content.decode() and "/revoke/" not in page.content.decode()
    before = ApiKey.objects.count()
    response = client.post(KEYS, {"kind": "secret", "name": "sneaky"})
    assert response.status_code == 403
    assert "Only an admin of the tenant can create API keys." in response.content.decode()
    assert ApiKey.objects.count() == before
    target = ApiKey.objects.filter(tenant=tenant_a.tenant, livemode=False).first()
    assert client.get(f"{KEYS}{target.pk}/revoke/").status_code == 403
    assert client.post(f"{KEYS}{target.pk}/revoke/").status_code == 403
    target.refresh_from_db()
    assert target.revoked_at is None


def test_keys_of_another_tenant_or_mode_are_not_found(admin, tenant_a, tenant_b) -> None:
    theirs = ApiKey.objects.filter(tenant=tenant_b.tenant).first()
    live = ApiKey.objects.filter(tenant=tenant_a.tenant, livemode=True).first()
    for key in (theirs, live):
        assert admin.get(f"{KEYS}{key.pk}/revoke/").status_code == 404
        assert admin.post(f"{KEYS}{key.pk}/revoke/").status_code == 404
        key.refresh_from_db()
        assert key.revoked_at is None


def test_a_key_shown_once_is_not_shown_in_another_tenant(admin, tenant_a, tenant_b) -> None:
    Membership.objects.create(user=tenant_a.owner, tenant=tenant_b.tenant, role=Membership.Role.ADMIN)
    admin.post(KEYS, {"kind": "secret", "name": "A key"})
    admin.post("/switch-tenant/", {"tenant": str(tenant_b.tenant.pk)})
    page = admin.get(KEYS).content.decode()
    assert raw_key_on(page) is None and "A key" not in page


# --- Event log ----------------------------------------------------------------------------------------
def event(tenant, type: str = "invoice.issued", *, livemode: bool = False, **data) -> Event:
    return Event.objects.create(
        tenant=tenant,
        livemode=livemode,
        type=type,
        data=data or {"id": "9a1c5c7e-5d6e-4c57-9d55-0a7d2f0c1b11", "number": "AAAAA-202603-00001"},
    )


def test_event_log_lists_the_scope_with_a_type_filter(admin, tenant_a, tenant_b) -> None:
    issued = event(tenant_a.tenant)
    paid = event(tenant_a.tenant, "invoice.paid")
    event(tenant_a.tenant, "invoice.issued", livemode=True, id="live-one")
    event(tenant_b.tenant, "invoice.issued", id="theirs")
    page = admin.get(EVENTS).content.decode()
    listed = re.findall(r'data-testid="event" data-type="([^"]+)"', page)
    assert listed == ["invoice.paid", "invoice.issued"]  # newest first
    assert issued.public_id in page and paid.public_id in page
    assert "live-one" not in page and "theirs" not in page
    # The object: the invoice's number, linked to its page.
    assert 'href="/invoices/9a1c5c7e-5d6e-4c57-9d55-0a7d2f0c1b11/">AAAAA-202603-00001</a>' in page

    filtered = admin.get(EVENTS, {"type": "invoice.paid"}).content.decode()
    assert re.findall(r'data-testid="event" data-type="([^"]+)"', filtered) == ["invoice.paid"]
    assert admin.get(EVENTS, {"type": "nope.nope"}).status_code == 400


def test_event_log_pages(admin, tenant_a) -> None:
    base = timezone.now()
    for n in range(55):
        Event.objects.create(
            tenant=tenant_a.tenant,
            livemode=False,
            type="credits.purchased",
            data={"purchase": f"p-{n:02d}"},
            created_at=base - timedelta(minutes=n),
        )
    first = admin.get(EVENTS).content.decode()
    assert first.count('data-testid="event"') == 50 and "p-00" in first and "p-54" not in first
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    second = admin.get(EVENTS, {"page": 2}).content.decode()
    assert second.count('data-testid="event"') == 5 and "p-54" in second
    filtered = admin.get(EVENTS, {"type": "credits.purchased"}).content.decode()
    assert 'href="?type=credits.purchased&amp;page=2"' in filtered


def test_event_detail_shows_the_payload_and_deliveries(admin, tenant_a) -> None:
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant_a.tenant, livemode=False, url="http://127.0.0.1:9/hook", secret="whsec_x"
    )
    delivery = make_delivery(str(endpoint.pk), attempts=2)
    url = f"{EVENTS}{delivery.event.public_id}/"
    response = admin.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    shown = json.loads(by_testid(page, "payload"))
    assert shown == json.loads(event_payload(delivery.event))
    assert shown["id"] == delivery.event.public_id and shown["data"]["number"] == "ACME1-202611-00001"
    assert page.count('data-testid="delivery"') == 1 and page.count('data-testid="attempt"') == 2
    # By its UUID too, as the API accepts.
    assert admin.get(f"{EVENTS}{delivery.event.pk}/").status_code == 200

    # Replaying from the event page comes back to it.
    response = admin.post(f"/developers/webhooks/deliveries/{delivery.pk}/replay/", {"next": url})
    assert response.status_code == 302 and response["Location"] == url
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1
    assert admin.get(url).content.decode().count('data-testid="delivery"') == 2
    # Never back to another site.
    response = admin.post(
        f"/developers/webhooks/deliveries/{delivery.pk}/replay/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == f"/developers/webhooks/{endpoint.pk}/"


def test_events_of_another_tenant_or_mode_are_not_found(admin, tenant_a, tenant_b) -> None:
    for other in (event(tenant_b.tenant), event(tenant_a.tenant, livemode=True)):
        assert admin.get(f"{EVENTS}{other.public_id}/").status_code == 404
    assert admin.get(f"{EVENTS}evt_not-an-id/").status_code == 404


def test_read_only_member_reads_the_event_log(tenant_a) -> None:
    shown = event(tenant_a.tenant)
    client = member(tenant_a.tenant, Membership.Role.READ_ONLY)
    assert shown.public_id in client.get(EVENTS).content.decode()
    assert client.get(f"{EVENTS}{shown.public_id}/").status_code == 200


def test_nav_links_and_anonymous(admin) -> None:
    home = admin.get("/").content.decode()
    assert f'href="{KEYS}"' in home and f'href="{EVENTS}"' in home
    for url in (KEYS, EVENTS):
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
