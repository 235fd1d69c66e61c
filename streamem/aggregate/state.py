"""The :class:`~streamem.aggregate.Aggregator` snapshot: versioned plain JSON.

Open buckets are kept as their ids (``bucket * 2**20 + key code``), their accumulator rows
(an empty minimum or maximum as None, JSON having no infinity), their sketches (each its own
``serialize()`` bytes, base64) and their sample lines; then the keys in order of first
appearance, the first bucket of each, the ``count_by`` vocabularies, the newest event time
and how far buckets are closed. The settings (span, lateness, ``by``, features) are part of
the snapshot, so a restored aggregator is the one that was saved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem.aggregate.sketches import Distinct, Quantiles
from streamem.aggregate.spec import FeatureSpec
from streamem.model._versioned import StateReader

if TYPE_CHECKING:
    from streamem.aggregate.buckets import Aggregator

__all__ = ["STATE_VERSION", "dump", "load"]

STATE_VERSION = 1
KIND = "aggregate"


def dump(agg: Aggregator) -> dict[str, Any]:
    """The snapshot of ``agg`` (JSON-able: lists, numbers, strings, None)."""
    acc = [[None if math.isinf(v) else v for v in row] for row in agg._acc.tolist()]
    ids = agg._ids.tolist()
    return {
        "version": STATE_VERSION, "kind": KIND,
        "settings": {
            "bucket_span": agg.span, "allowed_lateness": agg.lateness, "by": list(agg.by),
            "emit_empty": agg.emit_empty, "max_keys": agg.max_keys,
            "max_samples": agg.max_samples, "max_empty_run": agg.max_empty_run,
            "features": [{"name": f.name, "fn": f.fn, "field": f.field, "where": f.where,
                          "q": f.q, "top": f.top} for f in agg.features],
        },
        "keys": [list(k) for k in agg.keys],
        "first_bucket": agg._first_b.tolist(),
        "vocab": {name: list(v) for name, v in agg.vocab.items()},
        "newest": agg.newest if math.isfinite(agg.newest) else None,
        "closed_to": agg.closed_to,
        "open": {"ids": ids, "acc": acc,
                 "sketches": [[s.to_text() for s in agg._sketches[i]]
                              if i in agg._sketches else None for i in ids],
                 "samples": [agg._samples.get(i, []) for i in ids]},
    }


def load(cls: type[Aggregator], state: Mapping[str, Any]) -> Aggregator:
    """Rebuild an aggregator from :func:`dump` output (a ``StateError`` names any defect)."""
    r = StateReader.of(state, "aggregate", version=STATE_VERSION, kind=KIND)
    s = r.sub("settings")
    with r.guard():
        feats = [FeatureSpec(str(f["name"]), str(f["fn"]), f.get("field"), f.get("where"),
                             f.get("q"), f.get("top"), path=f"features[{i}]")
                 for i, f in enumerate(s["features"])]
        agg = cls(feats, s.number("bucket_span"), by=[str(b) for b in s["by"]],
                  allowed_lateness=s.number("allowed_lateness"),
                  emit_empty=s.flag("emit_empty"), max_keys=s.integer("max_keys"),
                  max_samples=s.integer("max_samples"),
                  max_empty_run=s.integer("max_empty_run"))
        agg.keys = [tuple(str(x) for x in k) for k in r["keys"]]
        if len(set(agg.keys)) != len(agg.keys) or any(len(k) != len(agg.by) for k in agg.keys):
            raise r.error("'keys' repeat a key or do not match 'by'")
        agg._key_index = {k: i for i, k in enumerate(agg.keys)}
        agg._first_b = r.shaped("first_bucket", (len(agg.keys),), np.int64)
        for name, values in dict(r["vocab"]).items():
            if name not in agg.vocab:
                raise r.error(f"'vocab' names {name!r}, not a count_by feature")
            agg.vocab[name] = {str(v): i for i, v in enumerate(values)}
        newest = r.get("newest")
        agg.newest = -math.inf if newest is None else float(newest)
        closed = r.get("closed_to")
        agg.closed_to = None if closed is None else int(closed)
        o = r.sub("open")
        ids = o.array("ids", np.int64).reshape(-1)
        if np.any(np.diff(ids) <= 0) or np.any(ids % agg._mult >= max(len(agg.keys), 1)):
            raise r.error("'open.ids' are not sorted or name an unknown key")
        rows = [[init if v is None else float(v) for v, init in zip(row, agg._init.tolist(),
                                                                     strict=True)]
                for row in o["acc"]]
        agg._ids = ids
        agg._acc = np.array(rows, dtype=np.float64).reshape(len(ids), len(agg._init))
        kinds = [agg.features[j].fn for j in agg._sk_features]
        for bid, texts, lines in zip(ids.tolist(), o["sketches"], o["samples"], strict=True):
            if texts is not None:
                agg._sketches[bid] = [Quantiles.from_text(t) if k == "quantile"
                                      else Distinct.from_text(t)
                                      for t, k in zip(texts, kinds, strict=True)]
            if lines:
                agg._samples[bid] = [str(x) for x in lines]
    return agg
