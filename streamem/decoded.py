"""What decoding a batch gives (pure: stdlib + numpy): the feature matrix, which inputs it
holds (:class:`DecodedBatch`) and why the others were rejected (:class:`Rejection`).

Produced by :class:`streamem.features.FeatureExtractor`; read by the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.eventmeta import lookup as _lookup

__all__ = ["DecodedBatch", "Rejection"]


@dataclass(frozen=True)
class Rejection:
    """Why event ``index`` of a batch was not used."""

    index: int
    reason: str
    detail: str


class DecodedBatch:
    """A decoded batch: rows of ``X`` correspond to ``kept`` indices of the input.

    Keys and ids are read from the decoded records on demand (:meth:`key`, :meth:`id` for one
    row; :attr:`keys`, :attr:`ids` for all rows), so a batch with no anomalies never pays for
    them; timestamps were parsed (and checked) while decoding.

    Examples
    --------
    >>> from streamem.features import FeatureExtractor
    >>> b = FeatureExtractor(["a"], key="k", timestamp="t").decode(
    ...     [b'{"a": 1, "k": "s1", "t": 5}', b'{"a": 2, "t": "1970-01-01T00:00:09Z"}'])
    >>> b.key(0), b.timestamp(1), b.keys, b.ids
    ('s1', 9.0, ['s1', None], [None, None])
    """

    __slots__ = ("X", "_cache", "_fields", "_recs", "_ts", "kept", "rejected")

    def __init__(self, X: NDArray[np.float64], kept: list[int], rejected: list[Rejection],
                 recs: Sequence[dict[str, Any]] = (),
                 fields: tuple[tuple[str, ...] | None, ...] = (None, None, None),
                 ts: NDArray[np.float64] | None = None) -> None:
        self.X = X
        self.kept = kept
        self.rejected = rejected
        self._recs = recs
        self._fields = fields  # paths of (key, timestamp, id)
        self._ts = ts  # seconds per kept row, NaN where none (None: no timestamp field)
        self._cache: dict[str, list[Any]] = {}

    def key(self, i: int) -> str | None:
        """The key of kept row ``i`` (None without a key field or value)."""
        path = self._fields[0]
        return None if path is None else _str(_lookup(self._recs[i], path))

    def timestamp(self, i: int) -> float | None:
        """The timestamp of kept row ``i`` in seconds since the epoch, or None."""
        if self._ts is None:
            return None
        t = float(self._ts[i])
        return None if math.isnan(t) else t

    def id(self, i: int) -> str | None:
        """The event id of kept row ``i`` (None without an id field or value)."""
        path = self._fields[2]
        return None if path is None else _str(_lookup(self._recs[i], path))

    def _all(self, name: str) -> list[Any]:
        if name not in self._cache:
            one = getattr(self, name)
            self._cache[name] = [one(i) for i in range(len(self.kept))]
        return self._cache[name]

    def record(self, i: int) -> dict[str, Any]:
        """The decoded record of kept row ``i`` (all its fields)."""
        rec: dict[str, Any] = self._recs[i]
        return rec

    @property
    def keys(self) -> list[str | None]:
        """Keys of every kept row."""
        return self._all("key")

    @property
    def timestamps(self) -> list[float | None]:
        """Timestamps of every kept row."""
        return self._all("timestamp")

    @property
    def ids(self) -> list[str | None]:
        """Event ids of every kept row."""
        return self._all("id")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
