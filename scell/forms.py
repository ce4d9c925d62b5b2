"""Dashboard forms of the shell and the account area: sign-in, second factor, legal profile, sub-tenants,
team, invitations, privacy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat

from scell.models import PROFILE_FIELDS, Membership, SubTenant, Tenant, User

# Mentions printed on every invoice when the profile leaves them blank (invoicing.mapping.DEFAULT_NOTES,
# Code de commerce L441-10 and D441-5).
NOTE_SUBJECTS = {"late_penalty_note": "PMD", "recovery_fee_note": "PMT", "discount_note": "AAB"}

LOGO_TYPES = {"image/png", "image/jpeg"}


class LoginForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, request, *args, **kwargs) -> None:
        self.request = request
        self.user = None
        super().__init__(*args, **kwargs)

    def clean(self) -> dict:
        data = super().clean()
        email, password = data.get("email"), data.get("password")
        if email and password:
            self.user = authenticate(self.request, username=email.lower(), password=password)
            if self.user is None or not self.user.is_active:
                raise forms.ValidationError(_("E-mail or password is incorrect."), code="invalid_login")
        return data


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("6-digit code from your authenticator app"),
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


# --- Legal profile --------------------------------------------------------------------------------------
class LegalProfileFormMixin:
    """Normalisation and checks shared by the tenant's and the sub-tenants' legal profile: people paste
    SIREN, IBAN and VAT numbers with spaces; the model validators then check the keys."""

    cleaned_data: dict[str, Any]

    def _setup_profile_widgets(self) -> None:
        from invoicing.mapping import DEFAULT_NOTES

        fields = self.fields  # type: ignore[attr-defined]
        for name, subject in NOTE_SUBJECTS.items():
            if name in fields:
                fields[name].widget = forms.Textarea(attrs={"rows": 2, "placeholder": DEFAULT_NOTES[subject]})
        if "invoice_footer" in fields:
            fields["invoice_footer"].widget = forms.Textarea(attrs={"rows": 2})
        if "logo" in fields:
            # A plain file input: Django's clearable one links to the stored file, which is not public.
            fields["logo"].widget = forms.FileInput(attrs={"accept": "image/png,image/jpeg"})
        autocomplete = {
            "legal_name": "organization",
            "address_line1": "address-line1",
            "address_line2": "address-line2",
            "postcode": "postal-code",
            "city": "address-level2",
            "country": "country",
            "email": "email",
        }
        for name, value in autocomplete.items():
            if name in fields:
                fields[name].widget.attrs["autocomplete"] = value
        for name in ("siren", "siret", "payment_days"):
            if name in fields:
                fields[name].widget.attrs["inputmode"] = "numeric"
        # Spaces and dots are allowed while typing ("732 829 320"): the length is checked by the model
        # once they are gone.
        for name in ("siren", "siret", "vat_id", "iban", "bic", "country"):
            if name in fields:
                field = fields[name]
                field.max_length = None
                field.validators = [v for v in field.validators if not isinstance(v, MaxLengthValidator)]
                field.widget.attrs.pop("maxlength", None)

    @staticmethod
    def _digits(value: str) -> str:
        return "".join(value.split()).replace(".", "")

    def clean_siren(self) -> str:
        return self._digits(self.cleaned_data.get("siren", ""))

    def clean_siret(self) -> str:
        return self._digits(self.cleaned_data.get("siret", ""))

    def clean_country(self) -> str:
        value = (self.cleaned_data.get("country") or "").strip().upper()
        if len(value) != 2 or not value.isalpha():
            raise ValidationError(_("Use the 2-letter country code (ISO 3166), e.g. FR."))
        return value

    def clean_vat_id(self) -> str:
        value = (self.cleaned_data.get("vat_id") or "").strip()
        if not value:
            return ""
        compact = stdnum_vat.compact(value)
        if not stdnum_vat.is_valid(compact):
            raise ValidationError(_("This VAT id is not valid (country prefix, then the number)."))
        return compact

    def clean_iban(self) -> str:
        value = (self.cleaned_data.get("iban") or "").strip()
        if not value:
            return ""
        compact = stdnum_iban.compact(value)
        if not stdnum_iban.is_valid(compact):
            raise ValidationError(_("This IBAN is not valid."))
        return compact

    def clean_bic(self) -> str:
        value = (self.cleaned_data.get("bic") or "").strip()
        if not value:
            return ""
        compact = stdnum_bic.compact(value)
        if not stdnum_bic.is_valid(compact):
            raise ValidationError(_("This BIC is not valid."))
        return compact

    def clean(self) -> dict[str, Any]:
        data = super().clean()  # type: ignore[misc]
        vat_id, siren = data.get("vat_id") or "", data.get("siren") or ""
        # A French VAT number is FR + a 2-character key + the SIREN.
        if vat_id.startswith("FR") and siren and vat_id[4:] != siren:
            self.add_error("vat_id", _("This French VAT id does not match the SIREN."))  # type: ignore[attr-defined]
        return data

    def profile_changes(self) -> dict[str, Any]:
        """The cleaned fields for the service; the logo only when it changed (``""`` clears it)."""
        changes = dict(self.cleaned_data)
        clear = changes.pop("logo_clear", False)
        if "logo" in changes:
            logo = changes.pop("logo")
            if isinstance(logo, UploadedFile):
                changes["logo"] = logo
            elif clear:
                changes["logo"] = ""
        return changes

    def clean_logo(self) -> Any:
        logo = self.cleaned_data.get("logo")
        # The name says PNG or JPEG (validate_logo); Pillow says what the bytes are.
        if isinstance(logo, UploadedFile) and getattr(logo, "content_type", "") not in LOGO_TYPES:
            raise ValidationError(_("The logo must be a PNG or JPEG image."))
        return logo


class LegalProfileForm(LegalProfileFormMixin, forms.ModelForm):
    """The tenant's own legal profile (its identifier is shown, never edited)."""

    logo_clear = forms.BooleanField(label=_("Remove the current logo"), required=False)

    class Meta:
        model = Tenant
        fields = PROFILE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup_profile_widgets()


class SubTenantForm(LegalProfileFormMixin, forms.ModelForm):
    """A sub-tenant's legal profile. Its identifier is chosen at creation and kept afterwards: it
    prefixes the sub-tenant's invoice numbers."""

    logo_clear = forms.BooleanField(label=_("Remove the current logo"), required=False)

    class Meta:
        model = SubTenant
        fields = ["identifier", "external_ref", *PROFILE_FIELDS]

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self._setup_profile_widgets()
        self.fields["identifier"].widget.attrs.update({"maxlength": 5, "style": "text-transform:uppercase"})
        if not self.instance._state.adding:  # the UUID pk exists before the row does
            del self.fields["identifier"]

    def clean_identifier(self) -> str:
        value = (self.cleaned_data.get("identifier") or "").strip().upper()
        # The constraint is per partner (tenant, identifier): the form knows the tenant, the model form
        # alone would not check it.
        if value and SubTenant.objects.filter(tenant=self.tenant, identifier=value).exists():
            raise ValidationError(_("Another sub-tenant already uses this identifier."))
        return value


# --- Team -----------------------------------------------------------------------------------------------
ROLE_CHOICES = Membership.Role.choices


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)


class TwoFactorPolicyForm(forms.Form):
    require_2fa = forms.BooleanField(
        label=_("Require an authenticator app for every member"),
        required=False,
    )


class AcceptInvitationForm(forms.Form):
    """A new account for the invited e-mail: a name and a password (Django's password validators)."""

    full_name = forms.CharField(
        label=_("Full name"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords differ."))
        elif password1:
            candidate = User(email=self.email, full_name=data.get("full_name", ""))
            try:
                validate_password(password1, user=candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


# --- Privacy --------------------------------------------------------------------------------------------
class DpaAcceptForm(forms.Form):
    accept = forms.BooleanField(label=_("I have read the agreement and accept it for this tenant"))


class EraseAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password", "")
        if not self.user.check_password(password):
            raise ValidationError(_("This password is not correct."))
        return password
