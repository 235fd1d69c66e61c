"""The operator page: a live view of the daemon and a JSON API, served on the metrics port.

- :mod:`streamem.ui.history`: bounded recent anomalies, incidents, scores, keys, verdicts;
- :mod:`streamem.ui.status`: the overview numbers, read from the metrics;
- :mod:`streamem.ui.app`: the WSGI app (page, ``/api/v1``, feedback with a token);
- :mod:`streamem.ui.store`: the history file written with each checkpoint.
"""
