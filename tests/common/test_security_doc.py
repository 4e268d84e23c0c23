"""docs/security.md stays true: linked from the README, and every module it names as built exists."""

from __future__ import annotations

import re

from tests.procs import ROOT

DOC = (ROOT / "docs" / "security.md").read_text()


def test_the_readme_links_the_security_doc_and_it_says_how_to_report() -> None:
    assert "[docs/security.md](docs/security.md)" in (ROOT / "README.md").read_text()
    assert "## Reporting a vulnerability" in DOC
    for section in ("## Assets", "## Trust boundaries", "## What is built", "## Still open"):
        assert section in DOC


def test_every_file_the_doc_names_exists() -> None:
    named = set(re.findall(r"\b((?:common|ops|worker|api|ingest|deploy|tests)/[\w./-]+\.(?:py|yaml))", DOC))
    assert {
        "worker/kinde/token_crypto.py",
        "common/infra/url_policy.py",
        "common/infra/secret_strength.py",
        "ops/audit.py",
    } <= named
    assert sorted(n for n in named if not (ROOT / n).exists()) == []
