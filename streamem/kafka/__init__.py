"""Kafka, shared by the source, the sinks and the checkpoint store.

- :mod:`streamem.kafka.settings`: :class:`KafkaSecurity` and :func:`client_config`, the client
  settings all three share (pure);
- :mod:`streamem.kafka.client`: kafka-python itself; the only module that imports it.

Importing this package does not load kafka-python.
"""

from __future__ import annotations

from streamem.kafka.settings import KafkaSecurity, client_config

__all__ = ["KafkaSecurity", "client_config"]
