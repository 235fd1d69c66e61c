"""Aggregation of events into event-time buckets: one feature vector per key and bucket.

:class:`Aggregator` (:mod:`~streamem.aggregate.buckets`) holds the open buckets;
:class:`FeatureSpec` (:mod:`~streamem.aggregate.spec`) says what a bucket computes;
:class:`Buckets` (:mod:`~streamem.aggregate.result`) are the closed ones;
:mod:`~streamem.aggregate.reduce` and :mod:`~streamem.aggregate.columns` are the numpy
kernels. The sketches (KLL quantiles, HyperLogLog distinct counts) are
:mod:`~streamem.aggregate.sketches`, the only module that imports ``datasketches``;
:mod:`~streamem.aggregate.state` is the snapshot.
"""

from __future__ import annotations

from streamem.aggregate.buckets import Aggregator
from streamem.aggregate.result import Buckets, Rejection
from streamem.aggregate.spec import FUNCTIONS, FeatureSpec

__all__ = ["FUNCTIONS", "Aggregator", "Buckets", "FeatureSpec", "Rejection"]
