"""Drift: CUSUM on windowed NLL under a frozen reference model, plus model-level divergences.

The live model adapts, so its own likelihood hides slow drift. A frozen *reference* snapshot
scores a sample of events; the mean NLL per window is tested with a two-sided CUSUM
(``k = 0.5``, ``h = 8``: about 19 000 windows between false alarms per side for Gaussian
window means). At each window end the live model is compared with the reference: the
identity-pairing bound on the symmetric KL divergence, and per-component weight and mean shifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._gaussian import precision_cholesky
from streamem.model._scorer import Scorer
from streamem.model._versioned import StateReader

__all__ = ["DriftMonitor", "gaussian_kl"]

Array = NDArray[np.float64]


def _full(cov: Array) -> Array:
    return cov if cov.ndim == 3 else np.einsum("kd,de->kde", cov, np.eye(cov.shape[1]))


def gaussian_kl(mu0: Array, cov0: Array, mu1: Array, cov1: Array) -> Array:
    """``KL(N(mu0, cov0) || N(mu1, cov1))`` for stacks of Gaussians.

    Parameters
    ----------
    mu0, mu1
        Shape (n_components, n_features).
    cov0, cov1
        Shape (n_components, n_features, n_features) or (n_components, n_features) (diag).

    Returns
    -------
    Shape (n_components,).

    Examples
    --------
    >>> import numpy as np
    >>> one = np.ones((1, 1, 1))
    >>> float(gaussian_kl(np.zeros((1, 1)), one, np.ones((1, 1)), one)[0])
    0.5
    """
    c0, c1 = _full(cov0), _full(cov1)
    d = mu0.shape[1]
    inv1 = np.linalg.inv(c1)
    diff = mu1 - mu0
    _, ld0 = np.linalg.slogdet(c0)
    _, ld1 = np.linalg.slogdet(c1)
    tr = np.einsum("kij,kji->k", inv1, c0)
    maha = np.einsum("ki,kij,kj->k", diff, inv1, diff)
    return np.asarray(0.5 * (tr + maha - d + ld1 - ld0))


class DriftMonitor:
    """Windowed two-sided CUSUM on the reference NLL, and reference-vs-live divergences.

    Parameters
    ----------
    window
        Events per CUSUM window (counted over all events, of which every ``stride``-th is
        scored under the reference).
    stride
        Score one event in ``stride`` under the reference (keeps the cost low). The CUSUM's
        standard error assumes at most 30 effective samples per window (robust to
        autocorrelation), so 125 scored events per default window are plenty.
    k, h
        CUSUM allowance and decision interval, in standard deviations of a window mean.
    hold
        Windows during which ``drift_detected_`` stays set after an alarm.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.model import OnlineGMM
    >>> rng = np.random.default_rng(0)
    >>> m = OnlineGMM(n_components=1, n_warmup=500, random_state=0)
    >>> m = m.partial_fit(rng.normal(size=(500, 2)))
    >>> mon = DriftMonitor(window=200)
    >>> mon.set_reference(m, rng.normal(size=(500, 2)))
    >>> for _ in range(20): mon.update(rng.normal(size=(100, 2)), m)
    >>> mon.alarms_
    0
    >>> for _ in range(20): mon.update(rng.normal(3.0, 1.0, size=(100, 2)), m)
    >>> mon.alarms_ > 0
    True
    """

    def __init__(
        self, window: int = 1000, stride: int = 8, k: float = 0.5, h: float = 8.0, hold: int = 5
    ) -> None:
        self.window = window
        self.stride = stride
        self.k = k
        self.h = h
        self.hold = hold
        self.cusum_hi_ = 0.0
        self.cusum_lo_ = 0.0
        self.alarms_ = 0
        self._divergence = 0.0
        self.drift_detected_ = False
        self._hold_left = 0
        self._sum = 0.0
        self._count = 0
        self._events = 0
        self._phase = 0
        self._ref: dict[str, Any] | None = None
        self._ref_cache: Scorer | None = None
        self._weight_change: Array = np.zeros(0)
        self._mean_shift: Array = np.zeros(0)
        # live parameters captured at the last window end; compared lazily (on first read)
        self._live: tuple[Array, Array, Array] | None = None

    @property
    def divergence_(self) -> float:
        """Symmetric KL bound between the reference and the live model at the last window end.

        Identity pairing of components: ``KL(w0||w1) + KL(w1||w0)`` plus the weighted
        component KLs both ways (an upper bound of the mixtures' symmetric KL).

        Examples
        --------
        >>> DriftMonitor().divergence_
        0.0
        """
        self._compare()
        return self._divergence

    @property
    def weight_change_(self) -> Array:
        """Live minus reference component weights at the last window end, shape (K,).

        Examples
        --------
        >>> DriftMonitor().weight_change_.shape
        (0,)
        """
        self._compare()
        return self._weight_change

    @property
    def mean_shift_(self) -> Array:
        """Mahalanobis distance (reference metric) each component mean moved, shape (K,).

        Examples
        --------
        >>> DriftMonitor().mean_shift_.shape
        (0,)
        """
        self._compare()
        return self._mean_shift

    @property
    def cusum_(self) -> float:
        """The larger of the two one-sided CUSUM statistics.

        Examples
        --------
        >>> DriftMonitor().cusum_
        0.0
        """
        return max(self.cusum_hi_, self.cusum_lo_)

    def set_reference(self, model: Any, sample: Array) -> None:
        """Freeze ``model``'s parameters as the reference and calibrate the CUSUM.

        Parameters
        ----------
        model
            A fitted :class:`~streamem.OnlineGMM` (its scoring parameters are copied).
        sample
            Shape (n, d), scaled features: the NLL mean and spread under the reference.

        Examples
        --------
        >>> import numpy as np
        >>> from streamem.model import OnlineGMM
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> m = OnlineGMM(n_components=1, n_warmup=300, random_state=0).partial_fit(X)
        >>> mon = DriftMonitor(window=100)
        >>> mon.set_reference(m, X)
        >>> mon.divergence_, mon.alarms_
        (0.0, 0)
        """
        ref = {
            "weights": model.weights_.copy(),
            "log_weights": np.log(model.weights_),
            "means": model.means_.copy(),
            "covariances": model.covariances_.copy(),
            "prec_chol": model.precisions_cholesky_.copy(),
            "covariance_type": model.covariance_type,
            "reg_covar": model.reg_covar,
        }
        self._ref = ref
        self._ref_cache = None
        nll = self._ref_nll(sample) if len(sample) else np.zeros(1)
        self._mu0 = float(np.mean(nll))
        self._sd0 = max(float(np.std(nll)), 1e-6)
        self.cusum_hi_ = self.cusum_lo_ = 0.0
        self._sum, self._count, self._events = 0.0, 0, 0
        self._weight_change = np.zeros(len(ref["weights"]))
        self._mean_shift = np.zeros(len(ref["weights"]))
        self._divergence = 0.0
        self._live = None

    def _ref_nll(self, X: Array) -> Array:
        r = self._ref
        assert r is not None
        if self._ref_cache is None:
            self._ref_cache = Scorer(
                r["weights"], r["means"], r["covariances"], r["prec_chol"],
                r["covariance_type"], r["reg_covar"],
            )
        return -self._ref_cache.log_prob_norm(X)

    def update(self, X: Array, model: Any) -> None:
        """Feed a batch; at each window end run the CUSUM and capture the live parameters.

        Parameters
        ----------
        X
            Shape (n, d), scaled features.
        model
            The live model (compared with the reference when the figures are read).

        Examples
        --------
        >>> import numpy as np
        >>> from streamem.model import OnlineGMM
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> m = OnlineGMM(n_components=1, n_warmup=300, random_state=0).partial_fit(X)
        >>> mon = DriftMonitor(window=100)
        >>> mon.set_reference(m, X)
        >>> mon.update(X[:150] + 3.0, m)
        >>> mon.alarms_, mon.drift_detected_, mon.divergence_   # the model itself did not move
        (1, True, 0.0)
        """
        if self._ref is None or len(X) == 0:
            return
        n = len(X)
        first = (-self._phase) % self.stride
        sample = X[first :: self.stride]
        self._phase = (self._phase + n) % self.stride
        if len(sample):
            self._sum += float(self._ref_nll(sample).sum())
            self._count += len(sample)
        self._events += n
        if self._events >= self.window and self._count > 0:
            self._close_window(model)

    def _close_window(self, model: Any) -> None:
        mean = self._sum / self._count
        se = self._sd0 / np.sqrt(min(self._count, 30))
        z = (mean - self._mu0) / se
        self.cusum_hi_ = max(0.0, self.cusum_hi_ + z - self.k)
        self.cusum_lo_ = max(0.0, self.cusum_lo_ - z - self.k)
        self._sum, self._count, self._events = 0.0, 0, 0
        self._live = (model.weights_, model.means_, model.covariances_)  # replaced, not mutated
        if self.cusum_ > self.h:
            self.alarms_ += 1
            self._hold_left = self.hold
            self.cusum_hi_ = self.cusum_lo_ = 0.0
        else:
            self._hold_left = max(0, self._hold_left - 1)
        self.drift_detected_ = self._hold_left > 0

    def _compare(self) -> None:
        """Compute the divergence figures for the live parameters captured last (if new)."""
        r, live = self._ref, self._live
        if r is None or live is None:
            return
        self._live = None
        w1, means, covs = live
        if len(w1) != len(r["weights"]):
            return
        w0 = r["weights"]
        kl01 = gaussian_kl(r["means"], r["covariances"], means, covs)
        kl10 = gaussian_kl(means, covs, r["means"], r["covariances"])
        dw = float(np.sum(w0 * np.log(w0 / w1)) + np.sum(w1 * np.log(w1 / w0)))
        self._divergence = float(dw + np.sum(w0 * kl01) + np.sum(w1 * kl10))
        self._weight_change = w1 - w0
        diff = means - r["means"]
        if r["prec_chol"].ndim == 3:
            y = np.einsum("kd,kde->ke", diff, r["prec_chol"])
        else:
            y = diff * r["prec_chol"]
        self._mean_shift = np.sqrt(np.sum(y * y, axis=1))

    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars (the frozen reference included).

        Examples
        --------
        >>> sorted(DriftMonitor(window=10).to_state())[:3]
        ['alarms', 'count', 'cusum_hi']
        """
        return {
            "window": self.window, "stride": self.stride, "k": self.k, "h": self.h,
            "hold": self.hold, "cusum_hi": self.cusum_hi_, "cusum_lo": self.cusum_lo_,
            "alarms": self.alarms_, "divergence": self.divergence_,
            "hold_left": self._hold_left, "sum": self._sum, "count": self._count,
            "events": self._events, "phase": self._phase,
            "mu0": getattr(self, "_mu0", 0.0), "sd0": getattr(self, "_sd0", 1.0),
            "ref": {k: v for k, v in self._ref.items()} if self._ref else None,
            "weight_change": self.weight_change_, "mean_shift": self.mean_shift_,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DriftMonitor:
        """Rebuild from :meth:`to_state` (a defect raises :class:`~streamem.StateError`).

        Examples
        --------
        >>> DriftMonitor.from_state(DriftMonitor(window=10).to_state()).window
        10
        """
        r = StateReader.of(state, "DriftMonitor")
        with r.guard():
            m = cls(r["window"], r["stride"], r["k"], r["h"], r["hold"])
            m.cusum_hi_, m.cusum_lo_ = r["cusum_hi"], r["cusum_lo"]
            m.alarms_, m._divergence = r.integer("alarms"), r.number("divergence")
            m._hold_left, m._sum = r.integer("hold_left"), r["sum"]
            m._count, m._events = r.integer("count"), r.integer("events")
            m._phase = r.integer("phase")
            m._mu0, m._sd0 = r["mu0"], r["sd0"]
            m._ref = dict(r.sub("ref")) if r["ref"] else None
            if m._ref is not None and "prec_chol" not in m._ref:
                ref = r.sub("ref")
                with ref.guard():
                    m._ref["prec_chol"] = precision_cholesky(
                        ref["covariances"], ref["covariance_type"], ref["reg_covar"]
                    )
            m._weight_change = r.array("weight_change")
            m._mean_shift = r.array("mean_shift")
            m.drift_detected_ = m._hold_left > 0
            return m
