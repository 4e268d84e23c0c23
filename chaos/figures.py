"""A suite's result: printed, judged against its targets, and written into a docs page section."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import machine

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY = ROOT / "docs" / "reliability.md"


@dataclass
class Result:
    suite: str
    title: str
    command: str
    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[tuple[str, bool]] = field(default_factory=list)

    def target(self, label: str, met: bool) -> None:
        self.targets.append((label, met))

    @property
    def passed(self) -> bool:
        return all(met for _, met in self.targets)

    def text(self) -> str:
        lines = [f"Command: `{self.command}`", f"Machine: {describe_machine()}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in self.figures.items()]
        lines += ["", "| target | result |", "|---|---|"]
        lines += [f"| {label} | {'met' if met else '**MISSED**'} |" for label, met in self.targets]
        return "\n".join(lines)


def _cell(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def describe_machine() -> str:
    facts = machine()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{facts['nproc']} cpu ({facts['cpu']}), Python {facts['python']}, {facts['date']}, load avg {load}"


def report(result: Result, page: Path = RELIABILITY, *, record: bool = True) -> None:
    print(f"\n== {result.title} ==\n{result.text()}\n")
    print(f"{result.suite}: {'PASS' if result.passed else 'TARGET MISSED'}")
    if record:
        write_section(page, result.suite, f"## {result.title}\n\n{result.text()}\n")


def write_section(page: Path, name: str, body: str) -> None:
    """Replace the section between this suite's markers, or append it: reruns update in place."""
    start, end = f"<!-- figures:{name} -->", f"<!-- /figures:{name} -->"
    block = f"{start}\n{body}{end}"
    text = page.read_text() if page.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text.rstrip()}\n\n{block}\n"
    page.write_text(text)
