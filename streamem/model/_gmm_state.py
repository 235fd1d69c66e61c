"""Snapshot (de)serialisation of :class:`~streamem.model.gmm.OnlineGMM` (plain data only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem.model._gaussian import precision_cholesky
from streamem.model._versioned import StateReader

if TYPE_CHECKING:
    from streamem.model.gmm import OnlineGMM

__all__ = ["PARAMS", "STATE_VERSION", "dump_state", "load_state"]

STATE_VERSION = 1
#: Constructor parameters stored in (and restored from) a snapshot.
PARAMS = (
    "n_components", "covariance_type", "half_life", "reg_covar", "max_components",
    "n_warmup", "n_init", "max_iter", "tol", "prior_strength", "rho_max",
    "refresh_every", "reservoir_size", "random_state",
)


def dump_state(m: OnlineGMM) -> dict[str, Any]:
    """Everything ``m`` needs to continue exactly: plain arrays and scalars, versioned.

    Parameters
    ----------
    m
        The model.

    Returns
    -------
    dict
        See :meth:`OnlineGMM.to_state`.

    Examples
    --------
    >>> from streamem.model.gmm import OnlineGMM
    >>> dump_state(OnlineGMM(n_components=2))["fitted"]
    False
    """
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "params": {p: getattr(m, p) for p in PARAMS},
        "rng": m._rng.bit_generator.state,
        "fitted": m._fitted,
        "n_features_in": m.n_features_in_,
        "n_seen": m.n_seen_,
        "n_reseeds": m.n_reseeds_,
        "generation": m.generation_,
        "var_floor": np.asarray(m._var_floor, dtype=float).copy(),
    }
    if m._forget.in_time:  # a half-life in events has no clock (and keeps the 0.1 layout)
        state["forgetting"] = m._forget.to_state()
    if not m._fitted:
        state["buffer"] = np.vstack(m._buffer) if m._buffer else np.empty((0, 0))
        return state
    state.update(
        s0=m._s0.copy(), mu=m._mu.copy(), C=m._C.copy(), n0=m.n0_,
        pending=m._pending, prior_cov=m._prior_cov.copy(), kappa=m._kappa,
        reservoir=m._reservoir.copy(), reservoir_offered=m._reservoir_offered,
        converged=m.converged_,
        # scoring parameters may lag the statistics by up to refresh_every events
        weights=m.weights_.copy(), means=m.means_.copy(),
        covariances=m.covariances_.copy(),
    )
    return state


def load_state(m: OnlineGMM, state: Mapping[str, Any]) -> None:
    """Restore ``state`` (from :func:`dump_state`) into ``m``, a model built from its params.

    Parameters
    ----------
    m
        A fresh model constructed with ``state["params"]``.
    state
        The snapshot.

    Raises
    ------
    StateError
        Missing keys or inconsistent shapes.

    Examples
    --------
    >>> from streamem.model.gmm import OnlineGMM
    >>> m = OnlineGMM(n_components=2, random_state=0)
    >>> load_state(m, dump_state(OnlineGMM(n_components=2, random_state=0)))
    >>> m.is_fitted
    False
    """
    r = StateReader.of(state, "OnlineGMM")
    with r.guard():
        m._rng.bit_generator.state = r["rng"]
        m.n_features_in_ = r["n_features_in"]
        m.n_seen_ = r.integer("n_seen")
        m.n_reseeds_ = r.integer("n_reseeds")
        floor = r.array("var_floor", default=0.0)
        m._var_floor = floor if floor.ndim else float(floor)
        m._forget.load_state(r.get("forgetting"))  # absent: written before event time
        if not r.flag("fitted"):
            buf = r.array("buffer")
            m._buffer = [buf] if buf.size else []
            m.generation_ = r.integer("generation")
            return
        d = r.integer("n_features_in")
        m._s0 = r.array("s0")
        k = len(m._s0)
        cov = (k, d, d) if m.covariance_type == "full" else (k, d)
        m._mu = r.shaped("mu", (k, d))
        m._C = r.shaped("C", cov)
        m.n0_ = r.number("n0")
        m._prior_cov = r.shaped("prior_cov", cov[1:])
        m._kappa = r.number("kappa")
        m._reservoir = r.array("reservoir")
        m._reservoir_offered = r.integer("reservoir_offered")
        m.converged_ = r.flag("converged")
        m.n_components_ = k
        m._fitted = True
        m.weights_ = r.shaped("weights", (k,))
        m.means_ = r.shaped("means", (k, d))
        m.covariances_ = r.shaped("covariances", cov)
        m.precisions_cholesky_ = precision_cholesky(
            m.covariances_, m.covariance_type, m.reg_covar
        )
        m._rescore()
        m._pending = r.integer("pending")
        m.generation_ = r.integer("generation")
