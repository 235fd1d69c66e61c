"""A :class:`~streamem.state.base.CheckpointStore` that keeps snapshots as files in a directory.

Layout: one sub-directory per state key, one file per snapshot::

    STATE_DIR/global/000000000042.snap
    STATE_DIR/p3/000000000017.snap

A save writes a temporary file in the same directory, flushes and fsyncs it, renames it over
the final name with :func:`os.replace` and fsyncs the directory, so a crash (even kill -9 or a
power cut) leaves either the old set of files or the new one, never a half-written snapshot
under a final name. Leftover temporary files are ignored, and removed when a store opens or
prunes once their writer process is gone (or they are ten minutes old).

One process writes a state directory at a time; readers (``streamem inspect``) may read while
it runs.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamem.errors import StateError
from streamem.state.base import Snapshot, SnapshotCheck
from streamem.state.codec import UnknownSchemaVersionError, decode_snapshot, encode_snapshot
from streamem.state.files import (
    create_private_file,
    fsync_dir,
    make_private_dirs,
    read_regular_file,
    set_aside,
)

__all__ = ["DirectoryCheckpointStore", "inspect_latest"]

logger = logging.getLogger(__name__)

_SNAP_RE = re.compile(r"^(\d{12,})\.snap$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_TMP_SUFFIX = ".tmp"
_TMP_MAX_AGE = 600.0  # seconds; no save takes this long


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise StateError(
            f"state key {key!r} is not a safe directory name; use letters, digits, '_', '-' "
            "or '.' (such as 'global' or 'p3')"
        )
    return key


def _is_stale(tmp: Path) -> bool:
    """A temp file is a leftover when its writer (pid in the name) is dead, or it is old.

    The age rule covers pid reuse (a restarted container is pid 1 again).
    """
    try:
        pid = int(tmp.name.split(".")[-3])
        age = time.time() - tmp.lstat().st_mtime
    except (ValueError, IndexError, OSError):
        return True
    if age > _TMP_MAX_AGE:
        return True
    if pid == os.getpid():  # another store of this process may be writing it
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _list_snapshots(key_dir: Path, strict: bool = False) -> list[tuple[int, Path]]:
    """``(sequence, path)`` of the final snapshot files in ``key_dir``, newest first.

    A missing ``key_dir`` has none; one that cannot be listed (not a directory, no permission)
    raises :class:`StateError` when ``strict``, else has none.
    """
    try:
        names = os.listdir(key_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        if not strict:
            return []
        what = "not a directory" if isinstance(exc, NotADirectoryError) else str(exc)
        raise StateError(
            f"cannot list the checkpoints in {key_dir}: {what}; move it aside (streamem keeps "
            "one directory of snapshots per state key there) or fix its permissions"
        ) from exc
    found = [(int(m.group(1)), key_dir / n) for n in names if (m := _SNAP_RE.match(n))]
    return sorted(found, reverse=True)


def _load_newest_valid(key_dir: Path, key: str,
                       check: SnapshotCheck | None = None) -> tuple[Snapshot, Path] | None:
    files = _list_snapshots(key_dir, strict=True)
    errors: list[str] = []
    for seq, path in files:
        try:
            snap = decode_snapshot(read_regular_file(path))
            if snap.key != key or snap.sequence != seq:
                raise StateError(f"it holds key {snap.key!r} sequence {snap.sequence}, "
                                 f"expected {key!r} {seq} (misplaced)")
            if check is not None:
                check(snap)
        except UnknownSchemaVersionError as exc:
            raise UnknownSchemaVersionError(
                f"{path}: {exc}, or move {path.name} aside to fall back to the older "
                "snapshots (losing what it learned since)") from exc
        except StateError as exc:
            logger.warning("skipping unusable checkpoint %s: %s", path, exc)
            errors.append(f"{path.name}: {exc}")
            continue
        if errors:
            logger.warning("restored the older checkpoint %s instead", path)
        return snap, path
    if errors:
        raise StateError(
            f"none of the {len(files)} checkpoints in {key_dir} is usable ({'; '.join(errors)}); "
            "move the directory aside to start from scratch, or restore it from a backup"
        )
    return None


class DirectoryCheckpointStore:
    """Versioned snapshots as files, written atomically, the last ``keep`` kept per key.

    Parameters
    ----------
    path
        The state directory; created if missing.
    keep
        Snapshots kept per key (at least 1). Older ones are deleted after each save.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from streamem.state.base import Snapshot
    >>> with tempfile.TemporaryDirectory() as d, DirectoryCheckpointStore(d, keep=2) as store:
    ...     for seq in (1, 2, 3):
    ...         store.save(Snapshot("global", seq, 0.0, {"w": np.ones(2)}, {0: 10 * seq}))
    ...     latest = store.load_latest("global")
    ...     print(latest.sequence, latest.positions, sorted(os.listdir(f"{d}/global")))
    3 {0: 30} ['000000000002.snap', '000000000003.snap']
    """

    def __init__(self, path: str | os.PathLike[str], keep: int = 5) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise StateError(f"keep={keep!r} must be an integer >= 1 (checkpoint.keep)")
        self.path = Path(path)
        self.keep = keep
        self._lock = threading.Lock()
        self._closed = False
        try:
            if not self.path.is_dir():
                make_private_dirs(self.path)
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {self.path}: {exc}; set checkpoint.dir "
                "to a writable directory"
            ) from exc
        self._remove_leftovers()

    def __repr__(self) -> str:
        return f"DirectoryCheckpointStore({str(self.path)!r}, keep={self.keep})"

    def _remove_leftovers(self, key_dirs: list[Path] | None = None) -> None:
        """Delete temp files of crashed writers: their process is gone, or they are old."""
        dirs = key_dirs if key_dirs is not None else [d for d in self.path.iterdir() if d.is_dir()]
        for key_dir in dirs:
            for tmp in key_dir.glob(f".*{_TMP_SUFFIX}"):
                if not _is_stale(tmp):
                    continue
                logger.info("removing leftover temporary checkpoint %s", tmp)
                try:
                    tmp.unlink(missing_ok=True)
                except OSError as exc:  # a directory of that name, say: not ours to delete
                    logger.warning("cannot remove leftover temporary checkpoint %s: %s", tmp,
                                   exc)

    def _key_dir(self, key: str) -> Path:
        return self.path / _check_key(key)

    def save(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` durably; when this returns it survives kill -9 and power loss.

        The saved snapshot becomes the latest: files of the same key with a higher sequence
        (left over from a timeline that was rolled back) are removed with a warning.

        Parameters
        ----------
        snapshot
            The snapshot; its ``key`` selects the sub-directory.

        Raises
        ------
        StateError
            When the store is closed, the key is not a safe name, the state cannot be
            encoded, or the disk write fails.

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, DirectoryCheckpointStore(d) as store:
        ...     store.save(Snapshot("p0", 5, 0.0, {}, {0: 1}))
        ...     os.listdir(f"{d}/p0")
        ['000000000005.snap']
        """
        if self._closed:
            raise StateError(f"{self!r} is closed; open a new store to save")
        key_dir = self._key_dir(snapshot.key)
        if snapshot.sequence < 0:
            raise StateError(f"sequence {snapshot.sequence} must be >= 0")
        data = encode_snapshot(snapshot)
        final = key_dir / f"{snapshot.sequence:012d}.snap"
        tmp = key_dir / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
        with self._lock:
            try:
                if not key_dir.is_dir():
                    make_private_dirs(key_dir)
                # 0600 whatever the umask: a snapshot holds what the model learned of the data
                with create_private_file(tmp) as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                if os.path.isdir(final) and not os.path.islink(final):
                    set_aside(final)  # os.replace cannot replace a directory
                os.replace(tmp, final)
                fsync_dir(key_dir)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise StateError(
                    f"cannot write checkpoint {final}: {exc}; check free space and permissions "
                    "of checkpoint.dir"
                ) from exc
            self._prune(key_dir, snapshot.sequence)

    def _prune(self, key_dir: Path, saved: int) -> None:
        files = _list_snapshots(key_dir)
        newer = [p for seq, p in files if seq > saved]
        older = [p for seq, p in files if seq <= saved]
        for path in newer:
            logger.warning(
                "removing %s: it is newer than the checkpoint just saved (%d)", path, saved
            )
        try:
            for path in newer + older[self.keep :]:
                if path.is_dir() and not path.is_symlink():
                    set_aside(path)
                else:
                    path.unlink(missing_ok=True)
            if newer or len(older) > self.keep:
                fsync_dir(key_dir)
            self._remove_leftovers([key_dir])
        except OSError as exc:  # the new snapshot is durable; pruning can wait
            logger.warning("cannot prune old checkpoints in %s: %s", key_dir, exc)

    def load_latest(self, key: str = "global",
                    check: SnapshotCheck | None = None) -> Snapshot | None:
        """Newest valid snapshot of ``key``, or None when there is none.

        A newest file that is corrupt, partial, not a regular file (a FIFO, a directory, a
        symbolic link: never opened, never followed) or refused by ``check`` is skipped with
        a warning naming it, and the previous one is used.

        Parameters
        ----------
        key
            The state key.
        check
            Called with each decoded candidate, newest first; raising :class:`StateError`
            rejects it (say, a detector state that misses a key).

        Returns
        -------
        Snapshot or None
            None when the key has no snapshot files at all.

        Raises
        ------
        UnknownSchemaVersionError
            When the newest snapshot was written by a newer streamem (upgrade instead of
            silently rolling back).
        StateError
            When files exist but none of them is usable (the message lists each file and
            why), or the key's directory cannot be listed.

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, DirectoryCheckpointStore(d) as store:
        ...     print(store.load_latest("global"))
        ...     store.save(Snapshot("global", 1, 0.0, {}, {0: 1}))
        ...     store.load_latest("global").sequence
        None
        1
        """
        found = _load_newest_valid(self._key_dir(key), key, check)
        return None if found is None else found[0]

    def keys(self) -> list[str]:
        """Keys that have at least one snapshot file, sorted.

        Returns
        -------
        list of str

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, DirectoryCheckpointStore(d) as store:
        ...     for key in ("p1", "p0"):
        ...         store.save(Snapshot(key, 1, 0.0, {}, {}))
        ...     store.keys()
        ['p0', 'p1']
        """
        return sorted(
            d.name
            for d in self.path.iterdir()
            if d.is_dir() and _KEY_RE.match(d.name) and _list_snapshots(d)
        )

    def close(self) -> None:
        """Mark the store closed (every save is already durable); safe to call twice.

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     store = DirectoryCheckpointStore(d); store.close(); store.close()
        """
        self._closed = True

    def __enter__(self) -> DirectoryCheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(obj: Any) -> Any:
    """Convert decoded state to JSON-ready values (non-finite floats become None)."""
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.asarray(obj)
        if arr.dtype.kind == "c":
            return _plain(np.stack([arr.real, arr.imag], axis=-1))
        return _plain(arr.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.decode("latin-1")
    return obj


def inspect_latest(path: str | os.PathLike[str], key: str = "global") -> dict[str, Any]:
    """Summarise the newest valid snapshot of ``key`` as JSON-ready data (read-only).

    Parameters
    ----------
    path
        The state directory (``checkpoint.dir``).
    key
        The state key.

    Returns
    -------
    dict
        ``file``, ``key``, ``sequence``, ``schema_version``, ``created_at``, ``age_seconds``,
        ``positions`` (partition as a string), ``counters``, ``sequences`` on disk, ``keys``
        in the directory and ``detector``: the detector state with arrays as nested lists and
        nan/inf as null.

    Raises
    ------
    StateError
        When the directory or key holds no usable snapshot.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from streamem.state.base import Snapshot
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with DirectoryCheckpointStore(d) as store:
    ...         store.save(Snapshot("global", 4, 0.0, {"weights": np.array([0.5, 0.5])}, {0: 9}))
    ...     info = inspect_latest(d)
    >>> info["sequence"], info["positions"], info["detector"]["weights"]
    (4, {'0': 9}, [0.5, 0.5])
    """
    root = Path(path)
    if not root.is_dir():
        raise StateError(f"state directory {root} does not exist; pass the checkpoint.dir path")
    keys = sorted(d.name for d in root.iterdir() if d.is_dir() and _list_snapshots(d))
    found = _load_newest_valid(root / _check_key(key), key)
    if found is None:
        raise StateError(
            f"no checkpoint for key {key!r} in {root}; keys with checkpoints: {keys or 'none'}"
        )
    snap, file = found
    return {
        "file": str(file),
        "key": snap.key,
        "sequence": snap.sequence,
        "schema_version": snap.schema_version,
        "created_at": snap.created_at,
        "age_seconds": max(0.0, time.time() - snap.created_at),
        "positions": {str(p): o for p, o in sorted(snap.positions.items())},
        "counters": dict(snap.counters),
        "sequences": [seq for seq, _ in _list_snapshots(root / key)],
        "keys": keys,
        "detector": _plain(snap.detector),
    }
