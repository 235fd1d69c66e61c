"""Scoring: calibration, SPOT threshold, drift, explanations and the :class:`Detector`."""
