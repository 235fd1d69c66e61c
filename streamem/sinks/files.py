"""Private files for the sinks: spools, dead letters and anomaly output hold raw payloads.

Files are created with mode 0600 and directories with 0700 whatever the process umask; a
regular file that already exists is narrowed to 0600 when it is opened, unless the caller
says not to (devices and pipes, such as ``/dev/stdout``, are always left alone). Pure:
stdlib only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

__all__ = ["open_private", "private_dir"]

_FLAGS = {
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+b": os.O_RDWR | os.O_CREAT | os.O_APPEND,
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
}


def private_dir(path: Path, *, narrow: bool = True) -> None:
    """Create ``path`` and its missing parents with mode 0700.

    Parameters
    ----------
    path
        The directory.
    narrow
        Also set 0700 on ``path`` if it exists already (for directories streamem owns, such
        as a spool; never done to existing parents).

    Raises
    ------
    OSError
        If a directory cannot be created.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "spool" / "hook"
    >>> old = os.umask(0); private_dir(d); _ = os.umask(old)
    >>> oct(d.stat().st_mode & 0o777), oct(d.parent.stat().st_mode & 0o777)
    ('0o700', '0o700')
    """
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        missing.append(parent)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by someone else: not ours to narrow
        os.chmod(directory, 0o700)
    if narrow and not missing:
        os.chmod(path, 0o700)


def open_private(path: Path, mode: str, *, encoding: str | None = None, buffering: int = -1,
                 narrow: bool = True) -> IO[Any]:
    """Open ``path`` like :func:`open`, creating it 0600 (and narrowing a regular file).

    Parameters
    ----------
    path
        The file.
    mode
        ``"a"`` (text), ``"ab"``, ``"a+b"`` or ``"wb"``.
    encoding
        Text encoding for ``"a"``.
    buffering
        As for :func:`open` (0: unbuffered binary, each write one system call).
    narrow
        Set 0600 on a regular file that exists already, too (not only on a new one).

    Returns
    -------
    file object
        As :func:`open` would return.

    Raises
    ------
    OSError
        If the file cannot be opened.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "dead.jsonl"
    >>> old = os.umask(0)
    >>> with open_private(p, "ab") as handle:
    ...     _ = handle.write(b"{}\\n")
    >>> _ = os.umask(old); oct(p.stat().st_mode & 0o777)
    '0o600'
    """
    flags = _FLAGS[mode] | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        fd = os.open(path, flags, 0o600)
        created = False
    try:
        if (created or narrow) and stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, mode, buffering, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise
