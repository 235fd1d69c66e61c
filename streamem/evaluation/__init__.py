"""Evaluation tools: metrics, SKAB, controlled scenarios and HTML reports.

Modules (import the one you need; nothing is imported here, so matplotlib stays optional):

* :mod:`streamem.evaluation.metrics` — point, event-window and ranking metrics (numpy only).
* :mod:`streamem.evaluation.nab` — SKAB's pooled F1/FAR/MAR and NAB-like changepoint score.
* :mod:`streamem.evaluation.skab` — loading SKAB and running its leaderboard protocol.
* :mod:`streamem.evaluation.scenarios` — seeded streams with known changes and labels.
* :mod:`streamem.evaluation.report` — PNG plots plus ``index.html`` (needs ``streamem[report]``).
"""
