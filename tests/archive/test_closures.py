"""Daily closures against local OpenTimestamps calendars: root, .ots, upgrade, quorum, proof bundles,
API isolation, the dashboard page, and the standard ``ots`` tool reading what we produce."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import uuid
import zipfile
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import dramatiq
import pytest
import time_machine
from asn1crypto import cms
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from opentimestamps.core.notary import BitcoinBlockHeaderAttestation, PendingAttestation
from opentimestamps.core.op import OpSHA256

from archive import closure_tasks, merkle
from archive.closures import (
    ClosureError,
    closure_create,
    closure_timestamp,
    closure_upgrade,
    closures_due,
    proof_bundle,
)
from archive.models import ChainCheck, ChainEntry, Closure
from archive.timestamping import TimestampingError, load
from scell.tenancy import Scope
from tests.archive.calendar_server import CalendarServer, TsaServer

pytestmark = pytest.mark.usefixtures("require_postgres")

OTS = Path(sys.executable).with_name("ots")
NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)  # winter: Europe/Paris is UTC+1
YESTERDAY = date(2026, 1, 19)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def calendars(settings):
    servers = [CalendarServer().start() for _ in range(3)]
    settings.OTS_CALENDAR_URLS = [s.url for s in servers]
    settings.OTS_MIN_CALENDARS = 2
    settings.OTS_TIMEOUT = 5
    settings.TSA_URL = ""
    yield servers
    for server in servers:
        server.stop()


def chain_key(tenant, livemode: bool = False) -> str:
    return f"{tenant.pk}/-/{'live' if livemode else 'test'}"


def add_entries(
    tenant, times: list[datetime], *, livemode: bool = False, source_ids=None
) -> list[ChainEntry]:
    """Append links as the database triggers would: ``hash = sha256(prev_hash || payload)``. The chain
    tables refuse direct writes, so the triggers are switched off for these inserts only (superuser)."""
    key = chain_key(tenant, livemode)
    last = ChainEntry.objects.filter(chain_key=key).order_by("-seq").first()
    seq, prev = (last.seq, bytes(last.hash)) if last else (0, bytes(32))
    rows = []
    for i, when in enumerate(times):
        seq += 1
        source_id = source_ids[i] if source_ids else str(uuid.uuid4())
        payload = f'{{"id": "{source_id}", "n": {seq}}}'.encode()
        digest = hashlib.sha256(prev + payload).digest()
        rows.append(
            ChainEntry(
                chain_key=key,
                tenant=tenant,
                livemode=livemode,
                seq=seq,
                source_table="invoicing_invoice",
                source_id=source_id,
                payload=payload,
                prev_hash=prev,
                hash=digest,
                created_at=when,
            )
        )
        prev = digest
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        ChainEntry.objects.bulk_create(rows)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = origin")
    return rows


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def reachable(timestamp, wanted: bytes) -> bool:
    stack = [timestamp]
    while stack:
        node = stack.pop()
        if node.msg == wanted:
            return True
        stack.extend(node.ops.values())
    return False


# --- Closing a day ----------------------------------------------------------------------------------
def test_close_day_root_range_and_idempotence(tenant_a, clock) -> None:
    tenant = tenant_a.tenant
    day_entries = add_entries(tenant, [at(YESTERDAY, 8, i) for i in range(7)])
    add_entries(tenant, [at(NOW.date(), 9)])  # today: not part of yesterday's closure
    closure = closure_create(chain_key=chain_key(tenant), day=YESTERDAY)
    assert closure is not None
    assert closure.leaf_count == 7
    assert (closure.first_seq, closure.last_seq) == (1, 7)
    assert bytes(closure.root) == merkle.merkle_root([bytes(e.hash) for e in day_entries])
    assert (closure.tenant_id, closure.livemode, closure.sub_tenant_id) == (tenant.pk, False, None)
    again = closure_create(chain_key=chain_key(tenant), day=YESTERDAY)
    assert again.pk == closure.pk
    assert Closure.objects.filter(chain_key=chain_key(tenant)).count() == 1


def test_only_days_that_are_over(tenant_a, clock) -> None:
    add_entries(tenant_a.tenant, [at(NOW.date(), 8)])
    with pytest.raises(ClosureError):
        closure_create(chain_key=chain_key(tenant_a.tenant), day=NOW.date())
    assert closure_create(chain_key=chain_key(tenant_a.tenant), day=YESTERDAY) is None


def test_days_follow_the_business_time_zone(tenant_a, clock) -> None:
    tenant = tenant_a.tenant
    before = date(2026, 1, 18)
    # 22:30 UTC is 23:30 in Paris (the 18th); 23:30 UTC is already 00:30 on the 19th in Paris.
    add_entries(tenant, [at(before, 22, 30), at(before, 23, 30), at(YESTERDAY, 10)])
    first = closure_create(chain_key=chain_key(tenant), day=before)
    second = closure_create(chain_key=chain_key(tenant), day=YESTERDAY)
    assert (first.first_seq, first.last_seq, first.leaf_count) == (1, 1, 1)
    assert (second.first_seq, second.last_seq, second.leaf_count) == (2, 3, 2)
    with pytest.raises(ClosureError):  # an earlier day cannot be closed after a later one
        closure_create(chain_key=chain_key(tenant), day=date(2026, 1, 17))


def test_daily_actor_closes_every_chain_and_catches_up(tenant_a, tenant_b, clock) -> None:
    add_entries(tenant_a.tenant, [at(date(2026, 1, 17), 10), at(YESTERDAY, 10), at(NOW.date(), 10)])
    add_entries(tenant_b.tenant, [at(YESTERDAY, 11)], livemode=True)
    broker = dramatiq.get_broker()
    broker.flush_all()
    closure_tasks.close_days.fn()
    days = sorted(Closure.objects.values_list("chain_key", "day", "leaf_count"))
    assert days == sorted(
        [
            (chain_key(tenant_a.tenant), date(2026, 1, 17), 1),
            (chain_key(tenant_a.tenant), YESTERDAY, 1),
            (chain_key(tenant_b.tenant, True), YESTERDAY, 1),
        ]
    )
    assert broker.queues["archive"].qsize() == 3  # one timestamping job per new closure
    closure_tasks.close_days.fn()  # idempotent
    assert Closure.objects.count() == 3
    broker.flush_all()


# --- OpenTimestamps ---------------------------------------------------------------------------------
@pytest.fixture
def closed(tenant_a, clock):
    entries = add_entries(tenant_a.tenant, [at(YESTERDAY, 9, i) for i in range(5)])
    closure = closure_create(chain_key=chain_key(tenant_a.tenant), day=YESTERDAY)
    return SimpleNamespace(closure=closure, entries=entries, tenant=tenant_a)


def test_timestamp_then_upgrade_to_bitcoin(closed, calendars) -> None:
    closure = closure_timestamp(closed.closure)
    assert closure.ots_status == Closure.OtsStatus.PENDING
    detached = load(bytes(closure.ots_proof))
    assert detached.file_hash_op == OpSHA256()
    assert detached.file_digest == bytes(closure.root)
    pending = {
        att.uri for _msg, att in detached.timestamp.all_attestations() if isinstance(att, PendingAttestation)
    }
    assert pending == {s.url for s in calendars}
    # The calendars saw a nonce-blinded commitment, never the root itself.
    for server in calendars:
        assert server.submissions and bytes(closure.root) not in server.submissions

    assert closure_upgrade(closure).ots_status == Closure.OtsStatus.PENDING  # not mined yet: 404s

    for server in calendars:
        server.mine(840_000)
    closure = closure_upgrade(closure)
    assert closure.ots_status == Closure.OtsStatus.COMPLETE
    assert closure.bitcoin_block == 840_000
    assert closure.upgraded_at is not None
    upgraded = load(bytes(closure.ots_proof))
    assert upgraded.file_digest == bytes(closure.root)
    bitcoin = [
        (m, a)
        for m, a in upgraded.timestamp.all_attestations()
        if isinstance(a, BitcoinBlockHeaderAttestation)
    ]
    assert len(bitcoin) == 3 and {a.height for _m, a in bitcoin} == {840_000}


def test_one_calendar_down_two_are_enough(closed, calendars) -> None:
    calendars[1].down = True
    closure = closure_timestamp(closed.closure)
    detached = load(bytes(closure.ots_proof))
    uris = {att.uri for _m, att in detached.timestamp.all_attestations()}
    assert uris == {calendars[0].url, calendars[2].url}
    assert calendars[1].url in closure.meta["calendar_errors"]


def test_two_calendars_down_stays_pending_then_retried(closed, calendars) -> None:
    calendars[0].down = calendars[2].down = True
    with pytest.raises(TimestampingError):
        closure_timestamp(closed.closure)
    closure = Closure.objects.get(pk=closed.closure.pk)
    assert closure.ots_proof is None
    assert closure.ots_status == Closure.OtsStatus.PENDING
    assert closure.meta["ots_attempts"] == 1 and "ots_error" in closure.meta
    # The hourly run submits it again once the calendars are back.
    calendars[0].down = calendars[2].down = False
    closure_tasks.upgrade_closures.fn()
    closure.refresh_from_db()
    assert load(bytes(closure.ots_proof)).file_digest == bytes(closure.root)
    assert closure.meta["ots_attempts"] == 2 and "ots_error" not in closure.meta


def test_rfc3161_token_over_the_root(closed, calendars, settings) -> None:
    tsa = TsaServer().start()
    try:
        settings.TSA_URL = tsa.url
        closure = closure_timestamp(closed.closure)
    finally:
        tsa.stop()
    token = cms.ContentInfo.load(bytes(closure.tsa_token))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(bytes(closure.root)).digest()
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert closure.ots_proof  # both seals
    row = closed.tenant.client("sk_test").get(f"/api/v1/archive/closures/{closure.pk}").json()
    assert base64.b64decode(row["tsa_token"]) == bytes(closure.tsa_token)


def test_tsa_down_does_not_hold_the_opentimestamps_seal(closed, calendars, settings) -> None:
    tsa = TsaServer().start()
    tsa.down = True
    try:
        settings.TSA_URL = tsa.url
        closure = closure_timestamp(closed.closure)
    finally:
        tsa.stop()
    assert closure.tsa_token is None and "503" in closure.meta["tsa_error"]
    assert load(bytes(closure.ots_proof)).file_digest == bytes(closure.root)


# --- Proof bundles ----------------------------------------------------------------------------------
def test_bundle_commits_to_the_entry_hash_and_reaches_the_root(closed, calendars) -> None:
    closure = closure_timestamp(closed.closure)
    for server in calendars:
        server.mine(840_001)
    closure = closure_upgrade(closure)
    scope = Scope(tenant=closed.tenant.tenant, livemode=False)
    for entry in closed.entries:
        invoice = SimpleNamespace(pk=entry.source_id, tenant_id=scope.tenant.pk, livemode=False)
        bundle = proof_bundle(scope=scope, invoice=invoice)
        data = bundle.as_dict()
        assert data["entry"]["hash"] == bytes(entry.hash).hex()
        assert data["closure"]["root"] == bytes(closure.root).hex()
        # The JSON path alone replays to the root.
        node = bytes(entry.hash)
        for step in data["merkle_path"]:
            sibling = bytes.fromhex(step["sibling"])
            node = hashlib.sha256(sibling + node if step["side"] == "left" else node + sibling).digest()
        assert node == bytes(closure.root)
        detached = load(base64.b64decode(data["ots"]))
        assert detached.file_digest == bytes(entry.hash)
        assert reachable(detached.timestamp, bytes(closure.root))
        # Every calendar commitment and block attestation hangs below the entry hash.
        attested = list(detached.timestamp.all_attestations())
        assert {type(a) for _m, a in attested} == {PendingAttestation, BitcoinBlockHeaderAttestation}
        for msg, _att in attested:
            assert reachable(detached.timestamp, msg)


def test_bundle_before_closure_has_no_ots(tenant_a, clock) -> None:
    (entry,) = add_entries(tenant_a.tenant, [at(NOW.date(), 9)])
    scope = Scope(tenant=tenant_a.tenant, livemode=False)
    invoice = SimpleNamespace(pk=entry.source_id, tenant_id=tenant_a.tenant.pk, livemode=False)
    data = proof_bundle(scope=scope, invoice=invoice).as_dict()
    assert data["closure"] is None and data["ots"] is None


def test_standard_ots_tool_reads_our_proofs(closed, calendars, tmp_path) -> None:
    closure = closure_timestamp(closed.closure)
    closure_file = tmp_path / "closure.ots"
    closure_file.write_bytes(bytes(closure.ots_proof))
    info = subprocess.run([OTS, "info", closure_file], capture_output=True, text=True, check=True)
    assert f"File sha256 hash: {bytes(closure.root).hex()}" in info.stdout
    for server in calendars:
        assert f"PendingAttestation('{server.url}')" in info.stdout

    # `ots upgrade` itself fetches the Bitcoin attestation from our (whitelisted) local calendars.
    for server in calendars:
        server.mine(840_002)
    whitelist = [arg for s in calendars for arg in ("--whitelist", s.url)]
    subprocess.run(
        [OTS, "--no-cache", "--no-default-whitelist", *whitelist, "upgrade", closure_file],
        capture_output=True,
        text=True,
        check=True,
    )
    assert load(closure_file.read_bytes()).file_digest == bytes(closure.root)
    assert (
        "BitcoinBlockHeaderAttestation(840002)"
        in subprocess.run([OTS, "info", closure_file], capture_output=True, text=True, check=True).stdout
    )

    # The per-invoice bundle: `ots verify entry.bin.ots` finds entry.bin next to it, replays the Merkle
    # path and stops at the block (no Bitcoin node here: it names the block and the Merkle root).
    closure_upgrade(closure)
    entry = closed.entries[2]
    scope = Scope(tenant=closed.tenant.tenant, livemode=False)
    invoice = SimpleNamespace(pk=entry.source_id, tenant_id=scope.tenant.pk, livemode=False)
    archive = zipfile.ZipFile(io.BytesIO(proof_bundle(scope=scope, invoice=invoice).as_zip()))
    archive.extractall(tmp_path / "bundle")
    entry_bin = (tmp_path / "bundle" / "entry.bin").read_bytes()
    assert hashlib.sha256(entry_bin).digest() == bytes(entry.hash)
    info = subprocess.run(
        [OTS, "info", tmp_path / "bundle" / "entry.bin.ots"], capture_output=True, text=True, check=True
    )
    assert f"File sha256 hash: {bytes(entry.hash).hex()}" in info.stdout
    verify = subprocess.run(
        [OTS, "--no-cache", "--no-bitcoin", "verify", tmp_path / "bundle" / "entry.bin.ots"],
        capture_output=True,
        text=True,
    )
    assert "does not match" not in verify.stderr, verify.stderr
    blocks = [
        msg
        for msg, att in load(
            (tmp_path / "bundle" / "entry.bin.ots").read_bytes()
        ).timestamp.all_attestations()
        if isinstance(att, BitcoinBlockHeaderAttestation)
    ]
    assert len(blocks) == 3
    for msg in blocks:  # ots prints the Merkle root as Bitcoin does, byte-reversed
        assert f"check that Bitcoin block 840002 has merkleroot {msg[::-1].hex()}" in verify.stderr


# --- API and dashboard ------------------------------------------------------------------------------
def test_api_lists_closures_and_serves_ots_per_tenant(closed, calendars, tenant_b) -> None:
    closure = closure_timestamp(closed.closure)
    client = closed.tenant.client("sk_test")
    listing = client.get("/api/v1/archive/closures")
    assert listing.status_code == 200, listing.content
    (row,) = listing.json()["data"]
    assert row["id"] == closure.pk and row["day"] == YESTERDAY.isoformat()
    assert row["root"] == bytes(closure.root).hex() and row["status"] == "pending"
    assert row["links"]["ots"] == f"/api/v1/archive/closures/{closure.pk}/ots"
    assert listing.json()["next_cursor"] is None

    ots = client.get(row["links"]["ots"])
    assert ots.status_code == 200
    assert ots["Content-Type"] == "application/octet-stream"
    assert f'filename="{tenant_a_chain_file(closure)}"' in ots["Content-Disposition"]
    assert ots.content == bytes(closure.ots_proof)

    # Live keys see live closures only; another tenant sees nothing and gets 404s.
    assert closed.tenant.client("sk_live").get("/api/v1/archive/closures").json()["data"] == []
    other = tenant_b.client("sk_test")
    assert other.get("/api/v1/archive/closures").json()["data"] == []
    for url in (f"/api/v1/archive/closures/{closure.pk}", row["links"]["ots"]):
        answer = other.get(url)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def tenant_a_chain_file(closure: Closure) -> str:
    return f"{closure.chain_key.replace('/', '_')}-{closure.day.isoformat()}.ots"


def test_ots_of_an_unstamped_closure_is_a_conflict(closed) -> None:
    answer = closed.tenant.client("sk_test").get(f"/api/v1/archive/closures/{closed.closure.pk}/ots")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "closure_not_timestamped"


def test_proof_endpoint_and_isolation(make_tenant, calendars, clock) -> None:
    from tests.invoicing.conftest import DRAFT, SELLER_PROFILE

    seller = make_tenant("SELL1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    outsider = make_tenant("OUTS1", legal_name="Outsider SAS")
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", DRAFT, format="json")
    assert draft.status_code == 201, draft.content
    invoice_id = draft.json()["id"]
    # A draft is not chained (the trigger chains issued invoices): stand in for the trigger.
    add_entries(
        seller.tenant,
        [at(YESTERDAY, 9), at(YESTERDAY, 10), at(YESTERDAY, 11)],
        source_ids=["x", invoice_id, "y"],
    )
    closure_timestamp(closure_create(chain_key=chain_key(seller.tenant), day=YESTERDAY))

    answer = client.get(f"/api/v1/archive/proofs/{invoice_id}")
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["entry"]["seq"] == 2 and data["closure"]["day"] == YESTERDAY.isoformat()
    assert load(base64.b64decode(data["ots"])).file_digest.hex() == data["entry"]["hash"]

    bundle = client.get(f"/api/v1/archive/proofs/{invoice_id}?format=zip")
    assert bundle["Content-Type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(bundle.content)).namelist())
    assert names == {"entry.bin", "entry.bin.ots", "proof.json", "README.txt"}

    for other in (outsider.client("sk_test"), seller.client("sk_live")):
        missing = other.get(f"/api/v1/archive/proofs/{invoice_id}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/archive/proofs/not-a-uuid").status_code == 404


def test_dashboard_archive_page(closed, calendars, client) -> None:
    closure = closure_timestamp(closed.closure)
    ChainCheck.objects.create(
        chain_key=closure.chain_key, tenant=closed.tenant.tenant, result="ok", entries_checked=5
    )
    client.force_login(closed.tenant.owner)
    page = client.get("/archive/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="archive-status"' in html and "healthy" in html
    assert "5 entries" in html
    assert YESTERDAY.isoformat() in html
    assert f"/archive/closures/{closure.pk}.ots" in html
    assert "/archive/export/pdf.zip" in html and "/archive/export/json.zip" in html
    assert 'href="/archive/"' in html  # the nav link


# --- End to end, with the database triggers -------------------------------------------------------
def test_issued_invoice_is_closed_timestamped_and_provable(seller, draft_body, calendars) -> None:
    from tests.archive.conftest import issue_via_api

    client = seller.client("sk_test")
    invoice = issue_via_api(client, draft_body)
    entry = ChainEntry.objects.get(source_table="invoicing_invoice", source_id=invoice["id"])
    assert bytes(entry.hash) == hashlib.sha256(bytes(entry.prev_hash) + bytes(entry.payload)).digest()
    day = entry.created_at.astimezone(zoneinfo.ZoneInfo(django_settings.BUSINESS_TIME_ZONE)).date()
    assert client.get(f"/api/v1/archive/proofs/{invoice['id']}").json()["closure"] is None  # day not over

    with time_machine.travel(timezone.now() + timedelta(days=1), tick=True):
        made = closures_due()
    (closure,) = [c for c in made if c.chain_key == entry.chain_key]
    assert closure.day == day and closure.first_seq <= entry.seq <= closure.last_seq
    # Lines and events of the invoice are chained too: the closure seals all of them.
    hashes = (
        ChainEntry.objects.filter(chain_key=entry.chain_key).order_by("seq").values_list("hash", flat=True)
    )
    assert closure.leaf_count == len(hashes) > 1
    assert bytes(closure.root) == merkle.merkle_root([bytes(h) for h in hashes])
    closure_timestamp(closure)
    for server in calendars:
        server.mine(850_000)
    assert closure_upgrade(closure).ots_status == Closure.OtsStatus.COMPLETE

    data = client.get(f"/api/v1/archive/proofs/{invoice['id']}").json()
    assert data["entry"]["hash"] == bytes(entry.hash).hex()
    assert data["entry"]["payload_sha256"] == hashlib.sha256(bytes(entry.payload)).hexdigest()
    assert data["closure"]["status"] == "complete" and data["closure"]["bitcoin_block"] == 850_000
    detached = load(base64.b64decode(data["ots"]))
    assert detached.file_digest == bytes(entry.hash)
    assert reachable(detached.timestamp, bytes(closure.root))
    assert any(
        isinstance(att, BitcoinBlockHeaderAttestation) for _m, att in detached.timestamp.all_attestations()
    )
