"""Examples of the tenancy API in the OpenAPI schema (attached by ``scell.schema.examples_hook``): the
tenant of API.md's bootstrap (Acme SAS, ACME1), its keys and a partner's sub-tenant."""

from __future__ import annotations

from typing import Any

from scell.schema import Example, OperationExamples

TENANT_ID = "5af90799-4aca-4ec1-8390-058c9dd8a42c"
KEY_ID = "121ac463-1cf1-48c5-9933-5756ec2fc3a5"
SUB_TENANT_ID = "2399cef3-af56-40a5-b9dc-acbc6a469d68"

TENANT: dict[str, Any] = {
    "id": TENANT_ID,
    "legal_name": "Acme SAS",
    "identifier": "ACME1",
    "siren": "732829320",
    "siret": "73282932000074",
    "vat_id": "FR44732829320",
    "legal_form": "SAS au capital de 10 000 €",
    "address_line1": "1 rue de Rivoli",
    "address_line2": "",
    "postcode": "75001",
    "city": "Paris",
    "country": "FR",
    "archive_status": "healthy",
}

API_KEY: dict[str, Any] = {
    "id": KEY_ID,
    "kind": "secret",
    "livemode": False,
    "mode": "test",
    "name": "ERP integration",
    "display_prefix": "sk_test_NCNF0s",
    "allowed_origins": [],
    "created_at": "2026-11-24T08:30:12.645624Z",
    "last_used_at": None,
    "revoked_at": None,
}
PUBLISHABLE_KEY: dict[str, Any] = API_KEY | {
    "id": "560f1761-c3f0-495d-936d-8dfb7a977978",
    "kind": "publishable",
    "name": "Signing widget",
    "display_prefix": "pk_test_YV0iV9",
    "allowed_origins": ["https://app.acme.example"],
    "created_at": "2026-11-02T10:04:51.506119Z",
    "last_used_at": "2026-11-24T08:12:40.776894Z",
}

SUB_TENANT_BODY: dict[str, Any] = {
    "legal_name": "Boulangerie Martin SARL",
    "identifier": "BOUL1",
    "siren": "443061841",
    "siret": "44306184100013",
    "vat_id": "FR11443061841",
    "legal_form": "SARL au capital de 8 000 €",
    "rcs": "RCS Lyon 443 061 841",
    "address_line1": "5 rue du Four",
    "postcode": "69001",
    "city": "Lyon",
    "country": "FR",
    "email": "compta@boulangerie-martin.example",
    "iban": "FR7610107001011234567890129",
    "bic": "BREDFRPP",
    "external_ref": "crm-00042",
}
SUB_TENANT: dict[str, Any] = {
    "id": SUB_TENANT_ID,
    **SUB_TENANT_BODY,
    "address_line2": "",
    "is_active": True,
    "created_at": "2026-11-24T08:41:32.656960Z",
}

EXAMPLES: dict[str, OperationExamples] = {
    "me_retrieve": OperationExamples(
        responses={
            "200": Example(
                "sandbox",
                "A sandbox secret key of Acme SAS",
                {"tenant": TENANT, "livemode": False, "auth_mode": "secret", "sub_tenant": None},
            )
        }
    ),
    "api_keys_list": OperationExamples(
        responses={
            "200": Example(
                "page",
                "The tenant's keys in this mode",
                {"data": [API_KEY, PUBLISHABLE_KEY], "next_cursor": None},
            )
        }
    ),
    "api_keys_create": OperationExamples(
        request=Example("secret", "A secret key for the ERP", {"kind": "secret", "name": "ERP integration"}),
        responses={
            "201": Example(
                "created",
                "The key itself is in this answer only",
                API_KEY | {"key": "sk_test_NCNF0s08IHANiXubPuMBAwc74SGug6tVtuHInVgEd7c"},
            )
        },
    ),
    "api_keys_retrieve": OperationExamples(
        responses={"200": Example("key", "A key (never its secret)", API_KEY)}
    ),
    "api_keys_revoke_create": OperationExamples(
        responses={
            "200": Example(
                "revoked",
                "Revoked: refused from now on",
                API_KEY | {"revoked_at": "2026-11-24T16:02:09.118034Z"},
            )
        }
    ),
    "sub_tenants_list": OperationExamples(
        responses={
            "200": Example("page", "The partner's sub-tenants", {"data": [SUB_TENANT], "next_cursor": None})
        }
    ),
    "sub_tenants_create": OperationExamples(
        request=Example("bakery", "A customer of the partner, with its legal profile", SUB_TENANT_BODY),
        responses={"201": Example("created", "The sub-tenant", SUB_TENANT)},
    ),
    "sub_tenants_retrieve": OperationExamples(
        responses={"200": Example("bakery", "A sub-tenant", SUB_TENANT)}
    ),
    "sub_tenants_partial_update": OperationExamples(
        request=Example(
            "move", "A new address", {"address_line1": "14 place Bellecour", "postcode": "69002"}
        ),
        responses={
            "200": Example(
                "moved",
                "The sub-tenant with its new address",
                SUB_TENANT | {"address_line1": "14 place Bellecour", "postcode": "69002"},
            )
        },
    ),
}
