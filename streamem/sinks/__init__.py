"""streamem.sinks: where anomalies, incidents and rejected events go.

Nothing is imported here, so loading the protocol does not load httpx or kafka-python; import
the module you need:

- :mod:`~streamem.sinks.base`: the ``Sink`` and ``DeadLetterSink`` protocols, ``Incident``,
  ``SinkStats``;
- :mod:`~streamem.sinks.jsonl`: ``StdoutSink``, ``FileSink`` (JSON lines, fsync on flush);
- :mod:`~streamem.sinks.deadletter`: ``FileDeadLetterSink``;
- :mod:`~streamem.sinks.webhook`: ``WebhookSink`` (signed, retried, spooled, cooled down);
- :mod:`~streamem.sinks.alertmanager`: ``AlertmanagerSink`` (incidents as alerts);
- :mod:`~streamem.sinks.fanout`: ``FanoutSink`` (isolates each sink's failures);
- :mod:`~streamem.sinks.factory`: ``build_sink`` from a ``sinks[i]`` config entry;
- internals of the network sinks: :mod:`~streamem.sinks.delivery` (queue, worker, retries),
  :mod:`~streamem.sinks.spool` (durable on-disk FIFO), :mod:`~streamem.sinks.retry`
  (backoff policy), :mod:`~streamem.sinks.http` (the only httpx user),
  :mod:`~streamem.sinks.payload` (the JSON documents).
"""
