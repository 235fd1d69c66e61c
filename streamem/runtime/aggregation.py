"""The ``aggregate:`` stage of the runtime: per lane, events -> closed buckets -> one batch.

With an ``aggregate:`` section the pipeline does not score events but buckets.
:class:`BucketStage` decodes a lane's events into records (the key, timestamp and id checks
of :meth:`~streamem.features.FeatureExtractor.records`), adds them to the lane's
:class:`~streamem.aggregate.Aggregator` and returns the buckets the watermark closed as a
:class:`~streamem.events.DecodedBatch`: ``X`` holds one row per bucket (shape
(n_buckets, n_columns)), ``rejected`` the events that were not aggregated, ``late`` ones
included (dead-lettered and counted like any rejection; they never hold back later events).
A bucket row's timestamp is its ``bucket_start``, its key its ``by`` values (with
``model.scope: key``, ``fields.key`` is ``aggregate.by``: one model per bucket key), its
id ``<lane>:<key>:<bucket_start>`` (the same after a restart), and its record carries the
evidence of the anomaly record:
``bucket_start``, ``bucket_end``, ``key``, ``events`` and up to ``max_samples`` lines.

At the end of a finite input (``streamem replay``, a file without ``follow``)
:meth:`BucketStage.closing` hands the pipeline an empty batch after which :meth:`decode`
closes every open bucket. A silent source closes no bucket: buckets close on the watermark,
which moves with event time only, so with ``emit_empty`` the empty buckets of a silence are
emitted when the next event arrives (or at the end of the input), not on the wall clock.

The open buckets of a lane are part of its checkpoint (:meth:`to_state`, under
``Snapshot.parsing["aggregate"]``, with the positions they reflect), so a restart continues
the buckets where the checkpoint left them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

import numpy as np

from streamem.aggregate import Aggregator, Buckets
from streamem.config import Config
from streamem.config.aggregate import aggregator
from streamem.errors import StateError
from streamem.events import DecodedBatch, EventBatch, Position, RawEvent, Rejection
from streamem.features import FeatureExtractor
from streamem.runtime.keying import join_key

__all__ = ["BUCKET_EVIDENCE", "BucketStage"]

#: the field of a bucket's record that holds its evidence (see :func:`streamem.parsing.evidence`)
BUCKET_EVIDENCE = "$bucket"
_FIELDS = (("$key",), None, ("$id",))


class _Closing(EventBatch):
    """No event, yet indexing gives the input's last one (the position of closed buckets)."""

    __slots__ = ("_last",)

    def __init__(self, last: RawEvent) -> None:
        super().__init__([], [], [], last.position.partition, last.position.topic)
        self._last = last

    @overload
    def __getitem__(self, i: int) -> RawEvent: ...

    @overload
    def __getitem__(self, i: slice) -> EventBatch: ...

    def __getitem__(self, i: int | slice) -> RawEvent | EventBatch:
        return super().__getitem__(i) if isinstance(i, slice) else self._last


class BucketStage:
    """The lanes' aggregators, and events to closed buckets (see the module docstring).

    Parameters
    ----------
    cfg
        The configuration (with an ``aggregate`` section).
    extractor
        The payload decoder (its records, not its features, are used).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"timestamp": "t"},
    ...     "aggregate": {"bucket_span": "10s", "features": [{"name": "n", "fn": "count"}]}})
    >>> stage = BucketStage(cfg, FeatureExtractor([], timestamp="t"))
    >>> evs = EventBatch([b'{"t": 1}', b'{"t": 4}', b'{"t": 25}', b'{"t": 2}'],
    ...                  [0, 9, 18, 28], [9, 18, 28, 37], 0, "f")
    >>> b = stage.decode("global", evs)
    >>> b.X.tolist(), b.timestamps, [(r.index, r.reason) for r in b.rejected]
    ([[2.0], [0.0]], [0.0, 10.0], [(3, 'late')])
    >>> b.record(0)["$bucket"]["events"], b.id(1)
    (2, 'global::10')
    >>> last = stage.decode("global", stage.closing("global", {0: 37}))
    >>> last.X.tolist(), last.kept, last.record(0)["$bucket"]["bucket_end"]
    ([[1.0]], [0], 30.0)
    """

    def __init__(self, cfg: Config, extractor: FeatureExtractor) -> None:
        assert cfg.aggregate is not None
        self.section = cfg.aggregate
        self.extractor = extractor
        self.topic = cfg.source.topic or cfg.source.path or "-"
        self._aggs: dict[str, Aggregator] = {}
        self._last: dict[str, RawEvent] = {}
        self._ending: set[str] = set()
        template = cfg.fields.template and "template"  # the miner's id field
        self._by_template = [f.name for f in self.section.features
                             if f.fn == "count_by" and template and f.field == template]
        self._texts: dict[str, str] = {}  # template id -> text, for the records

    def aggregator(self, lane: str) -> Aggregator:
        """The aggregator of ``lane`` (a new one on first use)."""
        agg = self._aggs.get(lane)
        if agg is None:
            agg = self._aggs[lane] = aggregator(self.section)
        return agg

    def decode(self, lane: str, events: EventBatch) -> DecodedBatch:
        """The buckets of ``lane`` that ``events`` closed (all open ones after
        :meth:`closing`), and the events that were not aggregated."""
        agg = self.aggregator(lane)
        if lane in self._ending:
            self._ending.discard(lane)
            return self._batch(lane, agg.flush(), [], 0)
        dec = self.extractor.records(events.payloads)
        n = len(dec.kept)
        recs = [dec.record(i) for i in range(n)]
        times = np.array([np.nan if t is None else t for t in dec.timestamps], dtype=float)
        lines = [events.payloads[k] for k in dec.kept]
        closed, rejected = agg.add(recs, times.reshape(n), lines)
        if self._by_template:
            self._texts.update((str(r.get("template")), r.get("template_text", ""))
                               for r in recs)  # the miner's work per line dwarfs this
        every = dec.rejected + [Rejection(dec.kept[i], reason, detail)
                                for i, reason, detail in rejected]
        every.sort(key=lambda r: r.index)
        if len(events):
            self._last[lane] = events[len(events) - 1]
        return self._batch(lane, closed, every, len(events) - 1)

    def closing(self, lane: str, positions: Mapping[int, int]) -> EventBatch:
        """An empty batch after which :meth:`decode` closes every open bucket of ``lane``
        (the end of the input); ``positions`` are the lane's, for the records' position."""
        self._ending.add(lane)
        last = self._last.get(lane)
        if last is None:
            p, off = next(iter(positions.items()), (0, 0))
            last = RawEvent(b"", Position(p, off, self.topic), next_offset=off)
        return _Closing(last)

    def to_state(self, lane: str) -> dict[str, Any]:
        """``{"aggregate": open buckets of lane}`` for its snapshot ({} before any event)."""
        agg = self._aggs.get(lane)
        return {} if agg is None else {"aggregate": agg.to_state()}

    def restore(self, lane: str, state: Mapping[str, Any]) -> None:
        """Continue ``lane`` from its snapshot's :meth:`to_state` (none: new buckets).

        Raises
        ------
        StateError
            The snapshot's buckets have other columns than ``aggregate.features`` gives.
        """
        self._aggs.pop(lane, None)
        self._last.pop(lane, None)
        saved = state.get("aggregate")
        if saved is None:
            return
        agg = Aggregator.from_state(saved)
        want = self.aggregator(lane).columns
        if agg.columns != want:
            raise StateError(f"the checkpoint of state {lane!r} has buckets of {list(agg.columns)}"
                             f" but aggregate.features gives {list(want)}; restore the old "
                             "features or move the checkpoint directory away")
        self._aggs[lane] = agg

    def _batch(self, lane: str, b: Buckets, rejected: list[Rejection],
               anchor: int) -> DecodedBatch:
        """Buckets as a decoded batch; every row names event ``anchor`` (the one closing it).

        A row's record holds its ``by`` fields (what ``model.scope: key`` reads as the key),
        its key as text (composite keys as :func:`~streamem.runtime.keying.join_key` makes
        them), its id and its evidence; with ``count_by`` over the mined ``template``, the
        evidence names the bucket's three most frequent templates and their text.
        """
        recs = []
        for i in range(len(b)):
            parts = b.keys[i]
            key = None if not parts else parts[0] if len(parts) == 1 else join_key(parts)
            recs.append({**dict(zip(b.by, parts, strict=True)), "$key": key,
                         "$id": f"{lane}:{key or ''}:{b.start[i]:.0f}",
                         BUCKET_EVIDENCE: {**b.evidence(i), **self._templates(b, i)}})
        return DecodedBatch(b.X, [max(anchor, 0)] * len(b), rejected, recs, _FIELDS, b.start)

    def _templates(self, b: Buckets, i: int) -> dict[str, Any]:
        """``{"templates": [{template, template_text, count}, ...]}`` of bucket ``i``."""
        if not self._by_template:
            return {}
        found: list[dict[str, Any]] = []
        for name in self._by_template:
            for c, value in enumerate(b.labels.get(name, [])):
                n = float(b.X[i, b.columns.index(f"{name}[{c}]")])
                if n > 0:
                    found.append({"template": value, "count": n,
                                  "template_text": self._texts.get(value)})
        found.sort(key=lambda t: -t["count"])
        return {"templates": found[:3]}
