"""One process at a time in a run folder: an advisory lock on RUN/.lock (fcntl.flock).

Two `fastnst train` processes started together on one --run-dir would both find it empty and
write into it, each under the other's names. The kernel drops a flock when its process exits,
however it exits, so a crashed or killed run never leaves the folder locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from fastnst.errors import FastNSTError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold RUN/.lock (creating RUN) for the block; FastNSTError at once if another process holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise FastNSTError(f"{run_dir} is in use by another fastnst process (pid {holder}); wait for it to "
                               "finish, or give another --run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
