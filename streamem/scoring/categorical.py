"""Categorical fields inside the Detector's mixture: joint responsibilities and surprise.

Each component ``k`` holds, per field ``f``, decayed counts over the field's slots (the first
``top`` values learned, then a shared ``other`` slot) under a symmetric Dirichlet prior
``alpha``; the prior mass is spread over the slots in use plus one for a value never seen::

    p(v | k) = (c_kfv + alpha) / (sum_v c_kfv + alpha * (V_f + 1))

The E-step adds ``sum_f log p(v_f | k)`` to the Gaussian log-likelihood, so the
responsibilities (which both the Gaussian statistics and these counts learn from) are those
of the joint model. A missing value is marginalised (it adds nothing).

The score combines calibrated tails: each field's exact tail (the mass of the values at most
as likely as the observed one, per component, mixed by the Gaussian posterior
``p(k | x)``) and the Gaussian tail are combined by Šidák's rule on their minimum,
``1 - (1 - min_j p_j)^(1 + n_fields)``, which stays uniform for normal events, so the
threshold keeps its meaning. During the warm-up the counts are learned with one component
and are split over the mixture's components (by weight) at the hand-over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp, ndtri

from streamem.model._catcodes import CategoricalBatch
from streamem.model._categorical import Categoricals
from streamem.scoring.explain import FeatureContribution

__all__ = ["CategoricalPart"]

Array = NDArray[np.float64]
Codes = NDArray[np.int64]


class CategoricalPart:
    """The categorical fields a :class:`~streamem.Detector` models with its mixture.

    Examples
    --------
    >>> part = CategoricalPart(["method"], half_life=1e6)
    >>> part.warm(CategoricalBatch.of({"method": ["GET"] * 95 + ["POST"] * 5}), np.ones(100, bool))
    >>> part.start(np.array([1.0]))
    >>> b = CategoricalBatch.of({"method": ["GET", "POST", "PURGE"]})
    >>> _, u, tails = part.score(b, np.zeros((3, 1)), np.zeros(3))
    >>> bool(u[2] > 2 > u[0]), tails[:, 0].round(3).tolist()
    (True, [1.0, 0.055, 0.002])
    """

    def __init__(self, fields: Sequence[str], half_life: float, *, top: int = 50,
                 alpha: float = 0.25) -> None:
        self.cat = Categoricals(list(fields), 1, top=top, alpha=alpha, half_life=half_life)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.cat.fields

    # ------------------------------------------------------------------ codes
    def slots(self, batch: CategoricalBatch, *, learn: bool) -> Codes:
        """Model slots of the batch's values, shape (n, n_fields); -1 where missing.

        One dict lookup per distinct value of the batch (its vocabulary), not per event; with
        ``learn`` a new value takes a free slot, otherwise it is coded ``other``.
        """
        top = self.cat.top
        out = np.empty_like(batch.codes)
        for f, values in enumerate(batch.vocab):
            vocab = self.cat.vocab[f]
            if learn:
                for v in values:
                    if v not in vocab and len(vocab) < top:
                        vocab[v] = len(vocab)
            lut = np.array([vocab.get(v, top) for v in values] + [-1], dtype=np.int64)
            out[:, f] = lut[batch.codes[:, f]]  # code -1 picks the trailing -1
        return out

    def _log_p(self, f: int) -> Array:
        """``log p(slot | k)`` of field ``f``, shape (K, top + 1)."""
        c = self.cat.counts[f]
        used = len(self.cat.vocab[f]) + 1
        a = self.cat.alpha
        return np.asarray(np.log(c + a) - np.log(c.sum(axis=1, keepdims=True) + a * used))

    def log_prob(self, codes: Codes) -> Array:
        """``sum_f log p(v_f | k)`` over the observed fields, shape (n, K)."""
        out = np.zeros((codes.shape[0], self.cat.n_components))
        for f in range(codes.shape[1]):
            seen = codes[:, f] >= 0
            out[seen] += self._log_p(f)[:, codes[seen, f]].T
        return out

    def tails(self, codes: Codes, resp: Array) -> Array:
        """Per field, ``sum_k resp_k P_k(p(V | k) <= p(v | k))``, shape (n, n_fields); 1 where
        missing."""
        n, n_f = codes.shape
        out = np.ones((n, n_f))
        for f in range(n_f):
            seen = codes[:, f] >= 0
            if not seen.any():
                continue
            logp = self._log_p(f)
            used = np.zeros(logp.shape[1], dtype=bool)
            used[: len(self.cat.vocab[f])] = True
            used[-1] = True
            p = np.exp(logp) * used  # (K, S): the slots in use and other
            # per component and slot, the mass of the slots at most as likely (K, S, S): once
            # per batch, then one gather per event
            at_most = p[:, None, :] <= p[:, :, None] * (1 + 1e-9)
            table = np.einsum("kvs,ks->kv", at_most, p)
            tail_k = table[:, codes[seen, f]].T  # (m, K)
            out[seen, f] = np.clip((resp[seen] * tail_k).sum(axis=1), 1e-300, 1.0)
        return out

    # ------------------------------------------------------------------ scoring
    def resize(self, k: int) -> None:
        """Match the mixture's number of components (a new one starts from the mean)."""
        have = self.cat.n_components
        if have == k:
            return
        for f, c in enumerate(self.cat.counts):
            if k < have:
                self.cat.counts[f] = c[:k].copy()
            else:
                self.cat.counts[f] = np.vstack([c, np.repeat(c.mean(axis=0, keepdims=True),
                                                             k - have, axis=0)])

    def score(self, batch: CategoricalBatch, log_resp: Array, u: Array
              ) -> tuple[Array, Array, Array]:
        """Joint log responsibilities (n, K), combined surprise (n,) and field tails (n, F).

        ``log_resp`` are the Gaussian mixture's, ``u`` its surprises (``-log10`` tail).
        """
        self.resize(log_resp.shape[1])
        codes = self.slots(batch, learn=False)
        joint = log_resp + self.log_prob(codes)
        joint = joint - logsumexp(joint, axis=1, keepdims=True)
        tails = self.tails(codes, np.exp(log_resp))
        p_min = np.minimum(np.power(10.0, -np.asarray(u, dtype=float)), tails.min(axis=1))
        m = 1 + codes.shape[1]
        with np.errstate(divide="ignore"):
            combined = -np.expm1(m * np.log1p(-np.clip(p_min, 0.0, 1.0)))
        combined = np.clip(combined, 1e-300, 1.0)
        return joint, -np.log10(combined), tails

    def learn(self, batch: CategoricalBatch, log_resp: Array, mask: NDArray[np.bool_]) -> None:
        """Add the responsibilities of the ``mask`` events to the counts (the M-step)."""
        if not mask.any():
            return
        self.resize(log_resp.shape[1])
        codes = self.slots(batch.rows(mask), learn=True)
        resp = np.exp(log_resp[mask])
        n = codes.shape[0]
        w = resp * np.exp2(-(n - 1 - np.arange(n)) / self.cat.half_life)[:, None]
        decay = float(np.exp2(-n / self.cat.half_life))
        for f, c in enumerate(self.cat.counts):
            c *= decay
            seen = codes[:, f] >= 0
            for k in range(c.shape[0]):  # components (a handful), not events
                c[k] += np.bincount(codes[seen, f], weights=w[seen, k], minlength=c.shape[1])

    def warm(self, batch: CategoricalBatch, mask: NDArray[np.bool_]) -> None:
        """Learn warm-up events with one component (before the mixture exists)."""
        self.resize(1)
        self.learn(batch, np.zeros((len(batch), 1)), np.asarray(mask, dtype=bool))

    def start(self, weights: Array) -> None:
        """Split the warm-up counts over the mixture's components, by weight."""
        w = np.asarray(weights, dtype=float).reshape(-1, 1)
        pooled = [c.sum(axis=0, keepdims=True) for c in self.cat.counts]
        self.cat.counts = [w * p for p in pooled]

    def explain(self, values: Mapping[str, Any], resp: Array) -> list[tuple[str, str, float,
                                                                             float]]:
        """``(field, value, p(value | x), tail)`` of one event's observed fields."""
        batch = CategoricalBatch.of({f: [values.get(f)] for f in self.fields}, self.fields)
        codes = self.slots(batch, learn=False)
        r = np.asarray(resp, dtype=float).reshape(1, -1)
        self.resize(r.shape[1])
        tails = self.tails(codes, r)[0]
        out = []
        for f, name in enumerate(self.fields):
            if codes[0, f] < 0:
                continue
            p = float(r[0] @ np.exp(self._log_p(f))[:, codes[0, f]])
            out.append((name, str(batch.values(0)[name]), p, float(tails[f])))
        return out

    def contributions(self, values: Mapping[str, Any], resp: Array, offset: int
                      ) -> list[FeatureContribution]:
        """:meth:`explain` as explanation entries (index ``offset + f``; ``z`` is the normal
        quantile of the two-sided tail, so they rank with the numeric features)."""
        out = []
        for name, value, p, tail in self.explain(values, resp):
            f = self.fields.index(name)
            best = float(np.max(np.asarray(resp).reshape(1, -1) @ np.exp(self._log_p(f))))
            out.append(FeatureContribution(name, offset + f, p, best,
                                           float(-ndtri(min(tail, 1.0) / 2)), value, p))
        return out

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Versioned plain JSON (:meth:`Categoricals.to_state`)."""
        return self.cat.to_state()

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CategoricalPart:
        """Rebuild from :meth:`to_state`."""
        cat = Categoricals.from_state(state)
        part = cls(cat.fields, cat.half_life, top=cat.top, alpha=cat.alpha)
        part.cat = cat
        return part
