"""The dashboard in French and English: French by default for French tenants, the switcher remembered on
the user, and a French catalogue that covers every string of the sources and is compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from scell.models import Membership, User

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "fr" / "LC_MESSAGES"
PASSWORD = "correct-horse-battery-9"


def _signed_in(tenant, *, language: str = "") -> tuple[Client, User]:
    user = User.objects.create_user(f"{language or 'default'}-{tenant.identifier}@example.com", PASSWORD)
    user.language = language
    user.save(update_fields=["language"])
    Membership.objects.create(user=user, tenant=tenant, role="member")
    client = Client()
    client.force_login(user)
    return client, user


def test_french_tenant_reads_french_by_default(tenant_a) -> None:
    client, _user = _signed_in(tenant_a.tenant)
    page = client.get("/")
    assert page["Content-Language"] == "fr"
    assert '<html lang="fr">' in page.content.decode()
    assert "Factures" in page.content.decode() and "Se déconnecter" in page.content.decode()


def test_other_tenants_read_english_by_default(make_tenant) -> None:
    belgian = make_tenant("BELGA", legal_name="Belga SRL", country="BE").tenant
    client, _user = _signed_in(belgian)
    page = client.get("/")
    assert page["Content-Language"] == "en"
    assert "Invoices" in page.content.decode() and "Sign out" in page.content.decode()


def test_switcher_is_remembered_on_the_user_across_devices(tenant_a) -> None:
    client, user = _signed_in(tenant_a.tenant)
    answer = client.post("/language/", {"language": "en", "next": "/invoices/"})
    assert answer.status_code == 302 and answer["Location"] == "/invoices/"
    assert answer.cookies["django_language"].value == "en"
    user.refresh_from_db()
    assert user.language == "en"
    other_device = Client()
    other_device.force_login(user)
    assert other_device.get("/")["Content-Language"] == "en"

    client.post("/language/", {"language": "fr", "next": "/"})
    assert client.get("/")["Content-Language"] == "fr"


def test_switcher_refuses_unknown_languages_and_foreign_redirects(tenant_a) -> None:
    client, user = _signed_in(tenant_a.tenant, language="en")
    answer = client.post("/language/", {"language": "xx", "next": "https://evil.example/"})
    assert answer.status_code == 302 and answer["Location"] == "/"
    user.refresh_from_db()
    assert user.language == "en"
    assert client.get("/language/").status_code == 405


def test_signed_out_pages_follow_the_cookie_then_the_browser(db) -> None:
    client = Client()
    assert "Mot de passe" in client.get("/login/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    client.post("/language/", {"language": "en", "next": "/login/"})
    assert "Password" in client.get("/login/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()


def _gettext_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        pytest.fail(f"GNU gettext's {name} is missing: scripts/setup --dev installs it")
    return tool


def test_french_catalogue_covers_every_string_and_is_compiled(tmp_path: Path) -> None:
    """Extract the sources' strings as scripts/i18n does, into a copy of the catalogue, and require a
    translation for each; the committed django.mo must be the compilation of the committed django.po."""
    work = tmp_path / "extract"
    (work / "locale" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(CATALOGUE / "django.po", work / "locale" / "fr" / "LC_MESSAGES" / "django.po")
    sources = ["scell", "invoicing", "signatures", "billing", "archive", "webhooks", "pdp", "templates"]
    for name in sources:
        (work / name).symlink_to(ROOT / name)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "makemessages",
            "-l",
            "fr",
            "--no-location",
            "--no-obsolete",
            "--symlinks",
        ],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    extracted = work / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    msgattrib = _gettext_tool("msgattrib")
    untranslated = subprocess.run(
        [msgattrib, "--untranslated", "--no-obsolete", str(extracted)], capture_output=True, text=True
    ).stdout
    fuzzy = subprocess.run(
        [msgattrib, "--only-fuzzy", "--no-obsolete", str(extracted)], capture_output=True, text=True
    ).stdout
    assert untranslated == "", f"untranslated strings (run scripts/i18n, translate):\n{untranslated[:3000]}"
    assert fuzzy == "", f"fuzzy translations to review:\n{fuzzy[:3000]}"

    compiled = tmp_path / "django.mo"
    subprocess.run(
        [_gettext_tool("msgfmt"), "--check", "-o", str(compiled), str(CATALOGUE / "django.po")], check=True
    )
    assert compiled.read_bytes() == (CATALOGUE / "django.mo").read_bytes(), "run scripts/i18n to compile"
