"""A frozen robust scaler, ``z = (x - median) / scale``, NaN-aware, safe for discrete and
constant features (the scale has a floor from each feature's resolution)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._versioned import StateReader

__all__ = ["RobustScaler", "resolution"]

Array = NDArray[np.float64]


def resolution(X: Array) -> Array:
    """Smallest nonzero gap between two distinct values of each feature (NaN: none seen).

    Parameters
    ----------
    X
        Shape (n_samples, n_features); NaN entries are ignored.

    Returns
    -------
    ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> resolution(np.array([[0.0, 5.0, 1.0], [0.5, 5.0, np.nan], [2.0, 5.0, np.nan]])).tolist()
    [0.5, nan, nan]
    """
    if X.shape[0] < 2:
        return np.full(X.shape[1], np.nan)
    return _min_gap(np.sort(X.T, axis=1))  # NaN sorts last; its gaps are NaN, ignored


def _min_gap(S: Array) -> Array:
    """Smallest positive difference along the rows of row-sorted ``S`` (NaN: none)."""
    gaps = np.diff(S, axis=1)
    gaps[~(gaps > 0)] = np.inf
    out: Array = gaps.min(axis=1)
    out[~np.isfinite(out)] = np.nan
    return out


class RobustScaler:
    """Median/MAD scaler fitted on warm-up data and then frozen.

    The scale of a feature is its spread with a floor from its *resolution*, the smallest
    nonzero gap between two distinct values seen:

    ``scale = max(1.4826 MAD, resolution)``, with the standard deviation instead of the
    MAD when the MAD is zero (more than half the values tie at the median).

    So a discrete feature (counts, levels, flags: a handful of distinct values) is measured
    in steps of at least one resolution and neither dominates the score (a spread of almost
    zero would make every change huge) nor vanishes. A constant feature (no gap seen) gets
    ``max(|value|, 1)``: a change by that much is one unit; the model keeps a nonzero
    variance for it (its prior), so it adds a finite "has it changed" term to the score and
    never makes a covariance singular.

    Examples
    --------
    >>> import numpy as np
    >>> s = RobustScaler().fit(np.array([[1.0, 10.0], [2.0, 10.0], [3.0, np.nan]]))
    >>> s.transform(np.array([[2.0, 10.0]])).tolist()
    [[0.0, 0.0]]
    >>> s.scale_.tolist()   # the constant feature: max(|10|, 1)
    [1.4826, 10.0]
    >>> flags = np.zeros((100, 1)); flags[::20] = 1.0      # a rare 0/1 flag: MAD 0, std 0.22
    >>> RobustScaler().fit(flags).scale_.tolist()           # floored at its resolution, 1
    [1.0]
    """

    def __init__(self) -> None:
        self.center_: Array = np.zeros(0)
        self.scale_: Array = np.ones(0)
        self.resolution_: Array = np.zeros(0)
        self._tile_key: tuple[int, bytes, bytes] | None = None
        self._tile: tuple[Array, Array] = (self.center_, self.scale_)
        self._log_key: bytes | None = None
        self._log: Array = np.zeros(0)
        self._log_sum = 0.0

    def fit(self, X: Array) -> RobustScaler:
        """Fit the medians and scales; NaN entries are ignored.

        Parameters
        ----------
        X
            Shape (n_samples, n_features). A feature never observed gets centre 0, scale 1.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> s = RobustScaler().fit(np.array([[1.0, np.nan], [3.0, np.nan], [5.0, np.nan]]))
        >>> s.center_.tolist(), np.round(s.scale_, 3).tolist()
        ([3.0, 0.0], [2.965, 1.0])
        """
        if X.shape[0] and not np.isnan(X).any():
            # one sort per feature (rows contiguous) gives the median and the resolution
            S = np.sort(X.T, axis=1)
            n = S.shape[1]
            center = 0.5 * (S[:, (n - 1) // 2] + S[:, n // 2])
            mad = 1.4826 * np.median(np.abs(S - center[:, None]), axis=1)
            std = X.std(axis=0)
            res = _min_gap(S) if n > 1 else np.full(X.shape[1], np.nan)
        else:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                center = np.nanmedian(X, axis=0)
                mad = 1.4826 * np.nanmedian(np.abs(X - center), axis=0)
                std = np.nanstd(X, axis=0)
            res = resolution(X)
        center = np.where(np.isfinite(center), center, 0.0)
        tiny = 1e-9 * np.maximum(np.abs(center), 1.0)
        spread = np.where(np.isfinite(mad) & (mad > tiny), mad, std)
        spread = np.where(np.isfinite(spread), spread, 0.0)
        constant = ~(res > tiny)  # no gap seen (NaN: a single value or none at all)
        scale = np.maximum(spread, np.where(constant, 0.0, res))
        scale = np.where(constant, np.maximum(np.abs(center), 1.0), scale)
        self.center_, self.scale_ = center, scale
        self.resolution_ = np.where(constant, np.nan, res)
        return self

    def variance_floor(self) -> Array:
        """Quantisation variance of each feature in scaled units, ``(resolution/scale)^2/12``.

        The variance of rounding to the feature's resolution; a model that gives a feature
        less than this treats a one-step change as more surprising than the data can
        justify. A constant feature counts as quantised at its scale (1/12); a continuous
        one has a negligible floor.

        Returns
        -------
        ndarray of shape (n_features,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.column_stack([np.arange(100.0) % 2, np.full(100, 3.0)])
        >>> np.round(RobustScaler().fit(X).variance_floor(), 4).tolist()
        [0.0833, 0.0833]
        """
        res = np.where(np.isfinite(self.resolution_), self.resolution_, self.scale_)
        out: Array = (np.minimum(res, self.scale_) / self.scale_) ** 2 / 12.0
        return out

    def transform(self, X: Array) -> Array:
        """Scaled copy of ``X``.

        Parameters
        ----------
        X
            Shape (n_samples, n_features), original units.

        Returns
        -------
        ndarray of shape (n_samples, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> s = RobustScaler().fit(np.array([[0.0], [1.0], [2.0]]))
        >>> np.round(s.transform(np.array([[2.0]])), 3).tolist()
        [[0.674]]
        """
        n = X.shape[0] if X.ndim == 2 else 0
        if n >= 16 and X.flags.c_contiguous and X.shape[1] == len(self.center_):
            # flat, contiguous operands: numpy's broadcast over a short row is 2-4x slower
            center, scale = self._tiled(n)
            flat: Array = np.subtract(X.reshape(-1), center)
            flat /= scale
            return flat.reshape(X.shape)
        out: Array = np.subtract(X, self.center_)
        out /= self.scale_
        return out

    def log_scale(self) -> Array:
        """``log(scale_)`` (cached for the current ``scale_``).

        Returns
        -------
        ndarray of shape (n_features,)

        Examples
        --------
        >>> import numpy as np
        >>> RobustScaler.from_state({"center": np.zeros(2), "scale": np.array([1.0, np.e])}
        ...                         ).log_scale().tolist()
        [0.0, 1.0]
        """
        key = self.scale_.tobytes()
        if self._log_key != key:
            self._log = np.log(self.scale_)
            self._log_sum = float(self._log.sum())
            self._log_key = key
        return self._log

    def log_scale_sum(self) -> float:
        """``log(scale_).sum()``: the log-Jacobian of the scaling for a complete row.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> RobustScaler.from_state({"center": np.zeros(2), "scale": np.full(2, np.e)}
        ...                         ).log_scale_sum()
        2.0
        """
        self.log_scale()
        return self._log_sum

    def _tiled(self, n: int) -> tuple[Array, Array]:
        """``center_`` and ``scale_`` repeated ``n`` times (cached for the last ``n``)."""
        key = (n, self.center_.tobytes(), self.scale_.tobytes())
        if self._tile_key != key:
            self._tile = (np.tile(self.center_, n), np.tile(self.scale_, n))
            self._tile_key = key
        return self._tile

    def inverse_transform(self, Z: Array) -> Array:
        """Back to original units.

        Parameters
        ----------
        Z
            Shape (n_samples, n_features), scaled units.

        Returns
        -------
        ndarray of shape (n_samples, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> s = RobustScaler().fit(np.array([[0.0], [1.0], [2.0]]))
        >>> s.inverse_transform(s.transform(np.array([[7.0]]))).tolist()
        [[7.0]]
        """
        out: Array = Z * self.scale_ + self.center_
        return out

    def to_state(self) -> dict[str, Any]:
        """Plain arrays.

        Examples
        --------
        >>> sorted(RobustScaler().to_state())
        ['center', 'resolution', 'scale']
        """
        return {"center": self.center_.copy(), "scale": self.scale_.copy(),
                "resolution": self.resolution_.copy()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RobustScaler:
        """Rebuild from :meth:`to_state` (a defect raises :class:`~streamem.StateError`).

        Examples
        --------
        >>> import numpy as np
        >>> s = RobustScaler().fit(np.array([[0.0], [2.0]]))
        >>> RobustScaler.from_state(s.to_state()).center_.tolist()
        [1.0]
        """
        r = StateReader.of(state, "RobustScaler")
        with r.guard():
            s = cls()
            s.center_ = r.array("center")
            s.scale_ = r.array("scale")
            # older snapshots: no resolution known, every feature counts as continuous
            s.resolution_ = r.array("resolution", default=np.zeros_like(s.scale_))
            return s
