"""Suite 6: grep every log line the other suites produced for the M2M client secret, any access
token the sandbox issued, and any JWT at all (webhook tokens are JWTs and must not be logged either).

Each suite's pipe leaves `client-secret.txt` and `issued-tokens.json` in its log directory; this
suite reads every one under the common log root (the parent of its own directory).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from chaos.figures import Result

JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")


def known_secrets(root: Path) -> tuple[set[bytes], set[bytes]]:
    client_secrets = {p.read_bytes().strip() for p in root.rglob("client-secret.txt")}
    tokens = {t.encode() for p in root.rglob("issued-tokens.json") for t in json.loads(p.read_text())}
    return client_secrets, tokens


def scan(root: Path) -> dict[str, object]:
    client_secrets, tokens = known_secrets(root)
    files, lines, hits = 0, 0, {"client secret": 0, "issued access token": 0, "any JWT": 0}
    for path in sorted(root.rglob("*.log")):
        files += 1
        for line in path.read_bytes().splitlines():
            lines += 1
            hits["client secret"] += any(secret in line for secret in client_secrets)
            found = set(JWT.findall(line))
            hits["issued access token"] += bool(found & tokens) or any(t[-43:] in line for t in tokens)
            hits["any JWT"] += bool(found)
    return {"log files": files, "log lines": lines, "client secrets known": len(client_secrets),
            "access tokens known": len(tokens), "hits": hits}  # fmt: skip


def run(log_dir: Path, *, seed: int, command: str) -> Result:
    figures = scan(log_dir.parent)
    result = Result("secrets", "Secrets in logs", command)
    result.figures.update(figures)
    hits = figures["hits"]
    assert isinstance(hits, dict)
    result.target("suites ran and left secrets to look for", bool(figures["client secrets known"]))
    result.target("access tokens were issued (something to find)", bool(figures["access tokens known"]))
    result.target("0 hits", sum(hits.values()) == 0)
    return result
