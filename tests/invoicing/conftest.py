"""Fixtures of the invoice API tests: a French seller tenant with credits, and draft bodies."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from billing.services import credits_grant_pack

SELLER_PROFILE = {
    "siret": "73282932000074",
    "vat_id": "FR44732829320",
    "legal_form": "SAS au capital de 10 000 €",
    "address_line1": "12 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
    "country": "FR",
    "email": "facturation@seller.example",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPP",
}

DRAFT: dict[str, Any] = {
    "type": "invoice",
    "format": "facturx",
    "profile": "en16931",
    "due_date": "2026-12-24",
    "currency": "EUR",
    "buyer": {
        "name": "Client SARL",
        "siren": "552100554",
        "vat_id": "FR40552100554",
        "email": "ap@client.example",
        "address": {"line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR"},
    },
    "delivery": {
        "date": "2026-11-20",
        "address": {"line1": "3 quai Ouest", "postcode": "69002", "city": "Lyon", "country": "FR"},
    },
    "operation_category": "services",
    "vat_on_debits": False,
    "purchase_order_ref": "PO-4711",
    "delivery_note_ref": "BL-2026-118",
    "contract_ref": None,
    "lines": [
        {
            "description": "Consulting",
            "quantity": "2",
            "unit_code": "HUR",
            "unit_price": "450.00",
            "vat_category": "S",
            "vat_rate": "20.00",
            "allowances": [],
            "charges": [],
        }
    ],
    "allowances": [],
    "charges": [],
    "payment": {
        "means_code": "58",
        "iban": "FR7630006000011234567890189",
        "bic": "AGRIFRPP",
        "terms": "30 days net",
    },
    "notes": [],
    "sub_tenant": None,
}


@pytest.fixture
def seller(make_tenant):
    fixture = make_tenant("SELL1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    credits_grant_pack(tenant=fixture.tenant, amount=Decimal("50.00"))
    return fixture


@pytest.fixture
def draft_body() -> dict[str, Any]:
    return copy.deepcopy(DRAFT)
