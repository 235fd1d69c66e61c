"""``KeyedDetector``: one small Gaussian mixture per key (a pump, a host, a device) with a
population prior, scored and learned for thousands of keys per batch in stacked arrays.

Every key has its own location and scale, mixture, tail calibration and counters, held as one
record (:mod:`~streamem.scoring.key_table`); the kernels are in :mod:`streamem.model._keyed`.
A *population* mixture lives in every key's own standardised space ``z = (x - loc) / s``;
it is the normal-inverse-Wishart prior of every key at a strength of ``key_prior_events``
pseudo-events, so a new key scores from its first event, becomes individual as its own data
arrives, and a key whose normal level differs from the others' never alarms for that.

Alert rates
-----------
Surprises are ``-log10`` of a tail probability that is comparable across keys by
construction, so the threshold is first fitted on the tails pooled over all keys (an
exponential tail above ``u0 = -log10(alert_rate) / 2``), then blended with the key's own
tail by ``P_k / (P_k + key_calibration_peaks)`` (``P_k``: the key's own peaks above ``u0``).
``alert_rate`` is therefore the target fraction of a key's normal events flagged, for each
key; overall, the fraction of all normal events flagged is the same ``alert_rate`` (the mean
of the per-key rates weighted by event counts), and a fleet of ``n`` keys, each sending ``m``
normal events, expects ``alert_rate * n * m`` false alarms in total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._keyed import (
    Population,
    group_rows,
    key_moments,
    map_parameters,
    packed_group_sums,
    score_rows,
)
from streamem.model._keyed_missing import first_rows, score_rows_missing
from streamem.model._numeric import LN10
from streamem.scoring.explain import FeatureContribution
from streamem.scoring.key_table import (
    COUNT_ANOMALIES,
    COUNT_EVENTS,
    LAST_ANOMALY,
    LAST_SEEN,
    TICK,
    KeyStore,
    KeyTable,
    Layout,
)
from streamem.scoring.keyed_support import (
    KeyedCounters,
    check_keyed_params,
    check_keys,
    fit_population,
    key_severity,
    population_params,
    tail_threshold,
    validate_batch,
)
from streamem.scoring.result import DetectionResult

__all__ = ["KeyedDetector", "check_keys"]

Array = NDArray[np.float64]


class KeyedDetector(KeyedCounters):
    """Streaming anomaly detector with one model per key and a population prior.

    Parameters
    ----------
    n_components
        Components per key (and in the population).
    half_life
        Forgetting, in a key's own events (the population and pooled statistics: in events
        of all keys).
    alert_rate
        Target fraction of normal events flagged, per key and overall (module docstring).
    warmup
        Learned events, pooled over keys, before the population mixture is fitted; until
        then every row is scored under a standard population but not flagged.
    reg_covar
        Diagonal regularisation relative to each key's scale.
    protect_model
        Do not learn flagged events.
    feature_names
        Names used in explanations.
    max_keys_in_memory
        Keys held in memory; the least recently used are evicted to ``store`` (or kept as
        compact blobs until the next :meth:`checkpoint` when there is none).
    key_prior_events
        Strength of the population prior in pseudo-events; a key is ``warming_up`` until it
        has seen this many events of its own.
    key_idle_ttl
        A key not seen for this long (on the ``now`` clock of :meth:`process`; by default
        the count of events) is forgotten. None: never.
    key_calibration_peaks
        Own tail peaks at which a key's threshold is half its own, half the pooled one.
    store
        Where evicted keys are read back from (:class:`streamem.state.keys_sqlite.SqliteKeyStore`).
    random_state
        Seed of the population fit.

    Examples
    --------
    Twenty pumps, each with its own normal level; pump 3 leaves its own level for one that
    is normal for the fleet:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> levels = rng.normal(0, 10, size=(20, 2))
    >>> keys = np.tile(np.arange(20), 200)
    >>> X = levels[keys] + rng.normal(size=(4000, 2))
    >>> det = KeyedDetector(warmup=500, random_state=0)
    >>> res = det.process(X, keys)
    >>> float(res.is_anomaly[1000:].mean()) < 0.01
    True
    >>> res = det.process(levels[[5, 5]], [3, 5])
    >>> res.is_anomaly.tolist(), det.n_keys_in_memory
    ([True, False], 20)
    """

    def __init__(
        self,
        *,
        n_components: int = 2,
        half_life: float = 50_000,
        alert_rate: float = 1e-3,
        warmup: int = 1000,
        reg_covar: float = 1e-3,
        protect_model: bool = True,
        feature_names: list[str] | None = None,
        max_keys_in_memory: int = 100_000,
        key_prior_events: float = 10.0,
        key_idle_ttl: float | None = None,
        key_calibration_peaks: float = 50.0,
        store: KeyStore | None = None,
        random_state: int | None = None,
    ) -> None:
        self.params: dict[str, Any] = {
            k: v for k, v in locals().items() if k not in ("self", "store", "__class__")
        }
        check_keyed_params(self.params)
        self.n_components, self.half_life, self.alert_rate = n_components, half_life, alert_rate
        self.warmup, self.reg_covar, self.protect_model = warmup, reg_covar, protect_model
        self.feature_names, self.max_keys_in_memory = feature_names, max_keys_in_memory
        self.key_prior_events, self.key_idle_ttl = float(key_prior_events), key_idle_ttl
        self.key_calibration_peaks, self.random_state = key_calibration_peaks, random_state
        self.store = store
        self.gamma_ = 2.0 ** (-1.0 / half_life)
        self.table_: KeyTable | None = None
        self.n_features_in_: int | None = None
        self.population_: Population | None = None  # None: the standard one, not fitted
        self.pop_stats_: tuple[Array, Array, Array] | None = None
        self.buffer_: list[Array] = []
        self.pool_ = np.zeros(5)  # pooled within-key m2 (sum over d later), df, E, P, X
        self.pool_m2_: Array | None = None
        self.n_events_ = self.n_anomalies_ = 0
        self.now_ = -np.inf  # the latest ``now`` seen (the clock of key_idle_ttl)

    # ------------------------------------------------------------------ processing
    def process(self, X: ArrayLike, keys: ArrayLike, learn: ArrayLike | None = None,
                now: ArrayLike | None = None) -> DetectionResult:
        """Score a batch spanning many keys, flag, then learn from the normal events.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN marks a missing reading. A row with missing
            readings is scored on its observed ones (its key's marginal mixture, the tail
            with as many degrees of freedom as readings observed) and is not learned
            (``learned`` False); it still counts as one of its key's events.
        keys
            Shape (n_samples,): int or str keys (:func:`check_keys` tells the bad ones).
        learn
            Shape (n_samples,), bool: events that may be learned (None: all).
        now
            Shape (n_samples,) or a scalar: the clock of ``key_idle_ttl`` and of each key's
            last-seen time (None: the running event count).

        Returns
        -------
        DetectionResult
            Per row, in the row's own key's terms.

        Raises
        ------
        InvalidInputError
            A row with ±inf or every reading missing, a bad key, the wrong width; nothing
            of the batch is used then.
        """
        A, K_arr, allow, clock = validate_batch(X, keys, learn, now, self.n_features_in_,
                                                self.n_events_)
        n, d = A.shape
        if n == 0:
            e = np.empty(0)
            return DetectionResult(e, e, e, e, e, np.zeros(0, bool), np.zeros(0, bool),
                                   np.zeros(0, bool))
        table = self._table(K_arr, d)
        lay, Kc = table.layout, self.n_components
        # one stable sort groups the rows by key: the keys, each key's rows in arrival order
        order, starts, uniq, n_rows = group_rows(K_arr)
        first = order[starts]
        inv = np.empty(n, dtype=np.intp)
        inv[order] = np.repeat(np.arange(len(uniq)), n_rows)
        slots, new = table.lookup(uniq, first, self.store)
        miss = np.isnan(A).any(axis=1)
        has_missing = bool(miss.any())
        if new.any():
            rec_new = table.rec[slots[new]]
            lay.view(rec_new, "anchor")[:] = (first_rows(A, order, starts, n_rows)[new]
                                              if has_missing else A[first[new]])
            table.rec[slots[new]] = rec_new
        rec = np.take(table.rec, slots, axis=0)
        anchor = lay.view(rec, "anchor")
        N, S1, S2 = (lay.view(rec, f) for f in ("N", "S1", "S2"))
        tail, counts = lay.view(rec, "tail"), lay.view(rec, "counts")
        pop = self.population_ or Population.standard(Kc, d)
        params = map_parameters(N, S1, S2, pop, self.key_prior_events, self._pool_var(d),
                                self.reg_covar)
        Y = A - np.take(anchor, inv, axis=0)
        if has_missing:   # scored on their observed coordinates, not learned (see process)
            Ym, Y = Y[miss], np.where(np.isnan(Y), 0.0, Y)
        log_prob, log_resp, log_tail = score_rows(Y, inv, params)
        if has_missing:
            scored = score_rows_missing(Ym, inv[miss], params)
            for full, part in zip((log_prob, log_resp, log_tail), scored, strict=True):
                full[miss] = part
            allow = allow & ~miss
        u = -log_tail / LN10
        ready = self.population_ is not None
        t_key = self._thresholds(tail) if ready else np.full(len(uniq), np.inf)
        thr = np.take(t_key, inv)
        flagged = u > thr
        learned = allow & ~flagged if self.protect_model else allow.copy()
        # ---- learning: per-key sums in arrival order, decay by the key's own learned count
        rank = np.empty(n)
        rank[order] = np.arange(n) - np.repeat(starts, n_rows)   # the row's place in its key
        warming = (np.take(counts[:, COUNT_EVENTS], inv) + rank < self.key_prior_events)
        warming |= not ready
        resp = np.exp(log_resp) * learned[:, None]
        sums = packed_group_sums(Y, resp, order, starts)
        m = np.bincount(inv, weights=learned, minlength=len(uniq))
        f = self.gamma_ ** m
        n_old, m2_old = params.n * f, params.m2 * f[:, None]   # the moments decay as a whole
        a, b = lay.spans["N"][0], lay.spans["S2"][1]            # N | S1 | S2, contiguous
        stats = rec[:, a:b]
        stats *= f[:, None]      # in place: N, S1 and S2 are views of these records
        stats += sums
        n_new, _, m2_new = key_moments(N, S1, S2)
        self._learn_pool(d, n_old, m2_old, n_new, m2_new, int(learned.sum()))
        self._learn_population(Y, resp, learned, inv, params)
        if ready:
            self._learn_tails(tail, u, inv, len(uniq))
        # ---- counters and recency
        last = order[starts + n_rows - 1]
        counts[:, COUNT_EVENTS] += n_rows
        counts[:, COUNT_ANOMALIES] += np.bincount(inv, weights=flagged, minlength=len(uniq))
        counts[:, LAST_SEEN] = clock[last]
        counts[:, TICK] = self.n_events_ + last
        if flagged.any():
            fl = np.full(n, -np.inf)
            fl[flagged] = clock[flagged]
            seen = np.maximum.reduceat(fl[order], starts)
            counts[:, LAST_ANOMALY] = np.where(seen > -np.inf, seen, counts[:, LAST_ANOMALY])
        table.rec[slots] = rec
        table.dirty[slots] = True
        self.n_events_ += n
        self.n_anomalies_ += int(flagged.sum())
        self.now_ = max(self.now_, float(clock.max()))
        if self.key_idle_ttl is not None:
            self.forget_idle(self.now_ - self.key_idle_ttl)
        tnum = np.where(np.isfinite(thr), thr, -np.log10(self.alert_rate))
        return DetectionResult(
            scores=-log_prob, tail_probability=np.exp(log_tail), surprise=u,
            threshold=np.power(10.0, -tnum), severity=key_severity(u, tnum),
            is_anomaly=flagged, learned=learned, warming_up=warming,
        )

    # ------------------------------------------------------------------ parts
    def _table(self, K_arr: NDArray[Any], d: int) -> KeyTable:
        kind = "int" if K_arr.dtype.kind == "i" else "str"
        if self.table_ is None:
            self.n_features_in_ = d
            self.table_ = KeyTable(Layout(d, self.n_components), self.max_keys_in_memory, kind)
            self.pool_m2_ = np.zeros(d)
        elif self.table_.key_kind != kind and len(K_arr):
            raise InvalidInputError(f"keys are {kind} but this detector's keys are "
                                    f"{self.table_.key_kind}; keep one key type per detector")
        return self.table_

    def _pool_var(self, d: int) -> Array:
        df = self.pool_[1]
        if df < 2.0 or self.pool_m2_ is None:
            return np.ones(d)
        out: Array = np.maximum(self.pool_m2_ / df, 1e-12)
        return out

    def _learn_pool(self, d: int, n_old: Array, m2_old: Array, n_new: Array, m2_new: Array,
                    n_learned: int) -> None:
        """Pooled within-key variance: each key's increase of scatter and degrees of freedom."""
        assert self.pool_m2_ is not None
        dm2 = np.maximum(m2_new - m2_old, 0.0).sum(axis=0)
        ddf = float((n_new - n_old).sum()) - float(((n_old < 0.5) & (n_new >= 0.5)).sum())
        g = self.gamma_ ** n_learned
        self.pool_m2_ = self.pool_m2_ * g + dm2
        self.pool_[1] = self.pool_[1] * g + max(ddf, 0.0)

    def _learn_population(self, Y: Array, resp: Array, learned: NDArray[np.bool_],
                          inv: NDArray[np.intp], params: Any) -> None:
        if not learned.any():
            return
        rows = inv[learned]
        Z = (Y[learned] - np.take(params.loc, rows, axis=0)) / np.take(params.scale, rows, axis=0)
        if self.population_ is None:
            self.buffer_.append(Z)
            if sum(len(b) for b in self.buffer_) >= self.warmup:
                self.pop_stats_ = fit_population(np.concatenate(self.buffer_),
                                                 self.n_components, self.random_state)
                self.buffer_ = []
                self.population_ = population_params(*self.pop_stats_)
            return
        assert self.pop_stats_ is not None
        R = resp[learned]
        g = self.gamma_ ** len(Z)
        pN, p1, p2 = self.pop_stats_
        n, d = Z.shape
        RZ = (R[:, :, None] * Z[:, None, :]).reshape(n, -1)
        self.pop_stats_ = (pN * g + R.sum(axis=0), p1 * g + R.T @ Z,
                           p2 * g + (RZ.T @ Z).reshape(-1, d, d))
        self.population_ = population_params(*self.pop_stats_)

    def _thresholds(self, tail: Array) -> Array:
        q, E, P, X = self.alert_rate, self.pool_[2], self.pool_[3], self.pool_[4]
        nominal = -np.log10(q)
        t_pool = tail_threshold(E, P, X, q) if P >= 30 else nominal
        own = tail_threshold(tail[:, 0], tail[:, 1], tail[:, 2], q)
        w = tail[:, 1] / (tail[:, 1] + self.key_calibration_peaks)
        t: Array = np.where(tail[:, 1] > 0, (1 - w) * t_pool + w * own, t_pool)
        return t

    def _learn_tails(self, tail: Array, u: Array, inv: NDArray[np.intp], n_keys: int) -> None:
        u0 = -np.log10(self.alert_rate) / 2
        peak = u > u0
        # winsorised at 4 u0 (twice the nominal threshold; a calibrated tail passes it at a
        # rate of alert_rate**2), so that anomalies do not inflate the fitted tail
        exc = np.where(peak, np.minimum(u, 4 * u0) - u0, 0.0)
        rows = np.bincount(inv, minlength=n_keys).astype(float)
        f = self.gamma_ ** rows
        tail[:, 0] = tail[:, 0] * f + rows
        tail[:, 1] = tail[:, 1] * f + np.bincount(inv, weights=peak, minlength=n_keys)
        tail[:, 2] = tail[:, 2] * f + np.bincount(inv, weights=exc, minlength=n_keys)
        g = self.gamma_ ** len(u)
        self.pool_[2:] = self.pool_[2:] * g + [len(u), peak.sum(), exc.sum()]

    def forget_idle(self, cutoff: float) -> int:
        """Forget the in-memory keys last seen before ``cutoff``; returns how many."""
        table = self.table_
        if table is None or not table.n_keys:
            return 0
        seen = table.rec[table.sorted_slots, table.layout.spans["counts"][0] + LAST_SEEN]
        old = table.sorted_slots[seen < cutoff]
        table.remove(old, spill=False)
        table.forgotten += len(old)
        return len(old)

    def explain(self, x: ArrayLike, key: Any, top: int = 3) -> list[FeatureContribution]:
        """Top features of one event of ``key`` by |conditional z-score| under the key's own
        most responsible component (read-only; [] for an unknown key).

        Returns
        -------
        list of FeatureContribution
            Name, index, value, expected value given the other features, z.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> det = KeyedDetector(warmup=200, feature_names=["temp", "flow"])
        >>> _ = det.process(rng.normal(size=(400, 2)) + [50.0, 0.0], np.zeros(400, int))
        >>> det.explain([50.0, 9.0], 0)[0].name, det.explain([0.0, 0.0], 1)
        ('flow', [])
        """
        from streamem.scoring.keyed_explain import explain_key

        return explain_key(self, x, key, top)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Whole state: the detector's and every key's not in the store (versioned, no pickle)."""
        from streamem.scoring.keyed_state import dump_keyed

        return dump_keyed(self, with_keys=True)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], store: KeyStore | None = None
                   ) -> KeyedDetector:
        """Rebuild from :meth:`to_state` (or a checkpoint's meta with ``store``); it continues
        bit for bit.

        Raises
        ------
        StateError
            Another version, or a missing or malformed field (named by its path).
        """
        from streamem.scoring.keyed_state import load_keyed

        return load_keyed(cls, state, store)

