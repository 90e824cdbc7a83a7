"""Atomic file writes: a kill or a crash leaves the old file or none, never half a file."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

NAME_MAX = 255  # bytes in one file name on Linux/macOS file systems (os.pathconf's PC_NAME_MAX where known)
_TEMP_SUFFIX = ".tmp"
_TEMP_RANDOM = 8  # characters tempfile.mkstemp puts between prefix and suffix
# What atomic_write names its temporary files: .NAME.<mkstemp's 8 characters>.tmp
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{%d}%s" % (_TEMP_RANDOM, re.escape(_TEMP_SUFFIX)))


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name (bytes) ``folder``'s file system takes; NAME_MAX where it cannot say."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX


def temp_prefix(path: Path) -> str:
    """``.NAME.``, with NAME cut short where the temporary name would not fit in a file name.

    A name that fits (up to 255 bytes) must not fail because our temporary name, 14 bytes longer,
    does not ("File name too long" for a file the user may legitimately ask for).
    """
    limit = name_max(path.parent) - len(_TEMP_SUFFIX) - _TEMP_RANDOM - 2  # 2: the dots around NAME
    name = os.fsencode(path.name)[:max(1, limit)].decode("utf-8", "ignore")  # never half a character
    return f".{name}."


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary file atomic_write names (one a killed write may leave behind)."""
    return bool(_TEMP_NAME.fullmatch(Path(path).name))


def remove_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files atomic_write left in ``folder``; return their paths.

    A SIGKILL (or a power cut) during a write leaves its temporary file behind: nothing in the
    process runs to remove it. Only call this where no other process may be writing into ``folder``
    (e.g. a run directory being resumed), or it would delete that process's file mid-write.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if _TEMP_NAME.fullmatch(p.name) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _publish_new(tmp: str, path: Path) -> None:
    """Move ``tmp`` to ``path`` only if nothing is at ``path`` by then (FileExistsError otherwise).

    os.replace would silently replace a file another process wrote after our existence check; a
    hard link fails atomically instead. Where the file system has no hard links, an O_EXCL
    placeholder reserves the name first (a reader may then briefly see an empty file).
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV, errno.ENOSYS):
            raise
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextmanager
def atomic_write(path: str | os.PathLike, *, replace: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file in ``path``'s folder; on success fsync it and rename it onto ``path``.

    The temporary file (``f.name``) can be read back inside the block, e.g. to verify an export
    before it replaces anything. On an exception (KeyboardInterrupt included) the temporary file is
    removed and ``path`` is untouched. Permissions are the usual ones for a new file (0666 less the
    umask), not mkstemp's 0600. With ``replace=False``, a file that exists at ``path`` when the
    write completes (e.g. written meanwhile by another process) is kept and FileExistsError raised.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file or a broken symlink where a folder should be: not "the output exists"
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path.parent)) from None
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=_TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        with open(tmp, "wb") as f:  # opened by name, so f.name is the temporary path
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if replace:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
