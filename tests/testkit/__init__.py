"""Helpers shared by the test suite, imported as ``testkit.<module>`` (tests/ is on the pythonpath).

- :mod:`testkit.broker`: the real Kafka broker of ``scripts/kafka-broker`` (topics, producing);
- :mod:`testkit.kafka_daemon`: daemons over Kafka (configs, offsets, state comparison);
- :mod:`testkit.daemon`: daemon processes over files and stdin (configs, streams, inspect);
- :mod:`testkit.sinks`: a real HTTP receiver and anomaly records;
- :mod:`testkit.state`: resealing edited checkpoint files;
- :mod:`testkit.observability`: Prometheus and Alertmanager binaries and configs;
- :mod:`testkit.logs`: the Loghub samples;
- :mod:`testkit.gmm`: random mixtures, naive references and exact state/result equality.
"""
