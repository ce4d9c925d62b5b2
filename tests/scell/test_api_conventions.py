"""The error object, cursor pagination and Idempotency-Key handling shared by every endpoint."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from scell.models import SubTenant

pytestmark = pytest.mark.django_db

SIRENS = ["552100554", "443061841", "542107651", "652014051", "383474814", "732829320"]


def test_malformed_json_is_400_error_object(tenant_a) -> None:
    response = tenant_a.client().post(
        "/api/v1/sub-tenants", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_invalid_fields_are_422_with_field_details(tenant_a) -> None:
    response = tenant_a.client().post(
        "/api/v1/sub-tenants",
        {"legal_name": "", "identifier": "toolong", "siren": "123456789"},
        format="json",
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    fields = {d["field"] for d in error["details"]}
    assert {"legal_name", "identifier"} <= fields


def test_invalid_siren_luhn_is_refused_by_the_model(tenant_a) -> None:
    response = tenant_a.client().post(
        "/api/v1/sub-tenants", {"legal_name": "X", "identifier": "ABCDE", "siren": "123456789"}, format="json"
    )
    assert response.status_code == 422
    assert any(d["field"] == "siren" for d in response.json()["error"]["details"])
    assert not SubTenant.objects.exists()


def test_unknown_endpoint_is_404_error_object(tenant_a) -> None:
    response = tenant_a.client().get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_cursor_pagination(tenant_a) -> None:
    for n in range(5):
        SubTenant.objects.create(
            tenant=tenant_a.tenant, legal_name=f"S{n}", identifier=f"SUB0{n}", siren=SIRENS[n]
        )
    client = tenant_a.client()
    seen: list[str] = []
    url = "/api/v1/sub-tenants?limit=2"
    pages = 0
    while True:
        body = client.get(url).json()
        assert set(body) == {"data", "next_cursor"}
        assert len(body["data"]) <= 2
        seen += [s["identifier"] for s in body["data"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        url = f"/api/v1/sub-tenants?limit=2&cursor={body['next_cursor']}"
    assert pages == 3
    assert sorted(seen) == [f"SUB0{n}" for n in range(5)]
    assert seen == [f"SUB0{n}" for n in reversed(range(5))]  # newest first
    assert len(client.get("/api/v1/sub-tenants?limit=100").json()["data"]) == 5
    for wrong in ("0", "101", "1000", "ten", "null"):
        refused = client.get(f"/api/v1/sub-tenants?limit={wrong}")
        assert refused.status_code == 422, wrong
        assert refused.json()["error"]["details"][0]["field"] == "limit"


def test_idempotent_replay_and_conflict(tenant_a) -> None:
    client = tenant_a.client()
    body = {"legal_name": "Once SAS", "identifier": "ONCE1", "siren": "552100554"}
    first = client.post("/api/v1/sub-tenants", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    # Same key, same body (other key order): the first answer again, nothing created twice.
    again = client.post(
        "/api/v1/sub-tenants", dict(reversed(body.items())), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert SubTenant.objects.count() == 1
    # Same key, other body: 409.
    other = client.post(
        "/api/v1/sub-tenants", body | {"legal_name": "Twice"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert SubTenant.objects.count() == 1


def test_failed_request_frees_the_idempotency_key(tenant_a) -> None:
    client = tenant_a.client()
    bad = client.post(
        "/api/v1/sub-tenants",
        {"legal_name": "Bad", "identifier": "BAD01", "siren": "1"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert bad.status_code == 422
    good = client.post(
        "/api/v1/sub-tenants",
        {"legal_name": "Good", "identifier": "GOOD1", "siren": "552100554"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert good.status_code == 201


def test_idempotency_keys_are_per_tenant_and_mode(tenant_a, tenant_b) -> None:
    body = {"legal_name": "Same", "identifier": "SAME1", "siren": "552100554"}
    a = tenant_a.client().post("/api/v1/sub-tenants", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = tenant_b.client().post("/api/v1/sub-tenants", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_once(require_postgres, make_tenant) -> None:
    tenant = make_tenant("CONC1")
    body = {"legal_name": "Race SAS", "identifier": "RACE1", "siren": "552100554"}
    results: list[int] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=tenant.keys["sk_test"])
        barrier.wait()
        try:
            results.append(
                client.post(
                    "/api/v1/sub-tenants", body, format="json", HTTP_IDEMPOTENCY_KEY="race"
                ).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SubTenant.objects.filter(tenant=tenant.tenant).count() == 1
    assert results.count(201) >= 1
    assert set(results) <= {201, 409}


def _field_errors(response) -> dict[str, str]:
    assert response.status_code == 422, response.json()
    return {d["field"]: d["message"] for d in response.json()["error"]["details"]}


def test_json_types_are_the_schemas(tenant_a, draft_body) -> None:
    """A number where a string is due, or anything but true/false where a boolean is due, is refused with
    the field named; nothing is created."""
    client = tenant_a.client()
    numbers = client.post(
        "/api/v1/sub-tenants", {"legal_name": 12, "identifier": "SUB01", "siren": 552100554}, format="json"
    )
    assert set(_field_errors(numbers)) == {"legal_name", "siren"}
    endpoint = {"url": "https://hooks.example.com/scell", "enabled": "yes"}
    assert "enabled" in _field_errors(client.post("/api/v1/webhook-endpoints", endpoint, format="json"))
    boolean = client.post("/api/v1/invoices", {**draft_body, "vat_on_debits": 0}, format="json")
    assert "vat_on_debits" in _field_errors(boolean)
    assert not SubTenant.objects.exists()
    assert client.get("/api/v1/invoices").json()["data"] == []


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("450.00", True),
        ("-3.5", True),
        (".5", True),
        ("7.", True),
        (450, True),
        (12.25, True),
        ("4.5e2", False),
        (" 450", False),
        ("", False),
        ("-", False),
        ("NaN", False),
        ("1.1234567", False),
        ("0000000000000000001", False),  # 19 digits before the point: more than 13 even if zeros
        (True, False),
    ],
)
def test_decimal_fields_take_plain_notation_or_numbers(tenant_a, draft_body, value, accepted) -> None:
    nullable = tenant_a.client().post(
        "/api/v1/invoices",
        {**draft_body, "lines": [{**draft_body["lines"][0], "price_base_quantity": ""}]},
        format="json",
    )
    assert "lines.0.price_base_quantity" in _field_errors(nullable)  # "" is not null
    draft_body["lines"][0]["quantity"] = value
    answer = tenant_a.client().post("/api/v1/invoices", draft_body, format="json")
    if accepted:
        assert answer.status_code == 201, answer.json()
    else:
        assert "lines.0.quantity" in _field_errors(answer)


def test_empty_query_parameters_are_left_out_and_bad_ones_refused(tenant_a) -> None:
    client = tenant_a.client()
    assert client.get("/api/v1/invoices?status=&paid=&limit=").status_code == 200
    assert client.get("/api/v1/webhook-deliveries?status=").status_code == 200
    assert set(_field_errors(client.get("/api/v1/invoices?paid=maybe"))) == {"paid"}
    assert set(_field_errors(client.get("/api/v1/invoices?cursor=not-ours"))) == {"cursor"}


@pytest.mark.parametrize("body", ["null", "[1, 2]", '{"document_base64": [null]}', '"text"'])
def test_validate_refuses_bodies_without_a_document(tenant_a, body) -> None:
    answer = tenant_a.client().post("/api/v1/invoices/validate", body, content_type="application/json")
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] in {"file", "document_base64"}
