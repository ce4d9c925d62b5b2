"""The dashboard's archive page: chain status and last health check of the mode, a check run from the
page, daily closures with their .ots proof and leaves, per-invoice proof bundles and the export of the
whole archive, all made by the same code as the API's and for the current tenant and mode only."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile

import pytest
from django.test import Client

from archive import merkle
from archive.closures import closure_create, closure_timestamp
from archive.models import ChainCheck, Closure
from archive.timestamping import load
from scell.models import Membership, User
from tests.archive import test_closures as closure_tests
from tests.archive.conftest import issue_via_api
from tests.archive.test_closures import YESTERDAY, add_entries, at, chain_key
from tests.scell.test_dashboard_home import by_testid

pytestmark = pytest.mark.usefixtures("require_postgres")

PAGE = "/archive/"

# Fixtures shared with the closure tests: local OpenTimestamps calendars, a frozen clock, a closed day.
calendars = closure_tests.calendars
clock = closure_tests.clock
closed = closure_tests.closed


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member(tenant, role: str) -> Client:
    user = User.objects.create_user(f"{role}@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return signed_in(user)


def unzip(content: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(content))


def test_page_shows_status_last_check_of_the_mode_and_closures(closed, calendars) -> None:
    closure = closure_timestamp(closed.closure)
    tenant = closed.tenant.tenant
    ChainCheck.objects.create(chain_key=closure.chain_key, tenant=tenant, result="ok", entries_checked=5)
    # A later check of the live chain is not the sandbox's last check.
    ChainCheck.objects.create(
        chain_key=chain_key(tenant, True), tenant=tenant, result="broken", first_broken_seq=3
    )
    response = signed_in(closed.tenant.owner).get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert by_testid(page, "archive-status") == "healthy"
    assert by_testid(page, "last-check").endswith(": intact, 5 entries.")
    assert page.count('data-testid="closure"') == 1
    assert YESTERDAY.isoformat() in page and bytes(closure.root).hex()[:16] in page
    assert f'href="/archive/closures/{closure.pk}.ots"' in page
    assert f'href="/archive/closures/{closure.pk}.json"' in page
    assert 'href="/archive/export/pdf.zip"' in page and 'href="/archive/export/json.zip"' in page
    assert 'data-testid="check-now"' in page


def test_ots_download_is_the_closure_proof(closed, calendars) -> None:
    closure = closure_timestamp(closed.closure)
    response = signed_in(closed.tenant.owner).get(f"/archive/closures/{closure.pk}.ots")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{closure.chain_key.replace("/", "_")}-{YESTERDAY.isoformat()}.ots"'
    )
    assert response.content == bytes(closure.ots_proof)
    assert load(response.content).file_digest == bytes(closure.root)
    # The same bytes as the API's.
    api = closed.tenant.client("sk_test").get(f"/api/v1/archive/closures/{closure.pk}/ots")
    assert api.content == response.content


def test_a_closure_not_timestamped_yet_says_so(closed) -> None:
    response = signed_in(closed.tenant.owner).get(f"/archive/closures/{closed.closure.pk}.ots")
    assert response.status_code == 409
    assert "This closure is not timestamped yet; try again later." in response.content.decode()
    assert signed_in(closed.tenant.owner).get(f"/archive/closures/{closed.closure.pk}.tsr").status_code == 404


def test_closure_leaves_recompute_the_sealed_root(closed) -> None:
    response = signed_in(closed.tenant.owner).get(f"/archive/closures/{closed.closure.pk}.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    record = json.loads(response.content)
    assert record["leaves"] == [bytes(e.hash).hex() for e in closed.entries]
    assert merkle.merkle_root([bytes.fromhex(h) for h in record["leaves"]]).hex() == record["root"]
    assert (record["day"], record["first_seq"], record["last_seq"], record["leaf_count"]) == (
        YESTERDAY.isoformat(),
        1,
        5,
        5,
    )


def test_closures_of_another_tenant_or_mode_are_not_found(closed, calendars, make_tenant) -> None:
    closure = closure_timestamp(closed.closure)
    outsider = make_tenant("OUTS1", legal_name="Outsider SAS")
    for suffix in ("ots", "json"):
        assert signed_in(outsider.owner).get(f"/archive/closures/{closure.pk}.{suffix}").status_code == 404
    live = signed_in(closed.tenant.owner)
    live.post("/switch-mode/", {"mode": "live"})
    assert live.get(f"/archive/closures/{closure.pk}.ots").status_code == 404
    assert 'data-testid="closure"' not in live.get(PAGE).content.decode()
    assert "/archive/closures/" not in signed_in(outsider.owner).get(PAGE).content.decode()


def test_proof_bundle_download(make_tenant, calendars, clock) -> None:
    from tests.invoicing.conftest import DRAFT, SELLER_PROFILE

    seller = make_tenant("SELL1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    draft = seller.client("sk_test").post("/api/v1/invoices", DRAFT, format="json")
    invoice_id = draft.json()["id"]
    client = signed_in(seller.owner)
    # A draft is not chained: the page says so and nothing is downloaded.
    response = client.get(f"/archive/proofs/{invoice_id}.zip")
    assert response.status_code == 409
    assert "This invoice has no chain entry (drafts are not chained)." in response.content.decode()

    # Stand in for the trigger, then close and timestamp the day (as test_closures does).
    add_entries(
        seller.tenant,
        [at(YESTERDAY, 9), at(YESTERDAY, 10), at(YESTERDAY, 11)],
        source_ids=["x", invoice_id, "y"],
    )
    closure_timestamp(closure_create(chain_key=chain_key(seller.tenant), day=YESTERDAY))
    response = client.get(f"/archive/proofs/{invoice_id}.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="proof-{invoice_id}.zip"'
    bundle = unzip(response.content)
    assert set(bundle.namelist()) == {"entry.bin", "entry.bin.ots", "proof.json", "README.txt"}
    proof = json.loads(bundle.read("proof.json"))
    assert proof["entry"]["seq"] == 2 and proof["closure"]["day"] == YESTERDAY.isoformat()
    assert hashlib.sha256(bundle.read("entry.bin")).hexdigest() == proof["entry"]["hash"]
    api = unzip(seller.client("sk_test").get(f"/api/v1/archive/proofs/{invoice_id}?format=zip").content)
    assert json.loads(api.read("proof.json")) == proof

    outsider = make_tenant("OUTS1", legal_name="Outsider SAS")
    assert signed_in(outsider.owner).get(f"/archive/proofs/{invoice_id}.zip").status_code == 404
    assert client.get(f"/archive/proofs/{uuid.uuid4()}.zip").status_code == 404
    assert client.get("/archive/proofs/not-a-uuid.zip").status_code == 404


def test_issued_invoices_are_listed_with_their_proof_and_searchable(seller, draft_body) -> None:
    first = issue_via_api(seller.client("sk_test"), draft_body)
    second = issue_via_api(seller.client("sk_test"), draft_body)
    client = signed_in(seller.owner)
    page = client.get(PAGE).content.decode()
    assert page.count('data-testid="proof-row"') == 2
    assert f'href="/archive/proofs/{first["id"]}.zip"' in page
    found = client.get(PAGE, {"number": second["number"]}).content.decode()
    assert found.count('data-testid="proof-row"') == 1 and second["number"] in found
    assert "No issued invoice with this number." in client.get(PAGE, {"number": "NOPE"}).content.decode()
    # Issued today: the day is not closed, the bundle has the entry but no closure yet.
    bundle = unzip(client.get(f"/archive/proofs/{first['id']}.zip").content)
    assert json.loads(bundle.read("proof.json"))["closure"] is None


@pytest.mark.django_db(transaction=True)
def test_export_streams_the_same_zip_as_the_api(seller, draft_body, make_tenant) -> None:
    mine = [issue_via_api(seller.client("sk_test"), draft_body) for _ in range(2)]
    client = signed_in(seller.owner)
    response = client.get("/archive/export/json.zip")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="scell-archive-SELL1-test-json-')
    archive = unzip(b"".join(response.streaming_content))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == "json" and manifest["livemode"] is False
    assert sorted(f["number"] for f in manifest["files"]) == sorted(i["number"] for i in mine)
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"]
    api = seller.client("sk_test").get("/api/v1/archive/export?format=json")
    api_manifest = json.loads(unzip(b"".join(api.streaming_content)).read("manifest.json"))
    assert [f["sha256"] for f in api_manifest["files"]] == [f["sha256"] for f in manifest["files"]]

    pdf = unzip(b"".join(client.get("/archive/export/pdf.zip").streaming_content))
    names = [n for n in pdf.namelist() if n.endswith(".pdf")]
    assert len(names) == 2 and all(pdf.read(n).startswith(b"%PDF") for n in names)

    assert client.get("/archive/export/xml.zip").status_code == 404
    outsider = make_tenant("OUTS1", legal_name="Outsider SAS")
    theirs = json.loads(
        unzip(b"".join(signed_in(outsider.owner).get("/archive/export/json.zip").streaming_content)).read(
            "manifest.json"
        )
    )
    assert theirs["count"] == 0


def test_check_now_records_a_check_and_reports_it(seller, draft_body) -> None:
    issue_via_api(seller.client("sk_test"), draft_body)
    client = signed_in(seller.owner)
    response = client.post("/archive/check/")
    assert response.status_code == 302 and response["Location"] == PAGE
    check = ChainCheck.objects.get(tenant=seller.tenant)
    assert check.result == ChainCheck.Result.OK and check.chain_key == chain_key(seller.tenant)
    page = client.get(PAGE).content.decode()
    assert f"The chain is intact: {check.entries_checked} entries checked." in page
    assert f"intact, {check.entries_checked} entries." in by_testid(page, "last-check")


def test_read_only_member_downloads_but_cannot_run_a_check(closed, calendars) -> None:
    closure = closure_timestamp(closed.closure)
    client = member(closed.tenant.tenant, Membership.Role.READ_ONLY)
    page = client.get(PAGE).content.decode()
    assert 'data-testid="check-now"' not in page
    assert client.get(f"/archive/closures/{closure.pk}.ots").status_code == 200
    response = client.post("/archive/check/")
    assert response.status_code == 403
    assert "Your role in this tenant is read-only." in response.content.decode()
    assert not ChainCheck.objects.exists()
    assert Closure.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_is_sent_to_login() -> None:
    for url in (PAGE, "/archive/export/json.zip", f"/archive/proofs/{uuid.uuid4()}.zip"):
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
