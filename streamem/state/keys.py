"""The ``KeyStore`` contract for the per-key states of a :class:`~streamem.KeyedDetector`,
and the :func:`checkpoint` / :func:`restore` that work with any store meeting it.

A key store holds one blob per key (:func:`~streamem.scoring.key_table.encode_blobs`, with the
key's last-seen time beside it), plus the detector's *meta* snapshot and an opaque
*positions* blob (the input offsets) of the last checkpoint. A checkpoint is atomic: a reader
sees either all of it or none of it, so restored positions never run ahead of (nor behind)
the key states. Implementations: :class:`~streamem.state.keys_sqlite.SqliteKeyStore` (one
SQLite file) and :class:`~streamem.state.kafka_keys.KafkaKeyStore` (a compacted topic).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from streamem.errors import StateError
from streamem.scoring.key_table import BLOB_MAGIC, LAST_SEEN, Layout, encode_blobs
from streamem.scoring.keyed import KeyedDetector
from streamem.scoring.keyed_state import dump_keyed
from streamem.state.codec import dumps, loads

__all__ = ["KeyStore", "check_blobs", "checkpoint", "restore"]

_HEAD = struct.Struct("<4sHH")  # the blob header of streamem.scoring.key_table


@runtime_checkable
class KeyStore(Protocol):
    """Durable per-key states and the checkpoint they belong to.

    ``KeyedDetector(store=...)`` uses :meth:`get_many` to load evicted keys back;
    :func:`checkpoint` uses :meth:`write`, :func:`restore` uses :meth:`read_meta`.
    """

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """The stored blobs of those ``keys`` that the store has (missing keys are left out).

        Raises :class:`~streamem.errors.StateError` naming the key of a malformed blob."""
        ...

    def read_meta(self) -> tuple[bytes | None, bytes | None]:
        """The last checkpoint's meta snapshot and positions (``(None, None)`` before one)."""
        ...

    def write(self, rows: Iterable[tuple[str, float, bytes]], meta: bytes, positions: bytes,
              forget_before: float | None = None) -> None:
        """Atomically upsert ``(key, last_seen, blob)`` rows, set the meta and positions, and
        delete the keys last seen before ``forget_before``; durable when it returns."""
        ...


def check_blobs(found: Mapping[str, bytes], where: str) -> None:
    """Raise :class:`StateError` naming the first key whose blob is not a key record.

    Parameters
    ----------
    found
        ``{key: blob}`` as read from a store.
    where
        The store, for the message.

    Examples
    --------
    >>> check_blobs({"pump-7": b"junk"}, "keys.db")
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: key 'pump-7' in keys.db is not a streamem key record ...
    """
    for key, blob in found.items():
        if len(blob) >= _HEAD.size:
            magic, d, k = _HEAD.unpack_from(blob)
            if magic == BLOB_MAGIC and d and k and len(blob) == (
                    _HEAD.size + Layout(d, k).size * 8):
                continue
        raise StateError(f"key {key!r} in {where} is not a streamem key record ({len(blob)} "
                         f"bytes starting {bytes(blob[:8])!r}); the store is corrupt: delete "
                         "that key (the detector relearns it) or restore a backup")


def checkpoint(det: KeyedDetector, store: KeyStore, positions: bytes = b"") -> int:
    """Write the detector's dirty and spilled keys, its meta and ``positions`` atomically;
    returns the number of keys written. A detector without a store gets this one (it reads
    evicted keys back from it from now on). Commit input offsets only after this returns.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from streamem.state.keys_sqlite import SqliteKeyStore
    >>> store = SqliteKeyStore(pathlib.Path(tempfile.mkdtemp()) / "k.db")
    >>> det = KeyedDetector(warmup=20, store=store)
    >>> _ = det.process(np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 4)
    >>> checkpoint(det, store, b"offset=40"), checkpoint(det, store, b"offset=40")
    (4, 0)
    >>> det2, pos = restore(store); pos, det2.n_events_
    (b'offset=40', 40)
    """
    if det.store is None:
        det.store = store
    t = det.table_
    keys: list[str] = []
    blobs: list[bytes] = []
    seen: Any = []
    if t is not None:
        keys, rec = t.dirty_records()
        blobs = encode_blobs(rec, t.layout)
        seen = rec[:, t.layout.spans["counts"][0] + LAST_SEEN].tolist()
    cutoff = None if det.key_idle_ttl is None else det.now_ - det.key_idle_ttl
    store.write(zip(keys, seen, blobs, strict=True), dumps(dump_keyed(det, with_keys=False)),
                positions, cutoff)
    if t is not None:
        t.mark_clean()
    return len(keys)


def restore(store: KeyStore) -> tuple[KeyedDetector, bytes | None]:
    """The detector of the last checkpoint (keys load on demand) and its positions.

    Raises
    ------
    StateError
        No checkpoint yet, or a malformed one.
    """
    meta, positions = store.read_meta()
    if meta is None:
        raise StateError(f"key store {store!r} holds no checkpoint yet; start a new "
                         "KeyedDetector(store=...) instead of restoring")
    return KeyedDetector.from_state(loads(meta), store=store), positions
