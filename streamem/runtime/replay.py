"""``streamem replay``: the daemon's pipeline over a file, with labels, metrics and plots."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from streamem import parsing
from streamem.config import Config, DeadLetterConfig
from streamem.features import FeatureExtractor
from streamem.runtime.build import make_sinks, new_detector, new_extractor, new_stage
from streamem.runtime.keyed_lane import new_keyed_detector
from streamem.runtime.keying import key_parts
from streamem.runtime.lane import Lane
from streamem.runtime.pipeline import Pipeline
from streamem.runtime.replay_feedback import ReplayFeedback, load_verdicts
from streamem.runtime.scorer import DetectorScorer, KeyedScorer

__all__ = ["ReplayResult", "replay"]


@dataclass
class ReplayResult:
    """Per-event arrays of a replay (events that were rejected are left out)."""

    scores: NDArray[np.float64]
    threshold: NDArray[np.float64]
    surprise: NDArray[np.float64]
    severity: NDArray[np.float64]
    is_anomaly: NDArray[np.bool_]
    X: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    labels: NDArray[np.float64] | None
    weights_history: NDArray[np.float64]
    totals: dict[str, int]
    metrics: dict[str, float]
    seconds: float


class _Progress:
    """A progress bar on stderr (a line every few seconds when stderr is not a terminal)."""

    def __init__(self, total_bytes: int, stream: TextIO | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, done_bytes: int, events: int, anomalies: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        frac = min(done_bytes / self.total, 1.0)
        rate = events / max(now - self.t0, 1e-9)
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        msg = (f"replay [{bar}] {100 * frac:5.1f}%  {events:,} events  {anomalies:,} anomalies"
               f"  {rate:,.0f} events/s")
        self.stream.write(("\r" + msg) if self.tty else (msg + "\n"))
        if final and self.tty:
            self.stream.write("\n")
        self.stream.flush()


def _metrics(labels: NDArray[np.float64], result: ReplayResult) -> dict[str, float]:
    from streamem.evaluation.metrics import (
        average_precision,
        confusion,
        event_metrics,
        roc_auc,
    )

    scored = ~np.isnan(result.surprise)
    y = labels[scored] > 0.5
    pred = result.is_anomaly[scored]
    c = confusion(y, pred)
    ev = event_metrics(y, pred)
    out = {
        "precision": c.precision, "recall": c.recall, "f1": c.f1,
        "false_alarm_rate": c.false_alarm_rate,
        "event_precision": ev.precision, "event_recall": ev.recall, "event_f1": ev.f1,
        "mean_detection_delay_events": ev.mean_delay,
        "events_scored": float(scored.sum()), "events_labelled_anomalous": float(y.sum()),
    }
    if 0 < y.sum() < len(y):
        out["roc_auc"] = roc_auc(y, result.surprise[scored])
        out["pr_auc"] = average_precision(y, result.surprise[scored])
    return out


def replay(path: str, cfg: Config, *, labels: str | None = None, report: str | None = None,
           deliver: bool = False, progress: bool = True,
           feedback: str | None = None) -> ReplayResult:
    """Run the daemon pipeline over ``path`` (JSON lines or CSV) and collect the results.

    Parameters
    ----------
    path
        The input file.
    cfg
        Configuration (the same file the daemon uses; its source is replaced by ``path``).
    labels
        Name of a 0/1 label field; with it, detection metrics are computed.
    report
        Folder for PNG plots and an ``index.html`` (needs matplotlib).
    deliver
        Also send anomalies to the configured sinks (off: a backtest alerts nobody).
    progress
        Show a progress bar on stderr.
    feedback
        JSON lines of ``{id, verdict}``, each given when its anomaly is flagged
        (:mod:`streamem.runtime.replay_feedback`); the metrics then compare precision before
        and after the first.
    """
    from streamem.sinks.deadletter import FileDeadLetterSink
    from streamem.sources.file import FileSource

    fmt = "csv" if path.endswith(".csv") else cfg.source.format
    src_cfg = dataclasses.replace(cfg.source, type="file", path=path, format=fmt, follow=False)
    dl_path = str(Path(report) / "dead-letter.jsonl") if report else cfg.dead_letter.path
    cfg = dataclasses.replace(cfg, source=src_cfg,
                              dead_letter=DeadLetterConfig(type="file", path=dl_path))

    lane = (Lane("global", scorer=KeyedScorer(new_keyed_detector(cfg), key_parts(cfg),
                                              lambda *a: None))  # in memory: no key store
            if cfg.model.scope == "key" else Lane("global", new_detector(cfg)))
    label_fx = FeatureExtractor([labels], format=fmt, lines=parsing.from_config(
        dataclasses.replace(cfg, fields=dataclasses.replace(cfg.fields, template=None)))
    ) if labels and cfg.aggregate is None else None  # buckets have no label field
    sinks: Any = None
    if report:
        Path(report).mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("scores", "threshold", "surprise", "severity", "is_anomaly",
                                   "X", "ts", "labels", "weights")}
    with FileSource(path, format=fmt, max_event_bytes=cfg.source.max_event_bytes) as src, \
            FileDeadLetterSink("dead-letter", dl_path) as dead:
        fx = new_extractor(cfg, src.header, parsing.from_config(cfg))
        if src.header is not None and label_fx is not None:
            label_fx.set_csv_header(src.header)
        if deliver:
            sinks = make_sinks(cfg, Path(cfg.checkpoint.dir))
        fb = None if feedback is None else ReplayFeedback(cfg, load_verdicts(feedback))
        pipe = Pipeline(cfg, fx, sinks, dead, None, lambda p: lane, stage=new_stage(cfg, fx),
                        history=None if fb is None else fb.history,
                        feedback=None if fb is None else fb.loop)
        bar = _Progress(src.lag().get(0, 0)) if progress else None
        ended = False
        while not ended:
            events = src.poll(cfg.batch.max_events, 0.0)
            ended = not events  # then the open buckets (aggregate:) are closed and scored
            outs = pipe.end_of_input([lane]) if ended else pipe.process(events)
            for out in outs:
                res, dec = out.result, out.decoded
                if res is None:
                    continue
                cols["scores"].append(res.scores)
                cols["threshold"].append(res.threshold)
                cols["surprise"].append(res.surprise)
                cols["severity"].append(res.severity)
                cols["is_anomaly"].append(res.is_anomaly)
                cols["X"].append(dec.X)
                cols["ts"].append(np.array([t if t is not None else math.nan
                                            for t in dec.timestamps], dtype=float))
                if label_fx is not None:
                    kept = [out.events.payloads[i] for i in dec.kept]
                    lab = label_fx.decode(kept)
                    arr = np.full(len(kept), np.nan)
                    arr[lab.kept] = lab.X[:, 0]
                    cols["labels"].append(arr)
                w = (lane.detector.model_.weights_ if isinstance(lane.scorer, DetectorScorer)
                     and lane.detector.ready_ else np.full(1, np.nan))  # per key: no one mixture
                cols["weights"].append(np.repeat(w[None, :], len(dec.kept), axis=0))
            if fb is not None:
                fb.after(outs, sum(len(s) for s in cols["surprise"]))
            pipe.tick()
            if bar is not None:
                bar.update(src.positions()[0], pipe.totals["events"], pipe.totals["anomalous"])
        if bar is not None:
            bar.update(src.positions()[0], pipe.totals["events"], pipe.totals["anomalous"], True)
        if sinks is not None:
            sinks.close()
    d = len(cfg.fields.features)

    def cat(k: str, dt: type) -> NDArray[Any]:
        return np.concatenate(cols[k]).astype(dt) if cols[k] else np.zeros(0, dt)

    k_max = max((w.shape[1] for w in cols["weights"]), default=1)
    weights = (np.vstack([np.pad(w, ((0, 0), (0, k_max - w.shape[1])), constant_values=np.nan)
                          for w in cols["weights"]]) if cols["weights"] else np.zeros((0, 1)))
    result = ReplayResult(
        scores=cat("scores", float), threshold=cat("threshold", float),
        surprise=cat("surprise", float), severity=cat("severity", float),
        is_anomaly=cat("is_anomaly", bool),
        X=np.vstack(cols["X"]) if cols["X"] else np.zeros((0, d)),
        timestamps=cat("ts", float),
        labels=cat("labels", float) if label_fx is not None else None,
        weights_history=weights, totals=dict(pipe.totals), metrics={},
        seconds=time.monotonic() - t0,
    )
    if result.labels is not None:
        result.metrics = _metrics(result.labels, result)
    if fb is not None:
        result.metrics.update(fb.report(result.labels, result.is_anomaly))
    if report:
        from streamem.evaluation.report import write_report

        ts = result.timestamps if np.isfinite(result.timestamps).all() and len(
            result.timestamps) else None
        write_report(report, scores=result.surprise, threshold=-np.log10(result.threshold),
                     is_anomaly=result.is_anomaly, X=result.X,
                     feature_names=list(cfg.fields.features),
                     labels=result.labels, timestamps=ts,
                     weights_history=result.weights_history, metrics=result.metrics or None)
    return result
