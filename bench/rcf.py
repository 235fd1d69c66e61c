"""Random Cut Forest as a benchmark peer: AWS's Java library behind a small runner.

The runner (``bench/rcf/src/main/java/streamem/bench/RcfRunner.java``) wraps
``ThresholdedRandomCutForest`` from ``randomcutforest-parkservices`` 4.2.0, because that is
the class OpenSearch Anomaly Detection runs, configured the way OpenSearch configures it:
50 trees, sample size 256, time decay 1e-4, output after 32 points (initial accept
fraction 32/256), internal shingling, ``NORMALIZE`` transform, float32 precision, anomaly
rate 0.005, ``alertOnce`` and ``autoAdjust``, ``ForestMode.STANDARD`` (the series here have
no gaps to impute). Events are ranked by the RCF anomaly score (``getRCFScore``), which
``process`` computes before the event updates the forest. The thresholded anomaly grade is
0 for almost every event, so it cannot rank; it is returned too.

:func:`build` compiles the runner with Maven once into a cache folder
(``~/.cache/streamem/rcf``, or ``$STREAMEM_RCF_HOME``), keyed by a digest of the POM and the
source, like ``scripts/kafka-broker`` caches the Kafka jars. Later builds are free; a changed
source rebuilds offline (``mvn -o``) and falls back to an online resolve.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from streamem.errors import StreamemError

HERE = Path(__file__).resolve().parent / "rcf"
SOURCES = (HERE / "pom.xml", HERE / "src/main/java/streamem/bench/RcfRunner.java")
HOME = Path(os.environ.get("STREAMEM_RCF_HOME", Path.home() / ".cache" / "streamem" / "rcf"))
RCF_VERSION = "4.2.0"

#: OpenSearch Anomaly Detection's forest size.
TREES, SAMPLE = 50, 256


class RcfError(StreamemError):
    """The RCF runner could not be built or failed while scoring."""


def _digest() -> str:
    h = hashlib.sha256()
    for p in SOURCES:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build_dir() -> Path:
    """Folder of the build for the current sources (it may not exist yet)."""
    return HOME / _digest()


def _mvn(cwd: Path, offline: bool) -> subprocess.CompletedProcess[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RcfError("Maven (mvn) not found on PATH; install it (apt-get install maven)")
    cmd = [mvn, "-q", "-B", *(["-o"] if offline else []), "compile",
           "dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory=lib"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def build() -> tuple[Path, float]:
    """Build the runner once; return its folder and the seconds spent (0 when cached).

    Raises
    ------
    RcfError
        When Java or Maven is missing or the build fails (the Maven output is included).
    """
    out = build_dir()
    if (out / ".complete").exists():
        return out, 0.0
    if shutil.which("java") is None:
        raise RcfError("java not found on PATH; install a JDK 17+ (apt-get install openjdk-17-jdk)")
    t0 = time.monotonic()
    HOME.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build.", dir=HOME))
    try:
        shutil.copy(SOURCES[0], tmp / "pom.xml")
        shutil.copytree(HERE / "src", tmp / "src")
        proc = _mvn(tmp, offline=True)
        if proc.returncode != 0:  # first build on this machine: resolve from Maven Central
            proc = _mvn(tmp, offline=False)
        if proc.returncode != 0 or not (tmp / "target" / "classes").exists():
            raise RcfError(
                f"Maven could not build the RCF runner (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}\n"
                "Check that Maven Central is reachable (or ~/.m2/settings.xml has a mirror)."
            )
        (tmp / ".complete").write_text(f"randomcutforest {RCF_VERSION}\n")
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, time.monotonic() - t0


@dataclass(frozen=True)
class RcfScores:
    """Per-event output of the runner: RCF score and anomaly grade (NaN = not scored)."""

    score: NDArray[np.float64]
    grade: NDArray[np.float64]


def run(
    X: NDArray[np.float64], shingle: int = 1, seed: int = 0, trees: int = TREES,
    sample: int = SAMPLE,
) -> RcfScores:
    """Stream the rows of ``X`` through one forest, score-then-update, in order.

    Parameters
    ----------
    X
        Shape (n, d); NaN values are passed on as 0 (RCF has no missing-value input here).
    shingle
        RCF's internal shingle size (1 for tabular data, 8 for NAB as OpenSearch uses).
    seed
        The forest's random seed; the output is deterministic for a fixed seed.
    trees, sample
        Forest size (OpenSearch: 50, 256).

    Returns
    -------
    RcfScores
        One score and grade per row; NaN until the forest is ready (32 rows, full shingle).
    """
    folder, _ = build()
    x = np.ascontiguousarray(np.nan_to_num(np.asarray(X, dtype=float)), dtype="<f8")
    if x.ndim != 2:
        raise RcfError(f"X must be 2-D (n, d), got shape {x.shape}")
    cmd = ["java", "-Xmx1g", "-cp", f"{folder / 'target' / 'classes'}:{folder / 'lib'}/*",
           "streamem.bench.RcfRunner", str(x.shape[1]), str(shingle), str(trees), str(sample),
           str(seed)]
    proc = subprocess.run(cmd, input=x.tobytes(), capture_output=True, check=False)
    out = np.frombuffer(proc.stdout, dtype="<f8")
    if proc.returncode != 0 or out.size != 2 * x.shape[0]:
        raise RcfError(
            f"RCF runner failed (exit {proc.returncode}, {out.size // 2} of {x.shape[0]} rows "
            f"scored): {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    pairs = out.reshape(-1, 2).astype(float)
    return RcfScores(score=pairs[:, 0].copy(), grade=pairs[:, 1].copy())
