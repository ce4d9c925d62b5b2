"""Validation results: one ``Issue`` per broken rule, gathered in a ``ValidationReport``.

Severity (``Issue.flag``) follows Schematron's ``flag`` attribute:

* ``fatal``   – a broken business rule (EN 16931 ``flag="fatal"``, BR-FR, XSD errors, unreadable input);
* ``error``   – a Factur-X profile violation. The Factur-X profile Schematrons (FNFE-MPE) mostly carry
  no ``flag`` at all; ISO Schematron treats an unflagged assert as an error and the FNFE validator
  rejects such files, so they block just like ``fatal``;
* ``warning`` – advisory (EN 16931 ``flag="warning"``, e.g. PEPPOL-EN16931-R008); never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Flag = Literal["fatal", "error", "warning"]
Source = Literal["xsd", "en16931", "br-fr", "facturx-profile", "syntax", "cdar", "facturx-pdf"]

BLOCKING_FLAGS: frozenset[str] = frozenset({"fatal", "error"})


@dataclass(frozen=True)
class Issue:
    """One broken rule. ``rule`` and ``message`` are what the API returns in error ``details``."""

    rule: str
    message: str
    flag: str  # "fatal" | "error" | "warning"
    location: str = ""
    source: str = "syntax"  # see ``Source``

    @property
    def blocking(self) -> bool:
        return self.flag in BLOCKING_FLAGS

    def to_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "message": self.message,
            "flag": self.flag,
            "location": self.location,
            "source": self.source,
        }


@dataclass
class ValidationReport:
    """Outcome of validating one document; ``valid`` is False as soon as one blocking issue exists."""

    syntax: str  # "cii" | "ubl" | "facturx" | "cdar" | "unknown"
    profile: str | None = None  # Factur-X profile of CII/Factur-X documents
    issues: list[Issue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(issue.blocking for issue in self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.blocking]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if not issue.blocking]

    def rules(self, *, blocking_only: bool = True) -> set[str]:
        """Rule ids that fired; handy for tests and for logging a one-line summary."""
        return {issue.rule for issue in self.issues if issue.blocking or not blocking_only}

    def to_dict(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "syntax": self.syntax,
            "profile": self.profile,
            "issues": [issue.to_dict() for issue in self.issues],
        }
