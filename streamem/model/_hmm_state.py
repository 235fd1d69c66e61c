"""Snapshot (de)serialisation of :class:`~streamem.model.hmm.OnlineHMM` (plain data only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem.model._versioned import StateReader

if TYPE_CHECKING:
    from streamem.model.hmm import OnlineHMM

__all__ = ["PARAMS", "STATE_VERSION", "dump_state", "load_state"]

STATE_VERSION = 1
KIND = "online_hmm"
#: Constructor parameters stored in (and restored from) a snapshot.
PARAMS = ("n_components", "half_life", "reg_covar", "n_warmup", "transition_prior", "block",
          "random_state")


def dump_state(m: OnlineHMM) -> dict[str, Any]:
    """Everything ``m`` needs to continue exactly: lists and scalars, JSON-ready, versioned.

    Parameters
    ----------
    m
        The model.

    Returns
    -------
    dict
        ``version``, ``kind``, ``params``, counters and, once fitted, the parameters, the
        decayed statistics and the carried filter; before that, the warm-up buffer.

    Examples
    --------
    >>> from streamem.model.hmm import OnlineHMM
    >>> s = dump_state(OnlineHMM(n_components=2))
    >>> s["kind"], s["fitted"], s["buffer"]
    ('online_hmm', False, [])
    """
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "kind": KIND,
        "params": {p: getattr(m, p) for p in PARAMS},
        "fitted": m._fitted,
        "n_features_in": m.n_features_in_,
        "n_seen": m.n_seen_,
        "clock": m._clock,
    }
    if not m._fitted:
        buf = np.vstack(m._buffer) if m._buffer else np.empty((0, 0))
        ts = np.concatenate(m._buffer_ts) if m._buffer_ts else np.empty(0)
        state["buffer"] = buf.tolist()
        state["buffer_ts"] = ts.tolist()
        return state
    state.update(
        means=m.means_.tolist(), covariances=m.covariances_.tolist(),
        transmat=m.transmat_.tolist(), shift=m._shift.tolist(),
        s0=m._s0.tolist(), sx=m._sx.tolist(), sxx=m._sxx.tolist(), xi=m._xi.tolist(),
        prev=None if m._prev is None else m._prev.tolist(),
    )
    return state


def load_state(cls: type[OnlineHMM], state: Mapping[str, Any]) -> OnlineHMM:
    """A model of class ``cls`` continuing from ``state`` (from :func:`dump_state`).

    Parameters
    ----------
    cls
        :class:`~streamem.model.hmm.OnlineHMM` or a subclass.
    state
        The snapshot, possibly decoded from JSON.

    Returns
    -------
    OnlineHMM

    Raises
    ------
    StateError
        Another version or kind, missing keys or inconsistent shapes.

    Examples
    --------
    >>> from streamem.model.hmm import OnlineHMM
    >>> load_state(OnlineHMM, {"version": 1, "kind": "online_gmm"})
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: OnlineHMM state has kind 'online_gmm', expected 'online_hmm'; ...
    """
    r = StateReader.of(state, "OnlineHMM", version=STATE_VERSION, kind=KIND)
    with r.guard():
        m = cls(**dict(r.sub("params")))
    nf = r.get("n_features_in")
    m.n_features_in_ = None if nf is None else r.integer("n_features_in")
    m.n_seen_ = r.integer("n_seen")
    m._clock = r.number("clock")
    if not r.flag("fitted"):
        buf = r.array("buffer")
        m._buffer = [buf.reshape(-1, m.n_features_in_ or 0)] if buf.size else []
        m._buffer_ts = [r.array("buffer_ts")] if buf.size else []
        return m
    d = m.n_features_in_ or 0
    K = m.n_components
    m._shift = r.shaped("shift", (d,))
    m._s0 = r.shaped("s0", (K,))
    m._sx = r.shaped("sx", (K, d))
    m._sxx = r.shaped("sxx", (K, d, d))
    m._xi = r.shaped("xi", (K, K))
    m._prev = None if r.get("prev") is None else r.shaped("prev", (K,))
    with r.guard():
        m._set(r.shaped("means", (K, d)), r.shaped("covariances", (K, d, d)),
               r.shaped("transmat", (K, K)))
    m._fitted = True
    return m
