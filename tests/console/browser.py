"""The browser tests' Chromium (devtools/browser.py) and their screenshot check.

A machine without Chromium fails the test with how to install it: a browser test never skips.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from devtools import browser
from devtools.browser import VIEWPORT

__all__ = ["VIEWPORT", "chromium", "screenshot"]


@contextmanager
def chromium() -> Iterator[Browser]:
    try:
        browser.chromium_path()
    except browser.NoChromiumError as exc:
        pytest.fail(str(exc))
    with browser.chromium() as found:
        yield found


def screenshot(page: Page, path: Path) -> Path:
    """A screenshot of the viewport, checked to be a non-empty PNG of the viewport's size."""
    page.screenshot(path=str(path))
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"]), f"{path} is {width}x{height}"
    assert path.stat().st_size > 5_000, f"{path} is nearly empty"
    return path
