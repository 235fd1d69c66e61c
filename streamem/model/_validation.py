"""Input validation shared by the model and the detector."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._numeric import amax, amin

__all__ = ["MAX_ABS", "check_array", "check_gmm_params"]

Array = NDArray[np.float64]
#: Largest magnitude accepted (squares must not overflow float64).
MAX_ABS = 1e100
_MAX_ABS = MAX_ABS


def check_array(X: ArrayLike, n_features: int | None) -> Array:
    """Validate a batch: 2-D float, no ±inf, no all-NaN row, the right width.

    Parameters
    ----------
    X
        Shape (n_samples, n_features); a 1-D input is one row (or one column when
        ``n_features`` is 1).
    n_features
        Expected width, or None before the first batch.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64

    Raises
    ------
    InvalidInputError
        With the offending row index and the fix.

    Examples
    --------
    >>> check_array([[1.0, 2.0]], 2).shape
    (1, 2)
    >>> check_array([[1.0, 2.0], [float("nan"), float("nan")]], 2)
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: row 1 has every feature missing; drop it before scoring
    """
    if getattr(getattr(X, "dtype", None), "kind", "") == "c":
        raise InvalidInputError("Complex data not supported; pass real numbers (X.real or abs(X))")
    try:
        A = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        if type(X).__module__.startswith("scipy.sparse"):
            raise InvalidInputError(
                "sparse input is not supported; pass a dense array (X.toarray())"
            ) from exc
        raise InvalidInputError(f"X must be numeric, got {type(X).__name__}: {exc}") from exc
    if A.ndim == 1:
        A = A[None, :] if n_features is None or A.shape[0] == n_features else A[:, None]
    if A.ndim != 2:
        raise InvalidInputError(f"X must have shape (n_samples, n_features), got {A.shape}")
    if A.shape[1] == 0 and A.shape[0]:
        raise InvalidInputError(
            f"X has 0 feature(s) (shape={A.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and A.shape[1] != n_features:
        raise InvalidInputError(
            f"X has {A.shape[1]} features, but streamem is expecting {n_features} features "
            "as input (the width it learned); send the same features in the same order"
        )
    if A.size and amax(A, axis=None) <= _MAX_ABS and amin(A, axis=None) >= -_MAX_ABS:
        return A  # fast path: finite, in range, so no NaN row either (NaN fails both tests)
    finite_or_nan = np.isfinite(A) | np.isnan(A)
    if not finite_or_nan.all():
        row = int(np.flatnonzero(~finite_or_nan.all(axis=1))[0])
        raise InvalidInputError(
            f"row {row} contains ±inf ({A[row].tolist()}); replace it by NaN to mark it missing"
        )
    if A.size and np.nanmax(np.abs(A), initial=0.0) > _MAX_ABS:
        raise InvalidInputError(f"values above {_MAX_ABS:g} in magnitude; rescale the data")
    if A.shape[0] and np.isnan(A).all(axis=1).any():
        row = int(np.flatnonzero(np.isnan(A).all(axis=1))[0])
        raise InvalidInputError(f"row {row} has every feature missing; drop it before scoring")
    return A


def check_gmm_params(m: Any) -> None:
    """Validate the constructor arguments of an :class:`~streamem.OnlineGMM`.

    Raises
    ------
    InvalidInputError
        The first invalid value, named with a fix.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> check_gmm_params(SimpleNamespace(n_components=0, covariance_type="full"))
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: n_components=0 is invalid; use a positive integer or "auto"
    """

    def bad(name: str, value: object, fix: str) -> InvalidInputError:
        return InvalidInputError(f"{name}={value!r} is invalid; {fix}")

    if m.n_components != "auto" and (not isinstance(m.n_components, int) or m.n_components < 1):
        raise bad("n_components", m.n_components, 'use a positive integer or "auto"')
    if m.covariance_type not in ("full", "diag"):
        raise bad("covariance_type", m.covariance_type, 'use "full" or "diag"')
    if isinstance(m.half_life, str):
        from streamem.model._forgetting import check_half_life  # a duration in event time

        check_half_life(m.half_life)
    elif not m.half_life > 0:
        raise bad("half_life", m.half_life, "use a positive number of events or a duration "
                  "in event time ('7d')")
    if not m.reg_covar >= 0:
        raise bad("reg_covar", m.reg_covar, "use a non-negative float such as 1e-6")
    if m.n_warmup < 2:
        raise bad("n_warmup", m.n_warmup, "use at least 2 (ideally 10x the parameters)")
    if not 0 < m.rho_max <= 1:
        raise bad("rho_max", m.rho_max, "use a value in (0, 1]")
