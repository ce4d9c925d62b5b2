"""The OpenAPI schema shows every operation with examples (the ``*/api_examples.py`` modules, attached by
``scell.schema.examples_hook``), and the examples are true: each one validates against its own schema,
the request examples are accepted by the real API with the answers the response examples show, the file
downloads declare the media types they really send, and every endpoint of API.md is in the schema."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from archive import api_examples as archive_examples
from billing import api_examples as billing_examples
from billing.services import credits_grant_pack
from invoicing import api_examples as invoicing_examples
from scell import api_examples as scell_examples
from scell import schema as scell_schema
from scell.schema import Example, OperationExamples, SchemaExampleError, operations
from signatures import api_examples as signatures_examples
from tests.invoicing.conftest import SELLER_PROFILE
from webhooks import api_examples as webhooks_examples

pytestmark = pytest.mark.django_db

JSON = "application/json"
API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"

# What each file download really sends (and the schema must declare, no more, no less).
DOWNLOAD_MEDIA_TYPES = {
    "invoices_download_retrieve": {"application/pdf", "application/xml", JSON},
    "signature_requests_document_retrieve": {"application/pdf"},
    "signature_requests_evidence_retrieve": {"application/pdf"},
    "archive_export": {"application/zip"},
    "archive_proofs_retrieve": {JSON, "application/zip"},
    "archive_closures_ots_retrieve": {"application/octet-stream"},
    "credits_usage_retrieve": {JSON, "text/csv"},
}


def success_responses(operation: dict):
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            yield status, response


# --- Every operation has its examples ------------------------------------------------------------------
def test_every_json_body_and_json_answer_has_an_example(openapi) -> None:
    bodies = answers = 0
    for path, method, operation in operations(openapi):
        where = f"{method.upper()} {path} ({operation['operationId']})"
        body = operation.get("requestBody", {}).get("content", {}).get(JSON)
        if body is not None:
            bodies += 1
            assert body.get("examples"), f"{where}: no request example"
            for example in body["examples"].values():
                assert example["summary"] and "value" in example, where
        for status, response in success_responses(operation):
            content = response.get("content", {})
            if JSON in content:
                answers += 1
                assert content[JSON].get("examples"), f"{where} {status}: no answer example"
    assert bodies >= 19 and answers >= 55, (bodies, answers)


def test_file_downloads_declare_their_media_types_and_describe_them(openapi) -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in operations(openapi)}
    for operation_id, expected in DOWNLOAD_MEDIA_TYPES.items():
        response = by_id[operation_id]["responses"]["200"]
        assert set(response["content"]) == expected, operation_id
        for media_type in expected:
            assert media_type in response["description"], f"{operation_id}: {media_type} not described"
            if not media_type.startswith((JSON, "text/")):
                assert response["content"][media_type]["schema"]["format"] == "binary", operation_id
    # Any other answer that is not JSON is a download too, and must be listed above.
    for _, _, operation in operations(openapi):
        for _, response in success_responses(operation):
            if set(response.get("content", {})) - {JSON}:
                assert operation["operationId"] in DOWNLOAD_MEDIA_TYPES, operation["operationId"]


# --- Every example validates against its own schema -----------------------------------------------------
_SCHEMA_MAPS = {"properties", "patternProperties"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
_SCHEMA_ONE = {"items", "additionalProperties", "not"}
_ANNOTATIONS = {"nullable", "example", "readOnly", "writeOnly", "discriminator", "xml", "externalDocs"}


def json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: ``nullable`` allows null, and an object with
    ``properties`` takes no other property unless it says so (so that an example with a renamed or
    removed field fails instead of passing unnoticed)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ANNOTATIONS:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [json_schema(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = json_schema(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or dt.date.fromisoformat(value).isoformat() == value


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value and parsed.tzinfo is not None  # timestamps are ISO 8601 UTC (API.md)


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value


@FORMATS.checks("email")
def _email(value: object) -> bool:
    return not isinstance(value, str) or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value) is not None


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlparse(value).scheme and urlparse(value).netloc)


def validator(openapi: dict, schema: dict) -> jsonschema.protocols.Validator:
    root = {
        "allOf": [json_schema(schema)],
        "components": {
            "schemas": {name: json_schema(sub) for name, sub in openapi["components"]["schemas"].items()}
        },
    }
    return jsonschema.Draft202012Validator(root, format_checker=FORMATS)


def all_examples(openapi: dict):
    """(where, schema, value) of every example of a request body or a 2xx answer."""
    for path, method, operation in operations(openapi):
        where = f"{method.upper()} {path}"
        body = operation.get("requestBody", {}).get("content", {}).get(JSON, {})
        for name, example in body.get("examples", {}).items():
            yield f"{where} request {name}", body["schema"], example["value"]
        for status, response in success_responses(operation):
            content = response.get("content", {}).get(JSON, {})
            for name, example in content.get("examples", {}).items():
                yield f"{where} {status} {name}", content["schema"], example["value"]


def test_every_example_validates_against_its_schema(openapi) -> None:
    checked = 0
    failures = []
    for where, schema, value in all_examples(openapi):
        checked += 1
        for error in validator(openapi, schema).iter_errors(value):
            failures.append(f"{where}: {'/'.join(map(str, error.absolute_path))}: {error.message[:300]}")
    assert not failures, "\n".join(failures)
    assert checked >= 74


def test_the_validation_catches_drift(openapi) -> None:
    """The checks above have teeth: a renamed field, a wrong type, a bad date or a missing null fail."""
    schema = {"$ref": "#/components/schemas/Invoice"}
    good = invoicing_examples.ISSUED
    assert validator(openapi, schema).is_valid(good)
    renamed = {**good, "total_incl_vat": good["total_with_vat"]}
    wrong_type = {**good, "livemode": "false"}
    bad_date = {**good, "issue_date": "24/11/2026"}
    not_a_decimal = {**good, "tax_exchange_rate": 1.5}
    missing = {k: v for k, v in good.items() if k != "amount_due"}
    for broken in (renamed, wrong_type, bad_date, not_a_decimal, missing):
        assert not validator(openapi, schema).is_valid(broken)
    assert validator(openapi, {"type": "string", "nullable": True}).is_valid(None)
    assert not validator(openapi, {"type": "string"}).is_valid(None)


def test_totals_of_the_invoice_examples_add_up() -> None:
    for name in ("DRAFT", "PATCHED", "ISSUED", "CREDIT_NOTE", "RECEIVED"):
        invoice = getattr(invoicing_examples, name)
        lines = sum(Decimal(line["net_amount"]) for line in invoice["lines"])
        for line in invoice["lines"]:
            assert Decimal(line["quantity"]) * Decimal(line["unit_price"]) == Decimal(line["net_amount"])
        assert Decimal(invoice["total_without_vat"]) == lines, name
        assert Decimal(invoice["total_vat"]) == sum(
            Decimal(b["tax_amount"]) for b in invoice["vat_breakdown"]
        )
        assert Decimal(invoice["total_with_vat"]) == lines + Decimal(invoice["total_vat"]), name
        assert invoice["amount_due"] == invoice["total_with_vat"] == invoice["totals"]["tax_inclusive"], name
    assert invoicing_examples.ISSUED["total_with_vat"] == "1080.00"  # API.md: 2 × 450.00 + 20 % VAT


# --- The hook fails loudly -------------------------------------------------------------------------------
def _result() -> dict:
    return {
        "paths": {
            "/api/v1/things": {
                "post": {
                    "operationId": "things_create",
                    "requestBody": {"content": {JSON: {"schema": {"type": "object"}}}},
                    "responses": {"201": {"content": {JSON: {"schema": {"type": "object"}}}}},
                },
                "get": {
                    "operationId": "things_list",
                    "responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
                },
            }
        }
    }


EXAMPLE = Example("one", "One thing", {"name": "thing"})


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ({"things_gone": OperationExamples(responses={"200": EXAMPLE})}, "not an operation"),
        ({"things_create": OperationExamples(responses={"200": EXAMPLE})}, "not documented"),
        ({"things_list": OperationExamples(request=EXAMPLE)}, "no request body"),
        ({"things_list": OperationExamples(responses={"200": EXAMPLE})}, "no application/json"),
        ({"things_list": OperationExamples(media={"204": "nothing"})}, "no media types"),
    ],
)
def test_hook_refuses_examples_the_schema_lacks(monkeypatch, examples, message) -> None:
    monkeypatch.setattr(scell_schema, "collected_examples", lambda: examples)
    with pytest.raises(SchemaExampleError, match=message):
        scell_schema.examples_hook(_result(), None, None, True)


def test_hook_attaches_examples_and_media_descriptions(monkeypatch) -> None:
    examples = {
        "things_create": OperationExamples(request=EXAMPLE, responses={"201": EXAMPLE}),
        "things_list": OperationExamples(media={"200": "CSV (`text/csv`)"}),
    }
    monkeypatch.setattr(scell_schema, "collected_examples", lambda: examples)
    result = scell_schema.examples_hook(_result(), None, None, True)
    operation = result["paths"]["/api/v1/things"]["post"]
    expected = {"one": {"summary": "One thing", "value": {"name": "thing"}}}
    assert operation["requestBody"]["content"][JSON]["examples"] == expected
    assert operation["responses"]["201"]["content"][JSON]["examples"] == expected
    assert result["paths"]["/api/v1/things"]["get"]["responses"]["200"]["description"] == "CSV (`text/csv`)"


def test_an_example_of_a_missing_operation_breaks_schema_generation(monkeypatch) -> None:
    monkeypatch.setitem(
        invoicing_examples.EXAMPLES, "invoices_renamed_create", OperationExamples(responses={"200": EXAMPLE})
    )
    with pytest.raises(SchemaExampleError, match="invoices_renamed_create"):
        SchemaGenerator().get_schema(request=None, public=True)


def test_an_operation_id_claimed_by_two_apps_is_refused(monkeypatch) -> None:
    monkeypatch.setitem(
        billing_examples.EXAMPLES, "invoices_create", invoicing_examples.EXAMPLES["invoices_create"]
    )
    with pytest.raises(SchemaExampleError, match="defined twice"):
        scell_schema.collected_examples()


# --- The request examples are accepted by the real API ---------------------------------------------------
def request_example(operation_id: str) -> Any:
    for module in (
        invoicing_examples,
        signatures_examples,
        billing_examples,
        webhooks_examples,
        scell_examples,
        archive_examples,
    ):
        if operation_id in module.EXAMPLES:
            return copy.deepcopy(module.EXAMPLES[operation_id].request.value)
    raise KeyError(operation_id)


def response_example(operation_id: str, status: str) -> dict[str, Any]:
    for module in (
        invoicing_examples,
        signatures_examples,
        billing_examples,
        webhooks_examples,
        scell_examples,
    ):
        if operation_id in module.EXAMPLES:
            return module.EXAMPLES[operation_id].responses[status].value
    raise KeyError(operation_id)


TOTALS = ("total_without_vat", "total_vat", "total_with_vat", "amount_due", "vat_breakdown", "totals")


def same(answer: dict[str, Any], example: dict[str, Any], *fields: str) -> None:
    for name in fields:
        assert answer[name] == example[name], (name, answer[name], example[name])


@pytest.fixture
def acme(make_tenant):
    """API.md's tenant, so that the examples' numbers (ACME1-202611-00001) are the ones Scell gives."""
    profile = {**SELLER_PROFILE, "address_line1": "1 rue de Rivoli", "postcode": "75001"}
    fixture = make_tenant("ACME1", legal_name="Acme SAS", siren="732829320", **profile)
    credits_grant_pack(tenant=fixture.tenant, amount=Decimal("50.00"))
    return fixture


def test_invoice_request_examples_are_accepted_with_the_answers_shown(acme) -> None:
    client = acme.client("sk_test")
    created = client.post("/api/v1/invoices", request_example("invoices_create"), format="json")
    assert created.status_code == 201, created.content
    draft = created.json()
    same(draft, response_example("invoices_create", "201"), "number", "status", "buyer", "delivery", "lines")
    same(draft, response_example("invoices_create", "201"), *TOTALS)

    patch = request_example("invoices_partial_update")
    patched = client.patch(f"/api/v1/invoices/{draft['id']}", patch, format="json")
    assert patched.status_code == 200, patched.content
    same(patched.json(), response_example("invoices_partial_update", "200"), "due_date", "lines", *TOTALS)
    # Back to the draft of API.md, then issue it.
    restore = {key: request_example("invoices_create")[key] for key in patch}
    assert client.patch(f"/api/v1/invoices/{draft['id']}", restore, format="json").status_code == 200

    issued = client.post(f"/api/v1/invoices/{draft['id']}/issue")
    assert issued.status_code == 200, issued.content
    example = response_example("invoices_issue_create", "200")
    same(issued.json(), example, "number", "status", "issue_date", "due_date", "lines", *TOTALS)
    assert issued.json()["transmission"]["state"] == example["transmission"]["state"]

    credit = client.post(
        f"/api/v1/invoices/{draft['id']}/credit-note",
        request_example("invoices_credit_note_create"),
        format="json",
    )
    assert credit.status_code == 201, credit.content
    example = response_example("invoices_credit_note_create", "201")
    same(credit.json(), example, "type", "status", "lines", "notes", *TOTALS)
    # Issued today: the number's month is today's (the example's, ACME1-202611-00002, in November 2026).
    assert re.fullmatch(r"ACME1-\d{6}-\d{5}", credit.json()["number"]), credit.json()["number"]
    assert credit.json()["preceding_invoice"] == example["preceding_invoice"] | {"id": draft["id"]}

    paid = client.post(
        f"/api/v1/invoices/{draft['id']}/mark-paid",
        request_example("invoices_mark_paid_create"),
        format="json",
    )
    assert paid.status_code == 200, paid.content
    lifecycle = paid.json()["lifecycle"]
    example = response_example("invoices_mark_paid_create", "200")["lifecycle"]
    assert {k: lifecycle[k] for k in ("status_code", "status", "paid", "amount_paid")} == {
        k: example[k] for k in ("status_code", "status", "paid", "amount_paid")
    }

    # The file downloads send what the schema declares.
    declared = DOWNLOAD_MEDIA_TYPES["invoices_download_retrieve"]
    for fmt in ("facturx", "pdf", "cii", "ubl", "json"):
        answer = client.get(f"/api/v1/invoices/{draft['id']}/download?format={fmt}")
        assert answer.status_code == 200, (fmt, answer.content[:300])
        assert answer["Content-Type"].split(";")[0] in declared, (fmt, answer["Content-Type"])
    cii = client.get(f"/api/v1/invoices/{draft['id']}/download?format=cii").content

    # Upload examples carry a shortened file: the real one takes its place.
    upload = request_example("invoices_validate_create")
    upload["document_base64"] = base64.b64encode(cii).decode()
    report = client.post("/api/v1/invoices/validate", upload, format="json")
    assert report.status_code == 200, report.content
    assert report.json() == response_example("invoices_validate_create", "200")
    received = client.post("/api/v1/invoices/import", upload, format="json")
    assert received.status_code == 201, received.content
    assert received.json()["status"] == "received"
    disputed = client.post(
        f"/api/v1/invoices/{received.json()['id']}/dispute",
        request_example("invoices_dispute_create"),
        format="json",
    )
    assert disputed.status_code == 200, disputed.content
    example = response_example("invoices_dispute_create", "200")["lifecycle"]
    assert {k: disputed.json()["lifecycle"][k] for k in example if k != "status_at"} == {
        k: v for k, v in example.items() if k != "status_at"
    }

    archive = client.get("/api/v1/archive/export?format=json")
    assert archive.status_code == 200
    assert archive["Content-Type"] in DOWNLOAD_MEDIA_TYPES["archive_export"]
    proof = client.get(f"/api/v1/archive/proofs/{draft['id']}?format=zip")
    assert proof.status_code == 200, proof.content[:300]
    assert proof["Content-Type"] in DOWNLOAD_MEDIA_TYPES["archive_proofs_retrieve"]


def test_signature_request_examples_are_accepted(acme, settings, tmp_path) -> None:
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(tmp_path / "seal")
    client = acme.client("sk_test")
    body = request_example("signature_requests_create")
    created = client.post("/api/v1/signature-requests", body, format="json")  # the PDF is real: sent as is
    assert created.status_code == 201, created.content
    example = response_example("signature_requests_create", "201")
    same(
        created.json(),
        example,
        "status",
        "title",
        "message",
        "order",
        "external_ref",
        "expires_at",
        "document",
    )
    assert created.json()["charged_amount"] == example["charged_amount"]
    assert [(s["name"], s["phone"], s["status"]) for s in created.json()["signers"]] == [
        (s["name"], s["phone"], s["status"]) for s in example["signers"]
    ]
    evidence = client.get(f"/api/v1/signature-requests/{created.json()['id']}/evidence")
    assert evidence.status_code == 200
    assert evidence["Content-Type"] in DOWNLOAD_MEDIA_TYPES["signature_requests_evidence_retrieve"]

    cancelled = client.post(
        f"/api/v1/signature-requests/{created.json()['id']}/cancel",
        request_example("signature_requests_cancel_create"),
        format="json",
    )
    assert cancelled.status_code == 200, cancelled.content
    same(
        cancelled.json(), response_example("signature_requests_cancel_create", "200"), "status", "end_reason"
    )


def test_webhook_credit_and_tenancy_request_examples_are_accepted(acme) -> None:
    client = acme.client("sk_test")
    endpoint = client.post(
        "/api/v1/webhook-endpoints", request_example("webhook_endpoints_create"), format="json"
    )
    assert endpoint.status_code == 201, endpoint.content
    example = response_example("webhook_endpoints_create", "201")
    same(endpoint.json(), example, "url", "description", "event_types", "enabled", "livemode")
    assert endpoint.json()["secret"].startswith("whsec_")
    changed = client.patch(
        f"/api/v1/webhook-endpoints/{endpoint.json()['id']}",
        request_example("webhook_endpoints_partial_update"),
        format="json",
    )
    assert changed.status_code == 200, changed.content
    same(changed.json(), response_example("webhook_endpoints_partial_update", "200"), "event_types")

    purchase = client.post(
        "/api/v1/credits/purchases", request_example("credits_purchases_create"), format="json"
    )
    assert purchase.status_code == 201, purchase.content
    example = response_example("credits_purchases_create", "201")
    same(purchase.json(), example, "amount", "vat_rate", "amount_with_vat", "provider", "status")
    credits = client.get("/api/v1/credits").json()
    same(credits, response_example("credits_retrieve", "200"), "prices", "packs", "currency")

    key = client.post("/api/v1/api-keys", request_example("api_keys_create"), format="json")
    assert key.status_code == 201, key.content
    same(key.json(), response_example("api_keys_create", "201"), "kind", "mode", "name", "livemode")

    sub_tenant = client.post("/api/v1/sub-tenants", request_example("sub_tenants_create"), format="json")
    assert sub_tenant.status_code == 201, sub_tenant.content
    example = response_example("sub_tenants_create", "201")
    same(sub_tenant.json(), example, *(k for k in example if k not in {"id", "created_at"}))
    moved = client.patch(
        f"/api/v1/sub-tenants/{sub_tenant.json()['id']}",
        request_example("sub_tenants_partial_update"),
        format="json",
    )
    assert moved.status_code == 200, moved.content
    same(moved.json(), response_example("sub_tenants_partial_update", "200"), "address_line1", "postcode")

    me = client.get("/api/v1/me").json()
    example = response_example("me_retrieve", "200")
    same(me, example, "livemode", "auth_mode", "sub_tenant")
    same(me["tenant"], example["tenant"], "legal_name", "identifier", "siren", "postcode", "city")


# --- API.md's endpoints are all in the schema ------------------------------------------------------------
_METHOD = r"(?:GET|POST|PUT|PATCH|DELETE)"
_ENDPOINT = re.compile(rf"^({_METHOD}(?:/{_METHOD})*)\s+(/api/v1/\S*)$")


def api_md_endpoints(text: str) -> set[tuple[str, str]]:
    """``METHOD /api/v1/...`` in backticks, with API.md's shorthands: `PATCH`/`DELETE /path`,
    `POST/GET /path`, a query string, and `` `/remind` `` after an endpoint (a sibling path)."""
    text = re.sub(rf"({_METHOD})`/`({_METHOD})", r"\1/\2", text)
    found: set[tuple[str, str]] = set()
    previous: tuple[list[str], str] | None = None
    end = 0
    for span in re.finditer(r"`([^`\n]+)`", text):
        between, content = text[end : span.start()], span.group(1).strip()
        end = span.end()
        match = _ENDPOINT.match(content)
        if match:
            methods, path = match.group(1).split("/"), match.group(2).split("?")[0]
            previous = (methods, path)
        elif previous and re.fullmatch(r"/[a-z-]+", content) and re.fullmatch(r"\s*,\s*", between):
            methods, path = previous[0], previous[1].rsplit("/", 1)[0] + content
        else:
            previous = None
            continue
        found |= {(method, path) for method in methods}
    return found


def normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def test_api_md_parser_reads_the_shorthands() -> None:
    text = (
        "| `GET /api/v1/a` , `GET /api/v1/a/{id}` | x |\n| `PATCH`/`DELETE /api/v1/a/{id}` | y |\n"
        "| `GET /api/v1/a/{id}/download?format=pdf|json` | z |\n"
        "| `POST /api/v1/b/{id}/cancel` , `/remind` |\n"
        "- `POST/GET /api/v1/c`; `GET /api/v1/d` balance, `not an endpoint`, `/nope`"
    )
    assert api_md_endpoints(text) == {
        ("GET", "/api/v1/a"),
        ("GET", "/api/v1/a/{id}"),
        ("PATCH", "/api/v1/a/{id}"),
        ("DELETE", "/api/v1/a/{id}"),
        ("GET", "/api/v1/a/{id}/download"),
        ("POST", "/api/v1/b/{id}/cancel"),
        ("POST", "/api/v1/b/{id}/remind"),
        ("POST", "/api/v1/c"),
        ("GET", "/api/v1/c"),
        ("GET", "/api/v1/d"),
    }


def test_every_endpoint_of_api_md_is_in_the_schema(openapi) -> None:
    endpoints = api_md_endpoints(API_MD.read_text(encoding="utf-8"))
    assert {
        ("POST", "/api/v1/invoices"),
        ("GET", "/api/v1/invoices/{id}/download"),
        ("DELETE", "/api/v1/invoices/{id}"),
        ("POST", "/api/v1/signature-requests/{id}/remind"),
        ("POST", "/api/v1/webhook-deliveries/{id}/replay"),
        ("DELETE", "/api/v1/webhook-endpoints"),
    } <= endpoints
    assert len(endpoints) >= 30
    documented = {(method.upper(), normalized(path)) for path, method, _ in operations(openapi)}
    missing = []
    for method, path in sorted(endpoints):
        if normalized(path) in {"/api/v1/schema", "/api/v1/docs"}:
            continue  # the schema and its docs are served beside it (test below)
        # "POST/GET/PATCH/DELETE /api/v1/webhook-endpoints" names a collection: its items count.
        if (method, normalized(path)) not in documented and (
            method,
            normalized(path) + "/{}",
        ) not in documented:
            missing.append(f"{method} {path}")
    assert not missing, f"in API.md, not in the OpenAPI schema: {missing}"


def test_served_schema_and_docs_carry_the_examples(client) -> None:
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower() and b"/api/v1/schema/" in docs.content
    served = client.get("/api/v1/schema/", {"format": "json"}, HTTP_ACCEPT="application/json")
    assert served.status_code == 200, served.content[:300]
    schema = json.loads(served.content)
    body = schema["paths"]["/api/v1/invoices"]["post"]["requestBody"]["content"][JSON]
    assert body["examples"]["draft"]["value"] == invoicing_examples.DRAFT_BODY
    answer = schema["paths"]["/api/v1/invoices/{id}/issue"]["post"]["responses"]["200"]["content"][JSON]
    assert answer["examples"]["issued"]["value"]["number"] == "ACME1-202611-00001"
