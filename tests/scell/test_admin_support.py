"""Django admin for support staff: the "Support" group (view access, the credit adjustment and the support
actions), the reason every support action asks for and the log it leaves (``SupportAction``), fiscal
records read-only for everyone (superusers included) and API key secrets never shown."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from django.test import Client, RequestFactory

from archive.models import ChainCheck, ChainEntry, ChainHead, Closure
from archive.services import chain_check
from billing.models import LedgerEntry
from billing.services import credits_adjust
from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from pdp.models import Flow, InvoiceLifecycle
from scell.admin_base import (
    ACTION_PERMISSIONS,
    SUPPORT_GROUP,
    SUPPORT_VIEW,
    support_action_record,
    support_group_sync,
)
from scell.models import ApiKey, SupportAction, User
from signatures.models import SignatureEvent, SignatureRequest, Signer
from signatures.services import SignerInput
from tests.signatures import test_chain_evidence as evidence_tests
from tests.signatures.test_chain_evidence import create_request
from tests.webhooks.test_api_webhooks import create_endpoint, make_delivery
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]

# Fixtures shared with the evidence tests (SMS and e-mail in memory, a development seal).
signing = evidence_tests.signing
seal_dir = evidence_tests.seal_dir

PASSWORD = "correct-horse-battery-9"
STEP = "support_reason_step"


# --- Fixtures -----------------------------------------------------------------------------------------
@pytest.fixture
def support_group() -> Group:
    # Written by migration scell 0004; applied again here because a transactional test elsewhere in the
    # run may have flushed the tables (test_migration_made_the_support_group checks the migration).
    return support_group_sync()


@pytest.fixture
def agent(support_group) -> User:
    """A support agent: staff, in the Support group, not a superuser."""
    user = User.objects.create_user("agent@scell.example", PASSWORD, is_staff=True)
    user.groups.add(support_group)
    return user


@pytest.fixture
def boss(db) -> User:
    return User.objects.create_superuser("boss@scell.example", PASSWORD)


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def records(seller, draft_body, signing):
    """One of everything support looks at, for the seller's tenant (sandbox)."""
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", draft_body, format="json")
    assert draft.status_code == 201, draft.json()
    issued = client.post(f"/api/v1/invoices/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.json()
    invoice = Invoice.objects.get(pk=issued.json()["id"])
    endpoint = create_endpoint(client)
    delivery = make_delivery(endpoint["id"])
    signature_request = create_request(seller.tenant, title="Bail commercial").request
    (check,) = [run.check for run in chain_check(tenant=seller.tenant)]
    return {
        "invoice": invoice,
        "delivery": delivery,
        "endpoint": endpoint,
        "request": signature_request,
        "signer": signature_request.signers.get(),
        "check": check,
        "flow": Flow.objects.get(invoice=invoice, direction="out", kind="invoice"),
        "entry": LedgerEntry.objects.filter(tenant=seller.tenant).first(),
    }


def url(obj, view: str = "change") -> str:
    opts = obj._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    return base if view == "changelist" else f"{base}{obj.pk}/{view}/"


def changelist(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def post_action(client: Client, model, action: str, pks: list, reason: str | None = None):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    if reason is not None:
        data.update({STEP: "1", "reason": reason})
    return client.post(changelist(model), data)


# --- The group ------------------------------------------------------------------------------------------
def test_migration_made_the_support_group(db) -> None:
    group = Group.objects.get(name=SUPPORT_GROUP)
    codenames = {
        (p.content_type.app_label, p.codename) for p in group.permissions.select_related("content_type")
    }
    for app_label, model in SUPPORT_VIEW:
        assert (app_label, f"view_{model}") in codenames
    assert ("billing", "add_creditadjustment") in codenames
    for action in ("replay_webhookdelivery", "rerun_chaincheck", "resend_signer_notification"):
        assert any(codename == action for _app, codename in codenames), action
    # Looking and the support actions only: no right to change or delete anything, nor the manager's
    # actions (acknowledge a break, retransmit to the PDP).
    assert not [c for _app, c in codenames if c.startswith(("change_", "delete_"))]
    assert not {"acknowledge_chaincheck", "retransmit_flow"} & {c for _app, c in codenames}
    assert {c for _a, _m, c, _n in ACTION_PERMISSIONS} <= set(
        group.permissions.model.objects.values_list("codename", flat=True)
    )


def test_support_user_command(db, capsys) -> None:
    user = User.objects.create_user("new.agent@scell.example", PASSWORD)
    call_command("support_user", "add", "New.Agent@scell.example")
    user.refresh_from_db()
    assert user.is_staff and user.groups.filter(name=SUPPORT_GROUP).exists()
    call_command("support_user", "list")
    assert "new.agent@scell.example" in capsys.readouterr().out
    call_command("support_user", "remove", "new.agent@scell.example")
    user.refresh_from_db()
    assert not user.is_staff and not user.groups.exists()
    with pytest.raises(Exception, match="No user"):
        call_command("support_user", "add", "nobody@scell.example")


# --- Viewing --------------------------------------------------------------------------------------------
def test_support_views_the_listed_models_and_changes_nothing(agent, records, seller) -> None:
    client = client_of(agent)
    index = client.get("/admin/").content.decode()
    assert "Support actions" in index
    for app_label, model in SUPPORT_VIEW:
        path = f"/admin/{app_label}/{model}/"
        if model in ("membership", "invoiceline", "invoiceevent", "signatureevent", "webhookattempt"):
            continue  # shown inline in their parent's page, no list of their own
        assert client.get(path).status_code == 200, path

    for obj in (
        records["invoice"],
        records["request"],
        records["signer"],
        records["check"],
        records["flow"],
        seller.tenant,
        seller.owner,
        ApiKey.objects.filter(tenant=seller.tenant).first(),
        WebhookDelivery.objects.get(pk=records["delivery"].pk),
        ChainHead.objects.get(tenant=seller.tenant),
    ):
        page = client.get(url(obj))
        assert page.status_code == 200, url(obj)
        assert 'name="_save"' not in page.content.decode(), url(obj)  # a view, not a form
        assert client.post(url(obj), {}).status_code == 403, url(obj)
        assert client.post(url(obj, "delete"), {"post": "yes"}).status_code == 403, url(obj)
    invoice = client.get(url(records["invoice"])).content.decode()
    assert records["invoice"].number in invoice
    assert "Bail commercial" in client.get(changelist(SignatureRequest)).content.decode()
    # Nothing outside the list (the raw chain, closures): no access.
    assert client.get(changelist(ChainEntry)).status_code == 403
    assert client.get(changelist(Closure)).status_code == 403


FISCAL = [
    Invoice,
    InvoiceLine,
    InvoiceEvent,
    ChainEntry,
    Closure,
    LedgerEntry,
    InvoiceLifecycle,
    SignatureEvent,
]


@pytest.mark.parametrize("model", [*FISCAL, SignatureRequest, Signer, ChainCheck, SupportAction])
def test_fiscal_records_are_read_only_for_superusers_too(boss, model) -> None:
    request = RequestFactory().get("/admin/")
    request.user = boss
    # Registered as a page, or shown as an inline of one.
    admins = [admin.site._registry[model]] if model in admin.site._registry else []
    for parent in admin.site._registry.values():
        admins += [i for i in parent.get_inline_instances(request) if i.model is model]
    assert admins, f"{model.__name__} is not in the admin"
    for model_admin in admins:
        assert model_admin.has_view_permission(request)
        assert not model_admin.has_add_permission(request, None)
        assert not model_admin.has_change_permission(request, None)
        assert not model_admin.has_delete_permission(request, None)


def test_superuser_cannot_edit_an_invoice_or_the_ledger(boss, records) -> None:
    client = client_of(boss)
    invoice = records["invoice"]
    assert client.get(url(invoice)).status_code == 200
    assert client.post(url(invoice), {"buyer_name": "Changed", "status": "draft"}).status_code == 403
    assert client.post(url(invoice, "delete"), {"post": "yes"}).status_code == 403
    assert client.get("/admin/invoicing/invoice/add/").status_code == 403
    entry = records["entry"]
    assert client.post(url(entry), {"amount": "1000.00"}).status_code == 403
    assert client.post(url(entry, "delete"), {"post": "yes"}).status_code == 403
    invoice.refresh_from_db()
    assert invoice.buyer_name != "Changed" and invoice.status == "issued"
    assert LedgerEntry.objects.filter(pk=entry.pk, amount=entry.amount).exists()


def test_key_secrets_never_appear(agent, boss, seller) -> None:
    raw_keys = list(seller.keys.values())
    hashes = list(ApiKey.objects.filter(tenant=seller.tenant).values_list("key_hash", flat=True))
    key = ApiKey.objects.filter(tenant=seller.tenant).first()
    for user in (agent, boss):
        client = client_of(user)
        for path in (changelist(ApiKey), url(key), url(seller.tenant), f"{changelist(ApiKey)}?q=sk_"):
            text = client.get(path).content.decode()
            assert not [s for s in raw_keys + hashes if s in text], path
    # Revoked with a reason: the log names the key by its prefix only.
    post_action(client_of(boss), ApiKey, "revoke", [key.pk], "Leaked in a public repository")
    text = client_of(agent).get(changelist(SupportAction)).content.decode()
    assert "Leaked in a public repository" in text
    assert not [s for s in raw_keys + hashes if s in text]


# --- Support actions: a reason first, then one log line per object ---------------------------------------
def _replay(records):
    delivery = records["delivery"]

    def done() -> bool:
        return WebhookDelivery.objects.filter(replay_of=delivery).exists()

    return WebhookDelivery, "replay_deliveries", delivery, done, "webhook_delivery.replay"


def _rerun(records):
    check = records["check"]

    def done() -> bool:
        return ChainCheck.objects.filter(chain_key=check.chain_key).count() == 2

    return ChainCheck, "rerun_check", check, done, "chain.check"


def _resend(records):
    signer = records["signer"]
    before = signer.token_hash

    def done() -> bool:
        return Signer.objects.get(pk=signer.pk).token_hash != before

    return Signer, "resend_notification", signer, done, "signer.notification_resend"


@pytest.mark.parametrize("make", [_replay, _rerun, _resend], ids=["replay", "rerun", "resend"])
@pytest.mark.parametrize("reason", ["", "   "])
def test_a_support_action_without_a_reason_does_nothing(agent, records, make, reason) -> None:
    model, action, obj, done, _code = make(records)
    client = client_of(agent)
    page = post_action(client, model, action, [obj.pk])
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="reason"' in text and "Confirm" in text and escape(str(obj)) in text
    page = post_action(client, model, action, [obj.pk], reason)
    assert page.status_code == 200
    assert "This field is required." in page.content.decode()
    assert 'aria-invalid="true"' in page.content.decode()
    assert not done()
    assert not SupportAction.objects.exists()


@pytest.mark.parametrize("make", [_replay, _rerun, _resend], ids=["replay", "rerun", "resend"])
def test_a_support_action_with_a_reason_is_done_and_logged(agent, records, seller, make) -> None:
    model, action, obj, done, code = make(records)
    response = post_action(client_of(agent), model, action, [obj.pk], "  Ticket 1234: customer asked  ")
    assert response.status_code == 302
    assert done()
    logged = SupportAction.objects.get()
    assert (logged.actor, logged.action, logged.tenant) == (agent, code, seller.tenant)
    assert logged.reason == "Ticket 1234: customer asked"
    if code != "chain.check":  # a re-run is logged against the new check it recorded
        assert logged.object_id == str(obj.pk)


def test_resend_goes_through_the_signing_service(agent, records) -> None:
    signer = records["signer"]
    post_action(client_of(agent), Signer, "resend_notification", [signer.pk], "Never got the e-mail")
    signer.refresh_from_db()
    assert signer.reminder_count == 1 and signer.last_reminded_at is not None
    event = SignatureEvent.objects.get(signer=signer, action="signer.reminded")
    assert event.actor == "support (agent@scell.example)"
    # Again at once: refused by the service (a double click), said on the page, nothing logged twice.
    page = client_of(agent).post(
        changelist(Signer),
        {"action": "resend_notification", "_selected_action": [str(signer.pk)], STEP: "1", "reason": "again"},
        follow=True,
    )
    assert "less than two minutes ago" in page.content.decode()
    assert SupportAction.objects.count() == 1


def test_resend_from_the_request_reaches_only_the_signers_whose_turn_it_is(agent, records, seller) -> None:
    signature_request = create_request(
        seller.tenant,
        title="Sequential",
        signers=[
            SignerInput(name="First", email="first@example.com", phone=evidence_tests.PHONE),
            SignerInput(name="Second", email="second@example.com", phone=evidence_tests.PHONE),
        ],
    ).request
    post_action(
        client_of(agent), SignatureRequest, "resend_notifications", [signature_request.pk], "Lost mail"
    )
    logged = SupportAction.objects.get()
    assert logged.object_id == str(signature_request.signers.get(position=1).pk)
    assert signature_request.signers.get(position=2).reminder_count == 0


def test_credit_adjustment_by_support_is_logged(agent, seller) -> None:
    client = client_of(agent)
    add = "/admin/billing/creditadjustment/add/"
    assert client.get(add).status_code == 200
    blank = client.post(add, {"tenant": str(seller.tenant.pk), "amount": "10.00", "reason": " "})
    assert blank.status_code == 200 and "reason" in blank.context["adminform"].form.errors
    assert not SupportAction.objects.exists()
    response = client.post(add, {"tenant": str(seller.tenant.pk), "amount": "10.00", "reason": "Goodwill"})
    assert response.status_code == 302
    logged = SupportAction.objects.get()
    assert (logged.actor, logged.action, logged.tenant, logged.reason) == (
        agent,
        "credits.adjust",
        seller.tenant,
        "Goodwill",
    )
    entry = LedgerEntry.objects.get(pk=logged.object_id)
    assert entry.amount == Decimal("10.00") and entry.created_by == agent


def test_manager_actions_are_out_of_support_reach(agent, records, seller) -> None:
    client = client_of(agent)
    key = ApiKey.objects.filter(tenant=seller.tenant).first()
    Flow.objects.filter(pk=records["flow"].pk).update(state=Flow.State.FAILED)
    for model, action, pk in (
        (SignatureRequest, "cancel_requests", records["request"].pk),
        (ApiKey, "revoke", key.pk),
        (Flow, "retransmit", records["flow"].pk),
        (ChainCheck, "acknowledge", records["check"].pk),
    ):
        assert f'value="{action}"' not in client.get(changelist(model)).content.decode()
        post_action(client, model, action, [pk], "I should not")
    key.refresh_from_db()
    records["request"].refresh_from_db()
    records["check"].refresh_from_db()
    assert key.revoked_at is None and records["request"].status == SignatureRequest.Status.PENDING
    assert Flow.objects.get(pk=records["flow"].pk).state == Flow.State.FAILED
    assert records["check"].acknowledged_by is None
    assert not SupportAction.objects.exists()


def test_manager_actions_ask_for_a_reason_and_are_logged(boss, records, seller) -> None:
    client = client_of(boss)
    key = ApiKey.objects.filter(tenant=seller.tenant, livemode=True).first()
    flow = records["flow"]
    Flow.objects.filter(pk=flow.pk).update(state=Flow.State.FAILED)
    cases = [
        (ApiKey, "revoke", key, "api_key.revoke"),
        (Flow, "retransmit", flow, "flow.retransmit"),
        (ChainCheck, "acknowledge", records["check"], "chain_check.acknowledge"),
        (SignatureRequest, "cancel_requests", records["request"], "signature_request.cancel"),
    ]
    for model, action, obj, code in cases:
        assert post_action(client, model, action, [obj.pk]).status_code == 200  # the reason page
        assert post_action(client, model, action, [obj.pk], "").status_code == 200
        assert not SupportAction.objects.filter(action=code).exists()
        assert post_action(client, model, action, [obj.pk], f"Because {code}").status_code == 302
        logged = SupportAction.objects.get(action=code)
        assert (logged.actor, logged.object_id, logged.reason) == (boss, str(obj.pk), f"Because {code}")
        assert logged.tenant == seller.tenant
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert Flow.objects.get(pk=flow.pk).state == Flow.State.QUEUED
    assert ChainCheck.objects.get(pk=records["check"].pk).acknowledged_by == boss
    assert SignatureRequest.objects.get(pk=records["request"].pk).status == SignatureRequest.Status.CANCELLED
    # Done once: acting again on what is already done logs nothing more.
    post_action(client, ApiKey, "revoke", [key.pk], "again")
    post_action(client, ChainCheck, "acknowledge", [records["check"].pk], "again")
    assert SupportAction.objects.count() == len(cases)


# --- The log ----------------------------------------------------------------------------------------------
def test_the_support_log_is_filterable_searchable_and_read_only(agent, boss, records) -> None:
    post_action(client_of(agent), WebhookDelivery, "replay_deliveries", [records["delivery"].pk], "Ticket 9")
    post_action(client_of(boss), ChainCheck, "acknowledge", [records["check"].pk], "Looked at it")
    client = client_of(agent)
    listing = client.get(changelist(SupportAction)).content.decode()
    assert "Ticket 9" in listing and "Looked at it" in listing and "agent@scell.example" in listing
    only_replays = client.get(
        changelist(SupportAction), {"action": "webhook_delivery.replay"}
    ).content.decode()
    assert "Ticket 9" in only_replays and "Looked at it" not in only_replays
    found = client.get(changelist(SupportAction), {"q": "looked"}).content.decode()
    assert "Looked at it" in found and "Ticket 9" not in found
    by_actor = client.get(changelist(SupportAction), {"actor__id__exact": str(boss.pk)}).content.decode()
    assert "Looked at it" in by_actor and "Ticket 9" not in by_actor
    logged = SupportAction.objects.get(action="webhook_delivery.replay")
    page = client.get(url(logged)).content.decode()
    assert "Ticket 9" in page and url(records["delivery"]) in page  # links to what was acted on
    for user in (agent, boss):
        other = client_of(user)
        assert other.get(f"{changelist(SupportAction)}add/").status_code == 403
        assert other.post(url(logged), {"reason": "rewritten"}).status_code == 403
        assert other.post(url(logged, "delete"), {"post": "yes"}).status_code == 403
    logged.refresh_from_db()
    assert logged.reason == "Ticket 9"


# --- In the browser ---------------------------------------------------------------------------------------
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_support_agent_replays_a_delivery_in_the_browser(browser_page, tenant_a) -> None:
    agent = User.objects.create_user("agent@scell.example", PASSWORD, is_staff=True, full_name="Sam Support")
    agent.groups.add(support_group_sync())
    endpoint = create_endpoint(tenant_a.client("sk_test"))
    delivery = make_delivery(endpoint["id"])
    with transaction.atomic():
        (entry,) = credits_adjust(
            tenant=tenant_a.tenant, amount=Decimal("20.00"), reason="Ticket 311: goodwill", created_by=agent
        )
        support_action_record(
            actor=agent,
            action="credits.adjust",
            obj=entry,
            reason="Ticket 311: goodwill",
            details={"amount": "20.00"},
        )

    page = browser_page(width=1440, height=800)
    page.goto("/admin/login/")
    page.fill("#id_username", agent.email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")

    page.goto("/admin/webhooks/webhookdelivery/")
    page.locator(f'input[name="_selected_action"][value="{delivery.pk}"]').check()
    page.locator('select[name="action"]').select_option("replay_deliveries")
    page.get_by_role("button", name="Go").click()
    page.wait_for_load_state()
    assert page.locator("h1").first.inner_text().startswith("Replay delivery")

    # No reason, nothing done: the error is tied to the field.
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    reason = page.get_by_label("Reason")
    assert reason.get_attribute("aria-invalid") == "true"
    assert "This field is required." in page.locator("#id_reason_error").inner_text()
    assert not WebhookDelivery.objects.filter(replay_of=delivery).exists()

    reason.fill("Ticket 312: their server was down on Monday")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/admin/webhooks/webhookdelivery/")
    assert page.get_by_text("1 delivery replayed as a new delivery.").is_visible()
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1

    page.goto("/admin/scell/supportaction/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "Ticket 312: their server was down on Monday" in rows.first.inner_text()
    assert "Replay a webhook delivery" in rows.first.inner_text()
    page.locator("#toggle-nav-sidebar").click()  # the log, not the menu
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-support.png"), full_page=True)
