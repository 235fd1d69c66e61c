"""Scoring a batch with the fitted mixture: log-likelihood scores and (smoothed) surprises.

The surprise of an event is ``u = -log10(tail probability)`` under the mixture (the
chi-square mixture bound, :mod:`streamem.model._tail`), optionally averaged over the last
``smooth_window`` events; the score is the negative log-likelihood in original units
(the scaling's log-Jacobian over the observed features added back).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._numeric import LN10, has_nan
from streamem.model.gmm import OnlineGMM
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.smoothing import SurpriseSmoother

__all__ = ["score_batch"]

Array = NDArray[np.float64]


def score_batch(A: Array, model: OnlineGMM, scaler: RobustScaler,
                baseline: SlowBaseline | None, smoother: SurpriseSmoother
                ) -> tuple[Array, Array, Array, Array]:
    """Score events (original units, NaN = missing) with a fitted mixture.

    The baseline (when given) and the smoother carry state across batches and are updated.

    Parameters
    ----------
    A
        Shape (n_samples, n_features).
    model
        Fitted, in scaled units.
    scaler
        Fitted.
    baseline
        Moving baselines of slow features, or None.
    smoother
        Trailing mean of surprises (inactive with a window of 1).

    Returns
    -------
    Z
        Shape (n, n_features): the events in scaled units (residuals for slow features).
    log_resp
        Shape (n, n_components): log responsibilities.
    surprise
        Shape (n,): ``-log10`` tail probability, smoothed when asked.
    scores
        Shape (n,): negative log-likelihood in original units.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sc = RobustScaler().fit(rng.normal(size=(300, 2)))
    >>> m = OnlineGMM(n_components=1, n_warmup=300, random_state=0)
    >>> _ = m.partial_fit(sc.transform(rng.normal(size=(300, 2))))
    >>> _, _, u, s = score_batch(np.array([[0.0, 0.0], [6.0, 6.0]]), m, sc, None,
    ...                          SurpriseSmoother(1))
    >>> bool(u[1] > 5 > 1 > u[0]), bool(s[1] > s[0])
    (True, True)
    """
    if baseline is not None:
        A = baseline.transform(A)
    nan = has_nan(A)
    Z = scaler.transform(A)
    lpn, log_resp, log_tail = model._estimate_tail(Z, not nan)
    u = -log_tail / LN10
    if smoother.active:
        u = smoother(u)
    observed_log_scale = (~np.isnan(A)) @ scaler.log_scale() if nan else scaler.log_scale_sum()
    return Z, log_resp, u, observed_log_scale - lpn
