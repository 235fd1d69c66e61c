"""Peer detectors behind one small interface, and the shared thresholding rule for them.

Each peer is used the way its library intends: river ``HalfSpaceTrees`` via ``score_one`` /
``learn_one`` on dicts (features scaled to [0, 1] with limits taken from the warm-up data,
as river's docs require), PySAD ``LODA`` / ``xStream`` via ``score_partial`` /
``fit_partial``, and scikit-learn ``GaussianMixture`` refitted on a sliding window.

None of the peers ships a calibrated threshold, so all of them get the same rule
(:func:`run_peer`): flag an event when its score exceeds the ``q`` quantile of every score
seen before it (river's ``QuantileFilter`` semantics), and, like river's
``protect_anomaly_detector=True``, do not learn flagged events.
"""

from __future__ import annotations

import bisect
import importlib.metadata
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray


def version(dist: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class Peer(Protocol):
    name: str

    def learn(self, x: NDArray[np.float64]) -> None: ...

    def score(self, x: NDArray[np.float64]) -> float: ...


class RiverHST:
    """river ``HalfSpaceTrees`` (defaults: 10 trees, height 8, window 250).

    HST assumes features in [0, 1]. With ``online_scaling`` (river's documented usage,
    for quality runs) a ``preprocessing.MinMaxScaler`` sits in front of it; otherwise
    (throughput runs) fixed ``limits`` come from the warm-up range padded by 10 %.
    """

    name = "river HalfSpaceTrees"

    def __init__(
        self, warm: NDArray[np.float64], seed: int = 0, online_scaling: bool = False
    ) -> None:
        from river import anomaly, preprocessing

        if online_scaling:
            self.model: Any = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=seed)
            return
        lo, hi = np.nanmin(warm, axis=0), np.nanmax(warm, axis=0)
        pad = 0.1 * np.where(hi > lo, hi - lo, 1.0)
        limits: dict[Any, tuple[float, float]] = {
            j: (float(lo[j] - pad[j]), float(hi[j] + pad[j])) for j in range(warm.shape[1])
        }
        self.model = anomaly.HalfSpaceTrees(limits=limits, seed=seed)

    @staticmethod
    def as_dict(x: NDArray[np.float64]) -> dict[int, float]:
        return {j: float(v) for j, v in enumerate(x) if v == v}  # NaN features are left out

    def learn(self, x: NDArray[np.float64]) -> None:
        self.model.learn_one(self.as_dict(x))

    def score(self, x: NDArray[np.float64]) -> float:
        return float(self.model.score_one(self.as_dict(x)))


class PysadModel:
    """A PySAD streaming model (``LODA`` or ``xStream``) with default parameters."""

    def __init__(self, kind: str, seed: int = 0) -> None:
        from pysad import models

        cls: Any = getattr(models, kind)
        self.model = cls(random_state=seed)
        self.name = f"PySAD {kind}"

    def learn(self, x: NDArray[np.float64]) -> None:
        self.model.fit_partial(np.nan_to_num(x))

    def score(self, x: NDArray[np.float64]) -> float:
        return float(self.model.score_partial(np.nan_to_num(x)))


class SklearnGMMWindow:
    """scikit-learn ``GaussianMixture`` refitted on the last ``window`` events.

    "Per event" here means: every event is scored with ``score_samples`` (in batches of
    the caller's size), and the model is refitted (``warm_start=True``) on the most recent
    ``window`` events every ``refit_every`` events. That is the cheapest honest way to keep
    a batch GMM current on a stream.
    """

    name = "sklearn GaussianMixture (window refit)"

    def __init__(
        self, k: int, warm: NDArray[np.float64], window: int = 4096, refit_every: int = 1024
    ) -> None:
        from sklearn.mixture import GaussianMixture  # type: ignore[import-untyped]

        self.gmm = GaussianMixture(k, covariance_type="full", warm_start=True, random_state=0)
        self.buf = np.array(warm[-window:], dtype=float)
        self.window, self.refit_every, self.since = window, refit_every, 0
        self.gmm.fit(self.buf)

    def process(self, batch: NDArray[np.float64]) -> NDArray[np.float64]:
        scores: NDArray[np.float64] = -np.asarray(self.gmm.score_samples(batch), dtype=float)
        self.buf = np.concatenate((self.buf, batch))[-self.window :]
        self.since += len(batch)
        if self.since >= self.refit_every:
            self.gmm.fit(self.buf)
            self.since = 0
        return scores


class _ExpandingQuantile:
    def __init__(self, q: float, min_history: int) -> None:
        self.q, self.min_history = q, min_history
        self.sorted: list[float] = []

    def threshold(self) -> float:
        if len(self.sorted) < self.min_history:
            return float("inf")
        return self.sorted[min(int(self.q * len(self.sorted)), len(self.sorted) - 1)]

    def add(self, s: float) -> None:
        bisect.insort(self.sorted, s)


def run_peer(
    peer: Peer, warm: NDArray[np.float64], X: NDArray[np.float64], q: float
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Warm up on ``warm`` (learn all, collect in-sample scores), then score-then-learn ``X``.

    Returns the flags and scores of ``X``. Flagged events are not learned.
    """
    thr = _ExpandingQuantile(q, min_history=min(100, len(warm)))
    for x in warm:
        peer.learn(x)
    for x in warm:
        thr.add(peer.score(x))
    flags = np.zeros(len(X), dtype=bool)
    scores = np.zeros(len(X))
    for i, x in enumerate(X):
        s = peer.score(x)
        scores[i] = s
        flags[i] = s > thr.threshold()
        thr.add(s)
        if not flags[i]:
            peer.learn(x)
    return flags, scores
