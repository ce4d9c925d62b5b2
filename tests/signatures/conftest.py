"""Browser fixtures of the signing page and the widget: Debian's Chromium (``/usr/bin/chromium``, installed
by ``scripts/setup --dev``) driven by Playwright's sync API; the browsers of ``playwright install`` are
never used. Named ``chromium`` and ``phone`` so they never shadow another module's ``browser``/``page``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE_VIEWPORT = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup --dev")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls
    # from a thread with a running loop unless told otherwise (the ORM calls here are synchronous).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


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
