"""Tenancy, users and API keys: the rows every other app hangs from."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

from scell.tenancy import ScopedQuerySet

identifier_validator = RegexValidator(
    r"^[A-Z0-9]{5}$",
    _("The identifier is exactly 5 upper-case letters or digits (it prefixes invoice numbers)."),
)


def validate_siren(value: str) -> None:
    """SIREN: 9 digits with a Luhn check digit (INSEE)."""
    if not stdnum_siren.is_valid(value):
        raise ValidationError(
            _("%(value)s is not a valid SIREN (9 digits, Luhn key)."), params={"value": value}
        )


def validate_siret(value: str) -> None:
    """SIRET: SIREN + 5-digit establishment number, Luhn key over the 14 digits."""
    if not stdnum_siret.is_valid(value):
        raise ValidationError(
            _("%(value)s is not a valid SIRET (14 digits, Luhn key)."), params={"value": value}
        )


LOGO_MAX_BYTES = 1024 * 1024


def validate_logo(file) -> None:
    """Only small raster images: the logo is embedded in every PDF/A we render."""
    if file.size > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo must be at most 1 MB."))
    name = (getattr(file, "name", "") or "").lower()
    if not name.endswith((".png", ".jpg", ".jpeg")):
        raise ValidationError(_("The logo must be a PNG or JPEG image."))


def logo_path(instance: models.Model, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower()
    return f"logos/{instance._meta.model_name}/{instance.pk}/{uuid.uuid4().hex}.{extension}"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in to the dashboard (tenant admin or member) or to Django admin (support)."""

    email = models.EmailField(_("email"), unique=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    is_staff = models.BooleanField(_("support staff"), default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # The dashboard language the user chose; blank follows the tenant (French for French tenants).
    language = models.CharField(_("language"), max_length=8, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


# The editable fields of a legal profile, in form order: the tenant's settings page, the sub-tenant
# form and ``scell.services.tenant_profile_update`` all take these. The identifier is not among them:
# it prefixes every issued invoice number, and a number sequence must not change issuer prefix halfway
# (CGI art. 242 nonies A: a unique, continuous sequence).
PROFILE_FIELDS: tuple[str, ...] = (
    "legal_name",
    "siren",
    "siret",
    "vat_id",
    "legal_form",
    "rcs",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country",
    "email",
    "iban",
    "bic",
    "logo",
    "invoice_footer",
    "payment_days",
    "payment_terms",
    "late_penalty_note",
    "recovery_fee_note",
    "discount_note",
)


class LegalProfile(models.Model):
    """The legal identity that invoices show as seller (EN 16931 BG-4) and numbering uses."""

    legal_name = models.CharField(_("legal name"), max_length=200)
    identifier = models.CharField(
        _("identifier"),
        max_length=5,
        validators=[identifier_validator],
        help_text=_("5 characters that prefix every issued invoice number (XXXXX-YYYYMM-NNNNN)."),
    )
    siren = models.CharField(_("SIREN"), max_length=9, validators=[validate_siren])
    siret = models.CharField(_("SIRET"), max_length=14, blank=True, validators=[validate_siret])
    vat_id = models.CharField(_("VAT id"), max_length=20, blank=True)
    legal_form = models.CharField(
        _("legal form and capital"),
        max_length=200,
        blank=True,
        help_text=_("e.g. SAS au capital de 10 000 €"),
    )
    rcs = models.CharField(_("trade register (RCS)"), max_length=100, blank=True)
    address_line1 = models.CharField(_("address"), max_length=200, blank=True)
    address_line2 = models.CharField(_("address (cont.)"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, default="FR")
    email = models.EmailField(_("billing e-mail"), blank=True)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    # How the invoice PDF looks and what it says by default (drafts may override per invoice).
    logo = models.ImageField(
        _("logo"),
        upload_to=logo_path,
        blank=True,
        validators=[validate_logo],
        help_text=_("PNG or JPEG, at most 1 MB; printed at the top of the invoice PDF."),
    )
    invoice_footer = models.TextField(
        _("invoice footer"), max_length=500, blank=True, help_text=_("Printed at the bottom of every page.")
    )
    payment_days = models.PositiveSmallIntegerField(
        _("default payment term (days)"),
        default=30,
        validators=[MaxValueValidator(365)],
        help_text=_(
            "A draft without a due date falls due this many days after issue "
            "(Code de commerce L441-10 caps it at 60 days)."
        ),
    )
    payment_terms = models.CharField(
        _("payment terms text"),
        max_length=300,
        blank=True,
        help_text=_('BT-20, e.g. "Paiement à 30 jours par virement".'),
    )
    late_penalty_note = models.TextField(
        _("late payment penalties (PMD)"),
        max_length=500,
        blank=True,
        help_text=_("Leave blank for the standard mention: three times the legal interest rate."),
    )
    recovery_fee_note = models.TextField(
        _("recovery fee (PMT)"),
        max_length=500,
        blank=True,
        help_text=_("Leave blank for the standard mention: the EUR 40 fixed recovery fee."),
    )
    discount_note = models.TextField(
        _("early payment discount (AAB)"),
        max_length=500,
        blank=True,
        help_text=_("Leave blank for the standard mention: no discount for early payment."),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.identifier})"

    def clean(self) -> None:
        super().clean()
        if self.siret and self.siren and not self.siret.startswith(self.siren):
            raise ValidationError({"siret": _("The SIRET must start with the SIREN.")})


class Tenant(LegalProfile):
    """A customer account of Scell: a business or a software publisher (partner)."""

    class ArchiveStatus(models.TextChoices):
        HEALTHY = "healthy", _("healthy")
        COMPROMISED = "compromised", _("compromised")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    archive_status = models.CharField(max_length=20, choices=ArchiveStatus, default=ArchiveStatus.HEALTHY)
    is_active = models.BooleanField(default=True)
    # Scell's own legal entity: it sells credit packs and invoices them through Scell itself; its own
    # operations spend no credits.
    is_platform = models.BooleanField(default=False)
    # An admin may make the authenticator app (TOTP) mandatory for every member of the tenant.
    require_2fa = models.BooleanField(_("two-factor authentication required"), default=False)
    # GDPR art. 28: the data processing agreement the tenant accepted (version, who, when).
    dpa_version = models.CharField(max_length=20, blank=True)
    dpa_accepted_at = models.DateTimeField(null=True, blank=True)
    dpa_accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["identifier"], name="tenant_identifier_unique")]

    @property
    def default_language(self) -> str:
        return "fr" if self.country == "FR" else "en"


class SubTenant(LegalProfile):
    """A partner tenant's own customer, with its own legal profile and invoice numbering."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="sub_tenants")
    external_ref = models.CharField(_("your reference"), max_length=100, blank=True)
    is_active = models.BooleanField(default=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "identifier"], name="subtenant_identifier_unique"),
        ]


class Membership(models.Model):
    """A user's role in a tenant; a user may belong to several tenants."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("admin")
        MEMBER = "member", _("member")
        READ_ONLY = "read_only", _("read-only")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant.identifier} ({self.role})"


class Invitation(models.Model):
    """An e-mailed invitation to join a tenant with a role. The link carries a random token of which only
    the hash is stored; it works once, until it expires or is revoked."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail"))
    role = models.CharField(max_length=20, choices=Membership.Role, default=Membership.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "email"])]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant.identifier} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class SupportAction(models.Model):
    """What a support agent did in Django admin, to what, and why. Written by the same transaction as the
    action; never edited or deleted."""

    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=50)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type}:{self.object_id}"


def hash_key(raw: str) -> str:
    """Keys carry 256 bits of randomness, so a plain SHA-256 is enough to make the stored value useless
    to a reader of the database (no salt or slow hash needed, unlike passwords) and allows an indexed
    lookup."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    """A secret, publishable or (legacy) tenant key. Only its hash is stored; the key is shown once."""

    class Kind(models.TextChoices):
        SECRET = "secret", _("secret key")
        PUBLISHABLE = "publishable", _("publishable key")
        TENANT = "tenant", _("tenant key (legacy)")

    PREFIXES = {Kind.SECRET: "sk", Kind.PUBLISHABLE: "pk", Kind.TENANT: "tk"}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    kind = models.CharField(max_length=20, choices=Kind)
    livemode = models.BooleanField()
    name = models.CharField(max_length=100, blank=True)
    # The first characters of the key, so people can recognise a key in lists without the secret.
    display_prefix = models.CharField(max_length=24)
    key_hash = models.CharField(max_length=64, unique=True)
    allowed_origins = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "kind", "livemode"])]

    def __str__(self) -> str:
        return f"{self.display_prefix}… ({self.get_kind_display()})"

    @property
    def mode_prefix(self) -> str:
        return f"{self.PREFIXES[self.Kind(self.kind)]}_{'live' if self.livemode else 'test'}_"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def generate(cls, *, kind: str, livemode: bool) -> tuple[str, str, str]:
        """A new raw key, its hash and its display prefix. 32 random bytes = 256 bits of entropy."""
        prefix = f"{cls.PREFIXES[cls.Kind(kind)]}_{'live' if livemode else 'test'}_"
        raw = prefix + secrets.token_urlsafe(32)
        return raw, hash_key(raw), raw[: len(prefix) + 6]


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an ``Idempotency-Key``, replayed for the same key and body."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "livemode", "key"], name="idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
