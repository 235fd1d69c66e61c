"""Alerting: from anomalous events to what operators receive.

- :mod:`streamem.alerting.records`: :class:`AnomalyRecord`, :class:`FeatureContribution`,
  :class:`Incident`, the values sinks deliver;
- :mod:`streamem.alerting.incidents`: :class:`IncidentTracker`, grouping anomalies per key
  into incidents with hysteresis;
- :mod:`streamem.alerting.rules`: ``rules[]`` (suppress, skip learning) over events.

Nothing in this package imports a sink: the sinks import the records from here.
"""
