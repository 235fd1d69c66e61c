"""Per-key states of a :class:`~streamem.KeyedDetector` in an embedded SQLite database (WAL).

One checkpoint is one transaction: the dirty keys (and the evicted ones not yet written),
the detector's meta snapshot and an opaque *positions* blob (the input offsets), so its
cost grows with the dirty keys, not with all keys, and a crash at any moment leaves the
previous checkpoint whole. Offsets are committed by the caller only after
:func:`checkpoint` returns. Key records are fixed-layout float64 blobs
(:mod:`streamem.scoring.key_table`), the meta snapshot is the state codec's JSON: no pickle.
The files are 0600. :func:`checkpoint` and :func:`restore` (of :mod:`streamem.state.keys`)
are re-exported here. This is the only module of streamem that imports :mod:`sqlite3`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streamem.errors import StateError
from streamem.state.keys import check_blobs, checkpoint, restore

__all__ = ["SCHEMA_VERSION", "SqliteKeyStore", "checkpoint", "restore"]

#: Version of the tables' layout; a newer one is refused.
SCHEMA_VERSION = 1
_CHUNK = 500  # keys per SELECT ... IN (...), below SQLite's variable limit
_FIX = ("move the file aside and start from an empty state directory (the detector relearns), "
        "or restore a backup")


class SqliteKeyStore:
    """A key store in one SQLite file: ``meta(k, v)`` and ``keys(key, last_seen, state)``.

    Parameters
    ----------
    path
        The database file (created 0600 with its directory when missing).

    Raises
    ------
    StateError
        The file is not a SQLite database, is corrupt, or was written by a newer streamem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "keys.db"
    >>> with SqliteKeyStore(p) as store:
    ...     store.write([], b"{}", b"offsets")
    ...     store.get_many(["pump-2"]), store.read_meta(), len(store)
    ({}, (b'{}', b'offsets'), 0)
    >>> oct(p.stat().st_mode & 0o777)
    '0o600'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        os.chmod(self.path, 0o600)
        with self._errors("open"):
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB)")
                self.db.execute("CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, "
                                "last_seen REAL NOT NULL, state BLOB NOT NULL)")
                self._check_version()
            except BaseException:
                self.db.close()
                raise

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StateError(f"key store {self.path} cannot be {what}: {exc}; {_FIX}") from None

    def _check_version(self) -> None:
        row = self.db.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise StateError(f"key store {self.path} has schema_version {row[0]!r}, not an "
                             f"integer; {_FIX}") from None
        if version != SCHEMA_VERSION:
            newer = "a newer" if version > SCHEMA_VERSION else "an older"
            raise StateError(f"key store {self.path} has schema_version {version}, written by "
                             f"{newer} streamem (this one reads {SCHEMA_VERSION}); run the "
                             "streamem version that wrote it, or start from an empty state "
                             "directory")

    def __repr__(self) -> str:
        return f"SqliteKeyStore({str(self.path)!r})"

    def __enter__(self) -> SqliteKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the last checkpoint is already durable)."""
        self.db.close()

    def __len__(self) -> int:
        with self._errors("read"):
            return int(self.db.execute("SELECT count(*) FROM keys").fetchone()[0])

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """The stored states of those ``keys`` that the store has."""
        out: dict[str, bytes] = {}
        with self._errors("read"):
            for i in range(0, len(keys), _CHUNK):
                part = keys[i:i + _CHUNK]
                marks = ",".join("?" * len(part))
                out.update(self.db.execute(
                    f"SELECT key, state FROM keys WHERE key IN ({marks})", part).fetchall())
        check_blobs(out, str(self.path))
        return out

    def read_meta(self) -> tuple[bytes | None, bytes | None]:
        """The last checkpoint's meta snapshot and positions (None before the first)."""
        with self._errors("read"):
            rows = dict(self.db.execute(
                "SELECT k, v FROM meta WHERE k IN ('detector', 'positions')").fetchall())
        return rows.get("detector"), rows.get("positions")

    def write(self, rows: Iterable[tuple[str, float, bytes]], meta: bytes, positions: bytes,
              forget_before: float | None = None) -> None:
        """One transaction: upsert ``(key, last_seen, state)`` rows, the meta and positions,
        and delete the keys last seen before ``forget_before``."""
        with self._errors("written"):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT OR REPLACE INTO keys VALUES (?, ?, ?)", rows)
                self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                    [("detector", meta), ("positions", positions)])
                if forget_before is not None:
                    self.db.execute("DELETE FROM keys WHERE last_seen < ?", (forget_before,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

