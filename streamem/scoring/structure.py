"""Covariance structure and mixture size for the warm-up data: BIC over the feasible ones.

``covariance_type="auto"`` fits the mixture with each candidate structure (K by BIC inside
each) and keeps the lowest BIC, ``-2 log L + p log n`` with ``p`` the free parameters. A full
covariance is a candidate only when one full component has fewer free parameters than there
are events, ``d (d + 3) / 2 + 1 <= n``: below that its maximum-likelihood covariance is
singular, the fit is the prior's and BIC cannot compare it. When the full structure is ruled
out that way, d is large for the data seen, and a warning names the structure chosen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from streamem.model._init import n_parameters
from streamem.model.gmm import OnlineGMM

__all__ = ["choose_mixture", "full_feasible"]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]


def full_feasible(n: int, d: int) -> bool:
    """Whether ``n`` events can support one full-covariance component in ``d`` dimensions.

    Parameters
    ----------
    n, d
        Events and features.

    Returns
    -------
    bool

    Examples
    --------
    >>> full_feasible(1000, 36), full_feasible(1000, 44), full_feasible(1000, 1555)
    (True, False, False)
    """
    return d * (d + 3) // 2 + 1 <= n


def bic(model: OnlineGMM, Z: Array) -> float:
    """BIC of a fitted mixture on its warm-up data (lower is better).

    Parameters
    ----------
    model
        Fitted.
    Z
        The data it was fitted to, shape (n_samples, n_features).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.random.default_rng(0).normal(size=(300, 2))
    >>> m = OnlineGMM(n_components=1, n_warmup=300, random_state=0).partial_fit(Z)
    >>> bool(bic(m, Z) > 0)
    True
    """
    n, d = Z.shape
    p = n_parameters(model.n_components_, d, model.covariance_type)
    return float(-2.0 * model.score_samples(Z).sum() + p * math.log(n))


def choose_mixture(
    Z: Array, requested: str, make: Callable[[str], OnlineGMM]
) -> OnlineGMM:
    """Fit the warm-up mixture with the requested or the BIC-chosen covariance structure.

    Parameters
    ----------
    Z
        Scaled warm-up events, shape (n_samples, n_features); NaN = missing.
    requested
        ``"full"``, ``"diag"`` or ``"auto"`` (see the module doc).
    make
        Builds an unfitted model for a structure (same seed every time: reproducible).

    Returns
    -------
    OnlineGMM
        Fitted to ``Z``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(400, 3)) @ np.array([[1, 0.9, 0.9], [0, 0.3, 0], [0, 0, 0.3]])
    >>> make = lambda ct: OnlineGMM(covariance_type=ct, n_warmup=400, random_state=0)
    >>> choose_mixture(Z, "auto", make).covariance_type   # correlated: full wins
    'full'
    >>> choose_mixture(rng.normal(size=(400, 40)), "auto", make).covariance_type
    'diag'
    """
    n, d = Z.shape
    if requested != "auto":
        return make(requested).partial_fit(Z)
    feasible = full_feasible(n, d)
    best: tuple[float, OnlineGMM] | None = None
    for ct in ("full", "diag") if feasible else ("diag",):
        m = make(ct).partial_fit(Z)
        score = bic(m, Z)
        if best is None or score < best[0]:
            best = (score, m)
    assert best is not None
    model = best[1]
    if not feasible:
        logger.warning(
            "%d features with %d warm-up events: a full covariance needs %d parameters per "
            "component, more than the events; chose %s covariances with K=%d by BIC",
            d, n, d * (d + 3) // 2, "diagonal" if model.covariance_type == "diag" else
            model.covariance_type, model.n_components_,
        )
    else:
        logger.info("warm-up mixture: %s covariances, K=%d (BIC)", model.covariance_type,
                    model.n_components_)
    return model
