"""The evidence log is append-only and chained: every event of a signature request is a link of its
tenant's hash chain (PostgreSQL triggers; SQLite's Python writer), the health check finds an edited
event at its exact link, and ended requests reach the WORM archive once."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import uuid
from typing import Any

import pytest
import weasyprint
from dateutil.relativedelta import relativedelta
from django.core.files.storage import storages
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from archive.chain import verify_chain
from archive.models import ArchivedDocument, ChainCheck, ChainEntry
from archive.services import chain_check
from archive.signatures import archive_signature_request
from scell.models import Tenant
from scell.tenancy import Scope
from signatures import sms
from signatures.models import SignatureEvent, SignatureRequest, Signer
from signatures.services import (
    CreatedRequest,
    SignerInput,
    otp_send,
    signature_request_cancel,
    signature_request_create,
    signature_request_finalize,
    signer_sign,
)
from tests.archive.conftest import chain_key, entries, recompute, triggers_disabled

TABLE = "signatures_signatureevent"
PHONE = "+33612345678"
IP = "203.0.113.7"
UA = "Mozilla/5.0 (X11; Linux x86_64) Scell-Test"


@functools.cache
def pdf_bytes() -> bytes:
    return weasyprint.HTML(string="<p>Hello</p>").write_pdf()


@pytest.fixture(scope="session")
def seal_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("seal")


@pytest.fixture
def signing(settings, seal_dir):
    """SMS and e-mails kept in memory; the development seal in a temporary folder, not var/."""
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(seal_dir)
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


def create_request(
    tenant: Tenant, *, livemode: bool = False, signers: list[SignerInput] | None = None, title: str = "T"
) -> CreatedRequest:
    return signature_request_create(
        scope=Scope(tenant=tenant, livemode=livemode),
        document=pdf_bytes(),
        filename="a.pdf",
        title=title,
        signers=signers or [SignerInput(name="Alice Martin", email="alice@example.com", phone=PHONE)],
    )


def sign(signer: Signer) -> Signer:
    """The whole signing act of one signer: a code by SMS, then the code with consent."""
    otp_send(signer=signer, ip=IP, user_agent=UA)
    code = re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)
    return signer_sign(signer=Signer.objects.get(pk=signer.pk), code=code, consent=True, ip=IP, user_agent=UA)


def event_ids(request: SignatureRequest) -> list[str]:
    return [
        str(pk)
        for pk in SignatureEvent.objects.filter(request=request).order_by("id").values_list("pk", flat=True)
    ]


def chained_ids(key: str) -> list[str]:
    return [e.source_id for e in entries(key) if e.source_table == TABLE]


def payload(entry: ChainEntry) -> dict[str, Any]:
    return json.loads(bytes(entry.payload))


# --- Every database: each event is a link --------------------------------------------------------
@pytest.mark.django_db
def test_each_event_appends_a_link(signing, tenant_a, tenant_b) -> None:
    created = create_request(tenant_a.tenant)
    request = created.request
    key = chain_key(tenant_a.tenant)
    assert [e.action for e in request.events.order_by("id")] == ["request.created", "signer.notified"]
    assert chained_ids(key) == event_ids(request)

    signer = request.signers.get()
    sign(signer)
    actions = [e.action for e in request.events.order_by("id")]
    assert actions[2:] == [
        "otp.sent",
        "consent.accepted",
        "otp.verified",
        "signer.signed",
        "request.all_signed",
    ]
    chain = entries(key)
    assert [e.seq for e in chain] == list(range(1, len(actions) + 1))
    assert [e.source_id for e in chain] == event_ids(request)
    assert all(e.source_table == TABLE and e.tenant_id == tenant_a.tenant.pk for e in chain)
    assert all(e.livemode is False and e.sub_tenant_id is None for e in chain)
    signed = SignatureEvent.objects.get(request=request, action="signer.signed")
    doc = payload(chain[actions.index("signer.signed")])
    assert str(doc["id"]) == str(signed.pk)
    assert doc["action"] == "signer.signed"
    assert doc["data"]["document_sha256"] == request.original_sha256
    recompute(key)
    assert verify_chain(key).ok
    # Another tenant's chain holds none of it.
    assert not ChainEntry.objects.filter(tenant=tenant_b.tenant).exists()


@pytest.mark.django_db
def test_events_refuse_update_and_delete(signing, tenant_a) -> None:
    request = create_request(tenant_a.tenant).request
    event = request.events.order_by("id").first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SignatureEvent.objects.filter(pk=event.pk).update(actor="somebody else")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SignatureEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.actor.startswith("sender")


# --- PostgreSQL: the triggers are the guarantee ----------------------------------------------------
def raw_event(request_id: Any, *, action: str = "note.added") -> int:
    """An event written with plain SQL, bypassing Django (models, signals, services)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO signatures_signatureevent (request_id, signer_id, at, action, actor, ip,
                                                      user_agent, data)
               VALUES (%s, NULL, now(), %s, 'raw sql', '198.51.100.9', '', '{"note": "é"}')
               RETURNING id""",
            [str(request_id), action],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_chain_is_committed_with_the_events(require_postgres, signing, tenant_a) -> None:
    """Real commits (and the flush of this transactional test, which must get past the TRUNCATE guard
    of the new table): the links are written in the transaction of the events."""
    request = create_request(tenant_a.tenant).request
    sign(request.signers.get())
    key = chain_key(tenant_a.tenant)
    assert chained_ids(key) == event_ids(request)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM archive_chainentry WHERE source_table = %s", [TABLE])
        assert cursor.fetchone()[0] == len(event_ids(request))
    assert verify_chain(key).ok


@pytest.mark.django_db
def test_raw_sql_event_is_chained(require_postgres, signing, tenant_a) -> None:
    request = create_request(tenant_a.tenant, livemode=False).request
    event_id = raw_event(request.pk)
    key = chain_key(tenant_a.tenant)
    last = entries(key)[-1]
    assert (last.source_table, last.source_id) == (TABLE, str(event_id))
    doc = payload(last)
    assert doc["id"] == event_id and doc["request_id"] == str(request.pk)
    assert doc["actor"] == "raw sql" and doc["ip"] == "198.51.100.9" and doc["data"] == {"note": "é"}
    assert doc["at"].endswith("+00:00")  # UTC whatever the session's time zone
    assert "é".encode() in bytes(last.payload)  # UTF-8, not escaped
    recompute(key)
    assert verify_chain(key).ok


@pytest.mark.django_db
def test_event_of_an_unknown_request_is_refused(require_postgres, signing, tenant_a) -> None:
    with pytest.raises(DatabaseError, match="names no signature request"), transaction.atomic():
        raw_event(uuid.uuid4())
    assert not ChainEntry.objects.exists()


def refused(sql: str, params: list | None = None, match: str = "append-only") -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_update_delete_truncate_refused(require_postgres, signing, tenant_a) -> None:
    request = create_request(tenant_a.tenant).request
    refused("UPDATE signatures_signatureevent SET actor = 'x' WHERE request_id = %s", [str(request.pk)])
    refused("UPDATE signatures_signatureevent SET data = '{}'")
    refused("DELETE FROM signatures_signatureevent WHERE request_id = %s", [str(request.pk)])
    # (SET CONSTRAINTS: the rows above were inserted in this test's transaction, whose deferred foreign
    # key checks would otherwise stop TRUNCATE before any trigger runs.)
    refused(
        "SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE signatures_signatureevent CASCADE",
        match="TRUNCATE of signatures_signatureevent is refused",
    )
    # Truncating the requests would take their events with them (CASCADE): refused as well.
    refused(
        "SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE signatures_signaturerequest CASCADE",
        match="TRUNCATE of .* is refused",
    )
    assert SignatureEvent.objects.filter(request=request).count() == 2
    assert chained_ids(chain_key(tenant_a.tenant)) == event_ids(request)


@pytest.mark.django_db
def test_chain_check_finds_an_edited_event_at_its_link(require_postgres, signing, tenant_a, tenant_b) -> None:
    request = create_request(tenant_a.tenant).request
    sign(request.signers.get())
    create_request(tenant_b.tenant)  # another tenant's chain must stay intact
    key = chain_key(tenant_a.tenant)

    runs = {run.result.chain_key: run.result for run in chain_check()}
    assert runs[key].ok and runs[key].entries_checked == len(event_ids(request))
    assert runs[chain_key(tenant_b.tenant)].ok

    signed = SignatureEvent.objects.get(request=request, action="signer.signed")
    target = ChainEntry.objects.get(chain_key=key, source_table=TABLE, source_id=str(signed.pk)).seq
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE signatures_signatureevent SET ip = '192.0.2.66', data = data || '{\"name\": \"Eve\"}' "
            "WHERE id = %s",
            [signed.pk],
        )
    signed.refresh_from_db()
    assert signed.ip == "192.0.2.66"  # the edit really happened

    runs = {run.result.chain_key: run.result for run in chain_check(tenant=tenant_a.tenant)}
    result = runs[key]
    assert (result.ok, result.first_broken_seq, result.entries_checked) == (False, target, target - 1)
    assert "changed" in result.reason
    check = ChainCheck.objects.filter(chain_key=key).latest("started_at")
    assert (check.result, check.first_broken_seq) == ("broken", target)
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).archive_status == Tenant.ArchiveStatus.COMPROMISED
    assert Tenant.objects.get(pk=tenant_b.tenant.pk).archive_status == Tenant.ArchiveStatus.HEALTHY


@pytest.mark.django_db
def test_deleted_event_breaks_its_link(require_postgres, signing, tenant_a) -> None:
    request = create_request(tenant_a.tenant).request
    key = chain_key(tenant_a.tenant)
    first = request.events.order_by("id").first()
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM signatures_signatureevent WHERE id = %s", [first.pk])
    result = verify_chain(key)
    assert (result.ok, result.first_broken_seq) == (False, 1)
    assert "no longer exists" in result.reason


# --- The WORM archive --------------------------------------------------------------------------------
def archived_files(root: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


@pytest.mark.django_db
def test_completed_request_is_archived_once(signing, tenant_a, settings) -> None:
    request = create_request(tenant_a.tenant, title="Bail commercial").request
    sign(request.signers.get())
    request = signature_request_finalize(request_id=str(request.pk))  # seals, then archives
    assert request.status == SignatureRequest.Status.COMPLETED
    assert request.final_sha256 and request.evidence_sha256

    docs = {d.kind: d for d in ArchivedDocument.objects.filter(signature_request=request)}
    assert set(docs) == {"signature_document", "signature_evidence"}
    ended = timezone.localdate(request.ended_at)
    prefix = f"signatures/{tenant_a.tenant.identifier}/test/{ended:%Y}/{request.pk}/"
    assert docs["signature_document"].name == prefix + "signed.pdf"
    assert docs["signature_evidence"].name == prefix + "evidence.pdf"
    assert docs["signature_document"].sha256 == request.final_sha256
    assert docs["signature_evidence"].sha256 == request.evidence_sha256
    storage = storages["archive"]
    for doc in docs.values():
        assert doc.invoice_id is None
        assert doc.tenant_id == tenant_a.tenant.pk and doc.livemode is False
        assert doc.retain_until == ended + relativedelta(years=settings.SIGNATURE_ARCHIVE_RETENTION_YEARS)
        assert doc.meta == {
            "signature_request": str(request.pk),
            "content_type": "application/pdf",
            "title": "Bail commercial",
        }
        with storage.open(doc.name, "rb") as handle:
            body = handle.read()
        assert hashlib.sha256(body).hexdigest() == doc.sha256 and len(body) == doc.size
        assert body.startswith(b"%PDF")

    # Idempotent: nothing new, nothing rewritten.
    root = settings.STORAGES["archive"]["OPTIONS"]["location"]
    files = archived_files(root)
    again = archive_signature_request(request=request)
    assert sorted(d.pk for d in again) == sorted(d.pk for d in docs.values())
    assert ArchivedDocument.objects.filter(signature_request=request).count() == 2
    assert archived_files(root) == files

    # A run that wrote the files but died before recording them: the archive keeps its bytes (WORM)
    # and the rows are recorded from them.
    ArchivedDocument.objects.filter(signature_request=request).delete()
    again = archive_signature_request(request=request)
    assert {d.kind: d.sha256 for d in again} == {k: d.sha256 for k, d in docs.items()}
    assert archived_files(root) == files


@pytest.mark.django_db
def test_cancelled_request_archives_its_evidence_only(signing, tenant_a) -> None:
    request = create_request(tenant_a.tenant).request
    with pytest.raises(ValueError, match="ended"):
        archive_signature_request(request=request)  # pending: nothing to archive yet
    signature_request_cancel(scope=Scope(tenant=tenant_a.tenant, livemode=False), request=request, reason="r")
    request = signature_request_finalize(request_id=str(request.pk))
    assert request.status == SignatureRequest.Status.CANCELLED and not request.final_sha256
    [doc] = ArchivedDocument.objects.filter(signature_request=request)
    assert doc.kind == "signature_evidence" and doc.sha256 == request.evidence_sha256
    assert [d.pk for d in archive_signature_request(request=request)] == [doc.pk]


@pytest.mark.django_db
def test_catch_up_archives_what_the_actor_missed(signing, tenant_a, monkeypatch) -> None:
    from archive import storage_tasks
    from signatures import services

    request = create_request(tenant_a.tenant).request
    signature_request_cancel(scope=Scope(tenant=tenant_a.tenant, livemode=False), request=request, reason="r")
    # The archive was unavailable when the request was finalised.
    monkeypatch.setattr(services, "_archive", lambda request: None)
    signature_request_finalize(request_id=str(request.pk))
    assert not ArchivedDocument.objects.exists()
    monkeypatch.undo()

    storage_tasks.archive_missing_signature_requests()
    assert ArchivedDocument.objects.get(signature_request=request).kind == "signature_evidence"
    storage_tasks.archive_missing_signature_requests()
    assert ArchivedDocument.objects.count() == 1
