"""Adapters that plug streamem's model into other libraries' APIs.

Each adapter module imports its library and nothing else imports it, so
``import streamem`` never loads them:

- :mod:`streamem.integrations.river`: :class:`~streamem.integrations.river.GMMAnomalyDetector`,
  a river anomaly detector (``pip install 'streamem[river]'``).

scikit-learn needs no adapter: :class:`~streamem.OnlineGMM` follows its estimator conventions
itself (``get_params``, ``fit``, ``partial_fit``, ``score_samples``...), duck-typed.
"""

from __future__ import annotations

__all__: list[str] = []
