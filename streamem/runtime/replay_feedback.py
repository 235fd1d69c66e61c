"""``streamem replay --feedback FILE``: operators' verdicts replayed at the moment they could
have been given, that is right after the anomaly they name was flagged.

The file holds JSON lines ``{"id": ..., "verdict": "false_positive" | "true_positive"}``. A
false positive is learned before the lane's next batch, exactly as in the daemon
(:class:`~streamem.runtime.feedback.FeedbackLoop`), so the replay shows what the verdicts
change: with labels, the precision of the alarms before the first verdict and after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.config import Config
from streamem.errors import ConfigError
from streamem.runtime.feedback import FeedbackLoop
from streamem.runtime.pipeline import BatchOutcome
from streamem.ui.history import VERDICTS, History

__all__ = ["ReplayFeedback", "load_verdicts"]


def load_verdicts(path: str | Path) -> dict[str, str]:
    """``{anomaly id: verdict}`` from a JSON-lines file.

    Raises
    ------
    ConfigError
        A line that is not ``{"id": "...", "verdict": ...}`` (named by its number).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "v.jsonl")
    >>> _ = open(p, "w").write('{"id": "ev-1", "verdict": "false_positive"}\\n')
    >>> load_verdicts(p)
    {'ev-1': 'false_positive'}
    """
    out: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not (isinstance(doc, dict) and isinstance(doc.get("id"), str)
                and doc.get("verdict") in VERDICTS):
            raise ConfigError(f"{path} line {n}", "is not {\"id\": \"...\", \"verdict\": "
                              f"{' | '.join(VERDICTS)}}}: {line[:80]!r}; fix or drop that line")
        out[doc["id"]] = doc["verdict"]
    return out


class ReplayFeedback:
    """Give the verdicts of a file as their anomalies are flagged (see the module docstring).

    Parameters
    ----------
    cfg
        The configuration (``ui.feedback_weight``, ``ui.feedback_suppress_seconds``).
    verdicts
        ``{anomaly id: verdict}`` (:func:`load_verdicts`).
    """

    def __init__(self, cfg: Config, verdicts: dict[str, str]) -> None:
        self.verdicts = verdicts
        self.history = History(max_anomalies=max(1000, len(verdicts)))
        self.loop = FeedbackLoop(self.history, weight=cfg.ui.feedback_weight,
                                 suppress_seconds=cfg.ui.feedback_suppress_seconds)
        self.given = 0
        self.first_at: int | None = None  # events scored when the first verdict was given

    def after(self, outcomes: Iterable[BatchOutcome], scored: int) -> None:
        """Give the verdicts on the anomalies of ``outcomes``; ``scored`` events so far."""
        for out in outcomes:
            for rec in out.anomalies:
                verdict = self.verdicts.get(rec.id)
                if verdict is None:
                    continue
                self.loop.submit(self.history.feedback(rec.id, verdict))
                self.given += 1
                if self.first_at is None:
                    self.first_at = scored

    def report(self, labels: NDArray[np.float64] | None,
               is_anomaly: NDArray[np.bool_]) -> dict[str, float]:
        """Verdicts given and learned; with labels, precision before and after the first."""
        out: dict[str, Any] = {"verdicts_given": float(self.given),
                               "false_positives_learned": float(self.loop.learned)}
        if labels is None:
            return out
        cut = len(is_anomaly) if self.first_at is None else self.first_at
        for name, part in (("before", slice(0, cut)), ("after", slice(cut, None))):
            flagged = is_anomaly[part]
            y = labels[part] > 0.5
            n = int(flagged.sum())
            out[f"precision_{name}_feedback"] = float((flagged & y).sum() / n) if n else \
                float("nan")
            out[f"alarms_{name}_feedback"] = float(n)
        return out
