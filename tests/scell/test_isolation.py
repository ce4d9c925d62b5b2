"""Tenant A can read, change or list nothing of tenant B: not through the API, not in the dashboard."""

from __future__ import annotations

import pytest
from django.test import Client

from scell.models import ApiKey, SubTenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def b_objects(tenant_b) -> dict[str, str]:
    sub = tenant_b.client("sk_test").post(
        "/api/v1/sub-tenants",
        {"legal_name": "B client", "identifier": "BCL01", "siren": "552100554"},
        format="json",
    )
    assert sub.status_code == 201
    key = ApiKey.objects.filter(tenant=tenant_b.tenant, livemode=False, kind="secret").first()
    return {"sub_tenant": sub.json()["id"], "api_key": str(key.id)}


@pytest.mark.parametrize("key", ["sk_test", "sk_live", "tenant_key"])
def test_other_tenant_objects_are_404_and_unlisted(tenant_a, b_objects, key) -> None:
    client = tenant_a.client(key)
    for path in (f"/api/v1/sub-tenants/{b_objects['sub_tenant']}",):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        patched = client.patch(path, {"legal_name": "pwned"}, format="json")
        assert patched.status_code == 404
    assert client.get("/api/v1/sub-tenants").json()["data"] == []
    assert SubTenant.objects.get(pk=b_objects["sub_tenant"]).legal_name == "B client"
    if key.startswith("sk"):
        response = client.get(f"/api/v1/api-keys/{b_objects['api_key']}")
        assert response.status_code == 404
        assert client.post(f"/api/v1/api-keys/{b_objects['api_key']}/revoke").status_code == 404
        assert ApiKey.objects.get(pk=b_objects["api_key"]).revoked_at is None
        listed = {k["id"] for k in client.get("/api/v1/api-keys?limit=100").json()["data"]}
        assert b_objects["api_key"] not in listed


def test_dashboard_shows_only_own_tenant_and_refuses_switching_to_another(tenant_a, tenant_b) -> None:
    browser = Client()
    browser.force_login(tenant_a.owner)
    page = browser.get("/").content.decode()
    assert "Alpha SAS" in page and "Beta SARL" not in page
    response = browser.post("/switch-tenant/", {"tenant": str(tenant_b.tenant.id)})
    assert response.status_code == 400
    page = browser.get("/").content.decode()
    assert "Alpha SAS" in page and "Beta SARL" not in page
    me = browser.get("/api/v1/me").json()
    assert me["tenant"]["identifier"] == "AAAAA"
