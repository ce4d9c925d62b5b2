"""Validation of e-invoices against the official rules: Factur-X XSDs, EN 16931 (CEN Schematron),
the Factur-X profile Schematrons, the French BR-FR rules and the CDAR lifecycle rules.

The rule files live in ``rules/`` (see ``rules/README.md`` for sources, versions and licences).
Call ``warm_up()`` once a worker process has started so the first request does not pay for
compiling the stylesheets.
"""

from invoicing.validation.engine import warm_up
from invoicing.validation.report import Issue, ValidationReport
from invoicing.validation.validators import (
    PROFILES,
    declared_profile,
    validate_cdar,
    validate_cii,
    validate_document,
    validate_facturx_pdf,
    validate_ubl,
)

__all__ = [
    "PROFILES",
    "Issue",
    "ValidationReport",
    "declared_profile",
    "validate_cdar",
    "validate_cii",
    "validate_document",
    "validate_facturx_pdf",
    "validate_ubl",
    "warm_up",
]
