"""docs/sandbox.md documents every control route sandbox/control.py registers, with each of its methods."""

from __future__ import annotations

import re

from sandbox import control
from tests.procs import ROOT


def _control_section() -> list[str]:
    text = (ROOT / "docs" / "sandbox.md").read_text()
    start = text.index("## The control API over HTTP")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None].splitlines()


def test_every_control_route_and_method_is_documented() -> None:
    lines = _control_section()
    missing = []
    for route in control.routes:
        exact = re.compile(re.escape(route.path) + r"(?=[`?\s]|$)")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if not any(exact.search(line) and re.search(rf"\b{method}\b", line) for line in lines):
                missing.append(f"{method} {route.path}")
    assert not missing, f"not in docs/sandbox.md's control API table: {missing}"
