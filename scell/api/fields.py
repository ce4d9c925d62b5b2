"""Serializer fields shared by the API's request bodies."""

from __future__ import annotations

from typing import Any

from django import forms
from django_filters import BooleanFilter
from rest_framework import serializers


def strict_json_types() -> None:
    """The API's bodies are JSON (the default parser is JSON only), and their types are the OpenAPI
    schema's: a number sent where a string is due (``"siren": 732829320``) and anything but ``true`` or
    ``false`` where a boolean is due (``"yes"``, ``0``, ``"false"``) are refused (422) instead of being
    converted, which would make the request mean something its sender did not write (a postcode's
    leading zeros, a string "false" read as true by a client library). Installed once on DRF's
    CharField and BooleanField, so every serializer, e-mail, URL and regex fields included, speaks the
    same rule. Called from ``ScellConfig.ready``."""
    if getattr(serializers.CharField.to_internal_value, "_scell_strict", False):
        return
    to_string = serializers.CharField.to_internal_value

    def string(self: serializers.CharField, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return to_string(self, data)

    def boolean(self: serializers.BooleanField, data: Any) -> bool:
        if data is True or data is False:
            return data
        raise serializers.ValidationError("Must be true or false (a JSON boolean).", code="invalid")

    string._scell_strict = True  # type: ignore[attr-defined]
    serializers.CharField.to_internal_value = string  # type: ignore[method-assign]
    serializers.BooleanField.to_internal_value = boolean  # type: ignore[method-assign]


class _StrictNullBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``); anything else is an error, not "no filter" (Django's
    NullBooleanSelect would read an unknown value as "unknown" and drop the filter)."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise forms.ValidationError("Must be true or false.", code="invalid")

    def validate(self, value: Any) -> None:
        return None


class StrictBooleanFilter(BooleanFilter):
    field_class = _StrictNullBooleanField
