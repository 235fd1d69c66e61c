"""One feature's per-bucket reduction of a batch: numpy over the batch's (bucket, key) groups.

:func:`reduce_feature` writes the additive, minimum and maximum slots of the batch's partial
accumulator and returns, for the sketch functions, the values each group adds to its sketch
(sorted into groups with one ``argsort``/``np.unique``, never a loop per event).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.aggregate import columns as col
from streamem.aggregate.spec import FeatureSpec

__all__ = ["reduce_feature"]


def _groups(gi: NDArray[np.intp], values: NDArray[Any]) -> list[tuple[int, NDArray[Any]]]:
    """``values`` (sorted by group) split per group: ``[(group, its values), ...]``."""
    groups, starts = np.unique(gi, return_index=True)
    return list(zip(groups.tolist(), np.split(values, starts[1:]), strict=True))


def reduce_feature(f: FeatureSpec, gi: NDArray[np.intp], g: int,
                   x: NDArray[np.float64] | None, texts: list[str] | None,
                   part: NDArray[np.float64], offset: int,
                   vocab: dict[str, int] | None) -> list[tuple[int, Any]]:
    """Reduce feature ``f`` over its matching events.

    Parameters
    ----------
    f
        The feature.
    gi
        Group (bucket and key) of each matching event, shape (m,), values in [0, g).
    g
        Number of groups in the batch.
    x
        The numeric values of the matching events (numeric functions), shape (m,).
    texts
        Their categorical values (``distinct_count``, ``count_by``).
    part
        The batch's partial accumulator, shape (g, n_slots); written at ``offset``.
    vocab
        ``count_by``: value -> column, extended in order of first appearance up to ``top``.

    Returns
    -------
    list of (group, values)
        What each group adds to its sketch (empty for the other functions).

    Examples
    --------
    >>> part = np.zeros((2, 1))
    >>> reduce_feature(FeatureSpec("n", "count"), np.array([0, 1, 1]), 2, None, None,
    ...                part, 0, None), part[:, 0].tolist()
    ([], [1.0, 2.0])
    """
    o = offset
    if f.fn == "count":
        part[:, o] = np.bincount(gi, minlength=g)
    elif f.fn in ("sum", "mean"):
        assert x is not None
        part[:, o] = np.bincount(gi, weights=x, minlength=g)
        if f.fn == "mean":
            part[:, o + 1] = np.bincount(gi, minlength=g)
    elif f.fn in ("min", "max"):
        assert x is not None
        (np.minimum if f.fn == "min" else np.maximum).at(part[:, o], gi, x)
    elif not len(gi):  # no matching values: the sketch functions have nothing to add
        return []
    elif f.fn == "quantile":
        assert x is not None
        order = np.argsort(gi, kind="stable")
        return _groups(gi[order], x[order])
    elif f.fn == "distinct_count":
        assert texts is not None
        vc, uv = col.factorize(texts)
        nv = max(len(uv), 1)
        pairs = np.unique(gi * nv + vc)  # distinct (group, value), sorted by group
        values = np.array(uv, dtype=object)[pairs % nv]
        return [(grp, chunk.tolist()) for grp, chunk in _groups(pairs // nv, values)]
    else:  # count_by
        assert texts is not None and vocab is not None and f.top is not None
        vc, uv = col.factorize(texts)
        for v in uv:  # distinct values, in order of first appearance
            if v not in vocab and len(vocab) < f.top:
                vocab[v] = len(vocab)
        slot = np.array([vocab.get(v, f.top) for v in uv], dtype=np.int64)[vc]
        width = f.top + 1
        part[:, o:o + width] = np.bincount(gi * width + slot, minlength=g * width
                                           ).reshape(g, width)
    return []
