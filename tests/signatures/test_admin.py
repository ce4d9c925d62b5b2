"""Support's admin of signature requests: read-only screens with signers and evidence, and the "Cancel"
action (the same service as the API), which asks for a reason first and logs it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from scell.models import SupportAction, User
from signatures.models import SignatureEvent, SignatureRequest, Signer
from tests.signatures import test_chain_evidence as evidence_tests
from tests.signatures.test_chain_evidence import create_request

pytestmark = pytest.mark.django_db

# Fixtures shared with the evidence tests.
signing = evidence_tests.signing
seal_dir = evidence_tests.seal_dir

LIST_URL = "/admin/signatures/signaturerequest/"


@pytest.fixture
def support(db) -> User:
    return User.objects.create_superuser("support@scell.example", "correct-horse-battery-9")


@pytest.fixture
def support_client(client, support):
    client.force_login(support)
    return client


def test_changelist_search_and_detail(support_client, signing, tenant_a, tenant_b) -> None:
    mine = create_request(tenant_a.tenant, title="Bail commercial").request
    create_request(tenant_b.tenant, title="Contrat de prestation")

    page = support_client.get(LIST_URL)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Bail commercial" in text and "Contrat de prestation" in text

    for term in ("alice@example.com", tenant_a.tenant.identifier, "Bail", str(mine.pk)[:8]):
        found = support_client.get(LIST_URL, {"q": term}).content.decode()
        assert "Bail commercial" in found, term
        if term != "alice@example.com":  # both requests have Alice as signer
            assert "Contrat de prestation" not in found, term
    assert (
        support_client.get(LIST_URL, {"status__exact": "pending", "livemode__exact": "0"}).status_code == 200
    )

    detail = support_client.get(f"{LIST_URL}{mine.pk}/change/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "Alice Martin" in text and "request.created" in text and "signer.notified" in text
    assert 'name="_save"' not in text  # read-only: nothing to save
    signer = mine.signers.get()
    assert signer.token_hash not in text


def test_cancel_action_cancels_pending_requests(support_client, support, signing, tenant_a) -> None:
    pending = create_request(tenant_a.tenant, title="To cancel").request
    other = create_request(tenant_a.tenant, title="Already cancelled").request
    SignatureRequest.objects.filter(pk=other.pk).update(status=SignatureRequest.Status.CANCELLED)

    action = {"action": "cancel_requests", "_selected_action": [str(pending.pk), str(other.pk)]}
    page = support_client.post(LIST_URL, action)
    assert page.status_code == 200
    assert "To cancel" in page.content.decode() and 'name="reason"' in page.content.decode()
    pending.refresh_from_db()
    assert pending.status == SignatureRequest.Status.PENDING  # nothing done before the reason

    response = support_client.post(
        LIST_URL, {**action, "support_reason_step": "1", "reason": "Customer asked by phone"}, follow=True
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 signature request(s) cancelled" in text
    assert "Already cancelled" in text and "only a pending one can be cancelled" in text

    pending.refresh_from_db()
    assert pending.status == SignatureRequest.Status.CANCELLED
    assert pending.end_reason == "Cancelled by Scell support" and pending.ended_at is not None
    assert pending.signers.get().status == Signer.Status.ENDED
    event = SignatureEvent.objects.filter(request=pending, action="request.cancelled").order_by("id").first()
    assert event.actor == f"support ({support.email})"
    assert event.data == {"reason": "Cancelled by Scell support"}
    # Support's own reason is in the support log, not shown to the signers.
    logged = SupportAction.objects.get()
    assert (logged.actor, logged.action, logged.object_id) == (
        support,
        "signature_request.cancel",
        str(pending.pk),
    )
    assert logged.reason == "Customer asked by phone" and logged.tenant == tenant_a.tenant


def test_view_only_staff_cannot_cancel(client, signing, tenant_a) -> None:
    staff = User.objects.create_user("viewer@scell.example", "correct-horse-battery-9", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_signaturerequest", "view_signer", "view_signatureevent"]
        )
    )
    client.force_login(staff)
    request = create_request(tenant_a.tenant).request

    page = client.get(LIST_URL)
    assert page.status_code == 200
    assert "cancel_requests" not in page.content.decode()
    client.post(
        LIST_URL,
        {
            "action": "cancel_requests",
            "_selected_action": [str(request.pk)],
            "support_reason_step": "1",
            "reason": "x",
        },
    )
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.PENDING
    assert not SupportAction.objects.exists()
