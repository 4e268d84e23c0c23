"""The last time Redis lost its data, and how far healing it has come (`keys.DATA_LOSS`).

A process whose epoch check (common/infra/data_epoch.py) says `lost` notes the loss under the new epoch's id; later
noticers of the same loss find it noted. One worker replica heals it (worker/sweeps/data_heal.py): `pending` →
`healing` → `healed`. `rolesync status` and both `/readyz` routes read it; the ingest keeps answering 200
throughout (its 503s are for an unreachable Redis only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import redis
import redis.asyncio

from common import keys
from common.infra.connections import redis_errors

State = Literal["pending", "healing", "healed"]
HINT = "Redis lost its data; the fleet heals it from Kinde by itself (docs/reliability.md, 'Losing Redis')"

# KEYS[1] record; ARGV: epoch, noticed_at, noticed_by. A loss already noted under this epoch is left as it is.
_NOTE = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'noticed_at', ARGV[2], 'noticed_by', ARGV[3], 'state', 'pending')
return 1
"""

# KEYS[1] record; ARGV[1] epoch, then field, value pairs: written only while the record is that epoch's
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


@dataclass(frozen=True)
class DataLoss:
    epoch: str
    noticed_at: float
    noticed_by: str
    state: State
    healed_at: float | None = None
    customers: int = 0  # linked once the index was rebuilt: the customers the reconcile re-converged
    failed: int = 0  # of those, failed or still pending when the healer stopped watching

    @classmethod
    def of(cls, found: dict[Any, Any]) -> DataLoss | None:
        raw = {_text(k): _text(v) for k, v in found.items()}  # a client that does not decode gives bytes
        if not raw.get("epoch"):
            return None
        healed = raw.get("healed_at")
        return cls(str(raw["epoch"]), float(raw.get("noticed_at") or 0), str(raw.get("noticed_by") or ""),
                   _state(raw.get("state")), float(healed) if healed else None,
                   int(raw.get("customers") or 0), int(raw.get("failed") or 0))  # fmt: skip

    @property
    def healing(self) -> bool:
        return self.state != "healed"

    def readiness(self) -> str:
        """What `/readyz` says of the data: `ok`, or `lost, healing` until the heal ends."""
        return "lost, healing" if self.healing else "ok"


def _state(found: str | None) -> State:
    return found if found in ("pending", "healing", "healed") else "pending"  # type: ignore[return-value]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def readiness(found: DataLoss | None) -> str:
    return found.readiness() if found else "ok"


def note(client: redis.Redis, epoch: str, noticed_at: float, noticed_by: str) -> bool:
    """Record a loss seen under `epoch`; True if this call was the first to note it."""
    with redis_errors("noting a data loss"):
        return bool(client.eval(_NOTE, 1, keys.DATA_LOSS, epoch, noticed_at, noticed_by))


async def note_async(client: redis.asyncio.Redis, epoch: str, noticed_at: float, noticed_by: str) -> bool:
    with redis_errors("noting a data loss"):
        return bool(await client.eval(_NOTE, 1, keys.DATA_LOSS, epoch, noticed_at, noticed_by))


def last(client: redis.Redis) -> DataLoss | None:
    with redis_errors("reading the data-loss record"):
        return DataLoss.of(client.hgetall(keys.DATA_LOSS))


async def last_async(client: redis.asyncio.Redis) -> DataLoss | None:
    with redis_errors("reading the data-loss record"):
        return DataLoss.of(await client.hgetall(keys.DATA_LOSS))


def advance(client: redis.Redis, epoch: str, state: State, **fields: float | int) -> None:
    """Move the loss noted under `epoch` on (a newer loss noted meanwhile is left alone)."""
    pairs = [str(part) for item in {"state": state, **fields}.items() for part in item]
    with redis_errors("recording the heal"):
        client.eval(_ADVANCE, 1, keys.DATA_LOSS, epoch, *pairs)
