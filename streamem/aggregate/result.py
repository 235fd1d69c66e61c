"""Closed buckets: one feature vector per (key, bucket) and the evidence of each.

:class:`Buckets` is what :meth:`streamem.aggregate.Aggregator.add` returns for the buckets
the watermark closed: the matrix the detector scores (``X``, shape (n_buckets,
n_columns)), the bucket bounds in epoch seconds, the key, the event count and up to
``max_samples`` raw lines of each bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Buckets", "Rejection"]

#: an event that was not aggregated: ``(index in the batch, reason, detail)``
Rejection = tuple[int, str, str]


@dataclass
class Buckets:
    """Closed buckets, ordered by bucket start, then by key in order of first appearance.

    Attributes
    ----------
    columns : tuple of str
        Column names of ``X`` (see :attr:`streamem.aggregate.FeatureSpec.columns`).
    X : ndarray of shape (n_buckets, n_columns)
        The feature vectors; NaN marks a missing value (the mean of an empty bucket).
    start, end : ndarray of shape (n_buckets,)
        ``bucket_start`` and ``bucket_end``, epoch seconds (``end`` is exclusive).
    keys : list of tuple of str
        The ``by`` values of each bucket (``()`` without ``by``).
    events : ndarray of shape (n_buckets,)
        Accepted events in each bucket (0: an ``emit_empty`` bucket).
    samples : list of list of str
        The first raw lines of each bucket (its evidence).
    labels : dict
        ``{count_by feature: [value of column 0, value of column 1, ...]}`` when emitted.
    by : tuple of str
        The key fields.
    """

    columns: tuple[str, ...]
    X: NDArray[np.float64]
    start: NDArray[np.float64]
    end: NDArray[np.float64]
    keys: list[tuple[str, ...]]
    events: NDArray[np.int64]
    samples: list[list[str]]
    labels: dict[str, list[str]] = field(default_factory=dict)
    by: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.keys)

    def evidence(self, i: int) -> dict[str, Any]:
        """What the anomaly record of bucket ``i`` carries besides its scores.

        Examples
        --------
        >>> b = Buckets(("n",), np.array([[3.0]]), np.array([60.0]), np.array([120.0]),
        ...             [("web",)], np.array([3]), [["GET /"]], by=("service",))
        >>> b.evidence(0)
        {'bucket_start': 60.0, 'bucket_end': 120.0, 'key': {'service': 'web'}, 'events': 3, \
'samples': ['GET /']}
        """
        return {"bucket_start": float(self.start[i]), "bucket_end": float(self.end[i]),
                "key": dict(zip(self.by, self.keys[i], strict=True)),
                "events": int(self.events[i]), "samples": list(self.samples[i])}

    @classmethod
    def empty(cls, columns: tuple[str, ...], by: tuple[str, ...] = ()) -> Buckets:
        """No buckets."""
        return cls(columns, np.zeros((0, len(columns))), np.zeros(0), np.zeros(0), [],
                   np.zeros(0, dtype=np.int64), [], {}, by)

    @classmethod
    def concat(cls, parts: list[Buckets]) -> Buckets:
        """The buckets of ``parts`` in order (the labels of the last part)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        return cls(first.columns, np.vstack([p.X for p in parts]),
                   np.concatenate([p.start for p in parts]),
                   np.concatenate([p.end for p in parts]),
                   [k for p in parts for k in p.keys],
                   np.concatenate([p.events for p in parts]),
                   [s for p in parts for s in p.samples], parts[-1].labels, first.by)
