"""A frozen robust scaler: ``z = (x - median) / (1.4826 MAD)``, NaN-aware."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["RobustScaler"]

Array = NDArray[np.float64]


class RobustScaler:
    """Median/MAD scaler fitted once on warm-up data and then frozen.

    A feature with zero MAD falls back to its standard deviation, then to 1, so constant
    features cannot make the model hypersensitive.

    Examples
    --------
    >>> import numpy as np
    >>> s = RobustScaler().fit(np.array([[1.0, 10.0], [2.0, 10.0], [3.0, np.nan]]))
    >>> s.transform(np.array([[2.0, 10.0]])).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self) -> None:
        self.center_: Array = np.zeros(0)
        self.scale_: Array = np.ones(0)

    def fit(self, X: Array) -> RobustScaler:
        """Fit on X of shape (n_samples, n_features); NaN entries are ignored."""
        with np.errstate(all="ignore"):
            center = np.nanmedian(X, axis=0)
            mad = 1.4826 * np.nanmedian(np.abs(X - center), axis=0)
            std = np.nanstd(X, axis=0)
        center = np.where(np.isfinite(center), center, 0.0)
        floor = 1e-9 * np.maximum(np.abs(center), 1.0)
        scale = np.where(np.isfinite(mad) & (mad > floor), mad, std)
        scale = np.where(np.isfinite(scale) & (scale > floor), scale, 1.0)
        self.center_, self.scale_ = center, scale
        return self

    def transform(self, X: Array) -> Array:
        """Scaled copy of X, shape (n_samples, n_features)."""
        out: Array = (X - self.center_) / self.scale_
        return out

    def inverse_transform(self, Z: Array) -> Array:
        """Back to original units."""
        out: Array = Z * self.scale_ + self.center_
        return out

    def to_state(self) -> dict[str, Any]:
        """Plain arrays."""
        return {"center": self.center_.copy(), "scale": self.scale_.copy()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RobustScaler:
        """Rebuild from :meth:`to_state`."""
        s = cls()
        s.center_ = np.asarray(state["center"], dtype=float)
        s.scale_ = np.asarray(state["scale"], dtype=float)
        return s
