"""The fiscal archive is write once: S3 Object Lock COMPLIANCE (moto in server mode) and local disk."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import uuid

import pytest
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile

from archive.storage import WormFileSystemStorage, WormS3Storage, WormViolation
from tests.archive import moto_server

moto_s3 = moto_server.moto_s3

RETAIN = dt.date(2037, 11, 24)


@pytest.fixture
def locked_bucket(moto_s3):
    return moto_s3.create_bucket(f"archive-{uuid.uuid4().hex[:12]}", object_lock=True)


@pytest.fixture
def s3_storage(moto_s3, locked_bucket):
    return WormS3Storage(**moto_s3.storage_options(locked_bucket))


def test_s3_write_sets_compliance_retention(moto_s3, s3_storage, locked_bucket) -> None:
    body = b"%PDF-1.7 facture"
    name = s3_storage.save_with_retention("t1/test/2026/F-1/F-1.pdf", ContentFile(body), RETAIN)
    assert name == "t1/test/2026/F-1/F-1.pdf"
    head = moto_s3.client().head_object(Bucket=locked_bucket, Key=f"archive/{name}")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].date() == RETAIN
    assert head["ContentLength"] == len(body)
    with s3_storage.open(name, "rb") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(body).digest()


def test_s3_delete_of_locked_version_is_refused(moto_s3, s3_storage, locked_bucket) -> None:
    name = s3_storage.save_with_retention("t1/test/2026/F-2/F-2.pdf", ContentFile(b"v1"), RETAIN)
    client = moto_s3.client()
    key = f"archive/{name}"
    version = client.head_object(Bucket=locked_bucket, Key=key)["VersionId"]
    # Even the bucket owner cannot delete a COMPLIANCE-locked version before its date...
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # ...not even by asking to bypass governance (that only works for GOVERNANCE mode).
    with pytest.raises(ClientError):
        client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)
    # The storage refuses a plain delete too (on a versioned bucket it would hide the document).
    with pytest.raises(WormViolation):
        s3_storage.delete(name)
    assert client.get_object(Bucket=locked_bucket, Key=key, VersionId=version)["Body"].read() == b"v1"
    versions = client.list_object_versions(Bucket=locked_bucket, Prefix=key)
    assert [v["VersionId"] for v in versions["Versions"]] == [version]
    assert not versions.get("DeleteMarkers")


def test_s3_overwrite_is_refused(moto_s3, s3_storage, locked_bucket) -> None:
    name = s3_storage.save_with_retention("t1/test/2026/F-3/F-3.pdf", ContentFile(b"original"), RETAIN)
    with pytest.raises(WormViolation):
        s3_storage.save_with_retention(name, ContentFile(b"forged"), RETAIN)
    # Django's own save() never picks another name nor overwrites.
    with pytest.raises(WormViolation):
        s3_storage.save(name, ContentFile(b"forged"))
    assert s3_storage.get_available_name(name) == name
    client = moto_s3.client()
    versions = client.list_object_versions(Bucket=locked_bucket, Prefix=f"archive/{name}")["Versions"]
    assert len(versions) == 1
    with s3_storage.open(name, "rb") as handle:
        assert handle.read() == b"original"


def test_s3_conditional_put_closes_the_race(moto_s3, s3_storage, locked_bucket, monkeypatch) -> None:
    # Two writers both saw "absent": the second PUT carries If-None-Match: * and S3 answers 412.
    name = s3_storage.save_with_retention("t1/test/2026/F-4/F-4.pdf", ContentFile(b"first"), RETAIN)
    monkeypatch.setattr(s3_storage, "exists", lambda name: False)
    with pytest.raises(WormViolation):
        s3_storage.save_with_retention(name, ContentFile(b"second"), RETAIN)
    versions = moto_s3.client().list_object_versions(Bucket=locked_bucket, Prefix=f"archive/{name}")
    assert len(versions["Versions"]) == 1


def test_s3_save_without_a_date_still_locks(moto_s3, s3_storage, locked_bucket) -> None:
    name = s3_storage.save("misc/note.txt", ContentFile(b"x"))
    head = moto_s3.client().head_object(Bucket=locked_bucket, Key=f"archive/{name}")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].date() >= dt.date.today().replace(year=dt.date.today().year + 10)


def test_disk_worm_refuses_overwrite_and_delete(tmp_path) -> None:
    storage = WormFileSystemStorage(location=tmp_path)
    name = storage.save_with_retention("t1/live/2026/F-1/F-1.pdf", ContentFile(b"original"), RETAIN)
    path = tmp_path / name
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert storage.get_available_name(name) == name
    with pytest.raises(WormViolation, match="cannot be overwritten"):
        storage.save(name, ContentFile(b"forged"))
    with pytest.raises(WormViolation, match="cannot be deleted"):
        storage.delete(name)
    assert path.read_bytes() == b"original"
    # No temporary file left behind, no renamed twin.
    assert sorted(p.name for p in path.parent.iterdir()) == ["F-1.pdf"]


def test_disk_worm_race_on_the_same_name(tmp_path, monkeypatch) -> None:
    storage = WormFileSystemStorage(location=tmp_path)
    storage.save("a/b.xml", ContentFile(b"first"))
    # The second writer passed the existence check: link() still refuses, atomically.
    monkeypatch.setattr(os.path, "lexists", lambda path: False)
    with pytest.raises(WormViolation):
        storage.save("a/b.xml", ContentFile(b"second"))
    assert (tmp_path / "a" / "b.xml").read_bytes() == b"first"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.xml"]
