"""The rooms codemod (devtools/rooms.py): each reference form is rewritten, once, and a new name never again."""

from __future__ import annotations

import pytest

from devtools.rooms import MOVES, NEW, rewrite_text

CASES = {
    "import": ("import worker.handlers\n", "import worker.events.handlers\n"),
    "import-as": ("import common.plans as plans\n", "import common.plans.mapping as plans\n"),
    "from-module": ("from worker.converge import Converger\n", "from worker.convergence.converge import Converger\n"),
    "from-top-one": ("from worker import bootstrap\n", "from worker.entrypoints import bootstrap\n"),
    "from-top-renamed-leaf": ("from worker import kinde\n", "from worker.kinde import api as kinde\n"),
    "from-top-alias": ("from common import links as l\n", "from common.customers import links as l\n"),
    "from-top-many": (
        "from common import errors, keys, links, payer\n",
        "from common import errors, keys\nfrom common.customers import links, payer\n",
    ),
    "from-top-parenthesised": (
        "from worker import (\n    actors,\n    handlers,  # the handlers\n)\n",
        "from worker.runtime import actors\nfrom worker.events import handlers\n",
    ),
    "from-indented": (
        "    from worker.broker import build_broker  # late\n",
        "    from worker.runtime.broker import build_broker  # late\n",
    ),
    "from-package-submodule": (
        "from worker.recovery import sweeper\n",
        "from worker.runtime.recovery import sweeper\n",
    ),
    "from-reexport": (
        "from worker.replay import Replayer as Replayer\n",
        "from worker.runtime.replay import Replayer as Replayer\n",
    ),
    "from-package": ("from worker.recovery import reclaim\n", "from worker.runtime.recovery import reclaim\n"),
    "submodule-of-package": (
        "x = 'worker.recovery.own_acks.reclaim'\n",
        "x = 'worker.runtime.recovery.own_acks.reclaim'\n",
    ),
    "monkeypatch-string": (
        'monkeypatch.setattr("worker.kinde.KindeClient.get", f)\n',
        'monkeypatch.setattr("worker.kinde.api.KindeClient.get", f)\n',
    ),
    "mock-patch": ('mock.patch("common.plans.load")\n', 'mock.patch("common.plans.mapping.load")\n'),
    "python-m": ("python -m worker.launcher --x\n", "python -m worker.entrypoints.launcher --x\n"),
    "entry-colon": (
        "dramatiq worker.broker:setup worker.actors\n",
        "dramatiq worker.runtime.broker:setup worker.runtime.actors\n",
    ),
    "fork-function": (
        "--fork-function worker.recovery:run\n",
        "--fork-function worker.entrypoints.recovery_sweep:run\n",
    ),
    "fork-function-unmoved": (
        "--fork-function worker.scope_probe:run\n",
        "--fork-function worker.sweeps.scope_probe:run\n",
    ),
    "name-left-its-module": (
        "from worker.resolve import Resolver, user_links\n",
        "from worker.customers.resolve import Resolver\nfrom worker.customers.placement import user_links\n",
    ),
    "name-left-its-module-dotted": (
        'monkeypatch.setattr("worker.resolve.takes_over", f)\n',
        'monkeypatch.setattr("worker.customers.placement.takes_over", f)\n',
    ),
    "name-left-after-the-move": (
        "from worker.customers.resolve import GONE_USER, org_codes_of\n",
        "from worker.customers.resolve import GONE_USER\nfrom worker.customers.placement import org_codes_of\n",
    ),
    "path": (
        "see worker/converge.py and common/plans.py.\n",
        "see worker/convergence/converge.py and common/plans/mapping.py.\n",
    ),
    "path-package": (
        "worker/recovery/ and worker/recovery/sweeper.py\n",
        "worker/runtime/recovery/ and worker/runtime/recovery/sweeper.py\n",
    ),
    "path-package-init": ("worker/recovery/__init__.py\n", "worker/runtime/recovery/__init__.py\n"),
    "path-folder": ("common/migrations/0001_entitlements.sql\n", "common/table/migrations/0001_entitlements.sql\n"),
    "longest-match": (
        "worker.kinde_answers and worker/kinde_pace.py\n",
        "worker.kinde.answers and worker/kinde/pace.py\n",
    ),
    "not-a-test-path": ("tests/worker/test_converge.py\n", None),
    "not-an-attribute": ("self.worker.handlers and x.common.links\n", None),
    "unmoved": ("from common.errors import PermanentError\nfrom common import settings\ncommon/keys.py\n", None),
    "unknown": ("worker.py, worker.nothing, common/nothing.py\n", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_reference_form_is_rewritten(case: str) -> None:
    old, new = CASES[case]
    expected = old if new is None else new
    assert rewrite_text(old) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_second_run_changes_nothing(case: str) -> None:
    once = rewrite_text(CASES[case][0])
    assert rewrite_text(once) == once


@pytest.mark.parametrize(
    "text",
    [
        "from worker.kinde import api\n",
        "from common.plans import mapping, limits\n",
        "from worker.kinde.api import KindeClient\n",
        "x = 'worker.kinde.answers.read'\n",
        "worker/kinde/api.py and worker/kinde/\n",
        "from common.guard import decision as guard\n",
        "from common.entitlements.newest_records import RedisNewestRecords\n",  # added after the move
        "common/entitlements/newest_records.py\n",
    ],
)
def test_a_new_name_is_never_rewritten(text: str) -> None:
    """A room that shares its name with an old module (worker.kinde, common.plans) is not read as that module."""
    assert rewrite_text(text) == text


def test_every_old_module_rewrites_to_its_new_home_once() -> None:
    for old, new in MOVES.items():
        assert rewrite_text(f"{old}\n") == f"{new}\n"
        assert rewrite_text(f"{new}\n") == f"{new}\n"


def test_no_new_name_is_an_old_module_moved_elsewhere() -> None:
    """Else a second run would move it again: only a room may share an old module's name."""
    assert {new for new in MOVES.values() if new in MOVES} == set()
    shared = set(MOVES) & NEW
    assert shared == {"worker.kinde", "common.plans", "common.entitlements", "common.guard"}


def test_move_leaves_names_that_left_their_module_to_rewrite() -> None:
    """`move` reproduces the move commit (what `port` merges against); `rewrite` then follows the names."""
    old = "from worker.resolve import user_links\n"
    assert rewrite_text(old, follow=False) == "from worker.customers.resolve import user_links\n"
    assert rewrite_text(rewrite_text(old, follow=False)) == "from worker.customers.placement import user_links\n"


def test_a_room_named_alone_in_quotes_is_the_room_after_the_move() -> None:
    """`lua_script("common.guard", …)` and pyproject's `"common.guard" = ["*.lua"]` name the package the move made;
    `rewrite` once turned them into the old module's new home (common.guard.decision), breaking the Lua's lookup."""
    text = 'KEEP = lua_script("common.guard", "keep_newer.lua")\n"common.plans" = ["*.lua"]\n'
    assert rewrite_text(text) == text
    assert rewrite_text("import common.guard as guard\n") == "import common.guard.decision as guard\n"
