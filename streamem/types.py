"""Small frozen value types shared across layers (pure: stdlib only)."""

from __future__ import annotations

# re-exported: streamem/scoring/report.py (owned by another helper this session) imports
# FeatureContribution from here; new code imports streamem.alerting.records
from streamem.alerting.records import AnomalyRecord, FeatureContribution

__all__ = ["AnomalyRecord", "FeatureContribution"]
