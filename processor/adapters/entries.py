"""Reading an inbox entry safely: only a regular file is ever opened, and never through a symlink.

``open_input`` opens with ``O_NOFOLLOW`` (a symlink swapped in is refused, not followed) and
``O_NONBLOCK`` (a FIFO cannot hang the open), then checks ``fstat`` on the open descriptor: whatever the
entry became between a check and the open, only a regular file is read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

HASH_BLOCK = 1024 * 1024


def error_name(exc: OSError) -> str:
    """The errno's symbol (``ENAMETOOLONG``): what a log line says of an OS error, never its path."""
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


class NotRegularFile(OSError):
    """The entry is not a regular file (a symlink, FIFO, socket, device or directory): never read."""


def open_input(path: Path) -> BinaryIO:
    """Open a regular file to read, never following a symlink and never waiting on a FIFO.

    Raises ``NotRegularFile`` for anything but a regular file (the check is on the open descriptor, so
    an entry swapped in between a check and the open cannot slip through), ``OSError`` as ``open`` does.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink; a socket
            raise NotRegularFile(exc.errno, "not a regular file", str(path)) from exc
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def identity_of(handle: BinaryIO) -> tuple[int, int]:
    """Size and modification time of an open file: they change when anyone still writes to it."""
    status = os.fstat(handle.fileno())
    return (status.st_size, status.st_mtime_ns)


def sha256_of(path: Path) -> str:
    """The SHA-256 of the regular file's bytes, read in blocks (raises as ``open_input`` does)."""
    digest = hashlib.sha256()
    with open_input(path) as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
