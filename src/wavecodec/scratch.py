"""Per-thread buffers that the hot inference paths (encoding, entropy coding) reuse from call to call.

Why: the first write to each 4 KiB page of a freshly allocated array costs a page fault, and
for the few megabytes of intermediates of one photo on a small machine (a virtual one above
all) those faults took longer than the arithmetic. A buffer is handed out again on the next
call with the same name in the same thread, so a stream of same-sized inputs runs without
faults. Only intermediates live here: nothing returned to a caller points into a buffer.
Buffers above :data:`LIMIT` bytes are made afresh and not kept.
"""

from __future__ import annotations

import math
import threading

import numpy as np

LIMIT = 32 << 20  # a 1080p RGB frame in float32 fits; larger inputs (tiles of big images) do not keep memory


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}


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
