"""The operator page's history on disk: one JSON file next to the checkpoints, rewritten
atomically (temporary file, fsync, rename) with mode 0600 at every checkpoint."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

from streamem.errors import StateError
from streamem.sinks.payload import dumps
from streamem.ui.history import History

__all__ = ["HISTORY_FILE", "load_history", "save_history"]

logger = logging.getLogger(__name__)

HISTORY_FILE = "ui-history.json"
_MAX_BYTES = 64 * 1024 * 1024


def save_history(directory: str | os.PathLike[str], history: History) -> Path:
    """Write ``history`` to ``directory/ui-history.json`` (created 0700 if missing).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> oct(save_history(d, History()).stat().st_mode & 0o777)
    '0o600'
    """
    folder = Path(directory)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = folder / HISTORY_FILE
    tmp = folder / f".{HISTORY_FILE}.tmp"
    data = dumps(history.to_state()).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return final


def load_history(directory: str | os.PathLike[str], **bounds: Any) -> History:
    """The history saved in ``directory``, or an empty one (with a warning naming the file
    when it exists but cannot be read).

    Examples
    --------
    >>> import tempfile
    >>> load_history(tempfile.mkdtemp()).anomalies()
    []
    """
    path = Path(directory) / HISTORY_FILE
    try:
        st = path.lstat()
    except FileNotFoundError:
        return History(**bounds)
    try:
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_BYTES:
            raise StateError("not a regular file of at most 64 MiB")
        with path.open("rb") as fh:
            state = json.loads(fh.read())
        return History.from_state(state, **bounds)
    except (OSError, ValueError, RecursionError, StateError) as exc:
        logger.warning("ui history %s not restored (%s); starting an empty history", path, exc)
        return History(**bounds)
