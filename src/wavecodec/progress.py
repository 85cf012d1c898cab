"""Progress bars for the command line and scripts, behind the ``progress(done, total)`` callbacks the library takes.

Library functions never draw: they call ``progress(done, total)`` (or ``progress(stage,
done, total)`` where a job has stages) and the caller decides what to show.
"""

from __future__ import annotations

import sys
from typing import Callable

Progress = Callable[[int, int], None]


def bar(unit: str, desc: str | None = None) -> Progress:
    """A ``progress(done, total)`` callback drawing one tqdm bar on stderr, closed when ``done`` reaches ``total``."""
    from tqdm import tqdm

    state: dict[str, object] = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)
        b = state["bar"]
        b.n = done  # type: ignore[attr-defined]
        b.refresh()  # type: ignore[attr-defined]
        if done >= total:
            b.close()  # type: ignore[attr-defined]

    return progress


def staged_bars(unit: str) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage."""
    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = bar(unit, stage)
        bars[stage](done, total)

    return progress
