"""Webhook delivery end to end: events written in a transaction, dispatched after commit by the
Dramatiq worker (stub broker, real worker threads) and POSTed to a real HTTP receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import dramatiq
import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from dramatiq.brokers.stub import StubBroker

from scell.services import sub_tenant_create
from scell.tenancy import Scope
from tests.webhooks.receiver import Answer, Receiver
from webhooks import services, tasks  # noqa: F401 - tasks declares the "webhooks" queue on the broker
from webhooks.delivery import event_payload
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.signing import verify_signature

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_receiver_secret_for_tests"


@pytest.fixture
def broker():
    broker = dramatiq.get_broker()
    assert isinstance(broker, StubBroker)
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker):
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()


@pytest.fixture(autouse=True)
def _fast_webhooks(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0.05, 0.05, 0.05]
    settings.WEBHOOK_TIMEOUT = 3
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = []
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def endpoint(
    tenant, url, *, livemode=False, event_types=(), sub_tenant=None, secret=SECRET
) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        tenant=tenant,
        livemode=livemode,
        sub_tenant=sub_tenant,
        url=url,
        event_types=list(event_types),
        secret=secret,
    )


def emit(tenant, type="invoice.issued", *, livemode=False, sub_tenant=None, data=None) -> Event:
    scope = Scope(tenant=tenant, livemode=livemode, sub_tenant=sub_tenant)
    with transaction.atomic():
        return services.event_emit(scope=scope, type=type, data=data or {"id": "inv_1", "number": "A-1"})


def drain(broker) -> None:
    # Generous: on a loaded 2-CPU CI machine the first delivery of a process can be slow.
    broker.join("webhooks", timeout=90_000, fail_fast=True)


def test_delivery_is_signed_and_verifies_with_the_secret(tenant_a, receiver, worker) -> None:
    ep = endpoint(tenant_a.tenant, receiver.url)
    event = emit(tenant_a.tenant, data={"id": "inv_1", "total": "12.00"})
    drain(worker)
    [request] = receiver.wait_for(1)
    assert request.path == "/hooks"
    assert request.header("Content-Type") == "application/json"
    assert request.header("User-Agent") == "Scell-Webhooks/1.0"
    assert request.header("X-Scell-Event-Id") == f"evt_{event.id.hex}"
    body = json.loads(request.body)
    assert body == {
        "id": f"evt_{event.id.hex}",
        "type": "invoice.issued",
        "created": body["created"],
        "livemode": False,
        "data": {"id": "inv_1", "total": "12.00"},
    }
    assert request.body == event_payload(Event.objects.get(pk=event.pk))
    header = request.header("X-Scell-Signature")
    assert verify_signature(request.body, header, SECRET)
    # An independent computation, as an integrator without our helper would write it.
    items = dict(part.split("=", 1) for part in header.split(","))
    signed = items["t"].encode() + b"." + request.body
    assert items["v1"] == hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert abs(int(items["t"]) - time.time()) < 30
    assert not verify_signature(request.body, header, "whsec_wrong")

    delivery = WebhookDelivery.objects.get(endpoint=ep)
    assert request.header("X-Scell-Delivery-Id") == str(delivery.id)
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempt_count == 1 and delivery.completed_at is not None
    assert delivery.last_status_code == 200
    [attempt] = delivery.attempts.all()
    assert attempt.succeeded and attempt.status_code == 200 and attempt.response_body == "ok"
    assert Event.objects.get(pk=event.pk).dispatched_at is not None


def test_rolled_back_transaction_sends_nothing(tenant_a, receiver, worker) -> None:
    endpoint(tenant_a.tenant, receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.event_emit(
            scope=Scope(tenant=tenant_a.tenant, livemode=False), type="invoice.issued", data={}
        )
        raise RuntimeError("the change failed")
    drain(worker)
    time.sleep(0.2)
    assert not Event.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


def test_receiver_down_gets_the_event_later_exactly_once(tenant_a, receiver, worker) -> None:
    receiver.script(Answer(500, b"down"), Answer(503, b"still down"))
    ep = endpoint(tenant_a.tenant, receiver.url)
    event = emit(tenant_a.tenant)
    drain(worker)
    requests = receiver.wait_for(3)
    time.sleep(0.3)  # nothing else may arrive
    assert len(receiver.requests) == 3
    assert {r.header("X-Scell-Event-Id") for r in requests} == {f"evt_{event.id.hex}"}
    assert len({r.body for r in requests}) == 1  # same bytes on every attempt
    delivery = WebhookDelivery.objects.get(endpoint=ep)
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempt_count == 3
    attempts = list(delivery.attempts.values_list("status_code", "succeeded", "response_body"))
    assert attempts == [(500, False, "down"), (503, False, "still down"), (200, True, "ok")]
    ep.refresh_from_db()
    assert ep.failing_since is None  # a success ends the failing streak


def test_retries_run_out_and_the_delivery_fails(tenant_a, worker, settings) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [0.05, 0.05]
    with Receiver(default=Answer(500, b"boom")) as receiver:
        ep = endpoint(tenant_a.tenant, receiver.url)
        emit(tenant_a.tenant)
        drain(worker)
        assert len(receiver.wait_for(3)) == 3
    delivery = WebhookDelivery.objects.get(endpoint=ep)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempt_count == 3 and delivery.next_attempt_at is None
    ep.refresh_from_db()
    assert ep.failing_since is not None and ep.enabled  # failing, not yet for 3 days


def test_event_type_filters_hold(tenant_a, worker) -> None:
    with Receiver() as issued_only, Receiver() as everything, Receiver() as credits_only:
        endpoint(tenant_a.tenant, issued_only.url, event_types=["invoice.issued"])
        endpoint(tenant_a.tenant, everything.url)
        endpoint(tenant_a.tenant, credits_only.url, event_types=["credits.purchased"])
        emit(tenant_a.tenant, "invoice.issued")
        emit(tenant_a.tenant, "invoice.paid")
        drain(worker)
        time.sleep(0.2)
        assert [json.loads(r.body)["type"] for r in issued_only.requests] == ["invoice.issued"]
        assert sorted(json.loads(r.body)["type"] for r in everything.requests) == [
            "invoice.issued",
            "invoice.paid",
        ]
        assert credits_only.requests == []


def test_sandbox_live_and_tenants_are_separated(tenant_a, tenant_b, worker, settings) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = ["127.0.0.0/8"]
    with Receiver() as sandbox, Receiver() as live, Receiver() as other_tenant:
        endpoint(tenant_a.tenant, sandbox.url, livemode=False)
        endpoint(tenant_a.tenant, live.url, livemode=True)
        endpoint(tenant_b.tenant, other_tenant.url, livemode=False)
        emit(tenant_a.tenant, "invoice.created", livemode=False)
        emit(tenant_a.tenant, "invoice.issued", livemode=True)
        drain(worker)
        time.sleep(0.2)
        assert [(json.loads(r.body)["type"], json.loads(r.body)["livemode"]) for r in sandbox.requests] == [
            ("invoice.created", False)
        ]
        assert [(json.loads(r.body)["type"], json.loads(r.body)["livemode"]) for r in live.requests] == [
            ("invoice.issued", True)
        ]
        assert other_tenant.requests == []


def test_sub_tenant_endpoints_only_get_their_sub_tenant_events(tenant_a, worker) -> None:
    def sub(identifier, siren):
        return sub_tenant_create(
            scope=Scope(tenant=tenant_a.tenant, livemode=False),
            legal_name=f"{identifier} SARL",
            identifier=identifier,
            siren=siren,
            country="FR",
        )

    martin, dupont = sub("MART1", "443061841"), sub("DUPO1", "542107651")
    with Receiver() as partner, Receiver() as martin_rx, Receiver() as dupont_rx:
        endpoint(tenant_a.tenant, partner.url)
        endpoint(tenant_a.tenant, martin_rx.url, sub_tenant=martin)
        endpoint(tenant_a.tenant, dupont_rx.url, sub_tenant=dupont)
        emit(tenant_a.tenant, "invoice.issued", sub_tenant=martin, data={"who": "martin"})
        emit(tenant_a.tenant, "invoice.issued", data={"who": "partner"})
        drain(worker)
        time.sleep(0.2)
        assert sorted(json.loads(r.body)["data"]["who"] for r in partner.requests) == ["martin", "partner"]
        assert [json.loads(r.body)["data"]["who"] for r in martin_rx.requests] == ["martin"]
        assert dupont_rx.requests == []


def test_replay_sends_the_same_event_id_again(tenant_a, receiver, worker) -> None:
    ep = endpoint(tenant_a.tenant, receiver.url)
    event = emit(tenant_a.tenant)
    drain(worker)
    original = WebhookDelivery.objects.get(endpoint=ep)
    replay = services.delivery_replay(delivery=original)
    drain(worker)
    first, second = receiver.wait_for(2)
    assert first.header("X-Scell-Event-Id") == second.header("X-Scell-Event-Id") == f"evt_{event.id.hex}"
    assert first.body == second.body
    assert second.header("X-Scell-Delivery-Id") == str(replay.id) != first.header("X-Scell-Delivery-Id")
    replay.refresh_from_db()
    assert replay.replay_of_id == original.id
    assert replay.status == WebhookDelivery.Status.SUCCEEDED


def test_private_target_refused_in_live_mode_unless_allow_listed(
    tenant_a, receiver, worker, settings
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = []
    ep = endpoint(tenant_a.tenant, receiver.url, livemode=True)
    emit(tenant_a.tenant, livemode=True)
    drain(worker)
    time.sleep(0.2)
    assert receiver.requests == []  # nothing was sent
    delivery = WebhookDelivery.objects.get(endpoint=ep)
    assert delivery.status == WebhookDelivery.Status.FAILED
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None and not attempt.succeeded
    assert "refused" in attempt.error and "127.0.0.1" in attempt.error

    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = ["127.0.0.0/8"]
    services.delivery_replay(delivery=delivery)
    drain(worker)
    assert len(receiver.wait_for(1)) == 1


def test_gone_disables_the_endpoint_and_warns_the_admins(tenant_a, receiver, worker) -> None:
    receiver.script(Answer(410, b"gone"))
    ep = endpoint(tenant_a.tenant, receiver.url)
    emit(tenant_a.tenant)
    drain(worker)
    ep.refresh_from_db()
    assert not ep.enabled and ep.disabled_at is not None and "410" in ep.disabled_reason
    delivery = WebhookDelivery.objects.get(endpoint=ep)
    assert delivery.status == WebhookDelivery.Status.CANCELLED
    assert delivery.attempts.get().status_code == 410
    assert len(receiver.requests) == 1  # no retry after 410
    [message] = mail.outbox
    assert message.to == [tenant_a.owner.email]
    assert ep.url in message.body
    # A disabled endpoint gets no more deliveries.
    emit(tenant_a.tenant)
    drain(worker)
    assert WebhookDelivery.objects.filter(endpoint=ep).count() == 1


def test_endpoint_failing_for_three_days_is_disabled(tenant_a, worker) -> None:
    with Receiver(default=Answer(500)) as receiver:
        ep = endpoint(tenant_a.tenant, receiver.url)
        WebhookEndpoint.objects.filter(pk=ep.pk).update(
            failing_since=timezone.now() - timedelta(days=3, hours=1)
        )
        emit(tenant_a.tenant)
        drain(worker)
        assert len(receiver.requests) == 1
    ep.refresh_from_db()
    assert not ep.enabled and "72 hours" in ep.disabled_reason
    assert WebhookDelivery.objects.get(endpoint=ep).status == WebhookDelivery.Status.CANCELLED
    assert len(mail.outbox) == 1


def test_rotation_signs_with_both_secrets_for_a_day(tenant_a, receiver, worker) -> None:
    ep = endpoint(tenant_a.tenant, receiver.url, secret="whsec_old_secret")
    new_secret = services.endpoint_rotate_secret(endpoint=ep)
    assert new_secret.startswith("whsec_") and new_secret != "whsec_old_secret"
    ep.refresh_from_db()
    assert ep.previous_secret == "whsec_old_secret"
    assert timedelta(hours=23) < ep.previous_secret_expires_at - timezone.now() <= timedelta(hours=24)
    emit(tenant_a.tenant)
    drain(worker)
    [request] = receiver.wait_for(1)
    header = request.header("X-Scell-Signature")
    t, *v1s = header.split(",")
    assert len(v1s) == 2
    for secret, v1 in zip([new_secret, "whsec_old_secret"], v1s, strict=True):
        assert verify_signature(request.body, header, secret)
        expected = hmac.new(secret.encode(), t[2:].encode() + b"." + request.body, hashlib.sha256).hexdigest()
        assert v1 == f"v1={expected}"
    # Once the 24 hours are over, only the new secret signs.
    WebhookEndpoint.objects.filter(pk=ep.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    emit(tenant_a.tenant)
    drain(worker)
    later = receiver.wait_for(2)[1].header("X-Scell-Signature")
    assert later.count("v1=") == 1
    assert verify_signature(receiver.requests[1].body, later, new_secret)
    assert not verify_signature(receiver.requests[1].body, later, "whsec_old_secret")


def test_redirects_are_not_followed(tenant_a, worker, settings) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = []
    with Receiver() as target, Receiver(default=Answer(302, b"", {"Location": "REPLACED"})) as redirecting:
        redirecting.default.headers["Location"] = target.url
        ep = endpoint(tenant_a.tenant, redirecting.url)
        emit(tenant_a.tenant)
        drain(worker)
        time.sleep(0.2)
        assert len(redirecting.requests) == 1
        assert target.requests == []
    delivery = WebhookDelivery.objects.get(endpoint=ep)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts.get().status_code == 302


def test_response_body_is_capped_and_truncated(tenant_a, worker, settings) -> None:
    big = b"x" * (200 * 1024)
    with Receiver(default=Answer(200, big)) as receiver:
        ep = endpoint(tenant_a.tenant, receiver.url)
        emit(tenant_a.tenant)
        drain(worker)
    attempt = WebhookAttempt.objects.get(delivery__endpoint=ep)
    assert attempt.succeeded
    assert attempt.response_body == "x" * 2048


def test_timeout_is_a_failed_attempt(tenant_a, worker, settings) -> None:
    settings.WEBHOOK_TIMEOUT = 0.5
    settings.WEBHOOK_RETRY_SCHEDULE = []
    with Receiver(default=Answer(200, b"late", delay=2)) as receiver:
        ep = endpoint(tenant_a.tenant, receiver.url)
        emit(tenant_a.tenant)
        drain(worker)
        assert len(receiver.requests) == 1
    attempt = WebhookAttempt.objects.get(delivery__endpoint=ep)
    assert not attempt.succeeded and attempt.error == "timeout"
    assert attempt.duration_ms < 1500


def test_send_test_event_reaches_only_that_endpoint(tenant_a, worker, settings) -> None:
    with Receiver() as tested, Receiver() as other:
        ep = endpoint(tenant_a.tenant, tested.url, event_types=["invoice.issued"])
        endpoint(tenant_a.tenant, other.url)
        delivery = services.webhook_send_test(endpoint=ep)
        drain(worker)
        services.webhooks_sweep(overdue_after=timedelta(0))
        drain(worker)
        time.sleep(0.2)
        [request] = tested.requests
        assert json.loads(request.body)["type"] == "test.webhook"
        assert verify_signature(request.body, request.header("X-Scell-Signature"), SECRET)
        assert other.requests == []
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED


def test_sweeper_delivers_what_a_lost_message_left(tenant_a, broker, receiver) -> None:
    ep = endpoint(tenant_a.tenant, receiver.url)
    event = emit(tenant_a.tenant)
    broker.flush_all()  # the dispatch message is lost (broker outage, worker killed)
    assert Event.objects.get(pk=event.pk).dispatched_at is None
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        # Not yet overdue: the sweeper leaves it to the normal path.
        assert services.webhooks_sweep() == {"events": 0, "deliveries": 0}
        assert services.webhooks_sweep(overdue_after=timedelta(0)) == {"events": 1, "deliveries": 0}
        drain(broker)
        assert len(receiver.wait_for(1)) == 1
        # A delivery whose message was lost too is re-enqueued; one claim, one POST.
        WebhookDelivery.objects.filter(endpoint=ep).update(
            status=WebhookDelivery.Status.RETRYING, next_attempt_at=timezone.now() - timedelta(minutes=5)
        )
        assert services.webhooks_sweep() == {"events": 0, "deliveries": 1}
        assert services.webhooks_sweep() == {"events": 0, "deliveries": 0}
        drain(broker)
        time.sleep(0.2)
        assert len(receiver.requests) == 2
    finally:
        worker.stop()


def test_dispatch_and_delivery_are_claimed_once(tenant_a, broker, receiver) -> None:
    endpoint(tenant_a.tenant, receiver.url)
    event = emit(tenant_a.tenant)
    first = services.event_dispatch(event_id=str(event.id))
    assert len(first) == 1
    assert services.event_dispatch(event_id=str(event.id)) == []
    delivery_id = str(first[0].id)
    assert services.delivery_attempt(delivery_id=delivery_id) is not None
    # A duplicate message for a delivery already done does nothing.
    assert services.delivery_attempt(delivery_id=delivery_id) is None
    assert len(receiver.requests) == 1


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for the name ``localhost`` (not for 127.0.0.1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = timezone.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_file), str(key_file)


def test_https_checks_the_certificate_of_the_host_name_on_the_vetted_ip(
    tenant_a, worker, settings, tls_files, monkeypatch
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = []
    with Receiver(tls=tls_files) as receiver:
        # Untrusted certificate: refused, nothing delivered.
        untrusted = endpoint(tenant_a.tenant, receiver.url_for("localhost"))
        emit(tenant_a.tenant)
        drain(worker)
        attempt = WebhookAttempt.objects.get(delivery__endpoint=untrusted)
        assert not attempt.succeeded and "TLS" in attempt.error, attempt.error
        assert receiver.requests == []
        WebhookEndpoint.objects.filter(pk=untrusted.pk).update(enabled=False)

        # Trusted: the connection goes to the resolved IP, yet SNI and the certificate check use the
        # host name, and the Host header names it.
        monkeypatch.setenv("SSL_CERT_FILE", tls_files[0])
        trusted = endpoint(tenant_a.tenant, receiver.url_for("localhost"))
        emit(tenant_a.tenant)
        drain(worker)
        attempt = WebhookAttempt.objects.get(delivery__endpoint=trusted)
        assert attempt.succeeded, attempt.error
        [request] = receiver.requests
        assert request.header("Host") == f"localhost:{receiver.port}"
