"""Learning an operator's "false positive": the flagged pattern becomes a small known mode.

:func:`learn_false_positive` adds one component to the detector's mixture, centred on the
event (in the model's scaled units) with the covariance of the component that explains it
best, at mixture weight ``weight``; the existing components share ``1 - weight``. The mixture
is then merged back to its size limit, cheapest pair first
(:func:`streamem.model._lifecycle.merge_components`), so the event's neighbourhood stays
explained either way. The events scored but not learned yet are learned first (their
responsibilities are over the old components). Like any other component its weight decays
when the pattern does not come back. Pure numpy; changes the detector in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from streamem.errors import InvalidInputError, NotFittedError
from streamem.model._lifecycle import merge_components
from streamem.model._validation import check_array

if TYPE_CHECKING:
    from streamem.scoring.detector import Detector

__all__ = ["learn_false_positive"]


def learn_false_positive(det: Detector, x: ArrayLike, weight: float) -> None:
    """Teach ``det`` that event ``x`` is normal, at mixture weight ``weight``.

    Parameters
    ----------
    det
        A detector past its warm-up (changed in place).
    x
        One event, shape (n_features,), original units; NaN = missing (filled from the
        component that explains the observed features best).
    weight
        The new mode's share of the mixture, in (0, 0.5).

    Raises
    ------
    NotFittedError
        The detector is still warming up (nothing to add a mode to yet).
    InvalidInputError
        ``weight`` outside (0, 0.5), or ``x`` of the wrong width or not finite.

    Examples
    --------
    >>> from streamem import Detector
    >>> rng = np.random.default_rng(0)
    >>> det = Detector(warmup=500, random_state=0)
    >>> _ = det.process(rng.normal(size=(1000, 3)))
    >>> x = np.array([4.0, -4.0, 4.0])
    >>> bool(det.process(x[None]).is_anomaly[0])
    True
    >>> learn_false_positive(det, x, weight=0.02)
    >>> bool(det.process(x[None]).is_anomaly[0]), bool(det.process(-x[None]).is_anomaly[0])
    (False, True)
    """
    if not 0.0 < weight < 0.5:
        raise InvalidInputError(f"weight={weight!r} must be in (0, 0.5); try 0.02")
    if not det.ready_:
        raise NotFittedError("the detector is still warming up; a false positive can be "
                             "learned once the mixture is fitted")
    A = check_array(np.asarray(x, dtype=float).reshape(1, -1), det.n_features_in_)
    det._flush()  # the events waiting to be learned were scored with the old components
    if det.baseline_ is not None:
        A = det.baseline_.transform(A, update=False)
    z = det.scaler_.transform(A)[0]
    m = det.model_
    _, log_resp, _, _ = m._estimate(z[None, :])
    k = int(np.argmax(log_resp[0]))
    missing = np.isnan(z)
    if missing.any():
        z = np.where(missing, m._mu[k], z)
    s0 = np.append((1.0 - weight) * m._s0, weight)
    mu = np.vstack([m._mu, z[None, :]])
    C = np.concatenate([m._C, m._C[k][None]])
    s0, mu, C = merge_components(s0, mu, C, max(m.max_components, m.n_components_))
    m._s0, m._mu, m._C = s0 / s0.sum(), mu, C
    m.n_components_ = len(s0)
    m._refresh()
