"""Browser fixtures of the signing page and the widget, on the shared ``chromium`` fixture
(tests/conftest.py). Named ``phone`` and friends so they never shadow another module's ``page``."""

from __future__ import annotations

import pytest


@pytest.fixture
def browser_errors() -> list[str]:
    """Console errors and uncaught exceptions of the pages (a CSP violation shows up here)."""
    return []


@pytest.fixture
def phone(browser_page, browser_errors):
    """A page in a phone-sized (390 x 844), touch, mobile context on the live server."""
    page = browser_page(width=390, height=844, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.on("console", lambda m: browser_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: browser_errors.append(str(exc)))
    return page
