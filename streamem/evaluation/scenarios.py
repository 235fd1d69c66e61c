"""Seeded generators of controlled streams for benchmarks and tests.

Every stream is drawn from a fixed Gaussian mixture ("the normal regime") and then altered
in one controlled way: an abrupt, gradual or recurring shift of the means, sensor dropout
(NaN features), a burst of outliers, slowly growing variance, or nothing at all (null
stream). Each comes with per-event labels and the indices where the regime changes, so
detection delay, false alarms and re-adaptation time can be measured exactly.

Labels mark what a detector *should* flag: the first ``label_window`` events after a
regime change (after that the new regime is the new normal), the injected outliers, and,
for growing variance, every event after the growth began.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streamem.errors import ConfigError

__all__ = [
    "SCENARIOS",
    "Scenario",
    "abrupt_drift",
    "gradual_drift",
    "growing_variance",
    "make_scenario",
    "null_stream",
    "outlier_burst",
    "recurring_drift",
    "sensor_dropout",
]


@dataclass(frozen=True)
class Scenario:
    """A generated stream with its ground truth.

    Parameters
    ----------
    name
        Scenario name (a key of :data:`SCENARIOS`).
    X
        Events, shape (n, d); NaN marks a missing feature.
    labels
        Shape (n,); True where a detector should raise an alarm.
    change_points
        Indices where the generating regime changes (empty for a null stream).
    description
        One line for reports.

    Examples
    --------
    >>> s = null_stream(n=100, d=2, seed=0)
    >>> s.X.shape, int(s.labels.sum()), s.change_points
    ((100, 2), 0, ())
    """

    name: str
    X: NDArray[np.float64]
    labels: NDArray[np.bool_]
    change_points: tuple[int, ...]
    description: str


class _Mixture:
    """The normal regime: K well-separated correlated Gaussians in d dimensions."""

    def __init__(self, d: int, k: int, rng: np.random.Generator) -> None:
        self.means = rng.normal(0.0, 4.0, size=(k, d))
        a = rng.normal(size=(k, d, d)) / np.sqrt(d)
        self.chol = np.linalg.cholesky(a @ a.transpose(0, 2, 1) + 0.2 * np.eye(d))
        self.weights = rng.dirichlet(np.full(k, 5.0))
        self.d = d

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        shift: NDArray[np.float64] | None = None,
        scale: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """Draw n events; ``shift`` (n, d) moves the means, ``scale`` (n,) multiplies the noise."""
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        z: NDArray[np.float64] = np.einsum(
            "nij,nj->ni", self.chol[comp], rng.normal(size=(n, self.d))
        )
        if scale is not None:
            z *= scale[:, None]
        x: NDArray[np.float64] = self.means[comp] + z
        return x if shift is None else x + shift


def _setup(n: int, d: int, seed: int) -> tuple[np.random.Generator, _Mixture]:
    if n < 10 or d < 1:
        raise ConfigError("", f"need n >= 10 and d >= 1, got n={n}, d={d}; use a longer stream")
    rng = np.random.default_rng(seed)
    return rng, _Mixture(d, 3, rng)


def _direction(rng: np.random.Generator, d: int, size: float) -> NDArray[np.float64]:
    v = rng.normal(size=d)
    return size * v / np.linalg.norm(v)


def _label_after(n: int, cps: tuple[int, ...], window: int) -> NDArray[np.bool_]:
    lab = np.zeros(n, dtype=bool)
    for c in cps:
        lab[c : c + window] = True
    return lab


def null_stream(n: int = 20_000, d: int = 5, seed: int = 0) -> Scenario:
    """A stationary stream: every event is normal.

    Parameters
    ----------
    n, d
        Events and features.
    seed
        Random seed.

    Returns
    -------
    Scenario
        No labels, no change points.

    Examples
    --------
    >>> null_stream(n=50, d=3, seed=1).X.shape
    (50, 3)
    """
    rng, mix = _setup(n, d, seed)
    x = mix.sample(n, rng)
    return Scenario("null", x, np.zeros(n, bool), (), "stationary 3-component mixture")


def abrupt_drift(
    n: int = 20_000, d: int = 5, seed: int = 0, shift: float = 6.0, label_window: int = 200
) -> Scenario:
    """All means jump by ``shift`` (in a random direction) at the middle of the stream.

    Parameters
    ----------
    n, d, seed
        Size and seed.
    shift
        Euclidean size of the jump.
    label_window
        Events after the change labelled anomalous.

    Returns
    -------
    Scenario
        One change point at ``n // 2``.

    Examples
    --------
    >>> s = abrupt_drift(n=1000, d=2, seed=0, label_window=10)
    >>> s.change_points, int(s.labels.sum())
    ((500,), 10)
    """
    rng, mix = _setup(n, d, seed)
    cp = n // 2
    sh = np.zeros((n, d))
    sh[cp:] = _direction(rng, d, shift)
    cps = (cp,)
    return Scenario(
        "abrupt_drift",
        mix.sample(n, rng, shift=sh),
        _label_after(n, cps, label_window),
        cps,
        f"means jump by {shift:g} at event {cp}",
    )


def gradual_drift(
    n: int = 20_000, d: int = 5, seed: int = 0, shift: float = 6.0, ramp: int = 5_000
) -> Scenario:
    """The means slide linearly by ``shift`` over ``ramp`` events starting mid-stream.

    Parameters
    ----------
    n, d, seed
        Size and seed.
    shift
        Total size of the slide.
    ramp
        Events over which it happens; these are labelled (drift in progress).

    Returns
    -------
    Scenario
        One change point at ``n // 2``.

    Examples
    --------
    >>> s = gradual_drift(n=1000, d=2, seed=0, ramp=100)
    >>> s.change_points, int(s.labels.sum())
    ((500,), 100)
    """
    rng, mix = _setup(n, d, seed)
    cp = n // 2
    frac = np.clip((np.arange(n) - cp) / ramp, 0.0, 1.0)
    sh = frac[:, None] * _direction(rng, d, shift)[None, :]
    cps = (cp,)
    return Scenario(
        "gradual_drift",
        mix.sample(n, rng, shift=sh),
        _label_after(n, cps, ramp),
        cps,
        f"means slide by {shift:g} over {ramp} events from event {cp}",
    )


def recurring_drift(
    n: int = 20_000,
    d: int = 5,
    seed: int = 0,
    shift: float = 6.0,
    period: int = 4_000,
    label_window: int = 200,
) -> Scenario:
    """Two regimes alternate every ``period`` events (A, B, A, B, ...).

    Parameters
    ----------
    n, d, seed
        Size and seed.
    shift
        Distance between the regimes.
    period
        Events per regime visit.
    label_window
        Events after each switch labelled anomalous.

    Returns
    -------
    Scenario
        A change point at every switch.

    Examples
    --------
    >>> recurring_drift(n=1000, d=2, seed=0, period=300).change_points
    (300, 600, 900)
    """
    rng, mix = _setup(n, d, seed)
    idx = np.arange(n)
    in_b = (idx // period) % 2 == 1
    sh = in_b[:, None] * _direction(rng, d, shift)[None, :]
    cps = tuple(range(period, n, period))
    return Scenario(
        "recurring_drift",
        mix.sample(n, rng, shift=sh),
        _label_after(n, cps, label_window),
        cps,
        f"two regimes {shift:g} apart alternate every {period} events",
    )


def sensor_dropout(
    n: int = 20_000,
    d: int = 5,
    seed: int = 0,
    missing_rate: float = 0.05,
    n_outliers: int = 20,
    outlier_size: float = 10.0,
) -> Scenario:
    """Feature 0 drops out (NaN) for the middle third; elsewhere values go missing at random.

    A few point outliers are placed inside the dropout so that scoring with the remaining
    features is tested; missing values alone must raise no alarm.

    Parameters
    ----------
    n, d, seed
        Size and seed (d >= 2).
    missing_rate
        Probability that any other value is missing.
    n_outliers
        Point outliers injected during the dropout (labelled).
    outlier_size
        Their distance from the normal point, along features 1..d-1.

    Returns
    -------
    Scenario
        Change points at the start and end of the dropout.

    Examples
    --------
    >>> s = sensor_dropout(n=900, d=3, seed=0, n_outliers=5)
    >>> bool(np.isnan(s.X[300:600, 0]).all()), int(s.labels.sum())
    (True, 5)
    """
    if d < 2:
        raise ConfigError("", f"sensor_dropout needs d >= 2, got d={d}; use more features")
    rng, mix = _setup(n, d, seed)
    x = mix.sample(n, rng)
    start, stop = n // 3, 2 * n // 3
    lab = np.zeros(n, dtype=bool)
    where = rng.choice(np.arange(start, stop), size=min(n_outliers, stop - start), replace=False)
    x[where, 1:] += _direction(rng, d - 1, outlier_size)
    lab[where] = True
    x[rng.random((n, d)) < missing_rate] = np.nan
    x[start:stop, 0] = np.nan
    return Scenario(
        "sensor_dropout",
        x,
        lab,
        (start, stop),
        f"feature 0 missing in [{start}, {stop}), {missing_rate:.0%} missing at random",
    )


def outlier_burst(
    n: int = 20_000, d: int = 5, seed: int = 0, burst: int = 50, size: float = 10.0
) -> Scenario:
    """A burst of ``burst`` consecutive far-away events in the middle of the stream.

    Parameters
    ----------
    n, d, seed
        Size and seed.
    burst
        Length of the burst (all labelled).
    size
        Distance of the outliers from the normal point they replace.

    Returns
    -------
    Scenario
        Change points at the start and end of the burst.

    Examples
    --------
    >>> s = outlier_burst(n=1000, d=2, seed=0, burst=7)
    >>> s.change_points, int(s.labels.sum())
    ((500, 507), 7)
    """
    rng, mix = _setup(n, d, seed)
    x = mix.sample(n, rng)
    cp = n // 2
    x[cp : cp + burst] += _direction(rng, d, size)
    cps = (cp, cp + burst)
    return Scenario(
        "outlier_burst",
        x,
        _label_after(n, (cp,), burst),
        cps,
        f"{burst} outliers at distance {size:g} from event {cp}",
    )


def growing_variance(
    n: int = 20_000, d: int = 5, seed: int = 0, final_scale: float = 3.0
) -> Scenario:
    """The noise scale grows linearly from 1 to ``final_scale`` over the second half.

    Parameters
    ----------
    n, d, seed
        Size and seed.
    final_scale
        Noise multiplier at the last event.

    Returns
    -------
    Scenario
        One change point at ``n // 2``; every later event is labelled.

    Examples
    --------
    >>> s = growing_variance(n=1000, d=2, seed=0)
    >>> s.change_points, int(s.labels.sum())
    ((500,), 500)
    """
    rng, mix = _setup(n, d, seed)
    cp = n // 2
    scale = 1.0 + (final_scale - 1.0) * np.clip((np.arange(n) - cp) / (n - cp), 0.0, 1.0)
    cps = (cp,)
    return Scenario(
        "growing_variance",
        mix.sample(n, rng, scale=scale),
        _label_after(n, cps, n - cp),
        cps,
        f"noise scale grows from 1 to {final_scale:g} from event {cp}",
    )


#: Scenario name -> generator taking ``n``, ``d`` and ``seed``.
SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "null": null_stream,
    "abrupt_drift": abrupt_drift,
    "gradual_drift": gradual_drift,
    "recurring_drift": recurring_drift,
    "sensor_dropout": sensor_dropout,
    "outlier_burst": outlier_burst,
    "growing_variance": growing_variance,
}


def make_scenario(name: str, n: int = 20_000, d: int = 5, seed: int = 0) -> Scenario:
    """Build a scenario by name.

    Parameters
    ----------
    name
        A key of :data:`SCENARIOS`.
    n, d, seed
        Size and seed.

    Returns
    -------
    Scenario
        The generated stream.

    Raises
    ------
    ConfigError
        For an unknown name.

    Examples
    --------
    >>> make_scenario("outlier_burst", n=200, d=2).labels.sum() > 0
    np.True_
    >>> make_scenario("nope")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: unknown scenario 'nope'; choose one of: null, ...
    """
    if name not in SCENARIOS:
        raise ConfigError("", f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")
    return SCENARIOS[name](n=n, d=d, seed=seed)
