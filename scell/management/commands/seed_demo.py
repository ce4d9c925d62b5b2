"""``manage.py seed_demo``: the demo tenant of the README's first command (idempotent).

Prints the dashboard URL, the login and fresh sandbox keys (earlier demo keys stay valid)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from scell.models import ApiKey, Membership, Tenant, User
from scell.services import api_key_create, tenant_create

DEMO = {
    "legal_name": "Scell Démo SAS",
    "siren": "732829320",
    "siret": "73282932000074",
    "identifier": "DEMO1",
    "vat_id": "FR44732829320",
    "legal_form": "SAS au capital de 10 000 €",
    "address_line1": "10 rue de la Demo",
    "postcode": "75001",
    "city": "Paris",
    "country": "FR",
    "email": "billing@demo.scell.localhost",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPP",
}


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenant and print its URL, login and sandbox keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="demo@scell.localhost")
        parser.add_argument("--password", default="demo-scell-2026")
        parser.add_argument("--url", default=settings.SITE_URL)
        parser.add_argument("--json", action="store_true")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=options["email"]).first()
        if user is None:
            user = User.objects.create_user(options["email"], options["password"], full_name="Demo Admin")
        else:
            user.set_password(options["password"])
            user.save(update_fields=["password"])
        tenant = Tenant.objects.filter(identifier=DEMO["identifier"]).first()
        if tenant is None:
            tenant = tenant_create(**DEMO, owner=user, allowed_origins=[options["url"]]).tenant
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Membership.Role.ADMIN})
        sk = api_key_create(
            tenant=tenant, kind=ApiKey.Kind.SECRET, livemode=False, name="demo", created_by=user
        )
        pk = api_key_create(
            tenant=tenant,
            kind=ApiKey.Kind.PUBLISHABLE,
            livemode=False,
            name="demo",
            allowed_origins=[options["url"]],
            created_by=user,
        )
        info = {
            "url": options["url"],
            "login": options["email"],
            "password": options["password"],
            "identifier": tenant.identifier,
            "sk_test": sk.raw,
            "pk_test": pk.raw,
        }
        if options["json"]:
            self.stdout.write(json.dumps(info))
            return
        url = options["url"]
        self.stdout.write(
            "\n".join(
                [
                    "",
                    self.style.SUCCESS("Scell is ready with a demo tenant."),
                    f"  Dashboard   {url}/   (login {info['login']} / {info['password']})",
                    f"  API docs    {url}/api/v1/docs/",
                    f"  Admin       {url}/admin/  (create a support user: python manage.py createsuperuser)",
                    f"  sk_test     {info['sk_test']}",
                    f"  pk_test     {info['pk_test']}",
                    f'  Try: curl -H "X-API-Key: {info["sk_test"]}" {url}/api/v1/me',
                    "",
                ]
            )
        )
