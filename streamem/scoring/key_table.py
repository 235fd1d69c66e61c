"""The in-memory table of per-key states behind :class:`~streamem.scoring.keyed.KeyedDetector`:
one float64 record per key in a slot array, a sorted key index, least-recently-used
eviction to a key store, and the per-key blob format.

A key's record (``R = d + K + K d + K d^2 + 8`` floats, :class:`Layout`) holds its anchor,
its decayed sufficient statistics, its tail statistics and its counters. Lookups, inserts and
evictions for a batch are a fixed number of numpy calls (``np.unique``, ``np.searchsorted``,
``np.argpartition``); only keys that come back from the store are decoded, all at once.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from streamem.errors import StateError

__all__ = ["BLOB_MAGIC", "KeyStore", "KeyTable", "Layout", "decode_blobs", "encode_blobs",
           "key_memory"]

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]
#: A per-key blob: magic, format version, ``(d, K)`` as little-endian uint16, the record.
BLOB_MAGIC = b"SKK\x01"
_HEAD = struct.Struct("<4sHH")


class KeyStore(Protocol):
    """Where evicted keys go: :class:`streamem.state.keys_sqlite.SqliteKeyStore` implements it."""

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """The stored blobs of those ``keys`` that the store has."""
        ...


class Layout:
    """Field offsets inside a key record.

    Examples
    --------
    >>> lay = Layout(4, 2)
    >>> lay.size, lay.size * 8     # floats and bytes per key at d=4, K=2
    (42, 336)
    >>> lay.fields()[:3]
    [('anchor', 0, 4), ('N', 4, 6), ('S1', 6, 14)]
    """

    NAMES = ("anchor", "N", "S1", "S2", "tail", "counts")

    def __init__(self, d: int, K: int) -> None:
        self.d, self.K = d, K
        # S2: the lower triangle of each component's scatter; tail: E, P, X; counts below
        sizes = (d, K, K * d, K * d * (d + 1) // 2, 3, 5)
        edges = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.spans = {n: (int(a), int(b)) for n, a, b in zip(self.NAMES, edges[:-1], edges[1:],
                                                            strict=True)}
        self.size = int(edges[-1])

    def fields(self) -> list[tuple[str, int, int]]:
        """``(name, start, stop)`` of every field, in record order."""
        return [(n, *self.spans[n]) for n in self.NAMES]

    def view(self, rec: Array, name: str) -> Array:
        """A field of records ``rec`` (n, R), reshaped: N (n, K), S1 (n, K, d), S2 (n, K, T)
        (the lower triangle, :func:`~streamem.model._keyed.lower_index`)."""
        a, b = self.spans[name]
        T = self.d * (self.d + 1) // 2
        shape = {"S1": (self.K, self.d), "S2": (self.K, T)}.get(name, (b - a,))
        return rec[:, a:b].reshape((len(rec), *shape))


#: the five counters at the end of a record
COUNT_EVENTS, COUNT_ANOMALIES, LAST_SEEN, LAST_ANOMALY, TICK = range(5)


def key_memory(n_features: int, n_components: int, n_keys: int, *, capacity: int = 100_000,
               key_chars: int = 16, int_keys: bool = False) -> int:
    """At most the bytes the in-memory key table takes for ``n_keys`` keys: per slot its
    record and dirty flag, per free slot a free-list entry, per key its index slot and the
    sorted key itself (a numpy ``str_`` array holds every key at the width of the longest:
    4 bytes per character of ``key_chars``). The table grows from 1,024 slots by at most
    doubling, up to ``capacity`` (``max_keys_in_memory``), which also bounds ``n_keys``; the
    bound assumes full doubling. Spilled keys awaiting a checkpoint come on top.

    Examples
    --------
    >>> key_memory(4, 2, 1)                 # one 16-character key, d=4, K=2
    353344
    >>> key_memory(4, 2, 100_000) / 100_000  # about 0.4 KiB per key at scale
    409.0
    """
    layout = Layout(n_features, n_components)
    n_keys = min(n_keys, capacity)
    slots = min(1024, capacity)
    while slots < n_keys:
        slots = min(2 * slots, capacity)
    key_bytes = 8 if int_keys else 4 * max(key_chars, 1)
    return (slots * (layout.size * 8 + 1) + (slots - n_keys) * 8  # records, flags, free list
            + n_keys * (key_bytes + 8))  # sorted keys and their slots


def encode_blobs(rec: Array, layout: Layout) -> list[bytes]:
    """One blob per record (no pickle: a fixed header, then little-endian float64).

    Examples
    --------
    >>> lay = Layout(1, 1)
    >>> b = encode_blobs(np.arange(lay.size, dtype=float)[None], lay)
    >>> len(b[0]), decode_blobs(b, lay).ravel().tolist() == list(range(lay.size))
    (104, True)
    """
    head = _HEAD.pack(BLOB_MAGIC, layout.d, layout.K)
    raw = np.ascontiguousarray(rec, dtype="<f8").tobytes()
    w = layout.size * 8
    return [head + raw[i * w:(i + 1) * w] for i in range(len(rec))]


def decode_blobs(blobs: list[bytes], layout: Layout) -> Array:
    """Records (n, R) from blobs written by :func:`encode_blobs` for the same ``(d, K)``.

    Raises
    ------
    StateError
        A blob of another size, magic or shape.

    Examples
    --------
    >>> decode_blobs([b"junk"], Layout(1, 1))
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: key state blob 0 is not a streamem key record for d=1, K=1 ...
    """
    head = _HEAD.pack(BLOB_MAGIC, layout.d, layout.K)
    w = _HEAD.size + layout.size * 8
    joined = b"".join(blobs)
    if len(joined) != w * len(blobs) or any(not b.startswith(head) for b in blobs):
        bad = next(i for i, b in enumerate(blobs) if len(b) != w or not b.startswith(head))
        raise StateError(f"key state blob {bad} is not a streamem key record for "
                         f"d={layout.d}, K={layout.K} ({len(blobs[bad])} bytes, expected {w}); "
                         "the key store is corrupt or belongs to another model: use a new "
                         "state directory")
    arr = np.frombuffer(joined, dtype=np.uint8).reshape(len(blobs), w)[:, _HEAD.size:]
    return np.ascontiguousarray(arr).view("<f8").astype(np.float64)


class KeyTable:
    """Slots of per-key records, a sorted key index, LRU eviction and the spill of evicted
    dirty keys (written by the next checkpoint).

    Parameters
    ----------
    layout
        The record layout.
    capacity
        Most keys held in memory (``max_keys_in_memory``).
    key_kind
        ``"int"`` or ``"str"``: keys are int64 or unicode arrays.

    Examples
    --------
    >>> t = KeyTable(Layout(1, 1), capacity=2, key_kind="int")
    >>> slots, new = t.lookup(np.array([7, 9]), np.array([0, 1]), None)
    >>> t.n_keys, new.tolist()
    (2, [True, True])
    >>> t.rec[slots, t.layout.size - 1] = [1.0, 2.0]      # ticks: key 7 is older
    >>> t.dirty[slots] = True
    >>> slots, new = t.lookup(np.array([5]), np.array([0]), None)
    >>> t.keys().tolist(), t.evictions, sorted(t.spill)
    ([5, 9], 1, ['7'])
    """

    def __init__(self, layout: Layout, capacity: int, key_kind: str) -> None:
        self.layout, self.capacity, self.key_kind = layout, int(capacity), key_kind
        self.dtype: Any = np.int64 if key_kind == "int" else np.str_
        self.rec = np.zeros((min(self.capacity, 1024), layout.size))
        self.dirty = np.zeros(len(self.rec), dtype=bool)
        self.sorted_keys: NDArray[Any] = np.empty(0, dtype=self.dtype)
        self.sorted_slots: IntArray = np.empty(0, dtype=np.intp)
        self.free: IntArray = np.arange(len(self.rec), dtype=np.intp)[::-1].copy()
        self.spill: dict[str, bytes] = {}
        self.evictions = self.loads = self.created = self.forgotten = 0

    @property
    def n_keys(self) -> int:
        """Keys in memory."""
        return len(self.sorted_keys)

    def keys(self) -> NDArray[Any]:
        """The in-memory keys, sorted."""
        return self.sorted_keys

    def key_text(self, keys: NDArray[Any]) -> list[str]:
        """Keys as the store's text keys."""
        return [str(k) for k in keys.tolist()]

    def _grow(self, need: int) -> None:
        size = len(self.rec)
        if len(self.free) >= need or size >= self.capacity:
            return
        new = min(self.capacity, max(2 * size, size + need))
        self.rec = np.concatenate([self.rec, np.zeros((new - size, self.layout.size))])
        self.dirty = np.concatenate([self.dirty, np.zeros(new - size, dtype=bool)])
        self.free = np.concatenate([np.arange(new - 1, size - 1, -1, dtype=np.intp), self.free])

    def lookup(self, uniq: NDArray[Any], first_row: IntArray, store: KeyStore | None
               ) -> tuple[IntArray, NDArray[np.bool_]]:
        """Slots of the batch's unique keys (sorted), loading or creating the missing ones.

        Missing keys come back from the spill or the ``store`` (counted as loads) or start
        with a zero record (``new``); when the table is full, the least recently used keys
        not in the batch are evicted first.

        Returns
        -------
        slots
            Shape (n_unique,).
        new
            Shape (n_unique,): keys never seen (their record is zero).
        """
        pos = np.searchsorted(self.sorted_keys, uniq)
        hit = pos < len(self.sorted_keys)
        hit[hit] = self.sorted_keys[pos[hit]] == uniq[hit]
        slots = np.empty(len(uniq), dtype=np.intp)
        slots[hit] = self.sorted_slots[pos[hit]]
        miss = np.flatnonzero(~hit)
        new = np.zeros(len(uniq), dtype=bool)
        if not len(miss):
            return slots, new
        if len(uniq) > self.capacity:
            from streamem.errors import InvalidInputError

            raise InvalidInputError(f"a batch holds {len(uniq)} distinct keys but "
                                    f"max_keys_in_memory is {self.capacity}; send smaller "
                                    "batches or raise max_keys_in_memory")
        self._grow(len(miss))
        short = len(miss) - len(self.free)
        if short > 0:
            self._evict(short, slots[hit])
        take = self.free[len(self.free) - len(miss):][::-1]
        self.free = self.free[:len(self.free) - len(miss)]
        slots[miss] = take
        self.rec[take] = 0.0
        self.dirty[take] = False
        self._load(uniq[miss], take, new, miss, store)
        # insert into the sorted index (uniq is sorted, so the positions are monotone)
        at = np.searchsorted(self.sorted_keys, uniq[miss])
        wide = np.result_type(self.sorted_keys, uniq)  # str keys: never truncate to the index
        self.sorted_keys = np.insert(self.sorted_keys.astype(wide, copy=False), at, uniq[miss])
        self.sorted_slots = np.insert(self.sorted_slots, at, take)
        return slots, new

    def _load(self, keys: NDArray[Any], slots: IntArray, new: NDArray[np.bool_],
              miss: IntArray, store: KeyStore | None) -> None:
        if not self.spill and store is None:   # nowhere to load from: all new
            new[miss] = True
            self.created += len(keys)
            return
        text = self.key_text(keys)
        found: dict[str, bytes] = {}
        if self.spill:
            found = {k: self.spill.pop(k) for k in text if k in self.spill}
        spilled = set(found)
        rest = [k for k in text if k not in found] if found else text
        if store is not None and rest:
            found.update(store.get_many(rest))
        if found:
            idx = [i for i, k in enumerate(text) if k in found]
            self.rec[slots[idx]] = decode_blobs([found[text[i]] for i in idx], self.layout)
            # a key back from the spill is still unwritten: dirty
            self.dirty[slots[idx]] = [text[i] in spilled for i in idx]
            self.loads += len(idx)
        is_new = np.ones(len(text), dtype=bool)
        if found:
            is_new[idx] = False
        new[miss] = is_new
        self.created += int(is_new.sum())

    def _evict(self, count: int, keep: IntArray) -> None:
        """Evict the ``count`` least recently used keys whose slots are not in ``keep``."""
        cand = np.setdiff1d(self.sorted_slots, keep, assume_unique=True)
        ticks = self.rec[cand, self.layout.size - 1]
        victims = cand[np.argpartition(ticks, count - 1)[:count]] if count < len(cand) else cand
        self.remove(victims, spill=True)
        self.evictions += len(victims)

    def remove(self, victims: IntArray, spill: bool) -> None:
        """Drop slots from memory; with ``spill``, dirty ones go to the spill first."""
        if not len(victims):
            return
        drop = np.isin(self.sorted_slots, victims)
        keys = self.sorted_keys[drop]
        slots = self.sorted_slots[drop]
        if spill:
            dirty = self.dirty[slots]
            if dirty.any():
                blobs = encode_blobs(self.rec[slots[dirty]], self.layout)
                self.spill.update(zip(self.key_text(keys[dirty]), blobs, strict=True))
        self.sorted_keys = self.sorted_keys[~drop]
        self.sorted_slots = self.sorted_slots[~drop]
        self.dirty[slots] = False
        self.free = np.concatenate([self.free, slots])

    def dirty_records(self) -> tuple[list[str], Array]:
        """Keys and records a checkpoint writes: dirty in memory, then spilled."""
        sel = self.dirty[self.sorted_slots]
        keys = self.key_text(self.sorted_keys[sel])
        rec = self.rec[self.sorted_slots[sel]]
        if self.spill:
            keys += list(self.spill)
            rec = np.concatenate([rec, decode_blobs(list(self.spill.values()), self.layout)])
        return keys, rec

    def mark_clean(self) -> None:
        """After a committed checkpoint: nothing is dirty, the spill is written."""
        self.dirty[:] = False
        self.spill = {}

    def parse_keys(self, text: list[str]) -> NDArray[Any]:
        """Store text keys back to this table's key dtype."""
        if self.key_kind == "int":
            return np.array([int(k) for k in text], dtype=np.int64)
        return np.array(text, dtype=np.str_)
