"""Contract fuzzing (issue #10): schemathesis generates requests from the OpenAPI schema the API serves and
sends them over HTTP to the live app (Django's live server), authenticated by a sandbox secret key.

Every answer must: never be a 5xx; have a status, content type, headers and body that the schema
documents for the operation; carry the error object on every 4xx; accept schema-valid data and refuse
invalid data (schemathesis' positive/negative data checks). Operations on one object are sent both with
the generated id (a 404 path) and with the id of a real object of the tenant (a draft, an issued and a
received invoice, a signature request, a webhook endpoint and delivery, an event, a closure, a key,
a sub-tenant, a purchase), so their logic is reached, not only their 404.

The run is deterministic (derandomized) so CI is reproducible; ``SCELL_FUZZ_EXAMPLES`` raises the number
of examples per operation and ``SCELL_FUZZ_SEED=random`` explores new inputs (an exploratory run).
"""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from archive.closures import business_today, closure_create
from archive.models import ChainEntry
from billing.services import credits_grant_pack
from invoicing.models import Invoice
from scell import schema as scell_schema
from tests.invoicing.conftest import DRAFT, SELLER_PROFILE

EXAMPLES = int(os.environ.get("SCELL_FUZZ_EXAMPLES", "20"))
RANDOM = os.environ.get("SCELL_FUZZ_SEED") == "random"

# The schema is generated from the code (as /api/v1/schema/ serves it), once, at collection: one test per
# operation, spread over the xdist workers.
RAW_SCHEMA = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
# Schema-valid data may still break a rule no schema can state (a SIREN's Luhn key, EN 16931 business
# rules, a reference to an invoice that is not issued, the content of an uploaded file): 422 with the
# rule, or 402 without credits, is then the right answer. 400 (malformed) never is.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "402", "403", "404", "409", "422", "429"]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(RAW_SCHEMA, config=CONFIG)
# The uploads (validate, import, simulate-incoming) also take a raw PDF body.
schemathesis.serializer.alias("application/pdf", "application/octet-stream")

pytestmark = pytest.mark.django_db(transaction=True)


def _pdf() -> bytes:
    import weasyprint

    return weasyprint.HTML(string="<p>Contrat de prestation</p>").write_pdf()


class Resources:
    """Real objects of the fuzzed tenant, created on first use (only what an operation needs)."""

    def __init__(self, tenant, make_tenant, live_server) -> None:
        self.tenant = tenant
        self.make_tenant = make_tenant
        self.client = tenant.client("sk_test")
        self.live_server = live_server
        self._made: dict[str, str] = {}
        self._supplier = None

    def get(self, kind: str) -> str:
        if kind not in self._made:
            self._made[kind] = str(getattr(self, f"_make_{kind}")())
        return self._made[kind]

    def _post(self, path: str, body: Any = None, **kwargs: Any) -> dict:
        if body is not None and "content_type" not in kwargs:
            kwargs["format"] = "json"
        answer = self.client.post(path, body, **kwargs)
        assert answer.status_code in (200, 201, 202), (path, answer.status_code, answer.content[:500])
        return answer.json()

    def _make_draft(self) -> str:
        return self._post("/api/v1/invoices", copy.deepcopy(DRAFT))["id"]

    def _make_issued(self) -> str:
        draft = self._post("/api/v1/invoices", copy.deepcopy(DRAFT))["id"]
        return self._post(f"/api/v1/invoices/{draft}/issue")["id"]

    def _make_received(self) -> str:
        """A supplier invoice to the tenant (another Scell tenant's CII), received in the sandbox."""
        if self._supplier is None:
            self._supplier = self.make_tenant(
                "SUPPF",
                legal_name="Fournisseur SA",
                siren="443061841",
                **SELLER_PROFILE | {"siret": "44306184100047", "vat_id": "FR83443061841"},
            )
        body = copy.deepcopy(DRAFT) | {"format": "cii"}
        body["buyer"] = body["buyer"] | {"siren": self.tenant.tenant.siren, "vat_id": ""}
        client = self._supplier.client("sk_test")
        draft = client.post("/api/v1/invoices", body, format="json").json()["id"]
        issued = client.post(f"/api/v1/invoices/{draft}/issue").json()["id"]
        content = bytes(Invoice.objects.get(pk=issued).cii_xml)
        return self._post("/api/v1/invoices/simulate-incoming", content, content_type="application/xml")["id"]

    def _make_signature_request(self) -> str:
        body = {
            "title": "Contrat de prestation",
            "signers": [{"name": "Élodie Martin", "email": "elodie@example.com", "phone": "+33612345678"}],
            "order": "sequential",
            "document_base64": base64.b64encode(_pdf()).decode(),
            "document_filename": "contrat.pdf",
        }
        return self._post("/api/v1/signature-requests", body)["id"]

    def _make_webhook_endpoint(self) -> str:
        body = {"url": f"{self.live_server.url}/fuzz-hook", "description": "fuzz"}
        return self._post("/api/v1/webhook-endpoints", body)["id"]

    def _make_webhook_delivery(self) -> str:
        return self._post(f"/api/v1/webhook-endpoints/{self.get('webhook_endpoint')}/test")["id"]

    def _make_event(self) -> str:
        self.get("issued")
        return self.client.get("/api/v1/events").json()["data"][0]["id"]

    def _make_closure(self) -> str:
        """An invoice issued yesterday (its chain entry backdated: the hash does not cover the time) and
        yesterday closed."""
        issued = self.get("issued")
        yesterday = business_today() - timedelta(days=1)
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            try:
                ChainEntry.objects.filter(source_table="invoicing_invoice", source_id=issued).update(
                    created_at=datetime.combine(yesterday, time(12), tzinfo=UTC)
                )
            finally:
                cursor.execute("SET session_replication_role = origin")
        chain_key = ChainEntry.objects.get(source_table="invoicing_invoice", source_id=issued).chain_key
        closure = closure_create(chain_key=chain_key, day=yesterday)
        return closure.pk

    def _make_api_key(self) -> str:
        return self._post("/api/v1/api-keys", {"name": "fuzz", "kind": "secret"})["id"]

    def _make_sub_tenant(self) -> str:
        body = {"legal_name": "Filiale Ouest", "siren": "552100554", "identifier": "OUEST"}
        return self._post("/api/v1/sub-tenants", body)["id"]

    def _make_purchase(self) -> str:
        return self._post("/api/v1/credits/purchases", {"amount": "50.00", "card": "4242424242424242"})["id"]


# Which real object an operation's path parameter names (operation id prefix -> kind, by parameter).
REAL_IDS: list[tuple[str, str, str]] = [
    ("invoices_partial_update", "id", "draft"),
    ("invoices_destroy", "id", "draft"),
    ("invoices_issue", "id", "draft"),
    ("invoices_approve", "id", "received"),
    ("invoices_dispute", "id", "received"),
    ("invoices_refuse", "id", "received"),
    ("invoices_", "id", "issued"),
    ("archive_proofs", "invoice_id", "issued"),
    ("archive_closures", "id", "closure"),
    ("signature_requests_", "id", "signature_request"),
    ("webhook_endpoints_", "id", "webhook_endpoint"),
    ("webhook_deliveries_", "id", "webhook_delivery"),
    ("events_", "id", "event"),
    ("api_keys_", "id", "api_key"),
    ("sub_tenants_", "id", "sub_tenant"),
    ("credits_purchases", "id", "purchase"),
]


def real_kind(operation_id: str, parameter: str) -> str | None:
    for prefix, name, kind in REAL_IDS:
        if operation_id.startswith(prefix) and name == parameter:
            return kind
    return None


def error_object_on_4xx(ctx, response, case) -> None:
    """Every 4xx carries the error object of API.md, whatever the operation documents."""
    if 400 <= response.status_code < 500:
        jsonschema.validate(response.json(), scell_schema.ERROR_SCHEMA)
        assert response.headers.get("x-request-id"), "4xx without X-Request-Id"


@pytest.fixture
def fuzz_target(make_tenant, live_server, settings) -> Iterator[Callable]:
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The fuzzer's request rate is the point: rate limits are tested on their own (test_ratelimit.py).
    settings.RATE_LIMIT_PER_KEY = 0
    settings.RATE_LIMIT_PER_IP = 0
    tenant = make_tenant("FUZZ1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    credits_grant_pack(tenant=tenant.tenant, amount=Decimal("50.00"))
    resources = Resources(tenant, make_tenant, live_server)
    session = requests.Session()
    counter = {"n": 0}

    def call(case) -> None:
        headers = {"X-API-Key": tenant.keys["sk_test"]}
        operation_id = case.operation.definition.raw.get("operationId", "")
        counter["n"] += 1
        # Every other example whose path is valid names a real object of the tenant instead of the
        # generated id (a path made invalid on purpose stays as generated).
        path_info = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
        valid_path = path_info is None or path_info.mode == GenerationMode.POSITIVE
        if case.path_parameters and valid_path and counter["n"] % 2 == 0:
            for name in list(case.path_parameters):
                kind = real_kind(operation_id, name)
                if kind:
                    case.path_parameters[name] = resources.get(kind)
        case.call_and_validate(
            base_url=live_server.url,
            session=session,
            headers=headers,
            additional_checks=[error_object_on_4xx],
            timeout=60,
        )

    yield call
    session.close()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    phases=[Phase.explicit, Phase.generate] if not RANDOM else list(Phase),
    suppress_health_check=list(HealthCheck),
)
def test_api_contract(case, fuzz_target) -> None:
    fuzz_target(case)
