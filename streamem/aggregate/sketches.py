"""Mergeable sketches for bucket functions: KLL quantiles and HyperLogLog distinct counts.

The only module that imports Apache DataSketches (``datasketches``). A sketch is saved as
its own ``serialize()`` bytes (base64 text in the versioned JSON state), never pickled.

* :class:`Quantiles`: the values themselves up to ``EXACT_MAX`` (2048), so the quantile is
  exact and reproducible (a restart included); beyond, a KLL sketch (``k=200``) whose
  quantiles are within a normalised rank error of about 1.65 % (99 % confidence). Its
  compaction flips coins, so two runs over more than ``EXACT_MAX`` values may differ within
  that bound.
* :class:`Distinct` (HLL, ``lg_k=12``, HLL_8): deterministic, relative error about 1.6 %;
  exact-ish (sparse mode) for small counts. Every value is counted as its text, so ``1`` and
  ``"1"`` are one value.
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Iterable

import datasketches as ds
import numpy as np
from numpy.typing import NDArray

from streamem.errors import StateError

__all__ = ["EXACT_MAX", "Distinct", "Quantiles"]

KLL_K = 200
#: values kept exactly per quantile sketch before it becomes a KLL sketch
EXACT_MAX = 2048
HLL_LG_K = 12


def _bytes(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, AttributeError):
        raise StateError(f"malformed aggregate state: a {what} sketch is not base64; the "
                         "snapshot is corrupt or was written by another streamem version"
                         ) from None


class Quantiles:
    """Quantiles of doubles: the values themselves up to :data:`EXACT_MAX`, then a KLL sketch.

    Up to ``EXACT_MAX`` values a quantile is exact and the same in every run (a restart
    included); beyond, the values go into a KLL sketch (``k=200``): within its rank error,
    but its coin flips make runs differ.

    Examples
    --------
    >>> q = Quantiles()
    >>> q.update(np.arange(1.0, 101.0))
    >>> q.n, q.quantile(0.5), Quantiles.from_text(q.to_text()).quantile(0.95)
    (100, 50.0, 95.0)
    >>> Quantiles().quantile(0.5)
    nan
    """

    __slots__ = ("_buf", "_n", "_sk")

    def __init__(self, sketch: ds.kll_doubles_sketch | None = None,
                 values: NDArray[np.float64] | None = None) -> None:
        self._sk = sketch
        self._buf = np.zeros(64) if values is None else np.array(values, dtype=np.float64)
        self._n = 0 if values is None else len(self._buf)

    def update(self, values: NDArray[np.float64]) -> None:
        """Add the values of a float64 array (no Python loop)."""
        x = np.ascontiguousarray(values, dtype=np.float64)
        if not len(x):
            return
        if self._sk is None and self._n + len(x) <= EXACT_MAX:
            if self._n + len(x) > len(self._buf):
                grown = np.zeros(min(EXACT_MAX, max(2 * len(self._buf), self._n + len(x))))
                grown[: self._n] = self._buf[: self._n]
                self._buf = grown
            self._buf[self._n : self._n + len(x)] = x
            self._n += len(x)
            return
        if self._sk is None:
            self._sk = ds.kll_doubles_sketch(KLL_K)
            if self._n:
                self._sk.update(self._buf[: self._n].copy())
            self._buf, self._n = np.zeros(0), 0
        self._sk.update(x)

    @property
    def n(self) -> int:
        """How many values were added."""
        return self._n if self._sk is None else int(self._sk.n)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (inclusive: the least value whose rank is at least ``q``), NaN
        when empty."""
        if self._sk is not None:
            return float(self._sk.get_quantile(q, True))
        if not self._n:
            return float("nan")
        k = max(math.ceil(q * self._n), 1) - 1
        return float(np.partition(self._buf[: self._n], k)[k])

    def to_text(self) -> str:
        """``exact:`` and the values (float64, little-endian), or ``kll:`` and the sketch's
        own serialisation; base64."""
        if self._sk is None:
            raw = self._buf[: self._n].astype("<f8").tobytes()
            return "exact:" + base64.b64encode(raw).decode("ascii")
        return "kll:" + base64.b64encode(self._sk.serialize()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Quantiles:
        """Rebuild from :meth:`to_text`."""
        kind, _, body = text.partition(":") if isinstance(text, str) else ("", "", "")
        raw = _bytes(body, "quantile")
        if kind == "exact" and len(raw) % 8 == 0 and len(raw) // 8 <= EXACT_MAX:
            return cls(values=np.frombuffer(raw, dtype="<f8").astype(np.float64))
        if kind == "kll":
            try:
                return cls(ds.kll_doubles_sketch.deserialize(raw))
            except (RuntimeError, ValueError, TypeError) as exc:
                raise StateError(f"malformed aggregate state: a quantile sketch does not "
                                 f"load ({exc}); the snapshot is corrupt") from None
        raise StateError("malformed aggregate state: a quantile sketch is neither exact: nor "
                         "kll:; the snapshot is corrupt or was written by another streamem "
                         "version")


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
