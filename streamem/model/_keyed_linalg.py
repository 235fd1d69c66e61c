"""Private linear algebra for the stacked per-key kernels (:mod:`streamem.model._keyed`):
matrices stored as *entry planes* ``T[i, j]`` over many keys and components, so that every
step of a Cholesky factorisation or a triangular inverse is one vectorised operation."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["across", "chol_whiten", "cholesky_planes", "dot_planes", "whiten_planes"]

Array = NDArray[np.float64]


def chol_whiten(A: Array) -> tuple[Array, Array]:
    """``W = L^{-1}`` and ``log|L|`` for ``L L^T = A``, a stack of positive definite
    matrices: Cholesky and triangular inverse entry by entry, each entry one vectorised
    operation over the stack (for small ``d`` several times faster than
    ``np.linalg.cholesky`` plus an inverse on thousands of matrices). A pivot that rounding
    makes non-positive is raised to 1e-300.

    Parameters
    ----------
    A
        Shape (..., d, d), symmetric positive definite.

    Returns
    -------
    W
        Shape (..., d, d), lower triangular.
    log_det
        Shape (...,): ``sum log L_ii = log|A| / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> W, ld = chol_whiten(A[None])
    >>> bool(np.allclose(W[0], np.linalg.inv(np.linalg.cholesky(A))))
    True
    >>> bool(np.isclose(ld[0], np.log(16.0) / 2))
    True
    """
    shape = A.shape
    d = shape[-1]
    T = np.moveaxis(A.reshape(-1, d, d), 0, -1).copy()   # (d, d, M): entries contiguous
    W, log_det = whiten_planes(T)
    return np.moveaxis(W, -1, 0).reshape(shape), log_det.reshape(shape[:-2])


def across(op: np.ufunc, a: Array) -> Array:
    """``op`` reduced over the few columns of ``a`` (n, K), column by column (a reduction
    along a short inner axis costs far more per element)."""
    out: Array = op(a[:, 0], a[:, 1]) if a.shape[1] > 1 else a[:, 0].copy()
    for k in range(2, a.shape[1]):
        op(out, a[:, k], out=out)
    return out


def dot_planes(a: Array, b: Array) -> Array:
    """``sum_k a[k] b[k]`` over a few planes, in order."""
    out: Array = a[0] * b[0]
    for k in range(1, len(a)):
        out += a[k] * b[k]
    return out


def cholesky_planes(T: Array) -> tuple[Array, Array]:
    """Cholesky factors on entry planes: ``T`` (d, d, ...) holds entry ``(i, j)`` of every
    matrix in ``T[i, j]`` (only the lower triangle is read); returns ``L`` the same way (only
    its lower triangle is set) and ``1 / L_ii`` (d, ...). A pivot that rounding makes
    non-positive is raised to 1e-300."""
    d = T.shape[0]
    L = np.empty_like(T)
    inv_diag = np.empty((d, *T.shape[2:]))
    for j in range(d):
        piv = T[j, j] - dot_planes(L[j, :j], L[j, :j]) if j else T[j, j].copy()
        np.maximum(piv, 1e-300, out=piv)
        np.sqrt(piv, out=L[j, j])
        np.divide(1.0, L[j, j], out=inv_diag[j])
        for i in range(j + 1, d):
            acc = T[i, j] - dot_planes(L[i, :j], L[j, :j]) if j else T[i, j]
            np.multiply(acc, inv_diag[j], out=L[i, j])
    return L, inv_diag


def whiten_planes(T: Array) -> tuple[Array, Array]:
    """:func:`chol_whiten` on entry planes (see :func:`cholesky_planes`): ``W = L^{-1}``
    the same way (upper entries 0) and ``log|L|`` (...)."""
    d = T.shape[0]
    L, inv_diag = cholesky_planes(T)
    W = np.empty_like(T)
    for i in range(d):
        W[i, i + 1:] = 0.0
        W[i, i] = inv_diag[i]
        for j in range(i):
            np.multiply(dot_planes(L[i, j:i], W[j:i, j]), -inv_diag[i], out=W[i, j])
    log_det = -np.log(inv_diag).sum(axis=0)
    return W, log_det
