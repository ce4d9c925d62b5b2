"""The OpenAPI schema documents what every operation shares, and real answers match it: the error object
on 4xx, 401 and 429 (with Retry-After), 404 on object paths, X-Request-Id on every answer, Idempotency-Key
on POST."""

from __future__ import annotations

import jsonschema
import pytest

from scell import schema as scell_schema
from scell.schema import operations

pytestmark = pytest.mark.django_db


def test_every_operation_documents_the_shared_answers_and_headers(openapi) -> None:
    assert openapi["components"]["schemas"]["Error"] == scell_schema.ERROR_SCHEMA
    seen = 0
    for path, method, operation in operations(openapi):
        seen += 1
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        assert "429" in responses, where
        assert "Retry-After" in responses["429"]["headers"], where
        if "{" in path:
            assert "404" in responses, where
        if operation.get("security") not in (None, [], [{}]):
            assert "401" in responses, where
        for status, response in responses.items():
            assert "X-Request-Id" in response.get("headers", {}), f"{where} {status}"
            if status[0] in "45":
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", f"{where} {status}"
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert "X-Request-Id" in names, where
        if method == "post":
            assert "Idempotency-Key" in names, where
    assert seen > 50


def _conforms(response) -> dict:
    body = response.json()
    jsonschema.validate(body, scell_schema.ERROR_SCHEMA)
    assert response["X-Request-Id"]
    return body["error"]


def test_real_error_answers_match_the_documented_error_object(settings, tenant_a, draft_body) -> None:
    client = tenant_a.client("sk_test")
    wrong = tenant_a.client("sk_test")
    wrong.credentials(HTTP_X_API_KEY="sk_test_nope")
    assert _conforms(wrong.get("/api/v1/invoices"))["type"] == "authentication_error"
    missing = client.get("/api/v1/invoices/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and _conforms(missing)["code"] == "not_found"
    malformed = client.post("/api/v1/invoices", data="{", content_type="application/json")
    assert malformed.status_code == 400 and _conforms(malformed)["code"] == "malformed_request"
    invalid = client.post("/api/v1/invoices", {**draft_body, "issue_date": "not-a-date"}, format="json")
    assert invalid.status_code == 422 and _conforms(invalid)["type"] == "validation_error"

    settings.RATE_LIMIT_PER_KEY = 1
    settings.RATE_LIMIT_PER_IP = 0
    limited = tenant_a.client("sk_live")
    limited.get("/api/v1/me")
    refused = limited.get("/api/v1/me")
    assert refused.status_code == 429 and _conforms(refused)["type"] == "rate_limit_error"
    assert int(refused["Retry-After"]) >= 1


def test_unknown_api_urls_and_csrf_failures_answer_with_the_error_object(tenant_a) -> None:
    from django.test import Client

    client = tenant_a.client("sk_test")
    for method in ("post", "delete", "patch"):
        answer = getattr(client, method)("/api/v1/invoices/0.5")
        assert answer.status_code == 404, method
        assert _conforms(answer)["code"] == "not_found"

    # A dashboard session calling the API without its CSRF token.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(tenant_a.owner)
    refused = browser.post("/api/v1/invoices", {}, content_type="application/json")
    assert refused.status_code == 403
    assert _conforms(refused)["type"] == "permission_error"
