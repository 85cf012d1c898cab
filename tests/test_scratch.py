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
