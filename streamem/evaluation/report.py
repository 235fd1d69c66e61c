"""A static HTML report of one detection run: PNG plots plus a metrics table.

matplotlib is an optional extra (``pip install streamem[report]``). It is imported only
inside :func:`write_report`, through the object API (``Figure`` + the Agg canvas), so no
global pyplot state or backend is touched.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError, StreamemError
from streamem.evaluation.metrics import event_windows

__all__ = ["ReportDependencyError", "write_report"]

_MAX_POINTS = 4000  # line plots are reduced to at most this many bins (max per bin)


class ReportDependencyError(StreamemError, ImportError):
    """matplotlib, needed for reports, is not installed.

    Examples
    --------
    >>> issubclass(ReportDependencyError, ImportError)
    True
    """


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportDependencyError(
            "writing a report needs matplotlib, which is not installed; "
            "run: pip install streamem[report]"
        ) from exc
    return Figure, FigureCanvasAgg


def _save(fig: Any, canvas_cls: Any, path: Path) -> Path:
    canvas_cls(fig)
    fig.savefig(path, dpi=110)
    return path


def _envelope(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bin long series to ``_MAX_POINTS`` bins, keeping each bin's maximum (spikes survive)."""
    if y.size <= _MAX_POINTS:
        return x, y
    edges = np.linspace(0, y.size, _MAX_POINTS + 1).astype(int)
    yy = np.where(np.isfinite(y), y, -np.inf)
    ymax = np.maximum.reduceat(yy, edges[:-1])
    return x[edges[:-1]], np.where(np.isfinite(ymax), ymax, np.nan)


def _plot_scores(
    fig: Any,
    t: NDArray[np.float64],
    scores: NDArray[np.float64],
    threshold: NDArray[np.float64],
    flags: NDArray[np.bool_],
    labels: NDArray[np.bool_] | None,
    xlabel: str,
    score_label: str,
) -> None:
    ax = fig.add_subplot(1, 1, 1)
    if labels is not None:
        wins = event_windows(labels)
        for a, b in wins:
            ax.axvspan(t[a], t[min(b, t.size - 1)], color="tab:orange", alpha=0.18, lw=0)
        if wins:  # a rug of event starts keeps one-event labels visible on long streams
            starts = t[[a for a, _ in wins]]
            ax.plot(
                starts,
                np.full(starts.size, 0.02),
                "^",
                color="tab:orange",
                ms=5,
                transform=ax.get_xaxis_transform(),
                label=f"labelled anomaly ({len(wins)})",
            )
    tx, sy = _envelope(t, scores)
    ax.plot(tx, sy, color="tab:blue", lw=0.7, label=score_label)
    thx, thy = _envelope(t, threshold)
    ax.plot(thx, thy, color="black", lw=1.2, ls="--", label="threshold")
    if flags.any():
        ax.scatter(
            t[flags],
            scores[flags],
            s=10 if flags.sum() < 500 else 3,
            color="tab:red",
            zorder=3,
            label=f"flagged ({int(flags.sum()):,})",
        )
    finite = scores[np.isfinite(scores)]
    if finite.size and finite.min() > 0 and finite.max() / max(np.median(finite), 1e-12) > 50:
        ax.set_yscale("log")
    ax.set_title("Anomaly score over time")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(score_label)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)


def _incidents(
    scores: NDArray[np.float64], flags: NDArray[np.bool_], k: int, gap: int = 10
) -> list[tuple[int, int]]:
    """The k incidents with the highest peak score, as (onset, peak) event indices.

    An incident is a run of flagged events with gaps of at most ``gap`` unflagged ones.
    """
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.concatenate(([0], breaks + 1))
    stops = np.concatenate((breaks + 1, [idx.size]))
    found = []
    for a, b in zip(starts, stops, strict=True):
        members = idx[a:b]
        finite = members[np.isfinite(scores[members])]
        peak = int(finite[np.argmax(scores[finite])]) if finite.size else int(members[0])
        found.append((float(scores[peak]) if finite.size else -np.inf, int(members[0]), peak))
    found.sort(key=lambda r: -r[0])
    return [(onset, peak) for _, onset, peak in found[:k]]


def _deviation(
    X: NDArray[np.float64], flags: NDArray[np.bool_], i: int, half: int
) -> NDArray[np.float64]:
    """Robust z of event i per feature against the unflagged events just before it."""
    before = np.flatnonzero(~flags[:i])[-2 * half :]
    if before.size < 5:  # nothing normal before: use the unflagged events after it
        before = np.flatnonzero(~flags)[: 2 * half]
    if before.size < 5:
        out: NDArray[np.float64] = np.zeros(X.shape[1])
        return out
    ctx = X[before]
    with warnings.catch_warnings():  # an all-missing feature has no median: z = -1 below
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(ctx, axis=0)
        mad = np.nanmedian(np.abs(ctx - med), axis=0) * 1.4826
    z: NDArray[np.float64] = np.abs(X[i] - med) / np.where(mad > 0, mad, 1.0)
    return np.nan_to_num(z, nan=-1.0)


def _plot_features(
    fig: Any,
    t: NDArray[np.float64],
    X: NDArray[np.float64],
    flags: NDArray[np.bool_],
    names: Sequence[str],
    picks: list[tuple[int, int]],
    xlabel: str,
    n_feat: int = 3,
    half: int = 100,
) -> None:
    n_feat = min(n_feat, X.shape[1])
    for r, (onset, _peak) in enumerate(picks):
        lo, hi = max(0, onset - half), min(X.shape[0], onset + half + 1)
        z = _deviation(X, flags, onset, half)
        near = np.flatnonzero(flags[lo:hi]) + lo
        for c, j in enumerate(np.argsort(-z, kind="stable")[:n_feat]):
            ax = fig.add_subplot(len(picks), n_feat, r * n_feat + c + 1)
            ax.plot(t[lo:hi], X[lo:hi, j], color="tab:blue", lw=0.8)
            ax.scatter(t[near], X[near, j], color="tab:red", s=6, zorder=3, label="flagged")
            ax.axvline(t[onset], color="tab:red", lw=1, ls="--", label="incident onset")
            ax.set_title(f"onset event {onset}: {names[j]} (z {z[j]:.1f})", fontsize=8)
            ax.set_ylabel(names[j], fontsize=8)
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="best")
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if r == len(picks) - 1:
                ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(
        "Most deviating features at the onset of the strongest incidents "
        "(robust z against the unflagged events before the onset)"
    )


def _plot_weights(fig: Any, weights: NDArray[np.float64], n: int, xlabel: str) -> None:
    ax = fig.add_subplot(1, 1, 1)
    x = np.linspace(0, max(n - 1, 1), weights.shape[0])
    ax.stackplot(x, weights.T, labels=[f"component {k}" for k in range(weights.shape[1])])
    ax.set_ylim(0, 1)
    ax.set_title("Mixture component weights over time")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("weight (stacked)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)


def _as_1d(name: str, v: ArrayLike, n: int, dtype: type) -> NDArray[Any]:
    arr: NDArray[Any] = np.asarray(v, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=dtype)
    if arr.shape != (n,):
        raise InvalidInputError(
            f"{name} has shape {arr.shape}, expected ({n},); pass one per event"
        )
    return arr


def _html(paths: list[Path], metrics: Mapping[str, Any] | None, summary: dict[str, str]) -> str:
    rows = dict(summary)
    for k, v in (metrics or {}).items():
        rows[k] = f"{v:.4g}" if isinstance(v, float) else str(v)
    table = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
    )
    figs = "\n".join(
        f'<figure><img src="{p.name}" alt="{p.stem}"><figcaption>{p.stem}</figcaption></figure>'
        for p in paths
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamem report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
th{{background:#f3f3f3}}img{{max-width:100%;border:1px solid #ddd}}figure{{margin:1.5em 0}}</style>
</head><body><h1>streamem detection report</h1>
<h2>Metrics</h2><table>{table}</table>
<h2>Plots</h2>{figs}
</body></html>
"""


def write_report(
    out_dir: str | Path,
    *,
    scores: ArrayLike,
    threshold: ArrayLike,
    is_anomaly: ArrayLike,
    X: ArrayLike,
    feature_names: Sequence[str] | None,
    labels: ArrayLike | None = None,
    timestamps: ArrayLike | None = None,
    weights_history: ArrayLike | None = None,
    metrics: Mapping[str, Any] | None = None,
    score_label: str = "score",
) -> list[Path]:
    """Write PNG plots and an ``index.html`` that ties them together.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    scores, threshold, is_anomaly
        Per-event detector output, shape (n,); ``threshold`` may be a scalar and must be on
        the scores' scale (for a :class:`~streamem.Detector` result pass
        ``res.surprise`` and ``-np.log10(res.threshold)``). NaN scores (warm-up) are left
        out of the plot.
    X
        The events, shape (n, d).
    feature_names
        d names, or ``None`` for ``x0, x1, ...``.
    labels
        Optional ground truth, shape (n,); labelled runs are shaded.
    timestamps
        Optional times in seconds, shape (n,); the x axis is the event index otherwise.
    weights_history
        Optional mixture weights sampled over the run, shape (T, K), evenly spaced.
    metrics
        Optional name -> value pairs for the table.
    score_label
        Axis label for the scores, e.g. ``"surprise (−log10 tail probability)"``.

    Returns
    -------
    list of Path
        The PNG files, then ``index.html``.

    Raises
    ------
    ReportDependencyError
        If matplotlib is missing.

    Examples
    --------
    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); s = np.abs(X).sum(1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_report(d, scores=s, threshold=4.0, is_anomaly=s > 4,
    ...                          X=X, feature_names=["a", "b"])
    ...     [p.name for p in paths]
    ['scores.png', 'features.png', 'index.html']
    """
    figure_cls, canvas_cls = _matplotlib()
    x = np.asarray(X, dtype=float)
    if x.ndim != 2:
        raise InvalidInputError(f"X has shape {x.shape}; pass a 2-D array (n_events, n_features)")
    n = x.shape[0]
    s = _as_1d("scores", scores, n, float)
    th = _as_1d("threshold", threshold, n, float)
    flags = _as_1d("is_anomaly", is_anomaly, n, bool)
    # labels may come as floats with NaN for "unknown": only values > 0.5 count as anomalous
    lab = None if labels is None else np.nan_to_num(_as_1d("labels", labels, n, float)) > 0.5
    names = (
        list(feature_names) if feature_names is not None else [f"x{j}" for j in range(x.shape[1])]
    )
    if len(names) != x.shape[1]:
        raise InvalidInputError(
            f"{len(names)} feature names for {x.shape[1]} features; pass one name per column"
        )
    if timestamps is None:
        t, xlabel = np.arange(n, dtype=float), "event index"
    else:
        t = _as_1d("timestamps", timestamps, n, float)
        t, xlabel = t - t[0], "seconds since first event"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    fig = figure_cls(figsize=(11, 4), layout="constrained")
    _plot_scores(fig, t, s, th, flags, lab, xlabel, score_label)
    paths.append(_save(fig, canvas_cls, out / "scores.png"))

    picks = _incidents(s, flags, 3)
    if picks:
        fig = figure_cls(figsize=(11, 2.6 * len(picks) + 0.6), layout="constrained")
        _plot_features(fig, t, x, flags, names, picks, xlabel)
        paths.append(_save(fig, canvas_cls, out / "features.png"))

    if weights_history is not None:
        w = np.asarray(weights_history, dtype=float)
        if w.ndim != 2:
            raise InvalidInputError(f"weights_history has shape {w.shape}; pass (T, K)")
        fig = figure_cls(figsize=(11, 3.5), layout="constrained")
        _plot_weights(fig, w, n, xlabel)
        paths.append(_save(fig, canvas_cls, out / "weights.png"))

    summary = {
        "events": f"{n:,}",
        "flagged": f"{int(flags.sum()):,} ({flags.mean():.3%})" if n else "0",
    }
    if lab is not None:
        summary["labelled anomalous"] = f"{int(lab.sum()):,}"
    index = out / "index.html"
    index.write_text(_html(paths, metrics, summary), encoding="utf-8")
    return [*paths, index]
