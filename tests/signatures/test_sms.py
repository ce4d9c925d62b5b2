"""SMS backends: console, locmem, and the HTTP gateway against a real server on loopback."""

from __future__ import annotations

import io
import json
import logging
import socket
import time

import pytest

from signatures import sms
from signatures.sms import (
    ConsoleSmsBackend,
    HttpGatewaySmsBackend,
    LocmemSmsBackend,
    SmsError,
    SmsMessage,
    get_sms_backend,
    mask_phone,
    send_sms,
)
from tests.webhooks.receiver import Answer, Receiver

PHONE = "+33612345678"
CODE_BODY = "Scell : votre code de signature est 482913"
KEY = "smsgw_test_0123456789abcdef"


@pytest.fixture
def gateway(settings):
    with Receiver(Answer(200, b'{"id": "msg_42", "status": "queued"}')) as receiver:
        settings.SIGNATURE_SMS_BACKEND = "signatures.sms.HttpGatewaySmsBackend"
        settings.SIGNATURE_SMS_GATEWAY_URL = receiver.url
        settings.SIGNATURE_SMS_GATEWAY_KEY = KEY
        settings.SIGNATURE_SMS_SENDER = "ScellTest"
        settings.SIGNATURE_SMS_TIMEOUT = 5.0
        settings.DEBUG = False
        yield receiver


@pytest.fixture
def locmem(settings):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- message, backend selection ---------------------------------------------------------------------
def test_message_requires_e164():
    with pytest.raises(ValueError, match=r"E\.164"):
        SmsMessage(to="0612345678", body="x")
    with pytest.raises(ValueError):
        SmsMessage(to=PHONE, body="")


def test_default_backend_is_console(settings):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.ConsoleSmsBackend"
    assert isinstance(get_sms_backend(), ConsoleSmsBackend)
    del settings.SIGNATURE_SMS_BACKEND
    assert isinstance(get_sms_backend(), ConsoleSmsBackend)


def test_backend_from_dotted_path(settings):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    assert isinstance(get_sms_backend(), LocmemSmsBackend)
    assert isinstance(get_sms_backend("signatures.sms.HttpGatewaySmsBackend"), HttpGatewaySmsBackend)


# --- console, locmem ---------------------------------------------------------------------------------
def test_console_writes_to_its_stream_and_logs_without_the_body(caplog):
    stream = io.StringIO()
    caplog.set_level(logging.INFO, logger="signatures.sms")
    result = ConsoleSmsBackend(stream=stream).send(SmsMessage(to=PHONE, body=CODE_BODY, reference="otp_1"))
    assert result == ""
    assert stream.getvalue() == f"SMS to {PHONE}: {CODE_BODY}\n"
    assert "otp_1" in caplog.text
    assert "482913" not in caplog.text
    assert PHONE not in caplog.text


def test_locmem_collects(locmem):
    first = send_sms(to=PHONE, body="code 111111", reference="otp_1")
    second = send_sms(to="+4915112345678", body="code 222222")
    assert first and second and first != second
    assert locmem == [
        SmsMessage(to=PHONE, body="code 111111", reference="otp_1"),
        SmsMessage(to="+4915112345678", body="code 222222", reference=""),
    ]


# --- HTTP gateway ------------------------------------------------------------------------------------
def test_http_posts_json_with_bearer_and_returns_the_id(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    assert send_sms(to=PHONE, body=CODE_BODY, reference="otp_7") == "msg_42"
    [request] = gateway.requests
    assert request.method == "POST"
    assert request.path == "/hooks"
    assert request.header("Authorization") == f"Bearer {KEY}"
    assert request.header("Content-Type") == "application/json"
    assert json.loads(request.body) == {
        "to": PHONE,
        "body": CODE_BODY,
        "reference": "otp_7",
        "sender": "ScellTest",
    }
    # Neither the code nor the key reaches the logs.
    assert "482913" not in caplog.text
    assert KEY not in caplog.text


def test_http_2xx_without_id_returns_empty(gateway):
    gateway.script(Answer(202, b"accepted"))
    assert send_sms(to=PHONE, body=CODE_BODY) == ""
    gateway.script(Answer(200, b'["not", "an", "object"]'))
    assert send_sms(to=PHONE, body=CODE_BODY) == ""


def test_http_500_is_an_sms_error_with_status_and_truncated_reason(gateway, caplog):
    echo = f"upstream failure for body {CODE_BODY!r} " + "x" * 1000
    gateway.script(Answer(500, echo.encode()))
    with pytest.raises(SmsError) as excinfo:
        send_sms(to=PHONE, body=CODE_BODY, reference="otp_8")
    message = str(excinfo.value)
    assert "HTTP 500" in message
    assert "upstream failure" in message
    assert len(message) < 300
    # The gateway echoed the body back: the error message must still be safe to log.
    assert "482913" not in message
    assert "482913" not in caplog.text


def test_http_redirect_is_not_followed(gateway):
    gateway.script(Answer(302, b"", headers={"Location": "http://127.0.0.1:1/elsewhere"}))
    with pytest.raises(SmsError, match="HTTP 302"):
        send_sms(to=PHONE, body=CODE_BODY)
    assert len(gateway.requests) == 1


def test_http_connection_refused(settings, gateway):
    settings.SIGNATURE_SMS_GATEWAY_URL = f"http://127.0.0.1:{unused_port()}/send"
    with pytest.raises(SmsError, match="did not answer: connection refused"):
        send_sms(to=PHONE, body=CODE_BODY)


def test_http_slow_gateway_times_out(settings, gateway):
    settings.SIGNATURE_SMS_TIMEOUT = 0.3
    gateway.script(Answer(200, b'{"id": "late"}', delay=2.0))
    started = time.monotonic()
    with pytest.raises(SmsError, match="timeout"):
        send_sms(to=PHONE, body=CODE_BODY)
    assert time.monotonic() - started < 1.5
    # Sent once: a timed-out message is never retried (the gateway may have sent it).
    assert len(gateway.requests) == 1


@pytest.mark.parametrize(
    "url", ["http://sms.example.com/send", "http://10.0.0.5/send", "ftp://sms.example.com/", "https:///x"]
)
def test_http_refuses_plain_http_to_other_hosts(settings, gateway, url):
    settings.SIGNATURE_SMS_GATEWAY_URL = url
    with pytest.raises(SmsError, match="http"):
        send_sms(to=PHONE, body=CODE_BODY)
    assert gateway.requests == []


def test_http_refuses_missing_configuration(settings, gateway):
    settings.SIGNATURE_SMS_GATEWAY_KEY = ""
    with pytest.raises(SmsError, match="KEY"):
        send_sms(to=PHONE, body=CODE_BODY)
    settings.SIGNATURE_SMS_GATEWAY_URL = ""
    with pytest.raises(SmsError, match="URL"):
        send_sms(to=PHONE, body=CODE_BODY)
    assert gateway.requests == []


def test_http_to_localhost_by_name_is_allowed(settings, gateway):
    settings.SIGNATURE_SMS_GATEWAY_URL = gateway.url_for("localhost")
    assert send_sms(to=PHONE, body=CODE_BODY) == "msg_42"


# --- mask_phone --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+33612345678", "+33 6•• ••• •78"),
        ("+447700900123", "+44 7•• ••• ••23"),
        ("+12025550143", "+1 2•• ••• ••43"),
        ("+4915112345678", "+49 1•• ••• ••• 78"),
        ("+352621123456", "+352 6•• ••• •56"),
        ("+590690001122", "+590 6•• ••• •22"),
        ("0612345678", "••••••••78"),
        ("", ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_mask_phone_hides_the_middle_digits():
    masked = mask_phone("+33612345678")
    assert "2345" not in masked.replace(" ", "")
    assert masked.startswith("+33 6")
    assert masked.endswith("78")
