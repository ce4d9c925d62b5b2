"""Tenancy, users and API keys: the rows every other app hangs from."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
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

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["identifier"], name="tenant_identifier_unique")]


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
