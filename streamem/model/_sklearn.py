"""scikit-learn's estimator conventions for :class:`~streamem.OnlineGMM`, duck-typed.

scikit-learn finds what it needs by name: ``get_params``/``set_params`` (read from the
``__init__`` signature, as ``sklearn.base.BaseEstimator`` does), ``fit``, ``score_samples``,
``predict_proba``, ``score``, ``predict``,
``__sklearn_is_fitted__`` and ``__sklearn_tags__``. This mixin provides them without
importing scikit-learn, so the model keeps to numpy and scipy: ``__sklearn_tags__`` is only
ever called by scikit-learn itself and takes its ``Tags`` classes from the already imported
``sklearn.utils`` module.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._validation import check_array

__all__ = ["SklearnEstimatorMixin"]


class SklearnEstimatorMixin:
    """scikit-learn's API of a density model: ``get_params``, ``set_params``, ``fit``,
    ``score_samples``, ``predict_proba``, ``score``, ``predict`` and the tags.

    ``fit(X)`` starts afresh (parameters as set, the generator reseeded from
    ``random_state``) and fits the batch mixture to all of ``X`` at once, however many rows
    it has; ``partial_fit`` then continues online. The class must store every ``__init__``
    parameter verbatim under its own name and provide ``_initialise(X)`` (the warm-up fit)
    and ``_estimate`` (the E-step), from which ``score_samples``, ``predict_proba``,
    ``score`` and ``predict`` follow.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem import OnlineGMM
    >>> m = OnlineGMM(n_components=2, random_state=0)
    >>> m.get_params()["n_components"], m.set_params(n_components=1).n_components
    (2, 1)
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> m.fit(X).is_fitted, m.n_features_in_, m.n_components_   # 50 < n_warmup: fit anyway
    (True, 2, 1)
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` keyword parameters, sorted (as scikit-learn lists them)."""
        params = inspect.signature(cls.__init__).parameters.values()
        names = [p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            raise TypeError(f"{cls.__name__}.__init__ must not take *args (scikit-learn rule)")
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters by name.

        Parameters
        ----------
        deep
            Ignored: no parameter is itself an estimator (kept for scikit-learn).

        Returns
        -------
        dict

        Examples
        --------
        >>> from streamem import OnlineGMM
        >>> OnlineGMM(half_life=500).get_params()["half_life"]
        500
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters; they apply from the next :meth:`fit` or warm-up fit.

        Parameters
        ----------
        **params
            Names from :meth:`get_params`.

        Returns
        -------
        self

        Raises
        ------
        InvalidInputError
            An unknown name, or a value that the constructor would reject.

        Examples
        --------
        >>> from streamem import OnlineGMM
        >>> OnlineGMM().set_params(n_warmup=50).n_warmup
        50
        >>> OnlineGMM().set_params(n_warmups=50)
        Traceback (most recent call last):
        ...
        streamem.errors.InvalidInputError: OnlineGMM has no parameter 'n_warmups'; valid ...
        """
        valid = self._get_param_names()
        for name in params:
            if name not in valid:
                raise InvalidInputError(
                    f"{type(self).__name__} has no parameter {name!r}; valid parameters: "
                    f"{', '.join(valid)}"
                )
        old = {name: getattr(self, name) for name in params}
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._check_params()
        except (InvalidInputError, TypeError) as exc:
            for name, value in old.items():
                setattr(self, name, value)
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(f"invalid parameter value in {params!r}: {exc}") from exc
        return self

    def _check_params(self) -> None:
        """Validate the parameters; called by :meth:`set_params` (the class overrides it)."""

    def fit(self, X: ArrayLike, y: object = None) -> Any:
        """Forget everything, then fit the batch mixture to all rows of ``X``.

        Parameters
        ----------
        X
            Shape (n_samples, n_features) with n_samples >= 2; NaN marks a missing reading.
        y
            Ignored (scikit-learn convention).

        Returns
        -------
        self

        Raises
        ------
        InvalidInputError
            Fewer than 2 samples, or bad rows (see ``partial_fit``).

        Examples
        --------
        >>> import numpy as np
        >>> from streamem import OnlineGMM
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> m = OnlineGMM(n_components=1, random_state=0).fit(X)
        >>> bool(np.allclose(m.means_[0], X.mean(axis=0)))
        True
        """
        A = check_array(X, None)
        if A.shape[0] < 2:
            raise InvalidInputError(
                f"fit needs at least 2 samples, got n_samples = {A.shape[0]} (1 sample "
                "cannot define a covariance); pass more rows"
            )
        # reset the streaming state (attributes others attached, e.g. by a Pipeline, stay)
        self.__dict__.update(type(self)(**self.get_params()).__dict__)
        self._initialise(A)  # type: ignore[attr-defined]
        return self

    n_features_in_: int | None

    def _estimate(self, X: NDArray[np.float64], complete: bool | None = None
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                             NDArray[np.float64] | float]:
        """The E-step (the class provides it): ``log f(x)``, log responsibilities, ..."""
        raise NotImplementedError

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log density of each sample; with NaN, the log marginal density of the observed part.

        Parameters
        ----------
        X
            Shape (n_samples, n_features).

        Returns
        -------
        log_prob
            Shape (n_samples,).

        Examples
        --------
        >>> import numpy as np
        >>> from streamem import OnlineGMM
        >>> m = OnlineGMM(n_components=1, n_warmup=200, random_state=0)
        >>> m = m.partial_fit(np.random.default_rng(0).normal(size=(200, 2)))
        >>> lp = m.score_samples([[0.0, 0.0], [0.0, np.nan]])
        >>> bool(lp[0] < lp[1])   # the 1-D marginal density is higher
        True
        """
        lpn, _, _, _ = self._estimate(check_array(X, self.n_features_in_))
        return lpn

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Responsibilities ``p(k | x)``.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN = missing.

        Returns
        -------
        ndarray of shape (n_samples, n_components_)

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(-5, 1, (100, 1)), rng.normal(5, 1, (100, 1))])
        >>> from streamem import OnlineGMM
        >>> m = OnlineGMM(n_components=2, n_warmup=200, random_state=0).partial_fit(X)
        >>> np.round(m.predict_proba([[-5.0], [5.0]]).max(axis=1), 3).tolist()
        [1.0, 1.0]
        """
        _, log_resp, _, _ = self._estimate(check_array(X, self.n_features_in_))
        return np.exp(log_resp)

    def score(self, X: ArrayLike, y: object = None) -> float:
        """Mean log-likelihood of ``X``.

        Parameters
        ----------
        X
            Shape (n_samples, n_features).
        y
            Ignored (scikit-learn convention).

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(500, 1))
        >>> from streamem import OnlineGMM
        >>> m = OnlineGMM(n_components=1, n_warmup=500, random_state=0).partial_fit(X)
        >>> round(m.score(X), 1)   # -1/2 log(2 pi e) for a standard normal
        -1.4
        """
        return float(np.mean(self.score_samples(X)))

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """Most responsible component per sample.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN = missing.

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(-5, 1, (100, 1)), rng.normal(5, 1, (100, 1))])
        >>> from streamem import OnlineGMM
        >>> m = OnlineGMM(n_components=2, n_warmup=200, random_state=0).partial_fit(X)
        >>> labels = m.predict([[-5.0], [5.0]])
        >>> bool(labels[0] != labels[1])
        True
        """
        return np.asarray(self.predict_proba(X).argmax(axis=1), dtype=np.int64)

    def __sklearn_is_fitted__(self) -> bool:
        """True once the mixture can score (what ``sklearn.utils.validation`` asks).

        Examples
        --------
        >>> from streamem import OnlineGMM
        >>> OnlineGMM().__sklearn_is_fitted__()
        False
        """
        return bool(getattr(self, "_fitted", False))

    def __sklearn_tags__(self) -> Any:
        """scikit-learn tags: a density estimator that accepts NaN (missing readings).

        Returns
        -------
        sklearn.utils.Tags

        Raises
        ------
        AttributeError
            When scikit-learn is not imported (only scikit-learn calls this method).

        Examples
        --------
        >>> from streamem import OnlineGMM
        >>> import sklearn.utils
        >>> tags = OnlineGMM().__sklearn_tags__()
        >>> tags.estimator_type, tags.input_tags.allow_nan, tags.requires_fit
        ('density_estimator', True, True)
        """
        sk = sys.modules.get("sklearn.utils")
        if sk is None:
            raise AttributeError("__sklearn_tags__ is for scikit-learn; import sklearn first")
        tags = sk.Tags(
            estimator_type="density_estimator",
            target_tags=sk.TargetTags(required=False),
            transformer_tags=None,
            regressor_tags=None,
            classifier_tags=None,
        )
        tags.input_tags.allow_nan = True
        return tags
