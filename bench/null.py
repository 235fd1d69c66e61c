"""Calibration on null streams: flagged fraction vs the configured alert_rate.

Question: when nothing is wrong, does the detector flag the fraction of events it was
asked to (``alert_rate``), or more, or less?

Run: ``python -m bench.null [--quick]``.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from numpy.typing import NDArray

from bench.common import Section, machine_lines, md_table, one_core
from streamem.evaluation.scenarios import null_stream

WARMUP = 1000
BATCH = 1024
RATES = (1e-2, 1e-3, 1e-4)


def _sizes(quick: bool) -> dict[float, int]:
    if quick:
        return {1e-2: 20_000, 1e-3: 50_000, 1e-4: 100_000}
    return {1e-2: 200_000, 1e-3: 500_000, 1e-4: 1_000_000}


def student_t_stream(n: int, d: int, seed: int, df: float = 5.0) -> NDArray[np.float64]:
    """Heavy-tailed null: correlated multivariate Student-t (the mixture is misspecified)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    chol = np.linalg.cholesky(a @ a.T + 0.2 * np.eye(d))
    z = rng.normal(size=(n, d)) @ chol.T
    w = np.sqrt(df / rng.chisquare(df, size=n))
    out: NDArray[np.float64] = z * w[:, None]
    return out


def flagged_fraction(X: NDArray[np.float64], alert_rate: float) -> float:
    """Fraction of post-warm-up events streamem flags on X (batches of BATCH)."""
    import streamem

    det = streamem.Detector(alert_rate=alert_rate, warmup=WARMUP, random_state=0)
    flagged = 0
    for i in range(0, len(X), BATCH):
        flagged += int(det.process(X[i : i + BATCH]).is_anomaly.sum())
    return flagged / (len(X) - WARMUP)


def _ci(p: float, n: int) -> str:
    # 95 % interval of the fraction a perfectly calibrated detector would show (binomial)
    half = 1.96 * math.sqrt(p * (1 - p) / n)
    return f"{max(p - half, 0):.2e} – {p + half:.2e}"


def measure(quick: bool) -> Section:
    """Run each alert rate on both null streams and build the section."""
    sizes = _sizes(quick)
    rows = []
    t0 = time.perf_counter()
    with one_core() as pinned, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        facts: dict[str, str] = {}
        for rate in RATES:
            n = sizes[rate]
            mix = flagged_fraction(null_stream(n=n, d=5, seed=1).X, rate)
            heavy = flagged_fraction(student_t_stream(n, 5, seed=1), rate)
            facts[f"null stream, alert_rate {rate:g}: flagged"] = (
                f"{mix:.2e} ({n - WARMUP:,} events)"
            )
            rows.append(
                [
                    f"{rate:g}",
                    f"{n - WARMUP:,}",
                    _ci(rate, n - WARMUP),
                    f"{mix:.2e} ({mix / rate:.2f}×)",
                    f"{heavy:.2e} ({heavy / rate:.2f}×)",
                ]
            )
    elapsed = time.perf_counter() - t0
    table = md_table(
        [
            "alert_rate",
            "events scored",
            "95 % range if calibrated",
            "flagged: Gaussian-mixture null",
            "flagged: Student-t (df 5) null",
        ],
        rows,
    )
    cmd = "python -m bench.null" + (" --quick" if quick else "")
    body = f"""{machine_lines(cmd, pinned)}- run time {elapsed:.0f} s; one seeded stream per cell \
(the count over that many events is itself the statistic, so it is not repeated)

**Setup.** `Detector(alert_rate=r, warmup={WARMUP})`, all else default, fed in batches of
{BATCH}; the warm-up events are not counted. Two null streams with d=5: the stationary
3-component Gaussian mixture of `scenarios.null_stream` (the model family is right) and a
correlated multivariate Student-t with 5 degrees of freedom (heavier tails than any
Gaussian mixture: the model family is wrong). The ratio in brackets is flagged ÷ target.

{table}"""
    return Section("null", "Calibration on null streams", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import section_main

    return section_main("null", __doc__, measure, argv, "shorter streams")


if __name__ == "__main__":
    main()
