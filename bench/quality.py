"""The quality harness shared by the ADBench and NAB benchmarks: peers and the protocol.

Protocol: every streaming detector sees the events in order, in mini-batches; each batch
is scored BEFORE it is learned (prequential), and every event keeps the score it got then.
Ranking metrics (ROC-AUC, PR-AUC = average precision) are computed over ALL events: an
event a detector did not score (NaN, e.g. during a warm-up) counts as the lowest score,
tied with every other unscored event (:func:`rank_scores`).

The peers, one class each with ``run(X) -> scores`` (higher = more anomalous):

* :class:`StreamemPeer`: ``streamem.Detector()`` with its defaults (``random_state=0``),
  ranked by ``DetectionResult.surprise`` (``-log10`` of the calibrated tail probability,
  the quantity its threshold works on); ``process`` scores a batch before it learns it.
  The rule: rank by the one output that is calibrated the same way in every stage of the
  detector (the Student-t cold start, then the mixture); the negative log-likelihood
  (``scores``) changes scale when the model changes, which a ranking pooled over a whole
  stream mixes up. The same run also keeps the ``scores`` ranking (``nll``), reported
  beside it.
* :class:`HSTPeer`: river ``MinMaxScaler | HalfSpaceTrees`` (river's defaults, seed 0):
  ``score_one`` for every event of the batch, then ``learn_one`` for each.
* :class:`LodaPeer`: PySAD ``LODA`` (defaults, seed 0): ``score_partial`` then
  ``fit_partial``.
* :class:`RcfPeer`: AWS Random Cut Forest (:mod:`bench.rcf`), score then update per event.
* :class:`OfflineGMM`: scikit-learn ``GaussianMixture`` fitted on all events, then scoring
  all of them (a non-streaming reference that sees the whole set, anomalies included).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from streamem.evaluation.metrics import average_precision, roc_auc

Array = NDArray[np.float64]
BATCH = 64
SEED = 0


class Runner(Protocol):
    name: str

    def run(self, X: Array) -> Array: ...


class BatchLearner(Protocol):
    def score(self, X: Array) -> Array: ...

    def learn(self, X: Array) -> None: ...


def prequential(model: BatchLearner, X: Array, batch: int = BATCH) -> Array:
    """Score each mini-batch of ``X`` with the model as it is, then learn the batch."""
    out = np.full(len(X), np.nan)
    for i in range(0, len(X), batch):
        xb = X[i : i + batch]
        out[i : i + len(xb)] = model.score(xb)
        model.learn(xb)
    return out


def rank_scores(scores: Array) -> Array:
    """Scores with every NaN replaced by one value below all finite scores."""
    s = np.asarray(scores, dtype=np.float64).copy()
    bad = ~np.isfinite(s)
    if bad.all():
        return np.zeros_like(s)
    s[bad] = np.min(s[~bad]) - 1.0
    return s


def auc_pair(y: NDArray[Any], scores: Array) -> tuple[float, float]:
    """ROC-AUC and PR-AUC (average precision) over all events, NaN scores as lowest."""
    s = rank_scores(scores)
    t = np.asarray(y).astype(bool)
    return roc_auc(t, s), average_precision(t, s)


class StreamemPeer:
    """``streamem.Detector()`` defaults (plus ``random_state``), one ``process`` per batch.

    ``run`` returns the surprises; :attr:`nll` keeps the same run's ``scores``.
    """

    name = "streamem"

    def __init__(self, batch: int = BATCH, seed: int = SEED) -> None:
        self.batch, self.seed = batch, seed
        self.scored_fraction = float("nan")
        self.nll: Array = np.zeros(0)

    def run(self, X: Array) -> Array:
        import streamem

        det = streamem.Detector(random_state=self.seed)
        parts = [det.process(X[i : i + self.batch]) for i in range(0, len(X), self.batch)]
        if not parts:
            self.nll, self.scored_fraction = np.zeros(0), 0.0
            return np.zeros(0)
        out = np.concatenate([r.surprise for r in parts]).astype(float)
        self.nll = np.concatenate([r.scores for r in parts]).astype(float)
        self.scored_fraction = float(np.isfinite(self.nll).mean())
        return out


class _HST:
    def __init__(self, seed: int) -> None:
        from river import anomaly, preprocessing

        self.model: Any = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=seed)

    @staticmethod
    def _rows(X: Array) -> list[dict[int, float]]:
        return [{j: float(v) for j, v in enumerate(x) if v == v} for x in X]

    def score(self, X: Array) -> Array:
        return np.array([self.model.score_one(r) for r in self._rows(X)], dtype=np.float64)

    def learn(self, X: Array) -> None:
        for r in self._rows(X):
            self.model.learn_one(r)


class HSTPeer:
    """river ``MinMaxScaler | HalfSpaceTrees`` (10 trees, height 8, window 250)."""

    name = "river HST"

    def __init__(self, batch: int = BATCH, seed: int = SEED) -> None:
        self.batch, self.seed = batch, seed

    def run(self, X: Array) -> Array:
        return prequential(_HST(self.seed), X, self.batch)


class _Loda:
    def __init__(self, seed: int) -> None:
        from pysad import models

        loda: Any = models.LODA  # untyped library
        self.model: Any = loda(random_state=seed)

    def score(self, X: Array) -> Array:
        return np.array([self.model.score_partial(x) for x in np.nan_to_num(X)], dtype=np.float64)

    def learn(self, X: Array) -> None:
        for x in np.nan_to_num(X):
            self.model.fit_partial(x)


class LodaPeer:
    """PySAD ``LODA`` (100 random projections, 10 bins), score before fit."""

    name = "PySAD LODA"

    def __init__(self, batch: int = BATCH, seed: int = SEED) -> None:
        self.batch, self.seed = batch, seed

    def run(self, X: Array) -> Array:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return prequential(_Loda(self.seed), X, self.batch)


class RcfPeer:
    """AWS ThresholdedRandomCutForest (50 trees, sample 256), ranked by the RCF score."""

    name = "RCF (AWS, Java)"

    def __init__(self, shingle: int = 1, seed: int = SEED) -> None:
        self.shingle, self.seed = shingle, seed

    def run(self, X: Array) -> Array:
        from bench import rcf

        return rcf.run(X, shingle=self.shingle, seed=self.seed).score


#: Offline GaussianMixture candidates: K by BIC over this range, among the K whose model has
#: no more free parameters than the set has events (BIC's likelihood is degenerate beyond
#: that: a component collapses onto a few points). Full covariance when even K=1 full fits
#: that bound and d <= :data:`GMM_FULL_MAX_D`, diagonal otherwise (a full covariance at
#: d=1555 costs 1.2 M parameters per component and hours of CPU).
GMM_KS = (1, 2, 4, 8)
GMM_FULL_MAX_D = 200


def gmm_params(k: int, d: int, cov: str) -> int:
    """Free parameters of a K-component GMM: means, covariances, weights."""
    per = d + (d * (d + 1) // 2 if cov == "full" else d)
    return k * per + k - 1


class OfflineGMM:
    """scikit-learn ``GaussianMixture`` fitted on all events; K chosen by BIC."""

    name = "sklearn GMM (offline)"

    def __init__(self, ks: Sequence[int] = GMM_KS, seed: int = SEED) -> None:
        self.ks, self.seed = tuple(ks), seed
        self.chosen = ""

    def run(self, X: Array) -> Array:
        from sklearn.mixture import GaussianMixture  # type: ignore[import-untyped]

        x = np.nan_to_num(np.asarray(X, dtype=np.float64))
        n, d = x.shape
        cov = "full" if d <= GMM_FULL_MAX_D and gmm_params(1, d, "full") <= n else "diag"
        best: Any = None
        best_bic = np.inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in self.ks:
                if k > 1 and gmm_params(k, d, cov) > n:
                    break
                g = GaussianMixture(k, covariance_type=cov, reg_covar=1e-6, random_state=self.seed)
                try:
                    g.fit(x)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                bic = g.bic(x)
                if bic < best_bic:
                    best, best_bic = g, bic
        if best is None:
            return np.full(len(x), np.nan)
        self.chosen = f"K={best.n_components}, {cov}"
        out: Array = -np.asarray(best.score_samples(x), dtype=np.float64)
        return out


def default_peers(shingle: int = 1) -> list[Runner]:
    """The peers of every quality table, in table order."""
    return [StreamemPeer(), RcfPeer(shingle=shingle), LodaPeer(), HSTPeer(), OfflineGMM()]
