"""Headless Chromium for the console's browser tests: Debian's `chromium` driven by Playwright, nothing downloaded.

Playwright launches the system browser by path (`executable_path`), with `--no-sandbox` when run as root
(Chromium refuses its sandbox to root). A machine without it fails the test with how to install it:
a browser test never skips.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CANDIDATES = ("chromium", "chromium-browser")
VIEWPORT = {"width": 1280, "height": 900}
INSTALL = "apt-get install -y chromium (Debian's package; .ci/run installs it when missing)"


def chromium_path() -> str:
    found = next((path for name in CANDIDATES if (path := shutil.which(name))), None)
    if found is None:
        pytest.fail(f"no Chromium on this machine for the console's browser tests: {INSTALL}")
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, path: Path) -> Path:
    """A screenshot of the viewport, checked to be a non-empty PNG of the viewport's size."""
    page.screenshot(path=str(path))
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"]), f"{path} is {width}x{height}"
    assert path.stat().st_size > 5_000, f"{path} is nearly empty"
    return path
