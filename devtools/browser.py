"""Headless Chromium for the console: Debian's `chromium` package driven by Playwright, nothing downloaded.

Playwright launches the system browser by path (`executable_path`), with `--no-sandbox` when run as
root (Chromium refuses its sandbox to root). Used by the console's browser tests and by
`python -m devtools.console_shots`, which draws docs/img/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

CANDIDATES = ("chromium", "chromium-browser")
VIEWPORT = {"width": 1280, "height": 900}
INSTALL = "apt-get install -y chromium (Debian's package; .ci/run installs it when missing)"


class NoChromiumError(RuntimeError):
    """No system Chromium: the message says how to install it."""


def chromium_path() -> str:
    found = next((path for name in CANDIDATES if (path := shutil.which(name))), None)
    if found is None:
        raise NoChromiumError(f"no Chromium on this machine for the console's browser tests: {INSTALL}")
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    path = chromium_path()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
