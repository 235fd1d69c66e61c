"""Mergeable sketches for bucket functions: KLL quantiles and HyperLogLog distinct counts.

The only module that imports Apache DataSketches (``datasketches``). A sketch is saved as
its own ``serialize()`` bytes (base64 text in the versioned JSON state), never pickled.

* :class:`Quantiles` (KLL, ``k=200``): exact while it holds at most ``k`` values; beyond that
  a quantile is within a normalised rank error of about 1.65 % (99 % confidence). The
  compaction flips coins, so two runs over more than ``k`` values may differ within that bound.
* :class:`Distinct` (HLL, ``lg_k=12``, HLL_8): deterministic, relative error about 1.6 %;
  exact-ish (sparse mode) for small counts. Every value is counted as its text, so ``1`` and
  ``"1"`` are one value.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterable

import datasketches as ds
import numpy as np
from numpy.typing import NDArray

from streamem.errors import StateError

__all__ = ["Distinct", "Quantiles"]

KLL_K = 200
HLL_LG_K = 12


def _bytes(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, AttributeError):
        raise StateError(f"malformed aggregate state: a {what} sketch is not base64; the "
                         "snapshot is corrupt or was written by another streamem version"
                         ) from None


class Quantiles:
    """A KLL sketch of doubles.

    Examples
    --------
    >>> q = Quantiles()
    >>> q.update(np.arange(1.0, 101.0))
    >>> q.n, q.quantile(0.5), Quantiles.from_text(q.to_text()).quantile(0.95)
    (100, 50.0, 95.0)
    >>> Quantiles().quantile(0.5)
    nan
    """

    __slots__ = ("_sk",)

    def __init__(self, sketch: ds.kll_doubles_sketch | None = None) -> None:
        self._sk = sketch if sketch is not None else ds.kll_doubles_sketch(KLL_K)

    def update(self, values: NDArray[np.float64]) -> None:
        """Add the values of a float64 array (one call, no Python loop)."""
        if len(values):
            self._sk.update(np.ascontiguousarray(values, dtype=np.float64))

    @property
    def n(self) -> int:
        """How many values were added."""
        return int(self._sk.n)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (inclusive ranks), NaN when empty."""
        return float("nan") if self._sk.is_empty() else float(self._sk.get_quantile(q, True))

    def to_text(self) -> str:
        """The sketch's own serialisation, base64."""
        return base64.b64encode(self._sk.serialize()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Quantiles:
        """Rebuild from :meth:`to_text`."""
        raw = _bytes(text, "quantile")
        try:
            return cls(ds.kll_doubles_sketch.deserialize(raw))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise StateError(f"malformed aggregate state: a quantile sketch does not load "
                             f"({exc}); the snapshot is corrupt") from None


class Distinct:
    """A HyperLogLog sketch of the distinct values seen.

    Examples
    --------
    >>> d = Distinct()
    >>> d.update(["10.0.0.1", "10.0.0.2", "10.0.0.1", 7, "7"])
    >>> round(d.estimate()), round(Distinct.from_text(d.to_text()).estimate())
    (3, 3)
    """

    __slots__ = ("_sk",)

    def __init__(self, sketch: ds.hll_sketch | None = None) -> None:
        self._sk = sketch if sketch is not None else ds.hll_sketch(HLL_LG_K, ds.HLL_8)

    def update(self, values: Iterable[object]) -> None:
        """Add each value (as text); pass distinct values: the sketch has no batch update."""
        texts = list(map(str, values))
        try:
            deque(map(self._sk.update, texts), maxlen=0)
        except TypeError:  # text that is not UTF-8 (a lone surrogate): count its escape
            for v in texts:  # (re-adding the values already counted changes nothing)
                self._sk.update(v.encode("utf-8", "backslashreplace").decode("utf-8"))

    def estimate(self) -> float:
        """The estimated number of distinct values (0 when empty)."""
        return float(self._sk.get_estimate())

    def to_text(self) -> str:
        """The sketch's own (updatable) serialisation, base64."""
        return base64.b64encode(self._sk.serialize_updatable()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Distinct:
        """Rebuild from :meth:`to_text`."""
        raw = _bytes(text, "distinct-count")
        try:
            return cls(ds.hll_sketch.deserialize(raw))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise StateError(f"malformed aggregate state: a distinct-count sketch does not "
                             f"load ({exc}); the snapshot is corrupt") from None
