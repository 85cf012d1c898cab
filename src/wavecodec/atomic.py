"""Atomic file writes: a leaf module every layer may use.

A file is written under a temporary name in its destination folder and renamed into place
only when the write succeeded, so a crash (even ``kill -9``) never leaves a partial file
under the real name.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path`` only if it succeeded.

    Args:
        path: the destination; its parent folders are created.
        write: writes the whole file at the temporary path it is given.

    Raises:
        Whatever ``write`` raises (the temporary file is removed first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STALE_SECONDS = 3600  # a temporary file this old belongs to a writer that was killed


def _remove_stale(path: Path) -> None:
    """Remove temporaries of ``path`` left by killed writers (an hour old: no live writer is that slow)."""
    now = time.time()
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - old.stat().st_mtime > STALE_SECONDS:
                old.unlink()
        except OSError:  # another process removed it, or it is not ours to remove
            pass


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
