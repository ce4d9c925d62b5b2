"""A local OpenTimestamps calendar for the tests: the calendar HTTP protocol on 127.0.0.1, in a thread.

- ``POST /digest`` (the digest as body): appends the calendar's own ops (a nonce, SHA256) and answers
  the serialized Timestamp ending in ``PendingAttestation(<its url>)``;
- ``GET /timestamp/<hex commitment>``: 404 while pending; once the test calls ``mine(height)``, a
  Timestamp from the commitment to a ``BitcoinBlockHeaderAttestation(height)`` (the commitment is
  hashed with a stand-in for the rest of a block's Merkle tree).

``down = True`` makes it answer 503 to everything, like a calendar in trouble.

``TsaServer`` is an RFC 3161 time-stamping authority on loopback: a throw-away RSA key and certificate,
a TSTInfo over the request's imprint and nonce, signed as CMS SignedData (asn1crypto + cryptography).
"""

from __future__ import annotations

import binascii
import datetime
import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opentimestamps.core.notary import BitcoinBlockHeaderAttestation, PendingAttestation
from opentimestamps.core.op import OpAppend, OpPrepend, OpSHA256
from opentimestamps.core.serialize import BytesSerializationContext
from opentimestamps.core.timestamp import Timestamp


def serialize(timestamp: Timestamp) -> bytes:
    ctx = BytesSerializationContext()
    timestamp.serialize(ctx)
    return ctx.getbytes()


class CalendarServer:
    """One calendar; ``url`` is what the client is configured with and what its attestations name."""

    def __init__(self) -> None:
        self.pending: dict[bytes, None] = {}
        self.mined: dict[bytes, Timestamp] = {}
        self.submissions: list[bytes] = []
        self.down = False
        self.lock = threading.Lock()
        calendar = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def _answer(
                self, status: int, body: bytes, content_type: str = "application/octet-stream"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                digest = self.rfile.read(length)
                if calendar.down:
                    return self._answer(503, b"calendar down", "text/plain")
                if self.path != "/digest" or not 1 <= len(digest) <= 64:
                    return self._answer(400, b"bad request", "text/plain")
                self._answer(200, serialize(calendar.submit(digest)))

            def do_GET(self) -> None:
                if calendar.down:
                    return self._answer(503, b"calendar down", "text/plain")
                if not self.path.startswith("/timestamp/"):
                    return self._answer(404, b"Not found", "text/plain")
                try:
                    commitment = binascii.unhexlify(self.path[len("/timestamp/") :])
                except binascii.Error:
                    return self._answer(400, b"bad hex", "text/plain")
                with calendar.lock:
                    mined = calendar.mined.get(commitment)
                    known = commitment in calendar.pending
                if mined is not None:
                    return self._answer(200, serialize(mined))
                reason = b"Pending confirmation in Bitcoin blockchain" if known else b"Not found"
                self._answer(404, reason, "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def submit(self, digest: bytes) -> Timestamp:
        self.submissions.append(digest)
        timestamp = Timestamp(digest)
        # As the real calendars: a per-request nonce, then SHA256; the result is the commitment.
        commitment = timestamp.ops.add(OpAppend(os.urandom(8))).ops.add(OpSHA256())
        commitment.attestations.add(PendingAttestation(self.url))
        with self.lock:
            self.pending[commitment.msg] = None
        return timestamp

    def mine(self, height: int) -> None:
        """Put every pending commitment in 'block' ``height``."""
        with self.lock:
            for commitment in list(self.pending):
                timestamp = Timestamp(commitment)
                tip = timestamp.ops.add(OpPrepend(os.urandom(32))).ops.add(OpSHA256())
                tip = tip.ops.add(OpSHA256())  # sha256d, like a Bitcoin Merkle node
                tip.attestations.add(BitcoinBlockHeaderAttestation(height))
                self.mined[commitment] = timestamp
                del self.pending[commitment]

    def start(self) -> CalendarServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TsaServer:
    """POST an RFC 3161 TimeStampReq, get a granted TimeStampResp (or 503 while ``down``)."""

    def __init__(self) -> None:
        self.down = False
        self.requests = 0
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Scell test TSA")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.certificate = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if tsa.down:
                    status, answer, kind = 503, b"down", "text/plain"
                else:
                    status, answer, kind = 200, tsa.answer(body), "application/timestamp-reply"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsr"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request_der: bytes) -> bytes:
        self.requests += 1
        request = tsp.TimeStampReq.load(request_der)
        info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.2.3.4.1",
                "message_imprint": request["message_imprint"],
                "serial_number": self.requests,
                "gen_time": datetime.datetime.now(datetime.UTC),
                "nonce": request["nonce"].native,
            }
        )
        info_der = info.dump()
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(info_der).digest()]}),
            ]
        )
        issuer_serial = cms.IssuerAndSerialNumber(
            {"issuer": self.certificate.issuer, "serial_number": self.certificate.serial_number}
        )
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier({"issuer_and_serial_number": issuer_serial}),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
                "signature": self.key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256()),
            }
        )
        content = {"content_type": "tst_info", "content": core.ParsableOctetString(info_der)}
        signed = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": content,
                "certificates": [self.certificate],
                "signer_infos": [signer],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed})
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def start(self) -> TsaServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
