"""A moto S3 server on loopback (server mode: real HTTP, as boto3 talks to AWS), for the WORM tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-3"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MotoS3:
    endpoint_url: str

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION, **CREDENTIALS)

    def create_bucket(self, name: str, *, object_lock: bool) -> str:
        self.client().create_bucket(
            Bucket=name,
            CreateBucketConfiguration={"LocationConstraint": REGION},
            ObjectLockEnabledForBucket=object_lock,
        )
        return name

    def storage_options(self, bucket: str) -> dict[str, Any]:
        """django-storages options for a storage on this server."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "access_key": CREDENTIALS["aws_access_key_id"],
            "secret_key": CREDENTIALS["aws_secret_access_key"],
            "location": "archive",
        }


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoS3(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
