"""File primitives of the directory checkpoint store: private creation, safe reading.

Snapshots hold what the model learned of the data, so what the store creates is private
(directories 0700, files 0600, whatever the umask), and what it reads must be a regular file:
a FIFO, socket, device, directory or symbolic link in a snapshot's place is refused without
blocking and without following it.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from streamem.errors import StateError

__all__ = ["create_private_file", "fsync_dir", "make_private_dirs", "read_regular_file",
           "set_aside"]

logger = logging.getLogger("streamem.state.directory")  # the store's: one name to filter on


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a create, rename or unlink) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside(path: Path) -> None:
    """Rename a directory found under a snapshot's name out of the way (kept for a human)."""
    aside = path.with_name(f"{path.name}.unusable-{secrets.token_hex(4)}")
    logger.warning("%s is a directory, not a snapshot file; renaming it to %s", path, aside.name)
    os.rename(path, aside)


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (the umask can only make it
    stricter), fsyncing each parent so the new entries are durable; existing ones are kept
    as they are."""
    missing = []
    for d in (path, *path.parents):
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        fsync_dir(d.parent)


_WRITE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                | getattr(os, "O_CLOEXEC", 0))


def create_private_file(path: Path) -> BinaryIO:
    """Create ``path`` (which must not exist) with mode 0600 and open it for writing.

    Parameters
    ----------
    path
        The new file; an existing file or symbolic link of that name is an error.

    Returns
    -------
    BinaryIO
        Open for writing; close it (a ``with`` block).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with create_private_file(Path(d) / "f") as fh:
    ...         _ = fh.write(b"x")
    ...     oct(os.stat(f"{d}/f").st_mode & 0o777)
    '0o600'
    """
    return open(os.open(path, _WRITE_FLAGS, 0o600), "wb")


_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"))


def _not_regular(mode: int) -> StateError:
    kind = next((name for test, name in _KINDS if test(mode)), "special file")
    return StateError(f"it is a {kind}, not a regular file (streamem writes snapshots only as "
                      "regular files); move it aside")


_READ_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0))


def read_regular_file(path: Path) -> bytes:
    """The bytes of the snapshot file ``path``, which must be a regular file.

    Never follows a symbolic link and never blocks: a FIFO, socket, device or directory in
    its place is refused without reading it (``O_NONBLOCK | O_NOFOLLOW``, then ``fstat``
    on the open descriptor, so a file swapped in between the checks is refused too).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    bytes

    Raises
    ------
    StateError
        When ``path`` is not a regular file or cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     os.mkfifo(f"{d}/x.snap")
    ...     read_regular_file(Path(d) / "x.snap")
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: it is a FIFO, not a regular file ...
    """
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(mode)
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise StateError(f"cannot open it: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(mode)
        try:
            return fh.read()
        except OSError as exc:
            raise StateError(f"cannot read it: {exc.strerror or exc}") from exc


