"""Per-thread scratch buffers: reused within a thread, never shared across threads, big ones not kept."""

from __future__ import annotations

import threading

import numpy as np

from wavecodec import scratch


def test_a_buffer_is_reused_within_a_thread_and_grows_when_needed() -> None:
    a = scratch.array("test.reuse", (10, 3), np.float32)
    b = scratch.array("test.reuse", (5,), np.float32)
    assert a.shape == (10, 3) and b.shape == (5,) and np.shares_memory(a, b)
    c = scratch.array("test.reuse", (100,), np.float32)  # larger: a new buffer
    assert c.size == 100 and not np.shares_memory(a, c)
    d = scratch.array("test.reuse", (4,), np.int64)  # another type: a new buffer
    assert d.dtype == np.int64 and not np.shares_memory(c, d)


def test_threads_get_their_own_buffers() -> None:
    mine = scratch.array("test.threads", (64,), np.int32)
    theirs: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: theirs.append(scratch.array("test.threads", (64,), np.int32)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])


def test_buffers_above_the_limit_are_not_kept() -> None:
    big = (scratch.LIMIT // 8 + 1,)
    assert not np.shares_memory(scratch.array("test.big", big, np.float64), scratch.array("test.big", big, np.float64))


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_an_output_is_handed_out_again_only_once_nothing_holds_it() -> None:
    import torch

    a = scratch.output("test.output", (4, 8), np.float32)
    a[:] = 1
    held = torch.from_numpy(a)[1:]  # a view of a tensor made from it: still in use
    del a
    b = scratch.output("test.output", (4, 8), np.float32)
    assert not np.shares_memory(held.numpy(), b)
    b[:] = 2
    assert bool((held == 1).all()), "memory someone holds is never written"
    freed = held.data_ptr() - 8 * 4  # where the first output starts
    del held
    c = scratch.output("test.output", (32,), np.float32)  # the same size, any shape: dropped memory comes back
    assert c.shape == (32,) and _address(c) == freed and not np.shares_memory(b, c)
    d = scratch.output("test.output", (5,), np.float32)  # another size: fresh memory
    assert not np.shares_memory(d, b) and not np.shares_memory(d, c)


def test_outputs_above_the_limit_or_beyond_the_count_are_not_kept() -> None:
    scratch.output("test.output-big", (scratch.OUTPUT_LIMIT // 8 + 1,), np.float64)
    assert not scratch._BUFFERS.outputs.get("test.output-big")
    held = [scratch.output("test.output-many", (16,), np.int8) for _ in range(scratch.OUTPUTS + 2)]
    assert len(scratch._BUFFERS.outputs["test.output-many"]) == scratch.OUTPUTS
    assert len({_address(h) for h in held}) == len(held)  # all held at once: all distinct
