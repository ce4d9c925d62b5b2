"""The four authentication modes of API.md, and what each may do."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from scell.models import ApiKey, SubTenant, hash_key
from scell.services import api_key_revoke

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"type", "code", "message", "details"} <= set(error)
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def test_secret_key_sees_its_tenant_in_its_mode(tenant_a) -> None:
    for key, livemode in (("sk_test", False), ("sk_live", True)):
        body = tenant_a.client(key).get("/api/v1/me").json()
        assert body["tenant"]["identifier"] == "AAAAA"
        assert body["livemode"] is livemode
        assert body["auth_mode"] == "secret"


def test_missing_key_is_401_with_error_object() -> None:
    error = assert_error(APIClient().get("/api/v1/me"), 401, "missing_api_key")
    assert error["type"] == "authentication_error"


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_X_PUBLISHABLE_KEY", "HTTP_X_TENANT_KEY"])
def test_wrong_key_is_401(header: str) -> None:
    client = APIClient()
    client.credentials(**{header: "sk_test_" + "x" * 43})
    assert_error(client.get("/api/v1/me"), 401, "invalid_api_key")


def test_revoked_key_is_401(tenant_a) -> None:
    api_key = ApiKey.objects.get(key_hash=hash_key(tenant_a.keys["sk_test"]))
    api_revoked = api_key_revoke(api_key=api_key)
    assert api_revoked.revoked_at is not None
    assert_error(tenant_a.client("sk_test").get("/api/v1/me"), 401, "revoked_api_key")


def test_key_in_the_wrong_header_is_401(tenant_a) -> None:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=tenant_a.keys["pk_test"])
    assert_error(client.get("/api/v1/me"), 401, "invalid_api_key")


def test_test_key_does_not_see_live_objects_and_reverse(tenant_a) -> None:
    live_keys = tenant_a.client("sk_live").get("/api/v1/api-keys").json()["data"]
    test_keys = tenant_a.client("sk_test").get("/api/v1/api-keys").json()["data"]
    assert live_keys and test_keys
    assert all(k["livemode"] for k in live_keys)
    assert not any(k["livemode"] for k in test_keys)
    live_id = live_keys[0]["id"]
    assert_error(tenant_a.client("sk_test").get(f"/api/v1/api-keys/{live_id}"), 404, "not_found")


def test_last_used_at_is_recorded(tenant_a) -> None:
    api_key = ApiKey.objects.get(key_hash=hash_key(tenant_a.keys["sk_test"]))
    assert api_key.last_used_at is None
    tenant_a.client("sk_test").get("/api/v1/me")
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_publishable_key_only_on_public_widget_endpoints_from_allowed_origin(tenant_a) -> None:
    allowed = tenant_a.client("pk_test", HTTP_ORIGIN="https://widget.example.com")
    assert allowed.get("/api/v1/me").json()["auth_mode"] == "publishable"
    assert_error(allowed.get("/api/v1/api-keys"), 403, "publishable_key_not_allowed")
    assert_error(allowed.get("/api/v1/sub-tenants"), 403, "publishable_key_not_allowed")
    other_origin = tenant_a.client("pk_test", HTTP_ORIGIN="https://evil.example.net")
    assert_error(other_origin.get("/api/v1/me"), 403, "origin_not_allowed")
    no_origin = tenant_a.client("pk_test")
    assert_error(no_origin.get("/api/v1/me"), 403, "origin_not_allowed")


def test_tenant_key_acts_on_one_sub_tenant(tenant_a, tenant_b) -> None:
    partner = tenant_a.client("sk_test")
    created = partner.post(
        "/api/v1/sub-tenants",
        {"legal_name": "Client One SAS", "identifier": "cli01", "siren": "552100554"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["identifier"] == "CLI01"
    partner.post(
        "/api/v1/sub-tenants",
        {"legal_name": "Client Two SAS", "identifier": "CLI02", "siren": "443061841"},
        format="json",
    )
    # Without X-Sub-Tenant the partner key sees all its sub-tenants...
    all_subs = tenant_a.client("tenant_key").get("/api/v1/sub-tenants").json()["data"]
    assert {s["identifier"] for s in all_subs} == {"CLI01", "CLI02"}
    # ...with it, only that one.
    one = tenant_a.client("tenant_key", HTTP_X_SUB_TENANT="CLI01")
    me = one.get("/api/v1/me").json()
    assert me["auth_mode"] == "tenant" and me["sub_tenant"] == "CLI01"
    assert [s["identifier"] for s in one.get("/api/v1/sub-tenants").json()["data"]] == ["CLI01"]
    # Another tenant's sub-tenant cannot be named.
    sub_b = SubTenant.objects.create(
        tenant=tenant_b.tenant, legal_name="B's", identifier="BSUB1", siren="552100554"
    )
    stranger = tenant_a.client("tenant_key", HTTP_X_SUB_TENANT=str(sub_b.id))
    assert_error(stranger.get("/api/v1/me"), 404, "sub_tenant_not_found")


def test_dashboard_session_needs_csrf_for_writes(tenant_a) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(tenant_a.owner)
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["auth_mode"] == "session"
    assert me.json()["livemode"] is False  # the dashboard starts in the sandbox
    response = client.post(
        "/api/v1/sub-tenants", {"legal_name": "X", "identifier": "XXXXX", "siren": "552100554"}
    )
    assert_error(response, 403)
    assert not SubTenant.objects.exists()


def test_api_key_created_via_api_is_shown_once_and_inherits_mode(tenant_a) -> None:
    client = tenant_a.client("sk_test")
    created = client.post("/api/v1/api-keys", {"kind": "secret", "name": "ci"}, format="json")
    assert created.status_code == 201
    raw = created.json()["key"]
    assert raw.startswith("sk_test_")
    listed = client.get(f"/api/v1/api-keys/{created.json()['id']}").json()
    assert "key" not in listed
    new_client = APIClient()
    new_client.credentials(HTTP_X_API_KEY=raw)
    assert new_client.get("/api/v1/me").status_code == 200
    revoked = client.post(f"/api/v1/api-keys/{created.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_error(new_client.get("/api/v1/me"), 401, "revoked_api_key")


def test_only_secret_keys_manage_keys(tenant_a) -> None:
    assert_error(tenant_a.client("tenant_key").get("/api/v1/api-keys"), 403, "secret_key_required")


def test_no_plaintext_key_in_the_database(tenant_a) -> None:
    """Scan every text column of every table for any of the raw keys."""
    raws = list(tenant_a.keys.values())
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - our own table names
            for row in cursor.fetchall():
                for value in row:
                    text = value if isinstance(value, str) else str(value)
                    for raw in raws:
                        assert raw not in text, f"plaintext key in {table}"
                        assert raw[8:] not in text, f"secret part of a key in {table}"


def test_keys_have_256_bits_of_randomness(tenant_a) -> None:
    raws = list(tenant_a.keys.values())
    assert len(set(raws)) == len(raws)
    for raw in raws:
        prefix, _, _secret = raw.rpartition("_")
        # token_urlsafe(32): 32 random bytes, 43 base64url characters (the secret may contain "_").
        assert len(raw.split("_", 2)[2]) == 43
        assert prefix
