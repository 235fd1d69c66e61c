"""Categorical fields in the mixture: a categorical distribution per component and field.

Each component ``k`` holds, for each categorical field ``f``, decaying counts
``counts[f][k, s]`` over the field's slots ``s``: the first ``top`` distinct values seen get a
slot each (in order of first appearance) and every later value shares the last slot,
``other``. Under a symmetric Dirichlet prior ``alpha`` the predictive probability is::

    p(s | k) = (counts[f][k, s] + alpha) / (sum_s counts[f][k, s] + alpha * (top + 1))

The fields are conditionally independent given the component (a latent-class model), so the
joint log-likelihood of an event with Gaussian part ``log N(x | k)`` is
``log N(x | k) + sum_f log p(c_f | k)``; the component posterior (:func:`joint_posterior`)
and the joint surprise ``-log sum_k w_k N(x | k) prod_f p(c_f | k)`` use it, and the same
responsibilities update the counts (the M-step of the online EM, :meth:`Categoricals.learn`,
decaying per event with half-life ``half_life`` events). A value never seen by a component
has only the prior's mass: it scores high.

Pure numpy; :class:`Categoricals` is the entry point the Detector composes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._versioned import StateReader

__all__ = ["Categoricals", "accumulate", "joint_from_mixture", "joint_posterior",
           "log_categorical"]

Array = NDArray[np.float64]
STATE_VERSION = 1


def log_categorical(counts: Sequence[Array], codes: NDArray[np.int64], alpha: float) -> Array:
    """``sum_f log p(codes[:, f] | k)`` for each event and component.

    Parameters
    ----------
    counts
        Per field, decayed counts of shape (n_components, n_slots_f).
    codes
        Slot of each event's value per field, shape (n_events, n_fields).
    alpha
        Dirichlet pseudo-count per slot (> 0).

    Returns
    -------
    ndarray of shape (n_events, n_components)

    Examples
    --------
    >>> c = [np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 4.0]])]
    >>> np.exp(log_categorical(c, np.array([[0], [2]]), 1.0)).round(3).tolist()
    [[0.571, 0.143], [0.143, 0.714]]
    """
    n = codes.shape[0]
    k = counts[0].shape[0] if counts else 0
    out = np.zeros((n, k))
    for f, c in enumerate(counts):
        logp = np.log(c + alpha) - np.log(c.sum(axis=1, keepdims=True) + alpha * c.shape[1])
        out += logp[:, codes[:, f]].T
    return out


def joint_posterior(log_gauss: Array, log_weights: Array, log_cat: Array
                    ) -> tuple[Array, Array]:
    """Responsibilities and joint surprise of the mixture with categorical fields.

    Parameters
    ----------
    log_gauss
        ``log N(x_i | k)`` (or any per-component log-likelihood), shape (n, K).
    log_weights
        ``log w_k``, shape (K,).
    log_cat
        :func:`log_categorical`, shape (n, K).

    Returns
    -------
    resp : ndarray of shape (n, K)
        ``p(k | x_i, c_i)``; each row sums to 1.
    surprise : ndarray of shape (n,)
        ``-log sum_k w_k N(x_i | k) prod_f p(c_if | k)`` (nats).

    Examples
    --------
    >>> r, s = joint_posterior(np.zeros((1, 2)), np.log([0.5, 0.5]),
    ...                        np.log([[0.9, 0.1]]))
    >>> r.round(2).tolist(), s.round(3).tolist()
    ([[0.9, 0.1]], [0.693])
    """
    joint = log_gauss + log_weights[None, :] + log_cat
    top = joint.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.log(np.exp(joint - top).sum(axis=1, keepdims=True)) + top
    return np.exp(joint - total), -total[:, 0]


def joint_from_mixture(log_density: Array, log_resp: Array, log_cat: Array
                       ) -> tuple[Array, Array]:
    """:func:`joint_posterior` from what the Gaussian mixture's E-step gives.

    ``OnlineGMM._estimate`` returns ``log f(x)`` (shape (n,)) and the log responsibilities
    (n, K); their sum is ``log w_k + log N(x | k)``, so this is the composition point: the
    returned responsibilities feed both ``OnlineGMM._learn`` and :meth:`Categoricals.learn`.

    Examples
    --------
    >>> r, s = joint_from_mixture(np.array([-1.0]), np.log([[0.5, 0.5]]),
    ...                           np.log([[0.9, 0.1]]))
    >>> r.round(2).tolist(), s.round(3).tolist()
    ([[0.9, 0.1]], [1.693])
    """
    k = log_resp.shape[1]
    return joint_posterior(log_resp + log_density[:, None], np.zeros(k), log_cat)


def accumulate(counts: list[Array], codes: NDArray[np.int64], resp: Array,
               half_life: float) -> None:
    """Decay ``counts`` over the batch and add each event's responsibilities (in place).

    Event ``i`` of ``n`` adds ``resp[i] * 2^(-(n-1-i)/half_life)`` to its slot; the old counts
    decay by ``2^(-n/half_life)``, exactly as one event at a time would.

    Examples
    --------
    >>> c = [np.zeros((2, 3))]
    >>> accumulate(c, np.array([[0], [2]]), np.array([[1.0, 0.0], [0.25, 0.75]]), 1e12)
    >>> c[0].tolist()
    [[1.0, 0.0, 0.25], [0.0, 0.0, 0.75]]
    """
    n = codes.shape[0]
    if n == 0:
        return
    w = resp * np.exp2(-(n - 1 - np.arange(n)) / half_life)[:, None]
    decay = float(np.exp2(-n / half_life))
    for f, c in enumerate(counts):
        c *= decay
        s = c.shape[1]
        for k in range(c.shape[0]):  # components (a handful), not events
            c[k] += np.bincount(codes[:, f], weights=w[:, k], minlength=s)


def _text(v: Any) -> str:
    return v if type(v) is str else ("" if v is None else str(v))


class Categoricals:
    """Categorical fields of a mixture: vocabularies, per-component counts, scores.

    Parameters
    ----------
    fields
        The categorical field names (``fields.categorical``).
    n_components
        Components of the mixture it is composed with.
    top
        Values with a slot of their own per field; later values share ``other``.
    alpha
        Dirichlet pseudo-count per slot.
    half_life
        Events after which a count weighs half.

    Examples
    --------
    >>> cat = Categoricals(["method"], n_components=1)
    >>> codes = cat.encode({"method": ["GET"] * 90 + ["POST"] * 10}, learn=True)
    >>> cat.learn(codes, np.ones((100, 1)))
    >>> new = cat.encode({"method": ["GET", "POST", "TRACE"]}, learn=False)
    >>> cat.surprise(new).round(1).tolist()
    [0.2, 2.4, 6.1]
    >>> cat.explain({"method": "TRACE"}, np.ones(1))
    [{'field': 'method', 'value': 'TRACE', 'probability': 0.0022...}]
    """

    def __init__(self, fields: Sequence[str], n_components: int, *, top: int = 50,
                 alpha: float = 0.25, half_life: float = 50_000.0) -> None:
        if not fields or len(set(fields)) != len(fields):
            raise ValueError(f"fields {list(fields)!r}: give distinct field names")
        if n_components < 1 or top < 1 or not alpha > 0 or not half_life > 0:
            raise ValueError("n_components and top must be >= 1, alpha and half_life > 0")
        self.fields = tuple(fields)
        self.top, self.alpha, self.half_life = int(top), float(alpha), float(half_life)
        self.counts = [np.zeros((n_components, self.top + 1)) for _ in self.fields]
        self.vocab: list[dict[str, int]] = [{} for _ in self.fields]

    @property
    def n_components(self) -> int:
        return self.counts[0].shape[0]

    def encode(self, columns: Mapping[str, Sequence[Any]], *, learn: bool) -> NDArray[np.int64]:
        """Slot codes, shape (n, n_fields); with ``learn`` a new value takes a free slot.

        A value without a slot (not learned, or the slots are full) is coded ``other``
        when the slots are full, else as a free slot (zero counts: the prior's mass only).
        """
        n = len(columns[self.fields[0]]) if self.fields[0] in columns else 0
        out = np.empty((n, len(self.fields)), dtype=np.int64)
        for f, name in enumerate(self.fields):
            texts = [_text(v) for v in columns.get(name, [None] * n)]
            vocab = self.vocab[f]
            if learn:
                for v in dict.fromkeys(texts):  # distinct values, first appearance first
                    if v not in vocab and len(vocab) < self.top:
                        vocab[v] = len(vocab)
            free = len(vocab) if len(vocab) < self.top else self.top
            out[:, f] = [vocab.get(v, free) for v in texts]
        return out

    def log_prob(self, codes: NDArray[np.int64]) -> Array:
        """:func:`log_categorical` of the codes, shape (n, n_components)."""
        return log_categorical(self.counts, codes, self.alpha)

    def learn(self, codes: NDArray[np.int64], resp: Array) -> None:
        """The M-step: add responsibilities ``resp`` (n, n_components) to the counts."""
        accumulate(self.counts, codes, np.asarray(resp, dtype=np.float64), self.half_life)

    def surprise(self, codes: NDArray[np.int64], log_gauss: Array | None = None,
                 log_weights: Array | None = None) -> Array:
        """Joint surprise (nats); without a Gaussian part, of the categorical fields alone
        with the components weighted by their share of the counts."""
        k = self.n_components
        lg = np.zeros((codes.shape[0], k)) if log_gauss is None else log_gauss
        if log_weights is None:
            mass = self.counts[0].sum(axis=1) + 1e-12
            log_weights = np.log(mass / mass.sum())
        return joint_posterior(lg, log_weights, self.log_prob(codes))[1]

    def explain(self, record: Mapping[str, Any], resp: Array) -> list[dict[str, Any]]:
        """For each field of one event: its value and ``sum_k resp_k p(value | k)`` (resp of
        shape (n_components,)), least probable first."""
        codes = self.encode({f: [record.get(f)] for f in self.fields}, learn=False)[0]
        r = np.asarray(resp, dtype=np.float64).reshape(-1)
        out = []
        for f, c in enumerate(self.counts):
            p = (c + self.alpha) / (c.sum(axis=1, keepdims=True) + self.alpha * c.shape[1])
            out.append({"field": self.fields[f], "value": _text(record.get(self.fields[f])),
                        "probability": float(r @ p[:, int(codes[f])])})
        return sorted(out, key=lambda e: e["probability"])

    def to_state(self) -> dict[str, Any]:
        """Versioned plain JSON: settings, vocabularies (values by slot) and counts."""
        return {"version": STATE_VERSION, "kind": "categoricals", "fields": list(self.fields),
                "top": self.top, "alpha": self.alpha, "half_life": self.half_life,
                "vocab": [list(v) for v in self.vocab],
                "counts": [c.tolist() for c in self.counts]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Categoricals:
        """Rebuild from :meth:`to_state` (a ``StateError`` names any defect)."""
        r = StateReader.of(state, "categoricals", version=STATE_VERSION, kind="categoricals")
        with r.guard():
            fields = [str(f) for f in r["fields"]]
            counts = [np.asarray(c, dtype=np.float64) for c in r["counts"]]
            k = counts[0].shape[0] if counts else 0
            obj = cls(fields, k, top=r.integer("top"), alpha=r.number("alpha"),
                      half_life=r.number("half_life"))
            if len(counts) != len(fields) or any(
                    c.shape != (k, obj.top + 1) or not np.isfinite(c).all() or (c < 0).any()
                    for c in counts):
                raise r.error("'counts' do not match the fields, top and components")
            vocabs = [[str(v) for v in vals] for vals in r["vocab"]]
            if len(vocabs) != len(fields) or any(len(v) > obj.top or len(set(v)) != len(v)
                                                 for v in vocabs):
                raise r.error("'vocab' does not match the fields and top")
            obj.counts = counts
            obj.vocab = [{v: i for i, v in enumerate(vals)} for vals in vocabs]
        return obj
