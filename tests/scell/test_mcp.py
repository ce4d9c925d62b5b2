"""``manage.py mcp``: the MCP server for AI agents, driven in a real process by the SDK's stdio client.

The server runs in a subprocess against this test's database, so the tests are transactional (their rows
are committed and visible to it) and need PostgreSQL (pytest-django's SQLite test database lives in
memory, out of a subprocess's reach)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
import weasyprint
from django.conf import settings
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from scell.models import ApiKey

REPO = Path(__file__).resolve().parents[2]
TOOLS = {
    "create_invoice",
    "validate_invoice",
    "validate_document",
    "issue_invoice",
    "download_invoice",
    "list_invoices",
    "create_signature_request",
    "get_signature_request",
    "get_credits",
}

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="the server subprocess needs the PostgreSQL test database",
    ),
]


def _database_url() -> str:
    db = settings.DATABASES["default"]  # at test time NAME is the test database
    credentials = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    at = f"{credentials}@" if credentials else ""
    return f"postgres://{at}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _env(key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.pop("REDIS_URL", None)
    root = Path(settings.MEDIA_ROOT).parent  # the per-test folder of tests/conftest.py
    return env | {
        "SCELL_API_KEY": key,
        "DATABASE_URL": _database_url(),
        "SCELL_DRAMATIQ_BROKER": "stub",
        "MEDIA_ROOT": str(root / "media"),
        "ARCHIVE_ROOT": str(root / "mcp-archive"),
        "BACKUPS_ROOT": str(root / "mcp-backups"),
    }


def _drive(
    key: str,
    steps: Callable[[ClientSession], Awaitable[Any]],
    *args: str,
    env: dict[str, str] | None = None,
    errlog: Any = None,
) -> Any:
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(REPO / "manage.py"), "mcp", *args],
        env=_env(key) | (env or {}),
        cwd=str(REPO),
    )

    async def session() -> Any:
        client_streams = stdio_client(params, errlog=errlog or sys.stderr)
        async with client_streams as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            return await steps(client)

    return anyio.run(session)


def _json(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, result.content[0].text
    return json.loads(result.content[0].text)


def _error(result: CallToolResult) -> dict[str, Any]:
    """The API error object a failed tool carries (after FastMCP's "Error executing tool x: ")."""
    assert result.isError
    return json.loads(result.content[0].text.split(": ", 1)[1])


def test_an_agent_invoices_signs_and_reads_credits(seller, draft_body) -> None:
    pdf = weasyprint.HTML(string="<p>Bon de commande</p>").write_pdf()
    bad = json.loads(json.dumps(draft_body))
    bad["lines"][0]["quantity"] = "two"

    async def steps(client: ClientSession) -> dict[str, Any]:
        seen: dict[str, Any] = {"tools": {tool.name for tool in (await client.list_tools()).tools}}
        draft = _json(await client.call_tool("create_invoice", {"draft": draft_body}))
        seen["draft"] = draft
        seen["validated"] = _json(await client.call_tool("validate_invoice", {"invoice_id": draft["id"]}))
        seen["issued"] = _json(await client.call_tool("issue_invoice", {"invoice_id": draft["id"]}))
        seen["listed"] = _json(await client.call_tool("list_invoices", {"status": "issued"}))
        seen["cii"] = await client.call_tool("download_invoice", {"invoice_id": draft["id"], "format": "cii"})
        seen["facturx"] = await client.call_tool("download_invoice", {"invoice_id": draft["id"]})
        seen["reissue"] = await client.call_tool("issue_invoice", {"invoice_id": draft["id"]})
        seen["bad_draft"] = await client.call_tool("create_invoice", {"draft": bad})
        later = _json(
            await client.call_tool("create_invoice", {"draft": {**draft_body, "issue_date": "2099-01-01"}})
        )
        seen["later"] = await client.call_tool("validate_invoice", {"invoice_id": later["id"]})
        seen["bad_document"] = await client.call_tool(
            "validate_document", {"content_base64": base64.b64encode(b"<nope/>").decode()}
        )
        seen["credits"] = _json(await client.call_tool("get_credits", {}))
        signer = {"name": "Jeanne Martin", "email": "jeanne@client.example", "phone": "+33612345678"}
        created = _json(
            await client.call_tool(
                "create_signature_request",
                {
                    "title": "Bon de commande",
                    "document_base64": base64.b64encode(pdf).decode(),
                    "signers": [signer],
                },
            )
        )
        seen["signature_created"] = created
        seen["signature"] = _json(
            await client.call_tool("get_signature_request", {"request_id": created["id"]})
        )
        return seen

    seen = _drive(seller.keys["sk_test"], steps)

    assert seen["tools"] == TOOLS
    draft, issued = seen["draft"], seen["issued"]
    assert draft["status"] == "draft"
    assert draft["number"].startswith("DRAFT-")
    assert draft["livemode"] is False
    assert seen["validated"] == {"id": draft["id"], "number": draft["number"], "valid": True, "issues": []}
    assert issued["id"] == draft["id"]
    assert issued["status"] == "issued"
    assert issued["number"].startswith("SELL1-")
    assert [row["id"] for row in seen["listed"]["data"]] == [draft["id"]]
    assert seen["listed"]["next_cursor"] is None

    cii = seen["cii"]
    assert not cii.isError
    resource = cii.content[0].resource
    assert resource.mimeType == "application/xml"
    assert resource.text.lstrip().startswith("<?xml")
    assert issued["number"] in resource.text
    facturx = seen["facturx"].content[0].resource
    assert facturx.mimeType == "application/pdf"
    assert base64.b64decode(facturx.blob).startswith(b"%PDF")

    assert _error(seen["reissue"])["code"] == "invoice_not_draft"
    bad_draft = _error(seen["bad_draft"])
    assert bad_draft["code"] == "invalid_fields"
    assert any(d["field"].endswith("quantity") for d in bad_draft["details"])
    later = _error(seen["later"])
    assert later["code"] == "validation_failed"
    assert [d["field"] for d in later["details"]] == ["issue_date"]
    assert _error(seen["bad_document"])["type"] in {"validation_error", "invalid_request_error"}

    # The tools answer what the API answers, for the same key.
    api = seller.client()
    assert seen["credits"] == api.get("/api/v1/credits").json()
    assert bad_draft == api.post("/api/v1/invoices", bad, format="json").json()["error"]
    assert seen["credits"]["livemode"] is False
    signature = seen["signature"]
    assert signature["id"] == seen["signature_created"]["id"]
    assert signature["status"] == "pending"
    assert [s["email"] for s in signature["signers"]] == ["jeanne@client.example"]
    assert seen["signature_created"]["signers"][0]["signing_url"]
    assert signature == api.get(f"/api/v1/signature-requests/{signature['id']}").json()
    assert issued == api.get(f"/api/v1/invoices/{issued['id']}").json()
    # Calls through MCP are calls of the key, as over HTTP.
    assert ApiKey.objects.get(kind="secret", livemode=False, tenant=seller.tenant).last_used_at is not None


def test_another_tenants_key_cannot_reach_the_invoice(seller, tenant_b, draft_body) -> None:
    created = seller.client().post("/api/v1/invoices", draft_body, format="json")
    assert created.status_code == 201
    invoice_id = created.json()["id"]

    async def steps(client: ClientSession) -> dict[str, Any]:
        ref = {"invoice_id": invoice_id}
        return {
            "issue": await client.call_tool("issue_invoice", ref),
            "validate": await client.call_tool("validate_invoice", ref),
            "download": await client.call_tool("download_invoice", {**ref, "format": "cii"}),
            "list": _json(await client.call_tool("list_invoices", {})),
        }

    seen = _drive(tenant_b.keys["sk_test"], steps)

    for name in ("issue", "validate", "download"):
        assert _error(seen[name])["code"] == "not_found", name
    assert seen["list"] == {"data": [], "next_cursor": None}
    assert seller.client().get(f"/api/v1/invoices/{invoice_id}").json()["status"] == "draft"


def _start(key: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "mcp", *args],
        cwd=REPO,
        env=_env(key),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_live_key_needs_the_live_flag(tenant_a) -> None:
    refused = _start(tenant_a.keys["sk_live"])
    assert refused.returncode != 0
    assert "live key" in refused.stderr
    assert refused.stdout == ""

    async def steps(client: ClientSession) -> dict[str, Any]:
        return _json(await client.call_tool("get_credits", {}))

    assert _drive(tenant_a.keys["sk_live"], steps, "--live")["livemode"] is True


def test_unknown_revoked_or_publishable_keys_are_refused(tenant_a) -> None:
    ApiKey.objects.filter(tenant=tenant_a.tenant, kind="secret", livemode=False).update(
        revoked_at="2026-01-01T00:00:00Z"
    )
    for key, code in (
        ("sk_test_" + "0" * 32, "invalid_api_key"),
        (tenant_a.keys["sk_test"], "revoked_api_key"),
        (tenant_a.keys["pk_test"], "invalid_api_key"),
        ("", "SCELL_API_KEY"),
    ):
        refused = _start(key)
        assert refused.returncode != 0, key
        assert code in refused.stderr, (key, refused.stderr)
        assert refused.stdout == ""


NOISE = """
import os, sys, threading, time

def noise():
    while True:
        time.sleep(0.01)
        if sys.stdout is not sys.__stdout__:  # once the server serves
            print("noise from print", flush=True)
            os.write(1, b"noise below Python\\n")

threading.Thread(target=noise, daemon=True).start()
"""


def test_stray_output_cannot_corrupt_the_protocol(tenant_a, tmp_path) -> None:
    """Whatever prints to stdout or writes to file descriptor 1 while the server runs (a console e-mail
    backend, a library) goes to stderr; the client still reads clean protocol messages."""
    (tmp_path / "sitecustomize.py").write_text(NOISE)

    async def steps(client: ClientSession) -> list[dict[str, Any]]:
        results = []
        for _ in range(5):
            results.append(_json(await client.call_tool("get_credits", {})))
            await anyio.sleep(0.05)
        return results

    pythonpath = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    with open(tmp_path / "stderr.txt", "w") as errlog:
        results = _drive(tenant_a.keys["sk_test"], steps, env={"PYTHONPATH": pythonpath}, errlog=errlog)
    assert [result["livemode"] for result in results] == [False] * 5
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "noise from print" in stderr and "noise below Python" in stderr
