"""Explanations for one event of one key of a :class:`~streamem.scoring.keyed.KeyedDetector`:
the conditional z-scores of its features under the key's own most responsible component
(as :meth:`streamem.Detector.explain` does for the global model). Read-only: the key is not
loaded into memory, and its recency does not change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._keyed import Population, map_parameters, score_rows
from streamem.scoring.explain import FeatureContribution, conditional_zscores
from streamem.scoring.key_table import decode_blobs

if TYPE_CHECKING:
    from streamem.scoring.keyed import KeyedDetector

__all__ = ["explain_key", "key_record"]


def key_record(det: KeyedDetector, key: Any) -> NDArray[np.float64] | None:
    """The key's record (in memory, evicted, or in the store), or None for an unknown key."""
    t = det.table_
    if t is None:
        return None
    k = np.asarray([key])  # str keys: compare at full width (a cast could truncate)
    k = k.astype(t.sorted_keys.dtype if t.key_kind == "int"
                 else np.result_type(t.sorted_keys.dtype, k.astype(np.str_).dtype))
    pos = int(np.searchsorted(t.sorted_keys, k[0]))
    if pos < t.n_keys and t.sorted_keys[pos] == k[0]:
        out: NDArray[np.float64] = t.rec[t.sorted_slots[pos]].copy()
        return out
    text = str(k[0])
    blob = t.spill.get(text)
    if blob is None and det.store is not None:
        blob = det.store.get_many([text]).get(text)
    return None if blob is None else decode_blobs([blob], t.layout)[0]


def explain_key(det: KeyedDetector, x: Any, key: Any, top: int = 3) -> list[FeatureContribution]:
    """Top features of one event of ``key`` by |conditional z-score| (see
    :meth:`KeyedDetector.explain`)."""
    rec = key_record(det, key)
    t = det.table_
    if rec is None or t is None:
        return []
    lay = t.layout
    row = np.asarray(x, dtype=float).reshape(1, -1)
    R = rec[None, :]
    N, S1, S2 = (lay.view(R, f) for f in ("N", "S1", "S2"))
    d = lay.d
    pop = det.population_ or Population.standard(det.n_components, d)
    p = map_parameters(N, S1, S2, pop, det.key_prior_events, det._pool_var(d), det.reg_covar)
    y = row - lay.view(R, "anchor")
    _, log_resp, _ = score_rows(y, np.zeros(1, dtype=np.intp), p)
    j = int(log_resp[0].argmax())
    W = p.whiten[0, j]
    Linv = np.linalg.inv(W)                       # L, with L L^T the covariance
    z, expected = conditional_zscores(y[0], p.means[0, j], Linv @ Linv.T)
    expected = expected + lay.view(R, "anchor")[0]
    order = np.argsort(-np.abs(z))[:top]
    names = det.feature_names or [f"x{i}" for i in range(d)]
    return [FeatureContribution(names[i], int(i), float(row[0, i]), float(expected[i]),
                                float(z[i])) for i in order]
