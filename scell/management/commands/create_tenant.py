"""``manage.py create_tenant --name "Acme SAS" --siren 732829320 --identifier ACME1 --json``"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scell.models import User
from scell.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with its sandbox and live keys (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="legal name")
        parser.add_argument("--siren", required=True)
        parser.add_argument("--identifier", required=True, help="5 characters, prefix of invoice numbers")
        parser.add_argument("--siret", default="")
        parser.add_argument("--vat-id", default="")
        parser.add_argument("--legal-form", default="")
        parser.add_argument("--address", default="", help="street address")
        parser.add_argument("--postcode", default="")
        parser.add_argument("--city", default="")
        parser.add_argument("--country", default="FR")
        parser.add_argument("--email", default="")
        parser.add_argument("--iban", default="")
        parser.add_argument("--bic", default="")
        parser.add_argument("--owner-email", default="", help="make this user (created if needed) admin")
        parser.add_argument("--owner-password", default="", help="password of a newly created owner")
        parser.add_argument("--allowed-origin", action="append", default=[], help="for the publishable keys")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options["owner_email"]:
            owner = User.objects.filter(email=options["owner_email"].lower()).first()
            if owner is None:
                owner = User.objects.create_user(options["owner_email"], options["owner_password"] or None)
        try:
            created = tenant_create(
                legal_name=options["name"],
                siren=options["siren"],
                identifier=options["identifier"],
                siret=options["siret"],
                vat_id=options["vat_id"],
                legal_form=options["legal_form"],
                address_line1=options["address"],
                postcode=options["postcode"],
                city=options["city"],
                country=options["country"],
                email=options["email"],
                iban=options["iban"],
                bic=options["bic"],
                owner=owner,
                allowed_origins=options["allowed_origin"],
            )
        except ValidationError as exc:
            messages = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"Invalid tenant: {messages}") from exc
        out = {"tenant_id": str(created.tenant.id), "identifier": created.tenant.identifier}
        out |= {name: issued.raw for name, issued in created.keys.items()}
        if options["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(self.style.SUCCESS(f"Tenant {created.tenant} created. Keys (shown once):"))
        for name, value in out.items():
            self.stdout.write(f"  {name:16} {value}")
