"""streamem: streaming anomaly detection with an online-EM Gaussian mixture.

The library part needs only numpy and scipy::

    import streamem
    det = streamem.Detector(alert_rate=1e-3)
    res = det.process(X)          # X: shape (n_samples, n_features); NaN = missing
    res.is_anomaly, res.severity  # shape (n_samples,)

The daemon (``streamem run``), Kafka, Prometheus and sinks live in adapter modules that are
imported only when used.
"""

from __future__ import annotations

from streamem.errors import (
    ConfigError,
    InvalidInputError,
    NotFittedError,
    SinkError,
    SourceError,
    StateError,
    StreamemError,
)
from streamem.model.gmm import OnlineGMM
from streamem.model.hmm import OnlineHMM
from streamem.scoring.detector import DetectionResult, Detector
from streamem.scoring.keyed import KeyedDetector
from streamem.scoring.temporal import HMMDetector
from streamem.scoring.threshold import FixedThreshold, SpotThreshold, Threshold

__version__ = "0.1.0"

__all__ = (
    "ConfigError",
    "DetectionResult",
    "Detector",
    "FixedThreshold",
    "HMMDetector",
    "InvalidInputError",
    "KeyedDetector",
    "NotFittedError",
    "OnlineGMM",
    "OnlineHMM",
    "SinkError",
    "SourceError",
    "SpotThreshold",
    "StateError",
    "StreamemError",
    "Threshold",
    "__version__",
)
