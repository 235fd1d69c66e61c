"""Keyed lanes (``model.scope: key``): their key stores, checkpoint and restore.

A keyed lane holds a :class:`~streamem.KeyedDetector` for the keys its input carries. Its key
store is per lane, so a Kafka rebalance moves a partition's keys with the partition:

* directory store: ``<checkpoint.dir>/keys.db`` for a file or stdin source (one lane), and
  ``<checkpoint.dir>/keys-<lane>.db`` (``keys-p3.db``) for each partition of a Kafka source
  (:class:`~streamem.state.keys_sqlite.SqliteKeyStore`, SQLite in WAL mode);
* Kafka store: the compacted topic ``<checkpoint.topic>.keys.<lane>``
  (:class:`~streamem.state.kafka_keys.KafkaKeyStore`, one record per key).

A checkpoint writes the lane's dirty keys, the detector's meta and the lane's positions,
counters and parsing state in ONE store transaction (:func:`save_lane`); the checkpointer
commits offsets only after it returns. The snapshot store is not used for keyed lanes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamem.config import Config
from streamem.errors import StateError
from streamem.runtime.keying import key_idle_ttl, key_parts
from streamem.runtime.lane import Lane
from streamem.runtime.scorer import KeyedScorer, LaneState
from streamem.scoring.keyed import KeyedDetector
from streamem.state.codec import dumps, loads
from streamem.state.keys import KeyStore, checkpoint, restore

if TYPE_CHECKING:
    from streamem.runtime.checkpoint import Checkpointer
    from streamem.state.kafka_keys import KafkaKeyStore
    from streamem.state.keys_sqlite import SqliteKeyStore
    from streamem.ui.history import History

__all__ = ["key_states", "key_store_name", "new_keyed_detector", "observe_lane",
           "open_key_store", "restore_keyed_lane", "restore_lane", "save_lane"]

logger = logging.getLogger("streamem.daemon")


def key_store_name(cfg: Config, lane: str) -> str:
    """Where lane ``lane`` keeps its keys: a file path or a Kafka topic.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"],
    ...                     "key": "k"}, "model": {"scope": "key"}})
    >>> key_store_name(cfg, "p0")
    'state/keys.db'
    """
    c = cfg.checkpoint
    if c.store == "kafka":
        return f"{c.topic}.keys.{lane}"
    name = "keys.db" if cfg.source.type != "kafka" else f"keys-{lane}.db"
    return str(Path(c.dir) / name)


def open_key_store(cfg: Config, lane: str) -> SqliteKeyStore | KafkaKeyStore:
    """The key store of lane ``lane`` (see the module docstring)."""
    name = key_store_name(cfg, lane)
    if cfg.checkpoint.store == "kafka":
        from streamem.runtime.build import kafka_security
        from streamem.state.kafka_keys import KafkaKeyStore

        return KafkaKeyStore(list(cfg.source.bootstrap_servers), name,
                             security=kafka_security(cfg))
    from streamem.state.keys_sqlite import SqliteKeyStore

    return SqliteKeyStore(name)


def new_keyed_detector(cfg: Config, store: KeyStore | None = None) -> KeyedDetector:
    """A fresh keyed detector from the ``model`` and ``detector`` sections
    (``n_components: auto`` means 2 per key).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"],
    ...                     "key": "k"}, "model": {"scope": "key", "max_keys_in_memory": 5000}})
    >>> new_keyed_detector(cfg).max_keys_in_memory
    5000
    """
    m, d = cfg.model, cfg.detector
    return KeyedDetector(
        n_components=2 if m.n_components == "auto" else int(m.n_components),
        half_life=float(m.half_life), alert_rate=d.alert_rate, warmup=m.warmup,
        reg_covar=max(m.reg_covar, 1e-6), protect_model=d.protect_model,
        feature_names=list(cfg.fields.features), max_keys_in_memory=m.max_keys_in_memory,
        key_prior_events=m.key_prior_events, key_idle_ttl=key_idle_ttl(cfg), store=store,
        random_state=m.random_state,
    )


def save_lane(det: KeyedDetector, store: KeyStore, lane: LaneState,
              parsing: Mapping[str, Any]) -> int:
    """One transaction: the dirty keys, the meta, and the lane's positions, counters,
    sequence and parsing state; returns the number of keys written."""
    blob = dumps({"version": 1, "lane": lane.key, "sequence": lane.sequence + 1,
                  "positions": {str(p): o for p, o in lane.positions.items()},
                  "counters": dict(lane.counters), "parsing": dict(parsing)})
    return checkpoint(det, store, blob)


def restore_keyed_lane(cfg: Config, key: str, store: KeyStore,
                       resumed: Callable[[str, dict[int, int], Mapping[str, Any]], None]) -> Lane:
    """Lane ``key`` from its key store (a fresh keyed model when it holds no checkpoint).

    Parameters
    ----------
    cfg
        The configuration.
    key
        The lane.
    store
        The lane's key store (:func:`open_key_store`).
    resumed
        Called with the restored positions and parsing state (the checkpointer commits the
        positions and restores the template miner).

    Raises
    ------
    StateError
        A malformed checkpoint, or one with another number of features.
    """
    parts = key_parts(cfg)
    meta, blob = store.read_meta()
    if meta is None:
        logger.info("state %s: no key checkpoint, starting a new keyed model", key)
        det = new_keyed_detector(cfg, store)
        return Lane(key, scorer=KeyedScorer(det, parts, _saver(store)))
    det, _ = restore(store)
    fresh = new_keyed_detector(cfg)
    det.max_keys_in_memory, det.key_idle_ttl = fresh.max_keys_in_memory, fresh.key_idle_ttl
    n = len(cfg.fields.features)
    if det.n_features_in_ is not None and det.n_features_in_ != n:
        raise StateError(f"the key store {key_store_name(cfg, key)} of state {key!r} has "
                         f"{det.n_features_in_} features but fields.features lists {n}; "
                         "restore the old feature list or move the key store away")
    try:
        saved = loads(blob) if blob else {}
        positions = {int(p): int(o) for p, o in saved.get("positions", {}).items()}
        counters = {str(c): int(v) for c, v in saved.get("counters", {}).items()}
        sequence = int(saved.get("sequence", 0))
        parsing = dict(saved.get("parsing", {}))
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"the positions of key store {key_store_name(cfg, key)} are "
                         f"malformed ({exc}); move it away to start a new model") from exc
    logger.info("state %s: restored key checkpoint %d (%d keys stored), resuming at %s",
                key, sequence, det.n_keys_in_memory, positions)
    resumed(key, positions, parsing)
    scorer = KeyedScorer(det, parts, _saver(store))
    return Lane(key, positions=positions, counters=counters, sequence=sequence, scorer=scorer)


def restore_lane(cfg: Config, key: str, stack: contextlib.ExitStack,
                 ckpt: Checkpointer) -> Lane:
    """The daemon's lane ``key`` under any scope: a keyed lane from its key store (which
    ``stack`` closes), else the checkpointer's restore of a Detector lane."""
    if cfg.model.scope != "key":
        from streamem.runtime.build import new_detector

        return ckpt.restore(key, lambda: new_detector(cfg), len(cfg.fields.features),
                            cfg.checkpoint.dir)
    store = stack.enter_context(contextlib.closing(open_key_store(cfg, key)))
    return restore_keyed_lane(cfg, key, store, ckpt.resumed)


def _saver(store: KeyStore) -> Callable[[KeyedDetector, LaneState, Mapping[str, Any]], None]:
    def save(det: KeyedDetector, lane: LaneState, parsing: Mapping[str, Any]) -> None:
        save_lane(det, store, lane, parsing)
    return save


def key_states(det: KeyedDetector, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The model state of ``keys`` under ``det`` (read-only: nothing loads or moves):
    ``events``, ``anomalies`` (its own flagged events), ``last_seen``, ``last_anomaly_at``
    and ``state`` (``warming`` until ``key_prior_events`` events, then ``own``).

    Examples
    --------
    >>> import numpy as np
    >>> det = KeyedDetector(warmup=20, key_prior_events=10, random_state=0)
    >>> _ = det.process(np.random.default_rng(0).normal(size=(40, 1)), ["a"] * 35 + ["b"] * 5)
    >>> s = key_states(det, ["a", "b", "zz"]); s["a"]["state"], s["b"]["state"], "zz" in s
    ('own', 'warming', False)
    """
    from streamem.scoring.key_table import COUNT_ANOMALIES, COUNT_EVENTS, LAST_ANOMALY, LAST_SEEN
    from streamem.scoring.keyed_explain import key_record

    t = det.table_
    out: dict[str, dict[str, Any]] = {}
    if t is None:
        return out
    at = t.layout.spans["counts"][0]
    for key in keys:  # the few ranked keys of the operator page, not a hot path
        rec = key_record(det, key)
        if rec is None:
            continue
        c = rec[at:at + LAST_ANOMALY + 1]
        events = int(c[COUNT_EVENTS])
        out[key] = {"events": events, "own_anomalies": int(c[COUNT_ANOMALIES]),
                    "last_seen": float(c[LAST_SEEN]),
                    "last_anomaly_at": float(c[LAST_ANOMALY]) if c[COUNT_ANOMALIES] else None,
                    "state": "warming" if events < det.key_prior_events else "own"}
    return out


def observe_lane(history: History, lane: Lane, top: int = 100) -> None:
    """The operator page's view of one lane: its model health, and for a keyed lane the
    state of the ``top`` ranked keys (``GET /api/v1/keys``). Call on the loop thread."""
    history.observe_model(lane.key, lane.scorer.health())
    if isinstance(lane.scorer, KeyedScorer):
        ranked = [str(r["key"]) for r in history.keys(top) if r.get("key") is not None]
        history.observe_key_states(key_states(lane.scorer.detector, ranked))
