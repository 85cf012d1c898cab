"""Per-thread buffers that the hot inference paths (encoding, entropy coding) reuse from call to call.

Why: the first write to each 4 KiB page of a freshly allocated array costs a page fault, and
for the few megabytes of intermediates of one photo on a small machine (a virtual one above
all) those faults took longer than the arithmetic. A buffer is handed out again on the next
call with the same name in the same thread, so a stream of same-sized inputs runs without
faults. Only intermediates live in :func:`array`'s buffers: nothing returned to a caller points into one.
Buffers above :data:`LIMIT` bytes are made afresh and not kept.

:func:`output` does the same for arrays that *are* returned (a decoded sample of latents): it
hands out the memory of an earlier output only once nothing references that output any more,
as a data loader's sample is dropped after it is copied into a batch. Reading a sample then
costs no page faults (``benchmarks/data_path.py`` counts them).
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

LIMIT = 32 << 20  # a 1080p RGB frame in float32 fits; larger inputs (tiles of big images) do not keep memory
OUTPUT_LIMIT = 8 << 20  # outputs kept for reuse are at most this large,
OUTPUTS = 4  # and at most this many per name and thread (the rest are made afresh)


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.outputs: dict[str, list[np.ndarray]] = {}


_BUFFERS = _Buffers()


def array(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape``: the memory of the last call with ``name`` in this thread where it fits."""
    size, dtype = math.prod(shape), np.dtype(dtype)
    if size * dtype.itemsize > LIMIT:
        return np.empty(shape, dtype)
    buf = _BUFFERS.arrays.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = _BUFFERS.arrays[name] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def output(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` for a caller to keep: the memory of an earlier
    output with ``name`` in this thread if nothing references that one any more, else new memory.

    Whoever holds the array, a view of it or a tensor made from it (``torch.from_numpy``) holds a
    reference to the kept buffer, so memory still in use is never handed out twice.
    """
    size, dtype = math.prod(shape), np.dtype(dtype)
    if size * dtype.itemsize > OUTPUT_LIMIT:
        return np.empty(shape, dtype)
    kept = _BUFFERS.outputs.setdefault(name, [])
    for i in range(len(kept)):
        # references: the list's and getrefcount's argument; any more and someone still uses it
        if kept[i].size == size and kept[i].dtype == dtype and sys.getrefcount(kept[i]) == 2:
            return kept[i].reshape(shape)
    buf = np.empty(size, dtype)
    if len(kept) < OUTPUTS:
        kept.append(buf)
    return buf.reshape(shape)
