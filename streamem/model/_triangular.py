"""Block-triangular GEMMs for many features: the E-step's ``U_k^T`` is lower triangular and
the scatter matrices are symmetric, so from 12 features on splitting the features into
blocks of ~5 skips most of the zeros (d = 30: 6 blocks, 58 % of the flops). Below 12
features, or 512 samples, one dense GEMM is faster.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BLOCK_MIN_FEATURES",
    "BLOCK_MIN_SAMPLES",
    "block_edges",
    "blocked_log_prob_t",
    "blocked_scatter",
    "triangular_blocks",
]

Array = NDArray[np.float64]

#: from this many features and samples on, the blocked GEMMs beat one dense GEMM (each
#: block is a BLAS call: below ~256 samples the calls cost more than the zeros they skip)
BLOCK_MIN_FEATURES = 12
BLOCK_MIN_SAMPLES = 512
_BLOCK = 5


@cache
def block_edges(d: int) -> list[int]:
    """Feature-block boundaries ``0 = e_0 < ... < e_nb = d`` (one block below 12 features).

    Parameters
    ----------
    d
        Number of features.

    Returns
    -------
    list of int
        Cached: do not modify.

    Examples
    --------
    >>> block_edges(10), block_edges(12), block_edges(30)
    ([0, 10], [0, 6, 12], [0, 5, 10, 15, 20, 25, 30])
    """
    nb = d // _BLOCK if d >= BLOCK_MIN_FEATURES else 1
    return [i * d // nb for i in range(nb + 1)]


def triangular_blocks(means: Array, prec_chol: Array, edges: list[int]) -> list[Array]:
    """The E-step factors cut along the lower-triangular structure of ``U_k^T``.

    Block ``b`` maps ``[1; x_0 .. x_{e_{b+1}-1}]`` to the whitened residuals
    ``(U_k^T (x - mu_k))_e`` for ``e`` in ``[e_b, e_{b+1})``, every component stacked:
    shape ``(K (e_{b+1} - e_b), e_{b+1} + 1)``.

    Parameters
    ----------
    means
        Shape (n_components, n_features).
    prec_chol
        Upper-triangular ``U_k``, shape (n_components, n_features, n_features).
    edges
        From :func:`block_edges`.

    Returns
    -------
    list of ndarray

    Examples
    --------
    >>> import numpy as np
    >>> B = triangular_blocks(np.ones((1, 2)), np.eye(2)[None], [0, 1, 2])
    >>> [b.tolist() for b in B]
    [[[-1.0, 1.0]], [[-1.0, 0.0, 1.0]]]
    """
    K, d = means.shape
    full = np.empty((K, d, d + 1))
    full[:, :, 0] = -np.einsum("kd,kde->ke", means, prec_chol)
    full[:, :, 1:] = np.swapaxes(prec_chol, 1, 2)
    return [
        np.ascontiguousarray(full[:, lo:hi, : hi + 1]).reshape(K * (hi - lo), hi + 1)
        for lo, hi in pairwise(edges)
    ]


def blocked_log_prob_t(X: Array, blocks: list[Array], edges: list[int], const: Array) -> Array:
    """``const_k - 1/2 ||U_k^T (x - mu_k)||^2``, shape (n_components, n_samples), by blocks.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), no NaN.
    blocks, edges
        From :func:`triangular_blocks` and :func:`block_edges`.
    const
        Shape (n_components,), added per component.

    Returns
    -------
    ndarray of shape (n_components, n_samples)

    Examples
    --------
    >>> import numpy as np
    >>> B = triangular_blocks(np.zeros((1, 2)), np.eye(2)[None], [0, 1, 2])
    >>> blocked_log_prob_t(np.array([[3.0, 4.0]]), B, [0, 1, 2], np.zeros(1)).tolist()
    [[-12.5]]
    """
    n, d = X.shape
    K = len(const)
    XT = np.empty((d + 1, n))
    XT[0] = 1.0
    XT[1:] = X.T
    Y = np.empty((K * d, n))
    for blk, lo, hi in zip(blocks, edges[:-1], edges[1:], strict=True):
        np.matmul(blk, XT[: hi + 1], out=Y[K * lo : K * hi])
    Y *= Y
    out: Array = Y[: K * edges[1]].reshape(K, edges[1], n).sum(axis=1)
    for lo, hi in pairwise(edges[1:]):
        out += Y[K * lo : K * hi].reshape(K, hi - lo, n).sum(axis=1)
    out *= -0.5
    out += const[:, None]
    return out


def blocked_scatter(RT: Array, XcT: Array, edges: list[int]) -> Array:
    """``sum_i r_ki x_i x_i^T`` per component: lower block-triangle by GEMMs, then mirrored.

    Parameters
    ----------
    RT
        Responsibilities, shape (n_components, n_samples).
    XcT
        Centred data, shape (n_features, n_samples), C-contiguous.
    edges
        From :func:`block_edges`.

    Returns
    -------
    ndarray of shape (n_components, n_features, n_features)
        Symmetric up to rounding (the off-diagonal blocks are mirrored exactly).

    Examples
    --------
    >>> import numpy as np
    >>> XcT = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> blocked_scatter(np.ones((1, 2)), XcT, [0, 1, 2])[0].tolist()
    [[5.0, 11.0], [11.0, 25.0]]
    """
    K, n = RT.shape
    d = XcT.shape[0]
    out = np.empty((K, d, d))
    for lo, hi in pairwise(edges):
        W = RT[:, None, :] * XcT[None, lo:hi, :]
        blk = (W.reshape(K * (hi - lo), n) @ XcT[:hi].T).reshape(K, hi - lo, hi)
        out[:, lo:hi, :hi] = blk
        out[:, :lo, lo:hi] = np.swapaxes(blk[:, :, :lo], 1, 2)
    return out
