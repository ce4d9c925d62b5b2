"""``manage.py support_user add alice@scell.example``: let a person into Django admin as support staff.

support_user add <email>      staff status and the "Support" group (the user must exist)
support_user remove <email>   out of the group; staff status goes too, unless superuser
support_user list             who is in the group
support_user sync             give the group its permissions again (after a model was added)
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from scell.admin_base import SUPPORT_GROUP, support_group_sync
from scell.models import User


class Command(BaseCommand):
    help = "Add or remove a support agent (Django admin, group Support), list them, or sync the group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=["add", "remove", "list", "sync"])
        parser.add_argument("email", nargs="?", help="the user's e-mail (add, remove)")

    def handle(self, *args: Any, **options: Any) -> None:
        operation, email = options["operation"], options["email"]
        if operation == "sync":
            group = support_group_sync()
            self.stdout.write(
                self.style.SUCCESS(f"Group {SUPPORT_GROUP}: {group.permissions.count()} permissions.")
            )
            return
        if operation == "list":
            group = Group.objects.filter(name=SUPPORT_GROUP).first()
            users = group.user_set.order_by("email") if group else User.objects.none()
            for user in users:
                flags = (
                    "" if user.is_staff and user.is_active else " (no admin access: not staff or inactive)"
                )
                self.stdout.write(f"{user.email}{flags}")
            if not users:
                self.stdout.write("Nobody is in the Support group.")
            return
        if not email:
            raise CommandError(f"Give the e-mail of the user to {operation}.")
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user {email!r}: they sign up (or are invited) first.")
        with transaction.atomic():
            group = support_group_sync()
            if operation == "add":
                user.is_staff = True
                user.save(update_fields=["is_staff"])
                user.groups.add(group)
                message = f"{user.email} is support staff (group {SUPPORT_GROUP})."
            else:
                user.groups.remove(group)
                if not user.is_superuser:
                    user.is_staff = False
                    user.save(update_fields=["is_staff"])
                message = f"{user.email} is no longer in the group {SUPPORT_GROUP}."
        self.stdout.write(self.style.SUCCESS(message))
