"""``streamem inspect --entity K``: one key's model, read from its lane's key store without
running a daemon (nothing is written, loaded into memory for good, or moved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamem.config import Config
from streamem.errors import StateError
from streamem.model._keyed import Population, map_parameters
from streamem.runtime.keyed_lane import key_states, key_store_name, open_key_store
from streamem.scoring.keyed_explain import key_record
from streamem.state.keys import restore

__all__ = ["entity_summary"]


def entity_summary(cfg: Config, lane: str, entity: str) -> dict[str, Any]:
    """Key ``entity`` of lane ``lane`` (``global`` for a file or stdin source, ``p<N>`` for a
    Kafka partition): its counts, whether it still leans on the population prior, and its
    mixture (weights, means and standard deviations in the features' own units).

    Raises
    ------
    StateError
        The lane has no key checkpoint, or the key is not in it.
    """
    if cfg.checkpoint.store == "directory":
        where = Path(key_store_name(cfg, lane))
        if not where.is_file():
            raise StateError(f"{str(where)!r} does not exist: lane {lane!r} has no key "
                             "checkpoint yet; run the daemon with model.scope key first")
    with open_key_store(cfg, lane) as store:
        det, _ = restore(store)
        state = key_states(det, [entity]).get(entity)
        rec = key_record(det, entity)
        if state is None or rec is None or det.table_ is None:
            raise StateError(f"key {entity!r} is not in lane {lane!r}; check the key's "
                             "spelling and the lane (--key p<N> for a Kafka partition); a "
                             "running daemon lists its keys at /api/v1/keys?top=N")
        lay = det.table_.layout
        R = rec[None, :]
        N, S1, S2 = (lay.view(R, f) for f in ("N", "S1", "S2"))
        pop = det.population_ or Population.standard(det.n_components, lay.d)
        p = map_parameters(N, S1, S2, pop, det.key_prior_events, det._pool_var(lay.d),
                           det.reg_covar)
    anchor = lay.view(R, "anchor")[0]
    sd = np.sqrt(np.einsum("ijk,ijk->ik", p.chol[:, :, 0, :], p.chol[:, :, 0, :]))  # (d, K)
    names = det.feature_names or [f"x{i}" for i in range(lay.d)]
    return {
        "key": entity, "lane": lane, **state,
        "features": list(names),
        "weights": np.exp(p.log_weights[0]).round(6).tolist(),
        "means": (p.means[0] + anchor).round(6).tolist(),
        "stds": sd.T.round(6).tolist(),
        "key_prior_events": det.key_prior_events,
    }
