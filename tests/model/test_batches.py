"""How the large model run hands out its batches to pipes side by side, and adds up what each pipe counted."""

from __future__ import annotations

import threading
import time
from multiprocessing import get_context

from chaos.model import Batches, Counted, merged, seed_list
from chaos.model_machine import Tally


def test_one_pipe_takes_batches_of_consecutive_seeds_until_the_sequences_are_handed_out() -> None:
    plan = Batches(sequences=120, batch=50, seed=7)
    assert [plan.take() for _ in range(4)] == [(7, 50), (8, 50), (9, 20), None]


def test_pipes_side_by_side_share_one_count_so_no_seed_runs_twice_and_none_is_skipped() -> None:
    with get_context("spawn").Manager() as manager:
        plan = Batches(sequences=1000, batch=7, seed=100, handed=manager.Value("O", (0, 0)), lock=manager.Lock())
        taken: list[tuple[int, int]] = []

        def take_all() -> None:
            while (found := plan.take()) is not None:
                taken.append(found)

        threads = [threading.Thread(target=take_all) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(seed for seed, _ in taken) == list(range(100, 100 + 143))
    assert sum(size for _, size in taken) == 1000


def test_the_merged_tally_adds_every_pipes_counts_and_keeps_the_shortest_report_per_kind() -> None:
    first = Tally(sequences=10, steps=200, failed_sequences=1, wrong_targets=2, wrong_rows=1,
                  shortest={"extra role, 1 covering customer(s)": "long report " * 5})  # fmt: skip
    second = Tally(sequences=12, steps=250, failed_sequences=1, wrong_notifications=3, broken=["seed 9: x"],
                   shortest={"extra role, 1 covering customer(s)": "short", "wrong table rows": "rows"})  # fmt: skip
    total, seeds, failing = merged([Counted(first, [1, 3], [3]), Counted(second, [2], [2])])
    assert (total.sequences, total.steps, total.failed_sequences, total.wrong_targets) == (22, 450, 2, 2)
    assert (total.wrong_rows, total.wrong_notifications, total.broken) == (1, 3, ["seed 9: x"])
    assert total.shortest == {"extra role, 1 covering customer(s)": "short", "wrong table rows": "rows"}
    assert (seeds, failing) == ([1, 2, 3], [2, 3])


def test_no_batch_is_handed_out_once_the_time_is_up_and_consecutive_seeds_read_as_a_range() -> None:
    assert Batches(sequences=100, batch=10, seed=1, until=time.time() - 1).take() is None
    assert Batches(sequences=100, batch=10, seed=1, until=time.time() + 60).take() == (1, 10)
    assert seed_list([7001, 7002, 7003]) == "7001-7003 (3 batches)"
    assert seed_list([3, 1]) == "3, 1"
