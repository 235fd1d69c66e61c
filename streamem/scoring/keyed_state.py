"""The snapshot of a :class:`~streamem.scoring.keyed.KeyedDetector`: plain arrays and
scalars (no pickle), versioned, read back through a :class:`~streamem.model._versioned.StateReader`.

A full snapshot holds the keys in memory and the evicted keys not yet checkpointed; a
checkpoint's *meta* snapshot leaves the keys out (they are in the key store).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem.model._versioned import StateReader
from streamem.scoring.key_table import KeyStore, KeyTable, Layout, decode_blobs, encode_blobs
from streamem.scoring.keyed_support import population_params

if TYPE_CHECKING:
    from streamem.scoring.keyed import KeyedDetector

__all__ = ["STATE_VERSION", "dump_keyed", "load_keyed"]

STATE_VERSION = 1
KIND = "keyed-detector"


def dump_keyed(det: KeyedDetector, with_keys: bool) -> dict[str, Any]:
    """The detector's state; ``with_keys``: also every key not in the store.

    Examples
    --------
    >>> from streamem.scoring.keyed import KeyedDetector
    >>> s = dump_keyed(KeyedDetector(warmup=10), with_keys=True)
    >>> s["version"], s["kind"], s["keys"]
    (1, 'keyed-detector', [])
    """
    t = det.table_
    d = det.n_features_in_
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "kind": KIND,
        "params": dict(det.params),
        "n_features": d,
        "key_kind": None if t is None else t.key_kind,
        "population": None if det.pop_stats_ is None else list(det.pop_stats_),
        "buffer": (np.concatenate(det.buffer_) if det.buffer_
                   else np.zeros((0, d or 0))),
        "pool": det.pool_.copy(),
        "pool_m2": None if det.pool_m2_ is None else det.pool_m2_.copy(),
        "n_events": det.n_events_,
        "n_anomalies": det.n_anomalies_,
        "now": det.now_,
        "table_counts": [0, 0, 0, 0] if t is None else [t.created, t.evictions, t.loads,
                                                        t.forgotten],
    }
    if with_keys:
        if t is None:
            state.update(keys=[], records=np.zeros((0, 0)), dirty=np.zeros(0, bool),
                         spill_keys=[], spill_records=np.zeros((0, 0)))
        else:
            state.update(
                keys=t.sorted_keys.tolist(),
                records=t.rec[t.sorted_slots].copy(),
                dirty=t.dirty[t.sorted_slots].copy(),
                spill_keys=list(t.spill),
                spill_records=(decode_blobs(list(t.spill.values()), t.layout) if t.spill
                               else np.zeros((0, t.layout.size))),
            )
    return state


def load_keyed(cls: type[KeyedDetector], state: Mapping[str, Any],
               store: KeyStore | None) -> KeyedDetector:
    """Rebuild a detector from :func:`dump_keyed` output (decoded or not).

    Examples
    --------
    >>> from streamem.scoring.keyed import KeyedDetector
    >>> load_keyed(KeyedDetector, {"version": 2}, None)
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: KeyedDetector state version 2 is not 1; ...
    """
    r = StateReader(state, "KeyedDetector", version=STATE_VERSION, kind=KIND)
    with r.guard():
        params = dict(r.sub("params"))
        det = cls(**params, store=store)
        d = None if r["n_features"] is None else r.integer("n_features")
        det.n_features_in_ = d
        if r["population"] is not None:
            N, S1, S2 = (np.asarray(a, dtype=float) for a in r["population"])
            det.pop_stats_ = (N, S1, S2)
            det.population_ = population_params(N, S1, S2)
        buf = r.array("buffer")
        det.buffer_ = [buf] if len(buf) else []
        det.pool_ = r.shaped("pool", (5,)).copy()
        det.pool_m2_ = None if r["pool_m2"] is None else r.array("pool_m2").copy()
        det.n_events_, det.n_anomalies_ = r.integer("n_events"), r.integer("n_anomalies")
        det.now_ = r.number("now")
        kind = r["key_kind"]
        if kind is not None and d is not None:
            t = KeyTable(Layout(d, det.n_components), det.max_keys_in_memory, str(kind))
            t.created, t.evictions, t.loads, t.forgotten = (int(v) for v in r["table_counts"])
            if "keys" in r:
                _fill(t, r)
            det.table_ = t
    return det


def _fill(t: KeyTable, r: StateReader) -> None:
    """Put the snapshot's keys back: in memory in sorted order, and the spill."""
    keys = t.parse_keys([str(k) for k in r["keys"]])
    rec = r.array("records").reshape(len(keys), t.layout.size)
    dirty = r.array("dirty", dtype=bool).reshape(len(keys))
    if len(keys) > t.capacity:
        raise r.error(f"{len(keys)} keys in memory exceed max_keys_in_memory={t.capacity}")
    order = np.argsort(keys, kind="stable")
    t._grow(len(keys))
    n = len(keys)
    t.rec[:n] = rec[order]
    t.dirty[:n] = dirty[order]
    t.sorted_keys = keys[order]
    t.sorted_slots = np.arange(n, dtype=np.intp)
    t.free = np.arange(len(t.rec) - 1, n - 1, -1, dtype=np.intp)
    spill_keys = [str(k) for k in r["spill_keys"]]
    if spill_keys:
        srec = r.array("spill_records").reshape(len(spill_keys), t.layout.size)
        t.spill = dict(zip(spill_keys, encode_blobs(srec, t.layout), strict=True))

