"""Component lifecycle of :class:`~streamem.OnlineGMM`: birth (a new regime's components
added), merge (cheapest pairs first, when too many), and revival of starved components (at
unexplained recent points, else by splitting the heaviest one).

The functions work on the model's decaying statistics (``_s0`` weights, ``_mu`` means,
``_C`` ML covariances) and call its M-step (``_refresh``) when they change them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError, NotFittedError
from streamem.model._init import select_components

if TYPE_CHECKING:
    from streamem.model.gmm import OnlineGMM

__all__ = ["add_components", "merge_components", "reseed_dead", "split_component",
           "unexplained"]

Array = NDArray[np.float64]


def split_component(
    s0: Array, mu: Array, C: Array, k: int, alive: NDArray[np.int64]
) -> None:
    """Re-seed component ``k`` by splitting the alive one with the largest ``pi tr(C)``.

    Along its main axis (design note, 2.3): ``mu +- sqrt(l1)/2 v1``, ``C - l1/4 v1 v1^T``,
    mass halved. Works in place on the statistics.

    Parameters
    ----------
    s0, mu, C
        Weights (K,), means (K, d) and ML covariances (K, d, d), or (K, d) for diag.
    k
        The dead component to re-seed.
    alive
        Candidates to split (all others but ``k`` when empty).

    Examples
    --------
    >>> import numpy as np
    >>> s0, mu, C = np.array([0.99, 0.01]), np.zeros((2, 1)), np.array([[[4.0]], [[1.0]]])
    >>> split_component(s0, mu, C, 1, np.array([0]))
    >>> s0.tolist(), mu[:, 0].tolist(), C[:, 0, 0].tolist()
    ([0.495, 0.495], [-1.0, 1.0], [3.0, 3.0])
    """
    diag = C.ndim == 2
    spread = C if diag else np.diagonal(C, axis1=1, axis2=2)
    pool = alive if alive.size else np.setdiff1d(np.arange(len(s0)), [k])
    j = int(pool[np.argmax(s0[pool] * spread[pool].sum(axis=1))])
    if diag:
        axis = int(np.argmax(C[j]))
        lam1, v1 = float(C[j, axis]), np.eye(C.shape[1])[axis]
        C_new = C[j] - 0.25 * lam1 * v1
    else:
        w, v = np.linalg.eigh(C[j])
        lam1, v1 = float(w[-1]), v[:, -1]
        C_new = C[j] - 0.25 * lam1 * np.outer(v1, v1)
    step = 0.5 * np.sqrt(max(lam1, 0.0)) * v1
    mu[k] = mu[j] + step
    mu[j] = mu[j] - step
    C[k] = C_new
    C[j] = C_new
    s0[k] = s0[j] = 0.5 * s0[j]


def merge_components(s0: Array, mu: Array, C: Array, n_keep: int) -> tuple[Array, Array, Array]:
    """Merge pairs of components until ``n_keep`` are left, cheapest pair first.

    The cost of merging ``i`` and ``j`` into their moment-matched Gaussian is Runnalls'
    upper bound on the Kullback-Leibler divergence it causes,
    ``((w_i + w_j) log|S_ij| - w_i log|S_i| - w_j log|S_j|) / 2``: small for light or
    overlapping components, large for heavy, distant ones (which are kept apart).

    Parameters
    ----------
    s0, mu, C
        Weights (K,), means (K, d) and covariances (K, d, d), or (K, d) for diag.
    n_keep
        Components wanted (at least 1); nothing happens when ``K <= n_keep``.

    Returns
    -------
    s0, mu, C
        New arrays; the total weight, overall mean and overall covariance are preserved.

    Examples
    --------
    >>> import numpy as np
    >>> s0 = np.array([0.5, 0.3, 0.2])
    >>> mu = np.array([[0.0], [10.0], [0.5]])
    >>> C = np.ones((3, 1, 1))
    >>> w, m, c = merge_components(s0, mu, C, 2)
    >>> w.tolist(), np.round(m[:, 0], 2).tolist(), np.round(c[:, 0, 0], 2).tolist()
    ([0.3, 0.7], [10.0, 0.14], [1.0, 1.05])
    """
    s0, mu, C = s0.copy(), mu.copy(), C.copy()
    diag = C.ndim == 2
    floor = mu.shape[1] * np.log(1e-300)  # log-determinant floor: singular stays finite
    while len(s0) > max(n_keep, 1):
        K = len(s0)
        logdet = np.log(np.maximum(C, 1e-300)).sum(axis=1) if diag else np.linalg.slogdet(C)[1]
        logdet = np.fmax(logdet, floor)
        best: tuple[float, int, int, Array, Array, float] | None = None
        for i in range(K):
            for j in range(i + 1, K):
                w = s0[i] + s0[j]
                a, b = (s0[i] / w, s0[j] / w) if w > 0 else (0.5, 0.5)
                delta = mu[i] - mu[j]
                if diag:
                    S = a * C[i] + b * C[j] + a * b * delta**2
                    ld = float(np.log(np.maximum(S, 1e-300)).sum())
                else:
                    S = a * C[i] + b * C[j] + a * b * np.outer(delta, delta)
                    ld = float(np.linalg.slogdet(S)[1])
                cost = 0.5 * (w * float(np.fmax(ld, floor)) - s0[i] * logdet[i]
                              - s0[j] * logdet[j])
                if not np.isfinite(cost):
                    cost = np.inf
                if best is None or cost < best[0]:
                    best = (cost, i, j, a * mu[i] + b * mu[j], S, w)
        assert best is not None
        _, i, j, m, S, w = best
        keep = [k for k in range(K) if k not in (i, j)]
        s0 = np.append(s0[keep], w)
        mu = np.vstack([mu[keep], m[None, :]])
        C = np.concatenate([C[keep], S[None]])
    return s0, mu, C


def add_components(m: OnlineGMM, A: Array, weight: float) -> None:
    """Birth: append a batch mixture fitted to ``A`` (K by BIC, the model's own prior) with
    total weight ``weight``, then merge down to ``max(max_components, n_components_)``.

    The existing components keep their parameters and share ``1 - weight``; the merge
    (:func:`merge_components`) takes light or redundant components first, so distinct
    regimes stay apart. The decaying statistics then forget a regime that does not come
    back.

    Parameters
    ----------
    m
        A fitted model (changed in place).
    A
        Shape (n_samples, n_features), validated; NaN = missing.
    weight
        In (0, 1).

    Raises
    ------
    NotFittedError
        Before the warm-up fit.
    InvalidInputError
        ``weight`` outside (0, 1), or fewer than 2 rows.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.model.gmm import OnlineGMM
    >>> rng = np.random.default_rng(0)
    >>> m = OnlineGMM(n_components=1, n_warmup=200, random_state=0)
    >>> _ = m.partial_fit(rng.normal(size=(200, 2)))
    >>> add_components(m, rng.normal(size=(200, 2)) + 8.0, 0.5)
    >>> m.n_components_, np.round(m.weights_, 2).tolist()
    (2, [0.5, 0.5])
    """
    if not m._fitted:
        raise NotFittedError("add_components needs a fitted model; call partial_fit first")
    if not 0.0 < weight < 1.0:
        raise InvalidInputError(f"weight={weight!r} must be in (0, 1); try 0.5")
    if len(A) < 2:
        raise InvalidInputError(f"add_components needs at least 2 rows, got {len(A)}")
    fit = select_components(
        A, m.max_components, m.covariance_type, m.reg_covar, m._prior_cov, m._kappa, m._rng,
        m.n_init, var_floor=m._var_floor,
    )
    s0 = np.concatenate([(1.0 - weight) * m._s0, weight * fit.weights])
    mu = np.vstack([m._mu, fit.means])
    C = np.concatenate([m._C, fit.ml_covariances])
    s0, mu, C = merge_components(s0, mu, C, max(m.max_components, m.n_components_))
    m._s0, m._mu, m._C = s0 / s0.sum(), mu, C
    m.n_components_ = len(s0)
    m._refresh()


def unexplained(m: OnlineGMM) -> NDArray[np.int64]:
    """Rows of the model's reservoir far in its tail (``tau < 0.1 / n``: not chance).

    Returns
    -------
    ndarray of int
        Row indices, the least explained first.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.model.gmm import OnlineGMM
    >>> m = OnlineGMM(n_components=1, n_warmup=200, random_state=0)
    >>> _ = m.partial_fit(np.random.default_rng(0).normal(size=(200, 2)))
    >>> m._reservoir = np.array([[0.0, 0.0], [30.0, 30.0]]); unexplained(m).tolist()
    [1]
    """
    if len(m._reservoir) == 0:
        return np.zeros(0, dtype=np.int64)
    log_tail = m._estimate_tail(m._reservoir)[2]
    order = np.argsort(log_tail, kind="stable")
    cut = np.log(0.1 / len(m._reservoir))
    return np.asarray(order[log_tail[order] < cut], dtype=np.int64)


def reseed_dead(m: OnlineGMM) -> None:
    """Revive starved components: at recent normal points the model does not explain (a new
    mode), else by splitting the heaviest component (a redundant component).

    A component is starved when its effective count is below ``2 (d + 1)`` (full; 2 for
    diag) or its weight below ``1e-3 / K``. Each revival counts in ``n_reseeds_``.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.model.gmm import OnlineGMM
    >>> m = OnlineGMM(n_components=2, n_warmup=200, random_state=0)
    >>> _ = m.partial_fit(np.random.default_rng(0).normal(size=(200, 1)))
    >>> m._s0 = np.array([1.0 - 1e-9, 1e-9]); reseed_dead(m); m.n_reseeds_
    1
    """
    d = m.n_features_in_ or 1
    counts = m._n_eff() * m._s0
    min_count = 2 * (d + 1) if m.covariance_type == "full" else 2
    dead = np.flatnonzero((counts < min_count) | (m._s0 < 1e-3 / m.n_components_))
    if dead.size == 0 or m.n_components_ == 1:
        return
    points = unexplained(m)[: dead.size].tolist()
    alive = np.setdiff1d(np.arange(m.n_components_), dead)
    for j, k in enumerate(dead):
        if j < len(points):
            m._mu[k] = m._reservoir[points[j]]
            m._C[k] = m._prior_cov
            m._s0[k] = 1.0 / (10.0 * m.n_components_)
        else:
            split_component(m._s0, m._mu, m._C, int(k), alive)
        m.n_reseeds_ += 1
    m._s0 /= m._s0.sum()
    m._refresh()
