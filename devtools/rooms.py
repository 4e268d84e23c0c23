"""The rooms move (issue 25): where each module of worker/ and common/ went, and the codemod that moves them.

`MOVES` is the one map, old dotted module → new dotted module. Keep it after the move: it says where each old
module went, and anyone holding a branch cut before the move brings it up to date with

    .venv/bin/python -m devtools.rooms rewrite            # every tracked text file
    .venv/bin/python -m devtools.rooms rewrite a.py b.md  # only these

`move` does the move itself once: `git mv` of every file in the map, an `__init__.py` per new room, then
`rewrite` over the tree, then ruff's import sort and format over what changed.

`port BRANCH` brings a whole branch cut before the move into the rooms layout, history kept: it runs `move` in a
scratch worktree of the branch and prints a commit whose parents are main's move commit (or a later port of main)
and the branch's tip; `git merge` that commit, then `rewrite` (docs/architecture.md, Rooms).

What `rewrite` rewrites, in every text file (Python, Markdown, TOML, YAML, Dockerfile, Makefile, shell): import
statements (`import worker.x`, `from worker.x import …`, `from worker import x, y as z`, parenthesised forms;
a name keeps its local binding with `as`), dotted names anywhere (`mock.patch("common.plans.load")`,
`python -m worker.launcher`, `worker.broker:setup`), and path citations (`worker/converge.py`,
`worker/recovery/`, `common/migrations/`). Matching is by whole dotted or slashed components, longest known
name first, so `worker.recovery.sweeper` is never mangled by `worker.recovery` and `worker.kinde_answers` never by
`worker.kinde`. It is idempotent: a name the map already produced is left alone. Names that left their module
when the two import circles were broken (`ATTR_MOVES`: resolve's placement functions, recovery's `run`) follow
to their new module in imports, dotted names and `module:run` fork functions.

Four old modules share their name with a new room (`worker.kinde`, `common.plans`, `common.entitlements`,
`common.guard`): a dotted name that stops at the old module (or goes on to one of its attributes) is the old
module and is rewritten; one that goes on to a module of the new room is new and left alone; `from worker.kinde
import api` (a module of the room) is new.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each room, and the question it answers (the new package's docstring).
ROOMS: dict[str, str] = {
    "worker.entrypoints": "What processes the worker runs, and what each builds (the composition root).",
    "worker.runtime": "How one message is fetched, run, retried and dead-lettered, and how stuck ones come back.",
    "worker.runtime.recovery": "",  # moved whole; its __init__ keeps its own docstring
    "worker.kinde": "Every call to Kinde: the client, the token, the rate gate, what answers mean, the scopes.",
    "worker.events": "What one webhook does: the handlers, and exactly-once effect per event.",
    "worker.customers": "Who a billing customer is: resolve, the index rebuild, parking, on-call's customer state.",
    "worker.convergence": "What a target holds: the customer pass, targets, lease, entitlements, snapshot, members.",
    "worker.outputs": "What leaves the worker besides Kinde writes: the app's webhooks and the Postgres table feed.",
    "worker.sweeps": "Fleet-wide passes on a schedule: reconcile, mapping change, scope probe, hand grants, heal.",
    "common.infra": "Plumbing every process shares: Redis and its URL, logs, traces, metrics port, URL and TLS rules.",
    "common.webhooks": "What a Kinde webhook says: the events we act on, and which keys may sign one.",
    "common.plans": "plans.toml: the plan → roles mapping, limits, the mapping the fleet runs, payment standing.",
    "common.customers": "Who a billing customer is, in Redis: links, the payer rule, the timeline.",
    "common.entitlements": "What a customer is entitled to and what a target holds: grants, snapshots, hand grants.",
    "common.guard": "The plan-selection guard: its decision, its member cache, metered and reported usage, its log.",
    "common.table": "The Postgres entitlements table: everything psycopg, its schema, rows and outbox.",
}

MOVES: dict[str, str] = {
    # worker/ → entrypoints: the processes and what each builds
    "worker.launcher": "worker.entrypoints.launcher",
    "worker.bootstrap": "worker.entrypoints.bootstrap",
    "worker.metrics_server": "worker.entrypoints.metrics_server",
    # worker/ → runtime: one message fetched, run, retried, dead-lettered; recovery
    "worker.actors": "worker.runtime.actors",
    "worker.broker": "worker.runtime.broker",
    "worker.middleware": "worker.runtime.middleware",
    "worker.durable_retries": "worker.runtime.durable_retries",
    "worker.durable_enqueue": "worker.runtime.durable_enqueue",
    "worker.retry_policy": "worker.runtime.retry_policy",
    "worker.shared_prefetch": "worker.runtime.shared_prefetch",
    "worker.traced_messages": "worker.runtime.traced_messages",
    "worker.undecodable": "worker.runtime.undecodable",
    "worker.heartbeat": "worker.runtime.heartbeat",
    "worker.metrics": "worker.runtime.metrics",
    "worker.backlog": "worker.runtime.backlog",
    "worker.replay": "worker.runtime.replay",
    "worker.recovery": "worker.runtime.recovery",
    "worker.recovery.bound": "worker.runtime.recovery.bound",
    "worker.recovery.overdue": "worker.runtime.recovery.overdue",
    "worker.recovery.own_acks": "worker.runtime.recovery.own_acks",
    "worker.recovery.sweeper": "worker.runtime.recovery.sweeper",
    # worker/ → kinde: every Kinde call and what its answer means
    "worker.kinde": "worker.kinde.api",
    "worker.kinde_answers": "worker.kinde.answers",
    "worker.kinde_pace": "worker.kinde.pace",
    "worker.ratelimit": "worker.kinde.ratelimit",
    "worker.token": "worker.kinde.token",
    "worker.scopes": "worker.kinde.scopes",
    "worker.roles": "worker.kinde.roles",
    # worker/ → events: what one webhook does
    "worker.handlers": "worker.events.handlers",
    "worker.coalesce": "worker.events.coalesce",
    # worker/ → customers: who a billing customer is
    "worker.resolve": "worker.customers.resolve",
    "worker.rebuild": "worker.customers.rebuild",
    "worker.rebuild_store": "worker.customers.rebuild_store",
    "worker.park": "worker.customers.park",
    "worker.customer_state": "worker.customers.customer_state",
    # worker/ → convergence: what a target holds
    "worker.converge": "worker.convergence.converge",
    "worker.targets": "worker.convergence.targets",
    "worker.lease": "worker.convergence.lease",
    "worker.entitlements": "worker.convergence.entitlements",
    "worker.snapshot": "worker.convergence.snapshot",
    "worker.members": "worker.convergence.members",
    "worker.in_force": "worker.convergence.in_force",
    # worker/ → outputs: the app's webhooks, the table feed
    "worker.notify": "worker.outputs.notify",
    "worker.notify_delivery": "worker.outputs.notify_delivery",
    "worker.table_feed": "worker.outputs.table_feed",
    "worker.table_sync": "worker.outputs.table_sync",
    # worker/ → sweeps: fleet-wide passes
    "worker.reconcile": "worker.sweeps.reconcile",
    "worker.reconcile_schedule": "worker.sweeps.reconcile_schedule",
    "worker.mapping_change": "worker.sweeps.mapping_change",
    "worker.mapping_preview": "worker.sweeps.mapping_preview",
    "worker.scope_probe": "worker.sweeps.scope_probe",
    "worker.grant_schedule": "worker.sweeps.grant_schedule",
    "worker.data_heal": "worker.sweeps.data_heal",
    # common/ → infra (errors, settings, keys and messages stay at the top: the contracts)
    "common.connections": "common.infra.connections",
    "common.redis_url": "common.infra.redis_url",
    "common.embedded_redis": "common.infra.embedded_redis",
    "common.logs": "common.infra.logs",
    "common.tracing": "common.infra.tracing",
    "common.metrics_port": "common.infra.metrics_port",
    "common.version": "common.infra.version",
    "common.data_epoch": "common.infra.data_epoch",
    "common.data_loss": "common.infra.data_loss",
    "common.tls_policy": "common.infra.tls_policy",
    "common.url_policy": "common.infra.url_policy",
    "common.insecure_settings": "common.infra.insecure_settings",
    "common.secret_strength": "common.infra.secret_strength",
    "common.redaction": "common.infra.redaction",
    "common.token_crypto": "worker.kinde.token_crypto",  # by way of common.infra (see below)
    "common.durations": "common.infra.durations",
    "common.failure_limit": "common.infra.failure_limit",
    "common.sandbox_marker": "common.infra.sandbox_marker",
    "common.minute_counts": "common.infra.minute_counts",
    "common.deadletters": "common.infra.deadletters",
    "common.audit_trail": "common.infra.audit_trail",
    # common/ → webhooks
    "common.events": "common.webhooks.events",
    "common.signing_keys": "common.webhooks.signing_keys",
    # common/ → plans
    "common.plans": "common.plans.mapping",
    "common.limits": "common.plans.limits",
    "common.mapping": "common.plans.fleet_mapping",
    "common.payments": "common.plans.payments",
    # common/ → customers
    "common.links": "common.customers.links",
    "common.payer": "common.customers.payer",
    "common.deleted": "worker.convergence.deleted",  # by way of common.customers (see below)
    "common.history": "common.customers.history",
    # common/ → entitlements
    "common.entitlements": "common.entitlements.customer",
    "common.grants": "common.entitlements.grants",
    "common.manual_grants": "common.entitlements.manual_grants",
    "common.hand_grant_changes": "common.entitlements.hand_grant_changes",
    "common.grant_recipients": "common.entitlements.grant_recipients",  # added on main after the move was cut
    "common.snapshots": "common.entitlements.snapshots",
    "common.shadow_writes": "common.entitlements.shadow_writes",
    # common/ → guard
    "common.guard": "common.guard.decision",
    "common.selection_log": "common.guard.selection_log",
    "common.members": "common.guard.members",
    "common.usage": "common.guard.usage",
    "common.usage_reports": "common.guard.usage_reports",
    # common/ → table (everything psycopg)
    "common.entitlements_table": "common.table.entitlements_table",
    "common.postgres": "common.table.postgres",
    "common.schema": "common.table.schema",
    "common.table_outbox": "common.table.table_outbox",
    "common.table_rows": "common.table.table_rows",
    # after the move, by the rule common/ vs worker/ (docs/architecture.md, Rooms): modules only the worker uses
    "common.infra.token_crypto": "worker.kinde.token_crypto",
    "common.customers.deleted": "worker.convergence.deleted",
}

# Names that left their module after the move (the two import circles, broken by hand): new module → name → home.
_PLACEMENT = ("INVALID_EXPAND", "billing_entries", "customer_id_in", "billing_customer_of", "org_codes_of",
              "user_links", "org_link", "event_link", "merged", "takes_over", "same_target")  # fmt: skip
ATTR_MOVES: dict[str, dict[str, str]] = {
    "worker.customers.resolve": dict.fromkeys(_PLACEMENT, "worker.customers.placement"),
    "worker.runtime.recovery": {"run": "worker.entrypoints.recovery_sweep"},
    "worker.runtime.recovery.sweeper": {"run": "worker.entrypoints.recovery_sweep"},
}

# Old modules that are packages (moved whole, as folders).
PACKAGES = frozenset({"worker.recovery"})
# Folders that are not Python packages, moved whole: old path → new path.
FOLDERS: dict[str, str] = {"common/migrations": "common/table/migrations"}

TOPS = ("worker", "common")


def _modules_here() -> set[str]:
    """The modules of worker/ and common/ in this tree: one added to a room after the move
    (common/entitlements/newest_records.py) is new too, never an old module's attribute."""
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for top in TOPS
        for path in (ROOT / top).rglob("*.py")
        if path.name != "__init__.py"
    }


# Every new name: each module the map produces, each package above it, and each module the tree holds.
NEW = frozenset(
    set(MOVES.values())
    | {".".join(new.split(".")[:i]) for new in MOVES.values() for i in range(2, new.count(".") + 1)}
    | _modules_here()
)

# Old modules whose name is now a room's (worker.kinde, common.plans, common.entitlements, common.guard).
ROOMS_NAMED_AS_OLD_MODULES = frozenset(old for old in MOVES if old in ROOMS)

# Never rewritten: the map itself, its tests and the pre-move queue's capture script (all hold old names on purpose),
# and generated locks.
SKIP = frozenset({"devtools/rooms.py", "tests/devtools/test_rooms.py", "tests/worker/runtime/premove_queue/capture.py"})
SKIP_SUFFIXES = (".lock", ".png", ".jpg", ".ico", ".gz", ".whl", ".sqlite")

_TOP = r"(?:worker|common)"
FROM_IMPORT = re.compile(
    rf"^(?P<indent>[ \t]*)from[ \t]+(?P<module>{_TOP}(?:\.\w+)*)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)|[^\n]*)",
    re.MULTILINE,
)
DOTTED = re.compile(rf"(?<![\w.]){_TOP}(?:\.\w+)+(?::\w+)?")  # `module:attr` too (fork functions)
PATH = re.compile(rf"(?<![\w./-]){_TOP}(?:/\w+)+(?:\.py\b|/)?")
TOKEN = re.compile(f"(?P<from>{FROM_IMPORT.pattern})|(?P<dotted>{DOTTED.pattern})|(?P<path>{PATH.pattern})", re.M)


def rewrite_dotted(name: str, follow: bool = True) -> str:
    """`name` (or `name:attr`) with its longest known old-module prefix replaced, then a name that left its module
    sent to its new home (unless `follow` is off); a new name (or an unknown one) unchanged."""
    dotted, colon, attr = name.partition(":")
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        prefix = ".".join(parts[:end])
        if prefix in MOVES:
            parts = [*MOVES[prefix].split("."), *parts[end:]]
            break
        if prefix in NEW:
            break
    return _attr_home(".".join(parts), colon, attr) if follow else ".".join(parts) + colon + attr


def _attr_home(dotted: str, colon: str, attr: str) -> str:
    """`module.name` (or `module:name`) at the name's new module when the name left `module`."""
    module, name, sep = (dotted, attr, colon) if colon else (*dotted.rpartition(".")[::2], ".")
    home = ATTR_MOVES.get(module, {}).get(name)
    if home is None:
        return dotted + colon + attr
    return f"{home}{sep}{name}"


def _names(text: str) -> tuple[list[tuple[str, str | None]], str]:
    """The imported names of a `from … import` (name, alias), and a trailing comment to keep."""
    body, comment = text, ""
    if not text.startswith("(") and "#" in text:
        body, comment = text.split("#", 1)
        comment = "  #" + comment
    body = re.sub(r"#[^\n]*", "", body).strip().strip("()")
    found: list[tuple[str, str | None]] = []
    for item in body.replace("\\\n", " ").split(","):
        words = item.split()
        if not words:
            continue
        found.append((words[0], words[2] if len(words) == 3 and words[1] == "as" else None))
    return found, comment


def _is_new_room_import(module: str, names: list[tuple[str, str | None]]) -> bool:
    """`from worker.kinde import api`: an old module's name that is also a new room, importing the room's modules."""
    return module in NEW and all(f"{module}.{name}" in NEW for name, _ in names)


def _clause(name: str, alias: str | None) -> str:
    """`name`, or `name as alias` (kept when the two are equal: `X as X` is an explicit re-export)."""
    return f"{name} as {alias}" if alias else name


def rewrite_from(match: re.Match[str], follow: bool = True) -> str:
    """One `from X import a, b as c` statement, split per new home where its names are modules that moved."""
    indent, module = match["indent"], match["module"]
    names, comment = _names(match["names"])
    if not names or names == [("*", None)]:
        return match[0].replace(module, rewrite_dotted(module, follow), 1)
    if _is_new_room_import(module, names):
        return match[0]
    groups: dict[str, list[str]] = {}
    for name, alias in names:
        full = f"{module}.{name}"
        if full in MOVES and not (module in NEW and full in NEW):
            home, leaf = MOVES[full].rsplit(".", 1)
            groups.setdefault(home, []).append(_clause(leaf, alias or (name if name != leaf else None)))
        else:
            home = rewrite_dotted(module, follow)
            moved = ATTR_MOVES.get(home, {}).get(name, home) if follow else home
            groups.setdefault(moved, []).append(_clause(name, alias))
    if list(groups) == [module]:
        return match[0]
    lines = [f"{indent}from {home} import {', '.join(clauses)}" for home, clauses in groups.items()]
    lines[-1] += comment.rstrip()
    return "\n".join(lines)


def _path_of(dotted: str) -> str:
    return dotted.replace(".", "/")


def rewrite_path(path: str) -> str:
    """A cited path (`worker/converge.py`, `worker/recovery/`, `common/migrations/0001.sql`) at its new place."""
    if path.endswith(".py"):
        dotted = path[:-3].replace("/", ".")
        if dotted.endswith(".__init__") and dotted[: -len(".__init__")] in MOVES:
            return _path_of(MOVES[dotted[: -len(".__init__")]]) + "/__init__.py"
        if dotted in MOVES and dotted not in PACKAGES:
            return _path_of(MOVES[dotted]) + ".py"
    folders = {_path_of(old): _path_of(MOVES[old]) for old in PACKAGES} | FOLDERS
    for old in sorted(folders, key=len, reverse=True):
        if path == old or path.startswith(old + "/"):
            return folders[old] + path[len(old) :]
    return path


def _token(match: re.Match[str], follow: bool) -> str:
    if match["from"] is not None:
        return rewrite_from(match, follow)
    if match["dotted"] is not None:
        if follow and _quoted_room(match):
            return match["dotted"]
        return rewrite_dotted(match["dotted"], follow)
    return rewrite_path(match["path"])


def _quoted_room(match: re.Match[str]) -> bool:
    """`"common.guard"` alone in quotes, once the move has made it a room: a package's name (package-data, a Lua
    file's home), never the old module, which nothing names as a bare string."""
    text, start, end = match.string, match.start("dotted"), match.end("dotted")
    quoted = start > 0 and end < len(text) and text[start - 1] == text[end] and text[end] in "\"'"
    dotted = match["dotted"]
    return quoted and dotted in ROOMS_NAMED_AS_OLD_MODULES and (ROOT / dotted.replace(".", "/")).is_dir()


def rewrite_text(text: str, follow: bool = True) -> str:
    """Every reference to an old module in `text`, at its new name; idempotent.

    `follow` also sends names that left their module after the move (ATTR_MOVES) to their new one; `move` leaves
    it off, so that it reproduces the move commit exactly (what `port` relies on) and `rewrite` does the rest."""
    return TOKEN.sub(functools.partial(_token, follow=follow), text)


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [ROOT / line for line in out.splitlines() if line]


def rewrite_files(paths: Iterable[Path], follow: bool = True) -> list[Path]:
    """Rewrite each text file in place; the files that changed."""
    changed: list[Path] = []
    for path in paths:
        rel = path.resolve().relative_to(ROOT).as_posix()
        if rel in SKIP or rel.endswith(SKIP_SUFFIXES) or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        new = rewrite_text(text, follow)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def _git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=ROOT, check=True)


def _source(old: str) -> Path:
    path = ROOT / _path_of(old)
    return path if old in PACKAGES else path.with_suffix(".py")


def move_files() -> None:
    """`git mv` every module, package and folder of the map that is still at its old place."""
    for room, question in ROOMS.items():
        init = ROOT / _path_of(room) / "__init__.py"
        if question and not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{question}"""\n', encoding="utf-8")
            _git("add", str(init.relative_to(ROOT)))
    inside_package = {old for old in MOVES if any(old.startswith(pkg + ".") for pkg in PACKAGES)}
    for old, new in MOVES.items():
        source = _source(old)
        if old in inside_package or not source.exists():
            continue
        target = ROOT / (_path_of(new) if old in PACKAGES else _path_of(new) + ".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        _git("mv", str(source.relative_to(ROOT)), str(target.relative_to(ROOT)))
    for old, new in FOLDERS.items():
        if (ROOT / old).exists():
            _git("mv", old, new)


def tidy(paths: list[Path]) -> None:
    """ruff's import sort and format over the rewritten Python files (split imports land in order)."""
    python = [str(p.relative_to(ROOT)) for p in paths if p.suffix == ".py"]
    if python:
        ruff = str(Path(sys.executable).parent / "ruff")
        subprocess.run([ruff, "check", "--select", "I", "--fix", "--quiet", *python], cwd=ROOT, check=False)
        subprocess.run([ruff, "format", "--quiet", *python], cwd=ROOT, check=False)


MOVE_MARK = "produced by `python -m devtools.rooms move`"


def _out(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


PORT_MARK = "into the rooms layout: its tree moved by `python -m devtools.rooms port"


def _onto(tip: str) -> str:
    """What a port of `tip` goes on: the newest earlier port in HEAD's history whose old side `tip` contains (its
    tree is that old side, moved), else the move commit (its tree is the pre-move main, moved)."""
    ports = _out("log", "--format=%H %P", "--fixed-strings", f"--grep={PORT_MARK}", "HEAD").splitlines()
    for line in ports:
        commit, *parents = line.split()
        is_ancestor = ["git", "merge-base", "--is-ancestor", parents[-1], tip]
        if len(parents) == 2 and subprocess.run(is_ancestor, cwd=ROOT, check=False).returncode == 0:
            return commit
    move_commit = _out("log", "-1", "--format=%H", "--fixed-strings", f"--grep={MOVE_MARK}", "HEAD")
    if not move_commit:
        raise SystemExit("rooms: no move commit in HEAD's history")
    return move_commit


def port(branch: str) -> str:
    """A branch cut before the move, brought into the rooms layout as a merge of the move and the branch.

    In a scratch worktree of `branch`, this map's `move` runs exactly as it ran on main; the result is committed with
    two parents, what it goes on (`_onto`: main's move commit, or a later port of main) and the branch's tip.
    Merging that commit into main then compares the branch's own edits with main's since, and keeps the branch's
    commits in the history.
    """
    tip = _out("rev-parse", "--verify", f"{branch}^{{commit}}")
    onto = _onto(tip)
    scratch = Path(tempfile.mkdtemp(prefix="rooms-port-"))
    _out("worktree", "add", "--detach", str(scratch), tip)
    try:
        for own in ("devtools/rooms.py", "tests/devtools/test_rooms.py"):
            (scratch / own).write_bytes((ROOT / own).read_bytes())
        subprocess.run([sys.executable, "-m", "devtools.rooms", "move"], cwd=scratch, check=True, stdout=sys.stderr)
        _out("add", "-A", cwd=scratch)
        tree = _out("write-tree", cwd=scratch)
    finally:
        _out("worktree", "remove", "--force", str(scratch))
    message = f"Merge {branch} into the rooms layout: its tree moved by `python -m devtools.rooms port {branch}`"
    return _out("commit-tree", tree, "-p", onto, "-p", tip, "-m", message)


def main(argv: list[str]) -> int:
    command, *paths = argv or ["help"]
    if command == "move":
        move_files()
        changed = rewrite_files(tracked_files(), follow=False)
    elif command == "rewrite":
        changed = rewrite_files([Path(p).resolve() for p in paths] if paths else tracked_files())
    elif command == "port" and len(paths) == 1:
        print(port(paths[0]))
        return 0
    else:
        print("usage: python -m devtools.rooms move | rewrite [paths…] | port BRANCH")
        return 2
    tidy(changed)
    print(f"rooms: {len(changed)} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
