"""The dashboard's account area: legal profile, team (roles, invitations, last-admin rule), mandatory
two-factor authentication, password reset, sub-tenants, privacy and data. Each rule is checked for the
admin, a member, a read-only member and an outsider (another tenant's admin), who must see nothing."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from invoicing.mapping import DEFAULT_NOTES
from scell import services
from scell.errors import Conflict, UnprocessableEntity
from scell.models import Invitation, Membership, SubTenant, Tenant, User, hash_key

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def test_two_factor_policy_is_wired_after_tenancy_and_otp(settings) -> None:
    chain = settings.MIDDLEWARE
    policy = chain.index("scell.dashboard.RequireTwoFactorMiddleware")
    assert policy > chain.index("django_otp.middleware.OTPMiddleware")
    assert policy > chain.index("scell.tenancy.DashboardTenantMiddleware")


@pytest.fixture(autouse=True)
def _site_url(settings) -> None:
    settings.SITE_URL = "https://scell.example"


# --- Helpers ----------------------------------------------------------------------------------------------
def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def add_member(tenant_fixture, email: str, role: str) -> User:
    user = User.objects.create_user(email, PASSWORD, full_name=email.split("@")[0].title())
    Membership.objects.create(user=user, tenant=tenant_fixture.tenant, role=role)
    return user


def membership(user: User, tenant: Tenant) -> Membership:
    return Membership.objects.get(user=user, tenant=tenant)


def text(response) -> str:
    return response.content.decode()


def png(size: tuple[int, int] = (12, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (37, 70, 214)).save(buffer, format="PNG")
    return buffer.getvalue()


def link_from(message) -> str:
    found = re.search(r"https?://\S+", message.body)
    assert found, message.body
    return found.group(0)


def path_of(url: str) -> str:
    return urlsplit(url).path


def enrol(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.fixture
def team(tenant_a):
    """Tenant A with its admin (owner), a member and a read-only member."""
    tenant_a.member = add_member(tenant_a, "marc@alpha.example", Membership.Role.MEMBER)
    tenant_a.reader = add_member(tenant_a, "rita@alpha.example", Membership.Role.READ_ONLY)
    return tenant_a


PROFILE_POST = {
    "legal_name": "Alpha Conseil SAS",
    "siren": "732 829 320",
    "siret": "732 829 320 00074",
    "vat_id": "fr 44 732829320",
    "legal_form": "SAS au capital de 10 000 €",
    "rcs": "RCS Paris 732 829 320",
    "address_line1": "12 rue de la Paix",
    "address_line2": "",
    "postcode": "75002",
    "city": "Paris",
    "country": "fr",
    "email": "billing@alpha.example",
    "iban": "FR76 3000 6000 0112 3456 7890 189",
    "bic": "agrifrpp",
    "invoice_footer": "Alpha Conseil – merci !",
    "payment_days": "45",
    "payment_terms": "Paiement à 45 jours par virement",
    "late_penalty_note": "",
    "recovery_fee_note": "",
    "discount_note": "Escompte de 1 % pour paiement sous 8 jours.",
}


# --- Legal profile ----------------------------------------------------------------------------------------
def test_admin_sees_the_profile_form_with_identifier_read_only_and_standard_mentions(team) -> None:
    response = login(team.owner).get("/settings/")
    assert response.status_code == 200
    page = text(response)
    assert 'data-testid="profile-form"' in page
    assert 'data-testid="identifier">AAAAA<' in page
    assert 'name="identifier"' not in page  # shown, never editable
    for subject in ("PMD", "PMT", "AAB"):
        assert f'placeholder="{DEFAULT_NOTES[subject]}"'.replace("'", "&#x27;") in page
    # Errors and help are tied to their input.
    assert 'aria-describedby="id_payment_days_helptext"' in page
    assert 'id="id_payment_days_helptext"' in page


def test_admin_saves_the_legal_profile_normalised(team) -> None:
    client = login(team.owner)
    response = client.post("/settings/", {**PROFILE_POST, "identifier": "ZZZZZ"})
    assert response.status_code == 302, text(response)
    tenant = Tenant.objects.get(pk=team.tenant.pk)
    assert tenant.identifier == "AAAAA"
    assert (tenant.siren, tenant.siret) == ("732829320", "73282932000074")
    assert tenant.vat_id == "FR44732829320"
    assert tenant.iban == "FR7630006000011234567890189"
    assert (tenant.bic, tenant.country) == ("AGRIFRPP", "FR")
    assert tenant.payment_days == 45
    assert tenant.late_penalty_note == ""  # blank: the standard mention is printed
    assert tenant.discount_note.startswith("Escompte de 1 %")
    assert "Legal profile saved." in text(client.get("/settings/"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("siren", "732829321", "is not a valid SIREN"),
        ("siret", "55210055400013", "The SIRET must start with the SIREN."),
        ("siret", "73282932000075", "is not a valid SIRET"),
        ("iban", "FR7630006000011234567890188", "This IBAN is not valid."),
        ("vat_id", "FR96552100554", "does not match the SIREN"),
        ("payment_days", "400", "less than or equal to 365"),
        ("country", "France", "2-letter country code"),
    ],
)
def test_invalid_profile_changes_nothing(team, field: str, value: str, message: str) -> None:
    before = Tenant.objects.get(pk=team.tenant.pk)
    response = login(team.owner).post("/settings/", {**PROFILE_POST, field: value})
    assert response.status_code == 422
    page = text(response)
    assert message in page
    assert f'id="id_{field}_error"' in page
    assert 'aria-invalid="true"' in page
    after = Tenant.objects.get(pk=team.tenant.pk)
    assert (after.legal_name, after.siren, after.siret, after.iban, after.payment_days) == (
        before.legal_name,
        before.siren,
        before.siret,
        before.iban,
        before.payment_days,
    )


@pytest.mark.parametrize("who", ["member", "reader"])
def test_members_read_the_profile_and_cannot_change_it(team, who: str) -> None:
    client = login(getattr(team, who))
    page = text(client.get("/settings/"))
    assert 'data-testid="profile-readonly"' in page
    assert "<form" not in page.split('id="main"', 1)[1]
    assert DEFAULT_NOTES["PMT"].replace("'", "&#x27;") in page  # blank mention: the standard text is shown
    response = client.post("/settings/", {**PROFILE_POST, "legal_name": "Hijacked SAS"})
    assert response.status_code == 403
    assert Tenant.objects.get(pk=team.tenant.pk).legal_name == "Alpha SAS"


def test_logo_upload_is_shown_served_replaced_and_removed(team, tenant_b) -> None:
    client = login(team.owner)
    logo = SimpleUploadedFile("logo.png", png(), content_type="image/png")
    assert client.post("/settings/", {**PROFILE_POST, "logo": logo}).status_code == 302
    tenant = Tenant.objects.get(pk=team.tenant.pk)
    assert tenant.logo.name.startswith(f"logos/tenant/{tenant.pk}/")
    page = text(client.get("/settings/"))
    assert 'data-testid="logo"' in page
    served = client.get("/settings/logo/")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == png()
    # Another tenant's dashboard serves its own logo only (it has none).
    assert login(tenant_b.owner).get("/settings/logo/").status_code == 404
    # A member sees it too (read-only page).
    assert login(team.reader).get("/settings/logo/").status_code == 200

    # Saving without a new file keeps it; "remove" clears it.
    assert client.post("/settings/", PROFILE_POST).status_code == 302
    assert Tenant.objects.get(pk=team.tenant.pk).logo.name == tenant.logo.name
    assert client.post("/settings/", {**PROFILE_POST, "logo_clear": "on"}).status_code == 302
    assert not Tenant.objects.get(pk=team.tenant.pk).logo
    assert client.get("/settings/logo/").status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("logo.png", b"not an image at all", "Upload a valid image"),
        ("logo.gif", None, "PNG or JPEG"),
    ],
)
def test_bad_logo_is_refused(team, name: str, content: bytes | None, message: str) -> None:
    if content is None:
        buffer = io.BytesIO()
        Image.new("RGB", (4, 4)).save(buffer, format="GIF")
        content = buffer.getvalue()
    upload = SimpleUploadedFile(name, content)
    response = login(team.owner).post("/settings/", {**PROFILE_POST, "logo": upload})
    assert response.status_code == 422
    assert message in text(response)
    assert not Tenant.objects.get(pk=team.tenant.pk).logo


def test_gif_renamed_png_is_refused(team) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="GIF")
    upload = SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")
    response = login(team.owner).post("/settings/", {**PROFILE_POST, "logo": upload})
    assert response.status_code == 422
    assert "The logo must be a PNG or JPEG image." in text(response)


def test_profile_pages_need_a_session(client) -> None:
    for url in ("/settings/", "/settings/team/", "/settings/sub-tenants/", "/settings/privacy/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


# --- Team: roles and last admin ---------------------------------------------------------------------------
def test_team_page_lists_members_and_only_admins_get_forms(team, tenant_b) -> None:
    page = text(login(team.owner).get("/settings/team/"))
    for email in (team.owner.email, "marc@alpha.example", "rita@alpha.example"):
        assert f'data-email="{email}"' in page
    assert tenant_b.owner.email not in page
    assert 'data-testid="invite-form"' in page
    assert "return confirm('Remove this member from the team?')" in page
    # The last admin's row offers neither a role change nor a removal (the services would refuse).
    owner = membership(team.owner, team.tenant)
    assert f"/settings/team/members/{owner.pk}/remove/" not in page
    assert f"/settings/team/members/{owner.pk}/role/" not in page
    assert f"/settings/team/members/{membership(team.member, team.tenant).pk}/role/" in page
    reader_page = text(login(team.reader).get("/settings/team/"))
    assert 'data-testid="invite-form"' not in reader_page
    assert "/role/" not in reader_page and "/remove/" not in reader_page


def test_admin_changes_a_role(team) -> None:
    client = login(team.owner)
    target = membership(team.member, team.tenant)
    response = client.post(f"/settings/team/members/{target.pk}/role/", {"role": "read_only"})
    assert response.status_code == 302
    assert membership(team.member, team.tenant).role == "read_only"
    client.post(f"/settings/team/members/{target.pk}/role/", {"role": "admin"})
    assert membership(team.member, team.tenant).role == "admin"


def test_last_admin_cannot_be_demoted_or_removed(team) -> None:
    client = login(team.owner)
    own = membership(team.owner, team.tenant)
    response = client.post(f"/settings/team/members/{own.pk}/role/", {"role": "member"}, follow=True)
    assert "The team must keep at least one admin." in text(response)
    assert membership(team.owner, team.tenant).role == "admin"
    response = client.post(f"/settings/team/members/{own.pk}/remove/", follow=True)
    assert "The team must keep at least one admin." in text(response)
    assert Membership.objects.filter(pk=own.pk).exists()


def test_an_admin_may_leave_when_another_admin_remains(team) -> None:
    services.membership_role_change(membership=membership(team.member, team.tenant), role="admin")
    client = login(team.owner)
    own = membership(team.owner, team.tenant)
    response = client.post(f"/settings/team/members/{own.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Membership.objects.filter(pk=own.pk).exists()
    # The other admin is now the last one.
    with pytest.raises(Conflict) as raised:
        services.membership_remove(membership=membership(team.member, team.tenant))
    assert raised.value.error_code == "last_admin"


def test_an_erased_admin_does_not_count_as_an_admin(team) -> None:
    services.membership_role_change(membership=membership(team.member, team.tenant), role="admin")
    User.objects.filter(pk=team.member.pk).update(is_active=False)
    with pytest.raises(Conflict):
        services.membership_role_change(membership=membership(team.owner, team.tenant), role="member")


def test_admin_removes_a_member(team) -> None:
    target = membership(team.reader, team.tenant)
    response = login(team.owner).post(f"/settings/team/members/{target.pk}/remove/", follow=True)
    assert "rita@alpha.example was removed from the team." in text(response)
    assert not Membership.objects.filter(pk=target.pk).exists()
    assert User.objects.filter(pk=team.reader.pk).exists()  # the account stays


@pytest.mark.parametrize("who", ["member", "reader"])
def test_non_admins_cannot_manage_the_team(team, who: str) -> None:
    client = login(getattr(team, who))
    owner = membership(team.owner, team.tenant)
    assert client.post(f"/settings/team/members/{owner.pk}/role/", {"role": "read_only"}).status_code == 403
    assert client.post(f"/settings/team/members/{owner.pk}/remove/").status_code == 403
    assert client.post("/settings/team/", {"email": "x@example.com", "role": "admin"}).status_code == 403
    assert client.post("/settings/team/two-factor/", {"require_2fa": "on"}).status_code == 403
    assert membership(team.owner, team.tenant).role == "admin"
    assert not Invitation.objects.exists()


def test_team_of_another_tenant_is_404(team, tenant_b) -> None:
    outsider = login(tenant_b.owner)
    target = membership(team.member, team.tenant)
    assert outsider.post(f"/settings/team/members/{target.pk}/role/", {"role": "admin"}).status_code == 404
    assert outsider.post(f"/settings/team/members/{target.pk}/remove/").status_code == 404
    issued = services.invitation_create(
        tenant=team.tenant, email="new@example.com", role="member", invited_by=team.owner
    )
    pk = issued.invitation.pk
    assert outsider.post(f"/settings/team/invitations/{pk}/revoke/").status_code == 404
    assert outsider.post(f"/settings/team/invitations/{pk}/resend/").status_code == 404
    assert membership(team.member, team.tenant).role == "member"
    assert Invitation.objects.get(pk=pk).revoked_at is None
    assert "new@example.com" not in text(outsider.get("/settings/team/"))


def test_unknown_role_is_refused(team) -> None:
    with pytest.raises(UnprocessableEntity):
        services.membership_role_change(membership=membership(team.member, team.tenant), role="owner")
    response = login(team.owner).post(
        f"/settings/team/members/{membership(team.member, team.tenant).pk}/role/", {"role": "owner"}
    )
    assert response.status_code == 302
    assert membership(team.member, team.tenant).role == "member"


# --- Team: invitations ------------------------------------------------------------------------------------
def invite(client: Client, email: str, role: str, capture) -> object:
    with capture(execute=True):
        return client.post("/settings/team/", {"email": email, "role": role})


def test_invitation_is_emailed_with_a_single_use_link(team, django_capture_on_commit_callbacks) -> None:
    mail.outbox.clear()
    response = invite(login(team.owner), "Nina@Example.com", "read_only", django_capture_on_commit_callbacks)
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "nina@example.com",
        "read_only",
        team.owner,
    )
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nina@example.com"]
    assert "Alpha SAS" in message.subject
    link = link_from(message)
    assert link.startswith("https://scell.example/invite/")
    token = path_of(link).split("/")[2]
    # Only the hash is stored.
    assert invitation.token_hash == hash_key(token)
    assert not Invitation.objects.filter(token_hash=token).exists()
    page = text(login(team.owner).get("/settings/team/"))
    assert 'data-testid="invitation" data-email="nina@example.com"' in page


def test_invitation_refused_for_members_and_duplicates(team, django_capture_on_commit_callbacks) -> None:
    client = login(team.owner)
    response = invite(client, "MARC@alpha.example", "member", django_capture_on_commit_callbacks)
    assert response.status_code == 422
    assert "marc@alpha.example is already a member of this team." in text(response)
    invite(client, "nina@example.com", "member", django_capture_on_commit_callbacks)
    again = invite(client, "nina@example.com", "admin", django_capture_on_commit_callbacks)
    assert again.status_code == 422
    assert "already pending" in text(again)
    assert Invitation.objects.count() == 1
    bad = client.post("/settings/team/", {"email": "not-an-email", "role": "member"})
    assert bad.status_code == 422
    assert 'id="id_email_error"' in text(bad)


def test_new_account_accepts_the_invitation(team, django_capture_on_commit_callbacks) -> None:
    mail.outbox.clear()
    invite(login(team.owner), "nina@example.com", "read_only", django_capture_on_commit_callbacks)
    url = path_of(link_from(mail.outbox[0]))
    visitor = Client()
    page = text(visitor.get(url))
    assert "Join Alpha SAS" in page
    assert 'data-testid="invite-form"' in page
    # Django's password validators apply.
    weak = visitor.post(url, {"full_name": "Nina Simone", "password1": "12345678", "password2": "12345678"})
    assert weak.status_code == 422
    assert "This password is too common." in text(weak)
    differ = visitor.post(url, {"full_name": "Nina", "password1": PASSWORD, "password2": PASSWORD + "x"})
    assert "The two passwords differ." in text(differ)
    assert not User.objects.filter(email="nina@example.com").exists()

    done = visitor.post(url, {"full_name": "Nina Simone", "password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/"
    nina = User.objects.get(email="nina@example.com")
    assert nina.full_name == "Nina Simone" and nina.check_password(PASSWORD)
    assert membership(nina, team.tenant).role == "read_only"
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == nina and invitation.accepted_at is not None
    # Signed in, in the tenant that invited her.
    home = visitor.get("/")
    assert home.status_code == 200 and home.wsgi_request.user == nina
    assert home.wsgi_request.scope.tenant == team.tenant
    # The link works once.
    reused = Client().get(url)
    assert reused.status_code == 410
    assert "This invitation has already been used." in text(reused)


def test_existing_account_signs_in_as_itself_to_accept(
    team, tenant_b, django_capture_on_commit_callbacks
) -> None:
    mail.outbox.clear()
    invite(login(team.owner), tenant_b.owner.email, "member", django_capture_on_commit_callbacks)
    url = path_of(link_from(mail.outbox[0]))
    anonymous = text(Client().get(url))
    assert 'data-testid="invite-sign-in"' in anonymous
    assert f"/login/?next=%2Finvite%2F{url.split('/')[2]}%2F" in anonymous
    assert (
        Client().post(url, {"full_name": "X", "password1": PASSWORD, "password2": PASSWORD}).status_code
        == 200
    )
    assert not Membership.objects.filter(user=tenant_b.owner, tenant=team.tenant).exists()

    wrong = login(team.member).get(url)
    assert wrong.status_code == 403
    assert login(team.member).post(url).status_code == 403

    client = login(tenant_b.owner)
    assert "Accept the invitation" in text(client.get(url))
    response = client.post(url)
    assert response.status_code == 302
    assert membership(tenant_b.owner, team.tenant).role == "member"
    # Still admin of their own tenant; the dashboard now shows the new one.
    assert membership(tenant_b.owner, tenant_b.tenant).role == "admin"
    assert client.get("/").wsgi_request.scope.tenant == team.tenant


def test_expired_revoked_and_unknown_links(team, django_capture_on_commit_callbacks) -> None:
    client = login(team.owner)
    expired = services.invitation_create(
        tenant=team.tenant, email="old@example.com", role="member", invited_by=None
    )
    Invitation.objects.filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = Client().get(f"/invite/{expired.token}/")
    assert response.status_code == 410
    assert "This invitation has expired." in text(response)
    with pytest.raises(Conflict) as raised:
        services.invitation_accept(token=expired.token, full_name="Old", password=PASSWORD)
    assert raised.value.error_code == "invitation_expired"
    # The expired invitation is listed, marked, and may be sent again.
    assert "expired" in text(client.get("/settings/team/"))

    revoked = services.invitation_create(
        tenant=team.tenant, email="rev@example.com", role="member", invited_by=None
    )
    assert client.post(f"/settings/team/invitations/{revoked.invitation.pk}/revoke/").status_code == 302
    response = Client().get(f"/invite/{revoked.token}/")
    assert response.status_code == 410
    assert "This invitation was revoked." in text(response)
    assert 'data-email="rev@example.com"' not in text(client.get("/settings/team/"))

    unknown = Client().get("/invite/not-a-token/")
    assert unknown.status_code == 404
    assert "This invitation link is not valid." in text(unknown)
    assert not User.objects.filter(email__in=["old@example.com", "rev@example.com"]).exists()


def test_resend_renews_the_link_and_the_old_one_dies(team, django_capture_on_commit_callbacks) -> None:
    mail.outbox.clear()
    client = login(team.owner)
    invite(client, "nina@example.com", "member", django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(days=1))
    first = path_of(link_from(mail.outbox[0]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/settings/team/invitations/{invitation.pk}/resend/")
    assert response.status_code == 302
    assert len(mail.outbox) == 2
    second = path_of(link_from(mail.outbox[1]))
    assert first != second
    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)


def test_accepted_invitation_cannot_be_revoked_or_resent(team) -> None:
    issued = services.invitation_create(
        tenant=team.tenant, email="nina@example.com", role="member", invited_by=None
    )
    services.invitation_accept(token=issued.token, full_name="Nina", password=PASSWORD)
    with pytest.raises(Conflict):
        services.invitation_revoke(invitation=issued.invitation)
    with pytest.raises(Conflict):
        services.invitation_resend(invitation=issued.invitation)
    with pytest.raises(Conflict) as raised:
        services.invitation_accept(token=issued.token, full_name="Nina", password=PASSWORD)
    assert raised.value.error_code == "invitation_accepted"


def test_invitation_accept_service_checks_the_user(team, tenant_b) -> None:
    issued = services.invitation_create(
        tenant=team.tenant, email=tenant_b.owner.email, role="admin", invited_by=team.owner
    )
    with pytest.raises(Conflict) as raised:
        services.invitation_accept(token=issued.token, full_name="Someone", password=PASSWORD)
    assert raised.value.error_code == "account_exists"
    with pytest.raises(Conflict) as raised:
        services.invitation_accept(token=issued.token, user=team.member)
    assert raised.value.error_code == "wrong_user"
    accepted = services.invitation_accept(token=issued.token, user=tenant_b.owner)
    assert accepted.role == "admin" and accepted.tenant == team.tenant


# --- Mandatory two-factor authentication ------------------------------------------------------------------
def test_admin_needs_a_device_to_require_2fa(team) -> None:
    client = login(team.owner)
    response = client.post("/settings/team/two-factor/", {"require_2fa": "on"}, follow=True)
    assert "Set up your own authenticator app first" in text(response)
    assert not Tenant.objects.get(pk=team.tenant.pk).require_2fa


def _require_2fa(team) -> None:
    enrol(team.owner)
    services.tenant_require_2fa_set(tenant=team.tenant, required=True, user=team.owner)


def test_admin_with_a_device_turns_the_policy_on_and_off(team) -> None:
    device = enrol(team.owner)
    client = Client()
    client.post("/login/", {"email": team.owner.email, "password": PASSWORD})
    client.post("/login/verify/", {"token": code(device)})
    response = client.post("/settings/team/two-factor/", {"require_2fa": "on"}, follow=True)
    assert "Every member must now use an authenticator app." in text(response)
    assert Tenant.objects.get(pk=team.tenant.pk).require_2fa
    assert "2 members have no authenticator app yet." in text(response)
    client.post("/settings/team/two-factor/", {"require_2fa": "off"})
    assert not Tenant.objects.get(pk=team.tenant.pk).require_2fa


def test_required_2fa_sends_members_without_device_to_enrol(team) -> None:
    _require_2fa(team)
    client = login(team.member)
    for url in ("/", "/settings/", "/settings/team/", "/invoices/", "/developers/keys/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/settings/security/?next="), url
    page = text(client.get("/settings/security/"))
    assert "Alpha SAS requires two-factor authentication." in page
    assert "Set up an authenticator app to continue." in page
    # Writes are refused too, before they reach the view.
    response = client.post("/settings/team/", {"email": "x@example.com", "role": "member"})
    assert response.status_code == 302
    assert not Invitation.objects.exists()
    # htmx requests are redirected by header.
    response = client.get("/settings/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"].startswith("/settings/security/")
    # The dashboard's own API calls (session, no key) are refused; API keys are not concerned.
    api = client.get("/api/v1/me")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "two_factor_required"
    assert team.client("sk_test").get("/api/v1/me").status_code == 200

    # Enrol: start, confirm with a code, then back to the page that was asked for.
    client.post("/settings/security/?next=/settings/team/", {"action": "start", "next": "/settings/team/"})
    device = TOTPDevice.objects.get(user=team.member)
    response = client.post(
        "/settings/security/", {"action": "confirm", "token": code(device), "next": "/settings/team/"}
    )
    assert response.status_code == 302 and response["Location"] == "/settings/team/"
    assert client.get("/settings/team/").status_code == 200
    assert client.get("/api/v1/me").status_code == 200


def test_required_2fa_asks_an_enrolled_member_for_a_code(team) -> None:
    _require_2fa(team)
    device = enrol(team.member)
    client = login(team.member)  # a session that never proved the second factor
    assert client.get("/settings/").status_code == 302
    page = text(client.get("/settings/security/"))
    assert "Enter a code from your authenticator app to continue." in page
    # The device cannot be removed while the tenant requires it.
    response = client.post("/settings/security/", {"action": "remove"}, follow=True)
    assert "requires two-factor authentication: it cannot be turned off." in text(response)
    assert TOTPDevice.objects.filter(user=team.member, confirmed=True).exists()
    response = client.post("/settings/security/", {"action": "verify", "token": code(device)})
    assert response.status_code == 302
    assert client.get("/settings/").status_code == 200


def test_required_2fa_applies_to_that_tenant_only(team, tenant_b) -> None:
    _require_2fa(team)
    Membership.objects.create(user=team.member, tenant=tenant_b.tenant, role="member")
    client = login(team.member)
    assert client.get("/settings/").status_code == 302
    # Switching to the other tenant is allowed, and its pages open.
    client.post("/switch-tenant/", {"tenant": str(tenant_b.tenant.pk)})
    response = client.get("/settings/")
    assert response.status_code == 200
    assert "Beta SARL" in text(response)


def test_sign_in_with_password_and_totp_satisfies_the_policy(team) -> None:
    _require_2fa(team)
    device = enrol(team.member)
    client = Client()
    response = client.post(
        "/login/", {"email": "marc@alpha.example", "password": PASSWORD, "next": "/settings/"}
    )
    assert response["Location"] == "/login/verify/"
    assert client.get("/settings/").status_code == 302  # no session yet
    response = client.post("/login/verify/", {"token": code(device)})
    assert response.status_code == 302 and response["Location"] == "/settings/"
    assert client.get("/settings/").status_code == 200


def test_half_signed_in_state_expires(team, monkeypatch) -> None:
    device = enrol(team.member)
    client = Client()
    client.post("/login/", {"email": "marc@alpha.example", "password": PASSWORD})
    import scell.dashboard as dashboard

    now = dashboard.time.time()
    monkeypatch.setattr(dashboard.time, "time", lambda: now + dashboard.PENDING_SECONDS + 1)
    response = client.post("/login/verify/", {"token": code(device)})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


# --- Password reset -------------------------------------------------------------------------------------
def test_login_page_links_to_password_reset(client) -> None:
    assert 'href="/password-reset/"' in text(client.get("/login/"))


def test_password_reset_by_email(team, client) -> None:
    mail.outbox.clear()
    response = client.post("/password-reset/", {"email": "MARC@alpha.example"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["marc@alpha.example"]
    assert message.subject == "Scell: choose a new password"
    url = path_of(link_from(message))
    assert url.startswith("/password-reset/")
    form_page = client.get(url, follow=True)
    assert 'name="new_password1"' in text(form_page)
    set_url = form_page.redirect_chain[-1][0]
    weak = client.post(set_url, {"new_password1": "password", "new_password2": "password"})
    assert weak.status_code == 200 and "This password is too common." in text(weak)
    new_password = "another-long-passphrase-42"
    done = client.post(set_url, {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    team.member.refresh_from_db()
    assert team.member.check_password(new_password)
    # Not signed in by the reset; the old password no longer works, the new one does.
    assert client.get("/").status_code == 302
    assert client.post("/login/", {"email": "marc@alpha.example", "password": PASSWORD}).status_code == 422
    assert (
        client.post("/login/", {"email": "marc@alpha.example", "password": new_password}).status_code == 302
    )
    # The link worked once.
    assert 'data-testid="reset-invalid"' in text(Client().get(url, follow=True))


def test_password_reset_for_unknown_email_sends_nothing(client) -> None:
    mail.outbox.clear()
    response = client.post("/password-reset/", {"email": "nobody@example.com"}, follow=True)
    assert 'data-testid="reset-sent"' in text(response)
    assert mail.outbox == []


# --- Sub-tenants ----------------------------------------------------------------------------------------
SUB_POST = {
    "identifier": "cli01",
    "external_ref": "CRM-42",
    "legal_name": "Client One SAS",
    "siren": "552100554",
    "siret": "",
    "vat_id": "",
    "legal_form": "",
    "rcs": "",
    "address_line1": "1 rue Neuve",
    "address_line2": "",
    "postcode": "69001",
    "city": "Lyon",
    "country": "FR",
    "email": "",
    "iban": "",
    "bic": "",
    "invoice_footer": "",
    "payment_days": "30",
    "payment_terms": "",
    "late_penalty_note": "",
    "recovery_fee_note": "",
    "discount_note": "",
}


def test_admin_creates_edits_and_deactivates_a_sub_tenant(team) -> None:
    client = login(team.owner)
    assert client.get("/settings/sub-tenants/new/").status_code == 200
    response = client.post("/settings/sub-tenants/new/", SUB_POST)
    assert response.status_code == 302, text(response)
    sub = SubTenant.objects.get()
    assert (sub.tenant, sub.identifier, sub.external_ref) == (team.tenant, "CLI01", "CRM-42")
    assert response["Location"] == f"/settings/sub-tenants/{sub.pk}/"
    assert "Client One SAS" in text(client.get("/settings/sub-tenants/"))

    duplicate = client.post("/settings/sub-tenants/new/", {**SUB_POST, "legal_name": "Other"})
    assert duplicate.status_code == 422
    assert "Another sub-tenant already uses this identifier." in text(duplicate)
    bad = client.post(
        "/settings/sub-tenants/new/", {**SUB_POST, "identifier": "CLI02", "siret": "73282932000074"}
    )
    assert bad.status_code == 422 and "The SIRET must start with the SIREN." in text(bad)
    assert SubTenant.objects.count() == 1

    edit = client.post(
        f"/settings/sub-tenants/{sub.pk}/", {**SUB_POST, "identifier": "XXXXX", "city": "Paris"}
    )
    assert edit.status_code == 302
    sub.refresh_from_db()
    assert (sub.city, sub.identifier) == ("Paris", "CLI01")  # the identifier is kept

    client.post(f"/settings/sub-tenants/{sub.pk}/active/", {"active": "0"})
    sub.refresh_from_db()
    assert not sub.is_active
    assert "deactivated" in text(client.get("/settings/sub-tenants/"))
    client.post(f"/settings/sub-tenants/{sub.pk}/active/", {"active": "1"})
    sub.refresh_from_db()
    assert sub.is_active


def test_sub_tenant_logo(team) -> None:
    client = login(team.owner)
    sub = services.sub_tenant_create(
        scope=_scope(team), legal_name="Client One SAS", identifier="CLI01", siren="552100554"
    )
    logo = SimpleUploadedFile("logo.jpg", _jpeg(), content_type="image/jpeg")
    assert client.post(f"/settings/sub-tenants/{sub.pk}/", {**SUB_POST, "logo": logo}).status_code == 302
    served = client.get(f"/settings/sub-tenants/{sub.pk}/logo/")
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert f"/settings/sub-tenants/{sub.pk}/logo/?v=" in text(client.get(f"/settings/sub-tenants/{sub.pk}/"))


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), (200, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _scope(fixture):
    from scell.tenancy import Scope

    return Scope(tenant=fixture.tenant, livemode=False, user=fixture.owner, role="admin")


@pytest.mark.parametrize("who", ["member", "reader"])
def test_members_see_sub_tenants_read_only(team, who: str) -> None:
    sub = services.sub_tenant_create(
        scope=_scope(team), legal_name="Client One SAS", identifier="CLI01", siren="552100554"
    )
    client = login(getattr(team, who))
    assert "Client One SAS" in text(client.get("/settings/sub-tenants/"))
    page = text(client.get(f"/settings/sub-tenants/{sub.pk}/"))
    assert 'data-testid="profile-readonly"' in page and 'data-testid="sub-tenant-form"' not in page
    assert client.get("/settings/sub-tenants/new/").status_code == 403
    assert client.post("/settings/sub-tenants/new/", {**SUB_POST, "identifier": "CLI02"}).status_code == 403
    assert client.post(f"/settings/sub-tenants/{sub.pk}/", {**SUB_POST, "city": "Nice"}).status_code == 403
    assert client.post(f"/settings/sub-tenants/{sub.pk}/active/", {"active": "0"}).status_code == 403
    sub.refresh_from_db()
    assert sub.is_active and sub.city == "" and SubTenant.objects.count() == 1


def test_sub_tenants_of_another_tenant_are_404(team, tenant_b) -> None:
    sub = services.sub_tenant_create(
        scope=_scope(team), legal_name="Client One SAS", identifier="CLI01", siren="552100554"
    )
    outsider = login(tenant_b.owner)
    assert "Client One SAS" not in text(outsider.get("/settings/sub-tenants/"))
    assert outsider.get(f"/settings/sub-tenants/{sub.pk}/").status_code == 404
    assert outsider.post(f"/settings/sub-tenants/{sub.pk}/", SUB_POST).status_code == 404
    assert outsider.post(f"/settings/sub-tenants/{sub.pk}/active/", {"active": "0"}).status_code == 404
    assert outsider.get(f"/settings/sub-tenants/{sub.pk}/logo/").status_code == 404
    # The same identifier is free in another tenant.
    assert outsider.post("/settings/sub-tenants/new/", SUB_POST).status_code == 302
    assert SubTenant.objects.filter(identifier="CLI01").count() == 2


# --- Privacy and data -----------------------------------------------------------------------------------
def test_dpa_acceptance(team, settings) -> None:
    version = getattr(django_settings, "DPA_VERSION", "2026-01")
    client = login(team.owner)
    page = text(client.get("/settings/privacy/"))
    assert "Not accepted" in page and 'data-testid="dpa-text"' in page
    assert f"Accept version {version}" in page
    missing = client.post("/settings/privacy/dpa/", {})
    assert missing.status_code == 422
    assert not Tenant.objects.get(pk=team.tenant.pk).dpa_accepted_at
    assert login(team.member).post("/settings/privacy/dpa/", {"accept": "on"}).status_code == 403

    assert client.post("/settings/privacy/dpa/", {"accept": "on"}).status_code == 302
    tenant = Tenant.objects.get(pk=team.tenant.pk)
    assert (tenant.dpa_version, tenant.dpa_accepted_by) == (version, team.owner)
    assert tenant.dpa_accepted_at is not None
    page = text(login(team.reader).get("/settings/privacy/"))
    assert f"Version {version}, accepted on" in page and team.owner.email in page

    settings.DPA_VERSION = "2099-01"
    page = text(client.get("/settings/privacy/"))
    assert "version 2099-01 is now in force" in page
    client.post("/settings/privacy/dpa/", {"accept": "on"})
    assert Tenant.objects.get(pk=team.tenant.pk).dpa_version == "2099-01"


def test_archive_export_streams_the_zip_of_the_current_scope(seller, draft_body, tenant_b) -> None:
    issued = seller.client("sk_test").post("/api/v1/invoices", draft_body, format="json")
    assert issued.status_code == 201, issued.json()
    number = seller.client("sk_test").post(f"/api/v1/invoices/{issued.json()['id']}/issue").json()["number"]
    reader = add_member(seller, "rita@seller.example", Membership.Role.READ_ONLY)
    response = login(reader).get("/settings/privacy/archive-export/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "scell-archive-SELL1-test-json-" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert [f["number"] for f in manifest["files"]] == [number]
    assert manifest["livemode"] is False
    # Live mode has none; another tenant has none; a bad format is 404.
    live = login(reader)
    live.post("/switch-mode/", {"mode": "live"})
    live_zip = zipfile.ZipFile(
        io.BytesIO(b"".join(live.get("/settings/privacy/archive-export/?format=json").streaming_content))
    )
    assert json.loads(live_zip.read("manifest.json"))["count"] == 0
    other = login(tenant_b.owner).get("/settings/privacy/archive-export/?format=json")
    assert (
        json.loads(zipfile.ZipFile(io.BytesIO(b"".join(other.streaming_content))).read("manifest.json"))[
            "count"
        ]
        == 0
    )
    assert login(reader).get("/settings/privacy/archive-export/?format=xml").status_code == 404


def test_personal_data_export_is_for_admins(team, tenant_b) -> None:
    response = login(team.owner).get("/settings/privacy/personal-data/")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert {u["email"] for u in data["users"]} == {
        team.owner.email,
        "marc@alpha.example",
        "rita@alpha.example",
    }
    assert tenant_b.owner.email not in response.content.decode()
    assert login(team.reader).get("/settings/privacy/personal-data/").status_code == 403
    assert "Download the personal data" not in text(login(team.reader).get("/settings/privacy/"))


def test_erase_my_account(team) -> None:
    client = login(team.member)
    wrong = client.post("/settings/privacy/erase-account/", {"password": "nope"})
    assert wrong.status_code == 422 and "This password is not correct." in text(wrong)
    response = client.post("/settings/privacy/erase-account/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login/"
    erased = User.objects.get(pk=team.member.pk)
    assert not erased.is_active and erased.email.endswith("@invalid") and erased.full_name == ""
    assert client.get("/settings/").status_code == 302  # signed out
    # The last admin must hand over first.
    owner = login(team.owner)
    refused = owner.post("/settings/privacy/erase-account/", {"password": PASSWORD})
    assert refused.status_code == 422
    assert "You are the last admin of Alpha SAS" in text(refused)
    assert User.objects.get(pk=team.owner.pk).is_active
