"""Debian's Chromium, headless, driven by Playwright for Python, for tests of the Dagster UI.

Why Debian's Chromium and not Playwright's bundled browsers: downloads are impossible here and in CI, so
``playwright install`` is never run; the Playwright driver (shipped in the wheel) talks to
``/usr/bin/chromium`` through ``executable_path``. Every request the page makes to a host other than the
loopback is aborted, so a test cannot silently depend on the internet (Dagster's UI asks for nothing
external once telemetry and the welcome modal are off, but a future version might).
"""

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
VIEWPORT = {"width": 1440, "height": 900}


def chromium_missing_reason() -> str | None:
    """Why a browser test cannot run here, or None when it can (for ``pytest.mark.skipif``)."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not installed (apt-get install -y chromium; .ci/services.sh does it in CI)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) not installed in this environment"
    return None


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


@dataclass
class Screenshots:
    """Numbered full-page screenshots in one folder, so a person can replay what the test saw."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # a rerun must not leave the previous run's pictures
        self.folder.mkdir(parents=True, exist_ok=True)

    def take(self, page, name: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@contextmanager
def headless_chromium(timeout_ms: float = 30_000) -> Iterator:
    """A fresh Playwright page in headless Debian Chromium; non-loopback requests are aborted and counted.

    Yields the page; ``page.blocked_requests`` (a list of URLs) tells a test what was refused.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(timeout_ms)
            blocked: list[str] = []

            def guard(route) -> None:
                if is_loopback(route.request.url):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            context.route("**/*", guard)
            page = context.new_page()
            page.blocked_requests = blocked
            yield page
        finally:
            browser.close()
