"""The metric catalogue: bounded label values, histogram buckets and the model-health metrics.

What ``docs/contracts.md`` promises about names and label sets; :mod:`streamem.metrics.exporter`
builds the Prometheus metrics from these and :mod:`streamem.metrics.health` maps detector
health onto :data:`HEALTH_GAUGES` and :data:`COMPONENT_ARRAYS`. Pure data.
"""

from __future__ import annotations

from streamem.features import REJECT_REASONS  # defined once, where events are rejected

__all__ = [
    "BATCH_BUCKETS",
    "CHECKPOINT_BUCKETS",
    "COMPONENT_ARRAYS",
    "EVENT_OUTCOMES",
    "FEEDBACK_VERDICTS",
    "HEALTH_GAUGES",
    "KEY_COUNTERS",
    "KEY_GAUGES",
    "LOG_LIKELIHOOD_BUCKETS",
    "MAX_LAG_PARTITIONS",
    "REJECT_REASONS",
]

EVENT_OUTCOMES = ("learned", "anomalous", "rejected", "skipped")
FEEDBACK_VERDICTS = ("false_positive", "true_positive")
LOG_LIKELIHOOD_BUCKETS = (
    -200.0, -150.0, -100.0, -75.0, -50.0, -40.0, -30.0, -25.0, -20.0, -15.0,
    -10.0, -7.5, -5.0, -2.5, 0.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CHECKPOINT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HEALTH_GAUGES = {
    "threshold": "current anomaly threshold on the score scale (score = -log10 tail probability)",
    "alert_rate_target": "configured alert_rate",
    "tail_shape": "GPD shape of the SPOT tail fit",
    "tail_scale": "GPD scale of the SPOT tail fit",
    "tail_peaks": "number of peaks in the SPOT tail buffer",
    "drift_cusum": "CUSUM statistic on the mean NLL under the frozen reference",
    "drift_divergence": "symmetric KL bound between the reference and the live model",
    "drift_detected": "1 while drift is flagged, else 0",
    "model_components": "number of mixture components K",
    "model_generation": "model generation: the checkpoint sequence (increments on checkpoint)",
    "model_updates": "M-steps applied to the model (Detector.health()['generation'])",
    "log_likelihood_mean": "exponentially weighted mean log-likelihood of recent events",
}
"""Model-health gauges: the metric name without ``streamem_``, and its help text."""
KEY_GAUGES = {
    "keys_active": "entity keys with a model (in memory or in the key store), model.scope key",
    "keys_in_memory": "entity keys held in memory (model.max_keys_in_memory bounds it)",
    "keys_warming": "in-memory keys with fewer than model.key_prior_events events of their own",
}
"""Key-scope gauges, summed over the keyed lanes (no per-key labels)."""
KEY_COUNTERS = {
    "keys_evicted": "least recently used keys written out and evicted from memory",
    "keys_loaded": "evicted keys read back from the key store when they returned",
}
"""Key-scope counters (``streamem_<name>_total``), by name without ``streamem_``."""
COMPONENT_ARRAYS = {
    "component_weight": "mixture weights",
    "component_mean_shift": "mean shift vs reference, in reference Mahalanobis units",
}
"""Per-component gauges (label ``component`` = 0..K-1), by name without ``streamem_``."""
MAX_LAG_PARTITIONS = 4096
"""Most partitions exported by ``streamem_source_lag_events`` (the first ones, by number)."""
