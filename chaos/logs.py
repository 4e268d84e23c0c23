"""Reading the JSON log lines the pipe's processes wrote under a suite's log directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FINAL_EVENTS = ("event_handled", "event_dead_lettered")


def json_records(log_dir: Path, prefix: str) -> Iterator[dict[str, Any]]:
    for path in sorted(log_dir.glob(f"{prefix}*.log")):
        with path.open(errors="replace") as handle:
            for line in handle:
                if line.startswith("{"):
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a SIGKILL


def handled_event_ids(log_dir: Path) -> set[str]:
    """Event ids some worker finished: handled (any outcome) or dead-lettered."""
    return {str(rec.get("event_id")) for rec in json_records(log_dir, "worker") if rec.get("event") in FINAL_EVENTS}
