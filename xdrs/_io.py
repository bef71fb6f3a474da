"""File boundary helpers: bounded reads, and atomic writes that never leave half a file.

Errors name the user's path, never a temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from xdrs.errors import SnapshotError

__all__ = ["MAX_INPUT_BYTES", "atomic_write", "read_bounded", "write_all"]

MAX_INPUT_BYTES = 1 << 30  # 1 GiB: ~20x a 100,000-VM snapshot, and it fits in memory
_CHUNK = 1 << 20


def read_bounded(path: str | os.PathLike[str], limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, refusing more than ``limit`` bytes and any NUL byte.

    Devices and pipes (``/dev/zero``) are read in chunks and given up on at the first NUL
    byte (no text format of xdrs contains one) or past ``limit``; a regular file larger than
    ``limit`` is refused before it is read. ``OSError`` (missing file, ...) passes through.

    Raises
    ------
    SnapshotError
        Naming ``path`` and the limit.
    """
    with open(path, "rb") as f:
        if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            data = f.read(limit + 1)
        else:
            data = _read_stream(path, f, limit)
    if len(data) > limit:
        raise SnapshotError(
            f"{path}: larger than the input limit of {_size(limit)} ({limit} bytes)"
        )
    _no_nul(path, data)
    return data


def _read_stream(path: str | os.PathLike[str], f: BinaryIO, limit: int) -> bytes:
    buf = bytearray()
    while len(buf) <= limit:
        chunk = f.read(min(_CHUNK, limit + 1 - len(buf)))
        if not chunk:
            break
        _no_nul(path, chunk, offset=len(buf))
        buf += chunk
    return bytes(buf)


def _no_nul(path: str | os.PathLike[str], data: bytes, offset: int = 0) -> None:
    at = data.find(b"\0")
    if at >= 0:
        raise SnapshotError(f"{path}: not a text file (NUL byte at offset {offset + at})")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``.

    An ``OSError`` names ``path`` (the temporary file is an implementation detail).
    """
    write_all({Path(path): data})


def write_all(files: Mapping[Path, bytes]) -> None:
    """Write several files, all or none: each is staged next to its target, then renamed.

    An error names the user's file, never a temporary one; when any file cannot be staged,
    no target is touched; when a rename fails, the targets renamed before it get back
    what they held (or are removed, if they did not exist).
    """
    staged: list[tuple[str, Path]] = []
    done: list[tuple[Path, str | None]] = []  # renamed targets and their saved contents
    try:
        for target, data in files.items():
            if target.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
            staged.append((_stage(target, data), target))
        for tmp, target in staged:
            saved = _save(target)
            try:
                _rename(tmp, target)
            except BaseException:
                _discard(saved)
                raise
            done.append((target, saved))
    except BaseException:
        _roll_back(done)
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for _, saved in done:
        _discard(saved)


def _save(target: Path) -> str | None:
    """A hard link to ``target``'s present file (None if there is none), kept until the
    whole set is written."""
    if not target.exists():
        return None
    saved = f"{target.parent}/.{target.name}.{os.getpid()}.{id(target)}.old"
    try:
        os.link(target, saved)
    except OSError:  # a file system without hard links: a copy
        shutil.copy2(target, saved)
    return saved


def _discard(saved: str | None) -> None:
    if saved is not None:
        with contextlib.suppress(OSError):
            os.unlink(saved)


def _roll_back(done: list[tuple[Path, str | None]]) -> None:
    for target, saved in reversed(done):
        with contextlib.suppress(OSError):
            if saved is None:
                os.unlink(target)
            else:
                os.replace(saved, target)


def _rename(tmp: str, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(target)) from None


def _stage(target: Path, data: bytes) -> str:
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise type(e)(e.errno, e.strerror, str(target)) from None
    return tmp
