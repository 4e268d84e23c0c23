"""The shipped plans.toml parses, and so does its commented `[limits]` / `[guard]` example once uncommented."""

from __future__ import annotations

from common.plans.mapping import parse_plans
from tests.procs import ROOT

SHIPPED = ROOT / "plans.toml"


def _uncommented_limits_example(text: str) -> str:
    """From the commented `# [limits.` line to the end of that comment block, with the `# ` taken off."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [limits."))
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line.removeprefix("#").removeprefix(" "))
    return "\n".join(block) + "\n"


def test_shipped_plans_file_parses() -> None:
    plans = parse_plans(SHIPPED.read_text(), source=str(SHIPPED))
    assert plans.roles_by_plan
    assert plans.limits == {}


def test_commented_limits_example_parses_once_uncommented() -> None:
    text = SHIPPED.read_text()
    example = _uncommented_limits_example(text)
    assert "[guard]" in example
    plans = parse_plans(text + "\n" + example, source="plans.toml with its [limits] example uncommented")
    assert plans.limits == {"plan_subscriber": {"org_members": 1, "projects": 10}}
    assert plans.guard.plan_name("plan_subscriber") == "Subscriber"
    assert set(plans.limits) <= set(plans.roles_by_plan), "the example limits a plan the file maps"
