"""The lock and pyproject agree: an edit to one without the other (`make lock`) fails here, by name.

Both lock files come from one uv resolution (devtools/lock.py); these checks read them as text, offline.
"""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devtools.lockfile import (
    FULL,
    FULL_EXTRAS,
    ROOT,
    RUNTIME,
    RUNTIME_EXTRAS,
    Pin,
    declared,
    direct,
    moved,
    read_pins,
)

FULL_PINS = read_pins(FULL.read_text(encoding="utf-8"))
RUNTIME_PINS = read_pins(RUNTIME.read_text(encoding="utf-8"))


def _names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(req.name) for req in requirements}


@pytest.mark.parametrize(("pins", "extras"), [(FULL_PINS, FULL_EXTRAS), (RUNTIME_PINS, RUNTIME_EXTRAS)])
def test_every_declared_requirement_is_locked_within_its_range(pins: dict[str, Pin], extras: tuple[str, ...]) -> None:
    outside = {
        req.name: pins[canonicalize_name(req.name)].version if canonicalize_name(req.name) in pins else "missing"
        for req in declared(extras)
        if canonicalize_name(req.name) not in pins
        or not req.specifier.contains(pins[canonicalize_name(req.name)].version, prereleases=True)
    }
    assert outside == {}, "pyproject asks for what the lock does not hold: run `make lock`"


@pytest.mark.parametrize(("pins", "extras"), [(FULL_PINS, FULL_EXTRAS), (RUNTIME_PINS, RUNTIME_EXTRAS)])
def test_the_lock_was_resolved_from_exactly_these_requirements(pins: dict[str, Pin], extras: tuple[str, ...]) -> None:
    """A requirement removed from pyproject (or added to the lock by hand) leaves a direct pin nobody asks for."""
    assert direct(pins) == _names(declared(extras))


def test_the_build_backend_is_locked_within_build_system_requires() -> None:
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    for req in map(Requirement, build):
        assert req.specifier.contains(FULL_PINS[canonicalize_name(req.name)].version)


def test_the_runtime_lock_is_the_same_pins_as_the_full_lock() -> None:
    full = {name: (pin.version, pin.hashes) for name, pin in FULL_PINS.items()}
    differ = {name: pin.version for name, pin in RUNTIME_PINS.items() if full.get(name) != (pin.version, pin.hashes)}
    assert RUNTIME_PINS, "the runtime lock holds nothing"
    assert differ == {}, "the image would run versions make test never ran: run `make lock`"


@pytest.mark.parametrize("pins", [FULL_PINS, RUNTIME_PINS], ids=["full", "runtime"])
def test_every_pin_carries_hashes(pins: dict[str, Pin]) -> None:
    assert [name for name, pin in pins.items() if not pin.hashes] == []


def test_test_tools_stay_out_of_the_image() -> None:
    assert {"pytest", "mypy", "ruff", "uv", "hypothesis"}.isdisjoint(RUNTIME_PINS)


LOCK_TEXT = """\
# header
foo-bar==1.2 ; sys_platform != 'win32' \\
    --hash=sha256:{a} \\
    --hash=sha256:{b}
    # via
    #   kinde-role-sync (pyproject.toml)
    #   other
baz==3.0 \\
    --hash=sha256:{a}
    # via foo-bar
""".format(a="a" * 64, b="b" * 64)


def test_read_pins_reads_names_versions_markers_hashes_and_who_asked() -> None:
    pins = read_pins(LOCK_TEXT)
    assert pins["foo-bar"] == Pin(
        "foo-bar",
        "1.2",
        "sys_platform != 'win32'",
        ["sha256:" + "a" * 64, "sha256:" + "b" * 64],
        ["kinde-role-sync (pyproject.toml)", "other"],
    )
    assert pins["baz"].via == ["foo-bar"]
    assert direct(pins) == {"foo-bar"}


def test_moved_names_additions_removals_and_moves() -> None:
    old = {"a": Pin("a", "1"), "b": Pin("b", "1"), "c": Pin("c", "1")}
    new = {"a": Pin("a", "2"), "c": Pin("c", "1"), "d": Pin("d", "1")}
    assert moved(old, new) == ["+ d 1", "- b 1", "~ a 1 -> 2"]


def _readme_rows() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## Dependencies and why each is here", 1)[1]
    rows = [line.split("|")[1] for line in text.split("\n## ", 1)[0].splitlines() if line.startswith("| ")]
    return {canonicalize_name(part.split("[")[0].split(" ")[0]) for row in rows for part in row.strip().split(", ")}


def test_every_direct_dependency_says_why_in_the_readme() -> None:
    assert _names(declared(FULL_EXTRAS)) - _readme_rows() == set()
