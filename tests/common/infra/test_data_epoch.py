"""A lost Redis is noticed by every process that saw the data (common/infra/data_epoch.py, common/infra/data_loss.py):
the epoch key gone (FLUSHALL, a new empty instance) or gone back (an older backup restored)."""

from __future__ import annotations

import redis

from common import keys
from common.infra import data_loss
from common.infra.data_epoch import EpochWatch, Seen, judge


def client_of(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_judge_first_same_and_lost() -> None:
    assert judge(None, Seen("a", 100, 100)) == "first"
    assert judge(Seen("a", 100, 100), Seen("a", 102, 102)) == "same"
    assert judge(Seen("a", 100, 100), Seen("b", 101, 101)) == "lost"  # the key was made again
    assert judge(Seen("a", 100, 3_700), Seen("a", 100, 3_702)) == "lost"  # an hour-old backup restored
    assert judge(Seen("a", 100, 102), Seen("a", 101, 104)) == "same"  # a failover's second of writes: no loss


def test_a_flushall_is_noticed_by_every_process_that_saw_the_data(redis_url: str) -> None:
    client = client_of(redis_url)
    ingest, worker = EpochWatch(client), EpochWatch(client)
    assert (ingest.check(), worker.check()) == ("first", "first")
    assert (ingest.check(), worker.check()) == ("same", "same")
    client.flushdb()
    assert (ingest.check(), worker.check()) == ("lost", "lost")  # the second sees the first's new epoch
    assert (ingest.check(), worker.check()) == ("same", "same")


def test_a_restored_older_backup_is_noticed_by_all_and_the_epoch_renewed_once(redis_url: str) -> None:
    client = client_of(redis_url)
    first, second = EpochWatch(client), EpochWatch(client)
    first.check(), second.check()
    old = client.hgetall(keys.DATA_EPOCH)  # the backup, as if taken an hour ago
    client.hset(keys.DATA_EPOCH, "at", int(old["at"]) - 3600)
    assert first.check() == "lost"
    assert first.seen is not None
    assert first.seen.id != old["id"]
    assert second.check() == "lost"
    assert second.seen is not None
    assert second.seen.id == first.seen.id
    assert (first.check(), second.check()) == ("same", "same")


def test_a_loss_is_noted_once_per_epoch_and_healed_in_steps(redis_url: str) -> None:
    client = client_of(redis_url)
    assert data_loss.last(client) is None
    assert data_loss.note(client, "e1", 100.0, "ingest@a") is True
    assert data_loss.note(client, "e1", 101.0, "w@b") is False
    assert data_loss.readiness(data_loss.last(client)) == "lost, healing"
    data_loss.advance(client, "e1", "healed", healed_at=130.0, customers=7)
    data_loss.advance(client, "e0", "pending")  # an older loss's healer: leaves the newer record alone
    assert data_loss.last(client) == data_loss.DataLoss("e1", 100.0, "ingest@a", "healed", 130.0, 7, 0)
    assert data_loss.readiness(data_loss.last(client)) == "ok"


def test_the_record_reads_the_same_on_a_client_that_does_not_decode(redis_url: str) -> None:
    data_loss.note(client_of(redis_url), "e1", 100.0, "ingest@a")
    assert data_loss.last(redis.Redis.from_url(redis_url)) == data_loss.last(client_of(redis_url))
