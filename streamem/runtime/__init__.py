"""The runtime: how events flow from a source through the detector to the sinks.

- :mod:`~streamem.runtime.build`: config -> objects (the only place that builds them);
- :mod:`~streamem.runtime.lane`: a lane, one model state made of small owned parts;
- :mod:`~streamem.runtime.pipeline`: decode, score, learn and route one batch;
- :mod:`~streamem.runtime.chunking`: deterministic chunks of a Kafka source's events;
- :mod:`~streamem.runtime.checkpoint`: flush -> save -> commit, and restoring lanes;
- :mod:`~streamem.runtime.rebalance`: lanes that follow a consumer group's assignment;
- :mod:`~streamem.runtime.daemon`: the loop of ``streamem run``;
- :mod:`~streamem.runtime.replay`: ``streamem replay``, the pipeline over a file;
- :mod:`~streamem.runtime.lifecycle`: signals, the status line and the run summary.
"""
