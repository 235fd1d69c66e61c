"""river adapter: :class:`GMMAnomalyDetector`, streamem's online-EM mixture as a river
anomaly detector (``learn_one``/``score_one`` on dicts), for ``compose.Pipeline`` and river's
``anomaly.QuantileFilter``/``ThresholdFilter``.

This is the only module that imports river; install it with ``pip install 'streamem[river]'``.

Examples
--------
>>> import random
>>> from river import anomaly, preprocessing
>>> from streamem.integrations.river import GMMAnomalyDetector
>>> rng = random.Random(0)
>>> model = preprocessing.StandardScaler() | anomaly.QuantileFilter(
...     GMMAnomalyDetector(n_warmup=100, seed=0), q=0.995)
>>> for _ in range(600):
...     model.learn_one({"temp": rng.gauss(20, 2), "load": rng.gauss(0.5, 0.1)})
>>> normal, odd = {"temp": 20.5, "load": 0.45}, {"temp": 20.5, "load": 1.5}
>>> model.score_one(odd) > 6 > 1 > model.score_one(normal)   # -log10 tail probability
True
>>> model["QuantileFilter"].classify(model.score_one(odd))
True
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError
from streamem.logs import RateLimitedLog
from streamem.model._numeric import LN10
from streamem.model._validation import MAX_ABS
from streamem.model._versioned import StateReader
from streamem.model.gmm import OnlineGMM

try:
    from river import base
    from river.utils import dataframe as river_frames
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        f"streamem.integrations.river needs river ({exc}); install it with "
        "`pip install 'streamem[river]'`"
    ) from exc

__all__ = ["GMMAnomalyDetector"]

Array = NDArray[np.float64]
STATE_VERSION = 1
_LOG = RateLimitedLog(logging.getLogger(__name__), interval=60.0)


def _feature_order(keys: Iterable[Hashable]) -> list[Hashable]:
    """Sorted feature names (by ``repr`` when they do not compare), so order is canonical."""
    names = list(keys)
    try:
        return sorted(names)  # type: ignore[type-var]
    except TypeError:
        return sorted(names, key=repr)


class GMMAnomalyDetector(base.AnomalyDetector):
    """Online-EM Gaussian mixture (:class:`~streamem.OnlineGMM`) as a river anomaly detector.

    The score is the *surprise* ``-log10`` of the event's calibrated tail probability under
    the mixture: the probability that a normal event is at least as unlikely (a chi-square
    mixture bound, comparable across events whatever features they miss). High = anomalous,
    0 at a mode; a score of 3 means a tail probability of 1e-3, so
    ``anomaly.ThresholdFilter(det, threshold=3)`` has a meaning before any calibration, and
    ``anomaly.QuantileFilter`` calibrates on the stream itself. Keep the filters'
    ``protect_anomaly_detector=True`` (their default): a mixture that learns its anomalies
    widens towards them and scores the next ones lower.

    **Features.** The feature set is fixed at the end of the warm-up: every feature that had
    a usable value in one of the first ``n_warmup`` learned events, sorted by name (so the order
    of the keys in a dict never matters). After that, a known feature absent from an event, or
    set to ``None``, is missing: the mixture marginalises it, for scoring and learning. A
    feature that was not in the warm-up is ignored (counted in ``n_unseen_features``, logged
    once a minute): a mixture cannot grow a dimension, so clone the detector when the schema
    changes for good. Values that are not real numbers, ±inf, or beyond 1e100 in magnitude
    count as missing too (``n_invalid_values``; encode categories upstream, e.g. with
    ``preprocessing.OneHotEncoder``).
    An event with no usable feature scores 0 and is not learned.

    **Warm-up.** The first ``n_warmup`` learned events are fitted by batch EM (K by BIC when
    ``n_components="auto"``); until then :meth:`score_one` returns 0 (river's grace-period
    convention) and :attr:`warming_up` is True.

    **Micro-batches.** Online EM per single event is slow, so :meth:`learn_one` buffers
    events and the model learns them ``learn_every`` at a time, in one vectorised step.
    :meth:`score_one` always scores with the model as it is: it never sees the events that
    are still buffered (at most ``learn_every - 1``), so a score depends only on the past.
    Each micro-batch ends with an M-step, so the next score sees it. ``learn_every=1``
    learns every event at once (slower, same semantics).

    Parameters
    ----------
    n_components
        Mixture size, or ``"auto"``.
    covariance_type
        ``"full"`` or ``"diag"`` (use ``"diag"`` for many features).
    half_life
        Forgetting, in events.
    n_warmup
        Events buffered before the first fit.
    learn_every
        Micro-batch size for learning.
    max_components, reg_covar
        See :class:`~streamem.OnlineGMM`. Scale the features (``preprocessing.StandardScaler``
        in front) so that ``reg_covar`` is meaningful.
    seed
        Random seed (river's name for it); ``None`` is not reproducible.

    Attributes
    ----------
    model_ : OnlineGMM
    features : list
        The feature order (final once :attr:`warming_up` is False).
    n_learned, n_skipped, n_invalid_values, n_unseen_features : int
        Events learned (buffered ones included), events skipped (no usable feature), values
        treated as missing, values of features outside the fixed set.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> det = GMMAnomalyDetector(n_warmup=64, learn_every=16, seed=0)
    >>> det.score_one({"x": 0.0, "y": 0.0}), det.warming_up
    (0.0, True)
    >>> for _ in range(200):
    ...     det.learn_one({"x": rng.gauss(0, 1), "y": rng.gauss(0, 1)})
    >>> det.features, det.warming_up, det.model_.n_seen_   # 200 - 64 learned online, 8 buffered
    (['x', 'y'], False, 128)
    >>> round(det.score_one({"x": 6.0}), 1), round(det.score_one({"x": 6.0, "z": 1.0}), 1)
    (9.4, 9.4)
    """

    def __init__(
        self,
        n_components: int | Literal["auto"] = "auto",
        covariance_type: Literal["full", "diag"] = "full",
        half_life: float = 10_000.0,
        n_warmup: int = 256,
        learn_every: int = 32,
        max_components: int = 8,
        reg_covar: float = 1e-6,
        seed: int | None = None,
    ) -> None:
        if int(learn_every) != learn_every or learn_every < 1:
            raise InvalidInputError(f"learn_every={learn_every!r}; use an integer >= 1 (32)")
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.half_life = half_life
        self.n_warmup = n_warmup
        self.learn_every = learn_every
        self.max_components = max_components
        self.reg_covar = reg_covar
        self.seed = seed
        self.model_ = OnlineGMM(
            n_components, covariance_type=covariance_type, half_life=half_life,
            n_warmup=n_warmup, max_components=max_components, reg_covar=reg_covar,
            refresh_every=learn_every, random_state=seed,
        )
        self.features: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        self._pending: list[Array] = []
        self.n_learned = 0
        self.n_skipped = 0
        self.n_invalid_values = 0
        self.n_unseen_features = 0

    @property
    def warming_up(self) -> bool:
        """True while the mixture is not fitted yet (:meth:`score_one` returns 0)."""
        return not self.model_.is_fitted

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"n_warmup": 100, "learn_every": 16}

    # ------------------------------------------------------------------ rows
    def _add_features(self, keys: Iterable[Hashable]) -> None:
        """Warm-up only: extend the feature set (in order of appearance until the freeze)."""
        index = self._index
        for name in keys:
            if name not in index:
                index[name] = len(self.features)
                self.features.append(name)

    def _row(self, x: dict[Hashable, Any], count: bool) -> Array:
        """``x`` as a row in the feature order; NaN for missing or unusable values."""
        get = x.get
        try:
            row = np.array([get(f) for f in self.features], dtype=float)
        except (TypeError, ValueError):
            row = np.full(len(self.features), np.nan)
            bad = 0
            for name, j in self._index.items():
                value = get(name)
                try:
                    if value is not None:
                        row[j] = value
                except (TypeError, ValueError):
                    bad += 1
            if count and bad:
                self._invalid(bad, "values that are not numbers")
        magnitude = np.abs(row)
        if not magnitude.max(initial=0.0) <= MAX_ABS:  # NaN, ±inf or huge: the rare path
            huge = magnitude > MAX_ABS  # ±inf too (NaN compares False: already missing)
            if huge.any():
                row[huge] = np.nan
                if count:
                    self._invalid(int(huge.sum()), "±inf or values beyond 1e100")
        if count and not x.keys() <= self._index.keys():
            unseen = x.keys() - self._index.keys()
            self.n_unseen_features += len(unseen)
            _LOG.warning(
                "unseen", "GMMAnomalyDetector ignores features that were not in its warm-up "
                "(%d values so far), e.g. %r", self.n_unseen_features, next(iter(unseen)),
            )
        return row

    def _invalid(self, n: int, what: str) -> None:
        self.n_invalid_values += n
        _LOG.warning(
            what, "GMMAnomalyDetector treats %s as missing (%d so far); encode or clean "
            "them upstream", what, self.n_invalid_values,
        )

    def _frame(self, X: Any, learning: bool) -> tuple[Any, Array]:
        """A narwhals-compatible dataframe as rows in the feature order."""
        frame = river_frames.into_frame(X)
        columns = list(frame.columns)
        if learning and not self.model_.is_fitted:
            self._add_features(columns)
        known = [c for c in columns if c in self._index]
        if learning:
            self.n_unseen_features += (len(columns) - len(known)) * len(frame)
        A = np.full((len(frame), len(self.features)), np.nan)
        if known:
            try:
                values = river_frames.to_numpy(frame.select(known))
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"columns {known!r} must be numeric ({exc}); encode categories upstream"
                ) from exc
            A[:, [self._index[c] for c in known]] = values
            huge = np.abs(A) > MAX_ABS  # ±inf too
            if huge.any():
                A[huge] = np.nan
                if learning:
                    self._invalid(int(huge.sum()), "±inf or values beyond 1e100")
        return frame, A

    # ------------------------------------------------------------------ river API
    def learn_one(self, x: dict[Hashable, Any]) -> None:
        """Buffer ``x`` for learning; the model learns every ``learn_every`` events.

        Parameters
        ----------
        x
            Feature name -> value.
        """
        if not self.model_.is_fitted:
            self._add_features(x)
        row = self._row(x, count=True)
        if np.isnan(row).all():
            self.n_skipped += 1
            return
        self._pending.append(row)
        self.n_learned += 1
        if len(self._pending) >= (self.learn_every if self.model_.is_fitted else self.n_warmup):
            self._flush()

    def _flush(self, extra: Array | None = None) -> None:
        """Learn the buffered rows (and ``extra``); the first flush freezes the features."""
        d = len(self.features)
        parts = [r if len(r) == d else np.pad(r, (0, d - len(r)), constant_values=np.nan)
                 for r in self._pending]
        A = np.vstack([*parts, np.empty((0, d)) if extra is None else extra])
        if len(A) == 0 or (not self.model_.is_fitted and len(A) < self.n_warmup):
            self._pending = [*A] if len(A) else []
            return
        self._pending = []
        if not self.model_.is_fitted:  # the freeze: observed features, canonical order
            observed = [f for f in self.features if not np.isnan(A[:, self._index[f]]).all()]
            order = _feature_order(observed)
            A = A[:, [self._index[f] for f in order]]
            self.features = order
            self._index = {name: j for j, name in enumerate(order)}
        self.model_.partial_fit(A)

    def score_one(self, x: dict[Hashable, Any]) -> float:
        """Surprise of ``x``: ``-log10`` of its tail probability (0 while warming up).

        Parameters
        ----------
        x
            Feature name -> value.

        Returns
        -------
        float
            ``>= 0``; high = anomalous.
        """
        if not self.model_.is_fitted:
            return 0.0
        row = self._row(x, count=False)
        if np.isnan(row).all():
            return 0.0
        return float(self._surprise(row[None, :])[0])

    def _surprise(self, A: Array) -> Array:
        # the same calibrated tail as Detector's (E-step, then the chi-square mixture bound)
        out: Array = np.maximum(-self.model_._estimate_tail(A)[2] / LN10, 0.0)
        return out

    def learn_many(self, X: Any) -> None:
        """Learn a mini-batch at once (after the buffered events).

        Parameters
        ----------
        X
            A dataframe river accepts (pandas, polars, pyarrow: anything narwhals wraps);
            columns are matched by name, as in :meth:`learn_one`.
        """
        _, A = self._frame(X, learning=True)
        usable = ~np.isnan(A).all(axis=1)
        self.n_skipped += int((~usable).sum())
        self.n_learned += int(usable.sum())
        self._flush(A[usable])

    def score_many(self, X: Any) -> Any:
        """Surprise of every row of a dataframe, as a series of the same backend (and index).

        Parameters
        ----------
        X
            A dataframe (see :meth:`learn_many`).

        Returns
        -------
        series
            One score per row, as :meth:`score_one` would give it.
        """
        frame, A = self._frame(X, learning=False)
        scores = np.zeros(len(A))
        usable = ~np.isnan(A).all(axis=1)
        if self.model_.is_fitted and usable.any():
            scores[usable] = self._surprise(A[usable])
        return river_frames.to_native_series(scores, name="score", like=frame)

    # ------------------------------------------------------------------ state
    def _pending_matrix(self) -> Array:
        d = len(self.features)
        if not self._pending:
            return np.empty((0, d))
        return np.vstack([np.pad(r, (0, d - len(r)), constant_values=np.nan)
                          for r in self._pending])

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain data, versioned (no pickle).

        Examples
        --------
        >>> det = GMMAnomalyDetector(n_warmup=20, seed=0)
        >>> for i in range(30):
        ...     det.learn_one({"a": float(i % 7), "b": float(i % 5)})
        >>> det2 = GMMAnomalyDetector.from_state(det.to_state())
        >>> det2.score_one({"a": 3.0, "b": 9.0}) == det.score_one({"a": 3.0, "b": 9.0})
        True
        """
        return {
            "version": STATE_VERSION,
            "params": self._get_params(),
            "model": self.model_.to_state(),
            "features": list(self.features),
            "pending": self._pending_matrix(),
            "counters": [self.n_learned, self.n_skipped, self.n_invalid_values,
                         self.n_unseen_features],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> GMMAnomalyDetector:
        """Rebuild a detector from :meth:`to_state`; it continues bit for bit.

        Parameters
        ----------
        state
            The snapshot.

        Returns
        -------
        GMMAnomalyDetector

        Raises
        ------
        StateError
            Unknown version or missing keys.
        """
        r = StateReader.of(state, "GMMAnomalyDetector", version=STATE_VERSION)
        with r.guard():
            det = cls(**r["params"])
            det.model_ = OnlineGMM.from_state(r.sub("model"))
            det.features = list(r["features"])
            det._index = {name: j for j, name in enumerate(det.features)}
            pending = r.array("pending")
            det._pending = list(pending) if pending.size else []
            (det.n_learned, det.n_skipped, det.n_invalid_values,
             det.n_unseen_features) = (int(c) for c in r["counters"])
        return det
