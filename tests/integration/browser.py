from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

DEBIAN_CHROMIUM = "/usr/bin/chromium"
MISSING_CHROMIUM = "Chromium is not installed: apt-get install chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> str:
    """The system Chromium; skips the calling module without it, or fails when WEFT_REQUIRE_BROWSER=1 (CI)."""
    path = DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path:
        return path
    if os.environ.get("WEFT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"WEFT_REQUIRE_BROWSER=1 but {MISSING_CHROMIUM}", pytrace=False)
    pytest.skip(MISSING_CHROMIUM, allow_module_level=True)


@contextlib.contextmanager
def launch_chromium(executable: str) -> Iterator[Browser]:
    """A headless system Chromium (Playwright never downloads a browser here), closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def proxy_public_url(context: BrowserContext, public_url: str, app_url: str) -> None:
    """Redirect the app's configured public URL to its real socket, as the reverse proxy in front of it would.

    The public URL must be fixed before the app starts, but the test app listens on a port chosen at start.
    """
    prefix = public_url.rstrip("/")
    pattern = re.compile("^" + re.escape(prefix) + r"(?=[/?#]|$)")

    def forward(route: Route) -> None:
        target = app_url.rstrip("/") + route.request.url[len(prefix):]
        route.fulfill(status=307, headers={"Location": target})

    context.route(pattern, forward)
