"""The Kafka source: a consumer-group member that resumes from checkpoints, not from Kafka.

Resuming (the ordering contract of :mod:`streamem.sources.base`):

- offsets are never auto-committed; :meth:`KafkaSource.commit` commits exactly the positions
  the daemon passes, after its checkpoint is durable (the committed offset then drives lag
  monitoring and is the fallback for partitions no checkpoint covers); the daemon also commits
  the positions of every checkpoint it restores, at once, because a crash may have come
  between that checkpoint's save and its commit; a commit made before the member joined the
  group is sent as soon as its partitions are assigned;
- :meth:`KafkaSource.seek` positions are remembered and applied when their partitions are
  assigned; a rebalance listener's ``on_partitions_assigned`` result wins over them; with
  neither, Kafka's committed offset (else ``auto_offset_reset``) is used.

Rebalances (kafka-python 3.x runs group callbacks on its IO thread, where blocking consumer
calls raise): the listener is called while the thread that called :meth:`KafkaSource.poll`
(or :meth:`KafkaSource.close`) is blocked inside it, so it never runs concurrently with the
daemon loop. ``on_partitions_revoked`` comes first; :meth:`KafkaSource.commit` called from it
is sent asynchronously and awaited before the group re-joins. ``on_partitions_assigned``
returns ``{partition: next_offset}``, which is seeked before any record is fetched; commits
made while it runs (the restored checkpoints') are sent asynchronously and awaited there.

Outages: a broker that is down or a topic that does not exist yet make :meth:`poll` return
``[]``; each is logged (rate-limited) and counted in :attr:`KafkaSource.stats`. After
``unavailable_timeout`` seconds without a broker, :meth:`poll` raises
:class:`~streamem.errors.SourceError`. Authentication and authorization failures raise at once.

Layout (kafka-python itself comes through :mod:`streamem.kafka.client`, the client settings
shared with the sinks and the checkpoint store from :mod:`streamem.kafka.settings`):

- :mod:`.source`: :class:`KafkaSource`, the consumer loop;
- :mod:`.fetch`: the fast record path plugged into kafka-python's fetcher
  (:func:`install_fast_records`);
- :mod:`.records`: the pure v2 record-batch decoder, the source's one decoding route;
- :mod:`.rebalance`: the bridge from kafka-python's group callbacks to the daemon's listener;
- :mod:`.positions`: :class:`PartitionPositions`, per partition the pending seek, the next
  offset to read and the lag;
- :mod:`.stats`: :class:`SourceStats` and outage/reconnect tracking.
"""

from __future__ import annotations

from streamem.logs import RateLimitedLog
from streamem.sources.kafka.fetch import fast_path_supported, install_fast_records
from streamem.sources.kafka.source import KafkaSource
from streamem.sources.kafka.stats import SourceStats

__all__ = [
    "KafkaSource",
    "RateLimitedLog",
    "SourceStats",
    "fast_path_supported",
    "install_fast_records",
]
