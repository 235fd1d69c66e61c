"""Running a :class:`~streamem.KeyedDetector` over a stream in batches, checkpointing to a key
store every few batches, the way the store tests and the key-store contract suite need it."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamem.scoring.keyed import KeyedDetector
from streamem.state.keys import checkpoint

FIELDS = ("scores", "surprise", "threshold", "severity", "is_anomaly", "learned", "warming_up")
"""The per-row result fields compared between an interrupted and an uninterrupted run."""


def run_keyed(det: KeyedDetector, X: np.ndarray, keys: np.ndarray, *, batch: int = 128,
              store: Any = None, every: int = 4, offset: int = 0) -> dict[str, np.ndarray]:
    """Process ``X`` in batches of ``batch`` rows; with a ``store``, checkpoint after every
    ``every``-th batch with the positions blob ``b"offset=N"`` (N counted from ``offset``).

    Returns the concatenated result arrays named in :data:`FIELDS`.
    """
    out: dict[str, list[np.ndarray]] = {}
    for j, i in enumerate(range(0, len(X), batch)):
        r = det.process(X[i:i + batch], keys[i:i + batch])
        if store is not None and j % every == every - 1:
            checkpoint(det, store, f"offset={offset + i + batch}".encode())
        for name in FIELDS:
            out.setdefault(name, []).append(getattr(r, name))
    return {k: np.concatenate(v) for k, v in out.items()}
