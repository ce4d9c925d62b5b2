"""Browser fixtures of the signing page and the widget, on the shared ``chromium`` fixture
(tests/conftest.py). Named ``phone`` and friends so they never shadow another module's ``page``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

PHONE_VIEWPORT = {"width": 390, "height": 844}


@pytest.fixture
def browser_errors() -> list[str]:
    """Console errors and uncaught exceptions of the pages (a CSP violation shows up here)."""
    return []


@pytest.fixture
def phone(chromium, live_server, browser_errors) -> Iterator:
    """A page in a phone-sized, touch, mobile context on the live server."""
    context = chromium.new_context(
        base_url=live_server.url,
        locale="en-US",
        viewport=PHONE_VIEWPORT,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda m: browser_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: browser_errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
