"""Fixtures of the tenancy and API-platform tests."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def openapi() -> dict:
    """The OpenAPI schema as ``/api/v1/schema/`` serves it (postprocessing hooks included)."""
    return SchemaGenerator().get_schema(request=None, public=True)
