"""Demo producer: sensor-like JSON events with occasional anomalies, written to Kafka.

Used by the compose stack (service ``producer``) and, for its pure generator
:func:`sensor_events`, by the deploy tests. Each event looks like::

    {"ts": 1700000000.005, "sensor": "pump-2", "temperature": 64.8, "pressure": 4.02,
     "flow": 12.1, "vibration": {"rms": 0.81}, "label": "normal"}

Pumps alternate between two operating modes (running, idle), so a healthy stream is a
two-cluster mixture with correlated features. ``label`` is the ground truth (``normal``,
``spike`` for an isolated anomaly, ``burst`` for the periodic faulty stretch) and is not a
feature. Settings come from the environment (see :func:`settings_from_env`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

SENSORS = ("pump-1", "pump-2", "pump-3", "pump-4")
FEATURES = ("temperature", "pressure", "flow", "vibration.rms")


def normal_event(rng: random.Random, sensor: str, ts: float) -> dict[str, Any]:
    """One healthy reading: running (70 %) or idle, with correlated pressure and flow.

    Parameters
    ----------
    rng
        Random source.
    sensor
        Entity key.
    ts
        Event time, seconds since the epoch.

    Returns
    -------
    dict
        The event, ``label`` = ``"normal"``.

    Examples
    --------
    >>> e = normal_event(random.Random(0), "pump-1", 10.0)
    >>> sorted(e), e["label"], e["sensor"]
    (['flow', 'label', 'pressure', 'sensor', 'temperature', 'ts', 'vibration'], 'normal', 'pump-1')
    """
    if rng.random() < 0.7:
        pressure = rng.gauss(4.0, 0.1)
        event = {
            "temperature": rng.gauss(65.0, 1.5),
            "pressure": pressure,
            "flow": 12.0 + 2.0 * (pressure - 4.0) + rng.gauss(0.0, 0.3),
            "vibration": {"rms": abs(rng.gauss(0.8, 0.05))},
        }
    else:
        event = {
            "temperature": rng.gauss(35.0, 1.0),
            "pressure": rng.gauss(1.0, 0.05),
            "flow": abs(rng.gauss(0.5, 0.1)),
            "vibration": {"rms": abs(rng.gauss(0.1, 0.02))},
        }
    return _finish(event, sensor, ts, "normal")


def anomalous_event(rng: random.Random, sensor: str, ts: float, label: str) -> dict[str, Any]:
    """One faulty reading: hot and shaking while running, with pressure and flow decoupled.

    Parameters
    ----------
    rng
        Random source.
    sensor
        Entity key.
    ts
        Event time, seconds since the epoch.
    label
        Ground-truth label to attach (``"spike"`` or ``"burst"``).

    Returns
    -------
    dict
        The event.

    Examples
    --------
    >>> e = anomalous_event(random.Random(0), "pump-1", 10.0, "spike")
    >>> e["label"], e["vibration"]["rms"] > 2.0, e["temperature"] > 75
    ('spike', True, True)
    """
    event = {
        "temperature": rng.gauss(82.0, 3.0),
        "pressure": rng.gauss(4.0, 0.1),
        "flow": abs(rng.gauss(3.0, 0.5)),
        "vibration": {"rms": abs(rng.gauss(3.0, 0.3))},
    }
    return _finish(event, sensor, ts, label)


def _finish(event: dict[str, Any], sensor: str, ts: float, label: str) -> dict[str, Any]:
    rounded: dict[str, Any] = {"ts": round(ts, 3), "sensor": sensor}
    for key, value in event.items():
        if isinstance(value, dict):
            rounded[key] = {k: round(v, 4) for k, v in value.items()}
        else:
            rounded[key] = round(value, 4)
    rounded["label"] = label
    return rounded


def sensor_events(
    seed: int = 0,
    *,
    start: float = 1_700_000_000.0,
    events_per_second: float = 200.0,
    anomaly_probability: float = 0.001,
    burst_every: int = 0,
    burst_length: int = 0,
    burst_at: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Endless, reproducible stream of events, round-robin over :data:`SENSORS`.

    Parameters
    ----------
    seed
        Seed of the private random generator: equal seeds give equal streams.
    start
        Timestamp of the first event; event ``i`` is stamped ``start + i / events_per_second``.
    events_per_second
        Nominal rate, used for the timestamps only (pacing is the caller's job).
    anomaly_probability
        Chance that an event outside a burst is an isolated ``spike``.
    burst_every, burst_length
        Every ``burst_every`` events, the next ``burst_length`` events are all ``burst``
        anomalies (0 disables periodic bursts).
    burst_at
        Start index of one extra burst of ``burst_length`` events (None: no extra burst).

    Yields
    ------
    dict
        One event per iteration.

    Examples
    --------
    >>> import itertools
    >>> events = list(itertools.islice(sensor_events(1, anomaly_probability=0.0,
    ...                                              burst_at=5, burst_length=2), 8))
    >>> [e["label"] for e in events]
    ['normal', 'normal', 'normal', 'normal', 'normal', 'burst', 'burst', 'normal']
    >>> events[1]["sensor"], round(events[1]["ts"] - events[0]["ts"], 6)
    ('pump-2', 0.005)
    """
    rng = random.Random(seed)
    i = 0
    while True:
        sensor = SENSORS[i % len(SENSORS)]
        ts = start + i / events_per_second
        in_periodic = (
            burst_every > 0
            and burst_length > 0
            and (i % burst_every) >= (burst_every - burst_length)
        )
        in_extra = burst_at is not None and burst_at <= i < burst_at + burst_length
        if in_periodic or in_extra:
            yield anomalous_event(rng, sensor, ts, "burst")
        elif rng.random() < anomaly_probability:
            yield anomalous_event(rng, sensor, ts, "spike")
        else:
            yield normal_event(rng, sensor, ts)
        i += 1


@dataclass(frozen=True)
class Settings:
    """Producer settings (see :func:`settings_from_env`).

    Examples
    --------
    >>> Settings().topic
    'sensor-events'
    """

    bootstrap: str = "kafka:9092"
    topic: str = "sensor-events"
    events_per_second: float = 200.0
    anomaly_probability: float = 0.001
    burst_every_seconds: float = 600.0
    burst_seconds: float = 60.0
    seed: int = 0


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Read ``KAFKA_BOOTSTRAP``, ``TOPIC``, ``EVENTS_PER_SECOND``, ``ANOMALY_PROBABILITY``,
    ``BURST_EVERY_SECONDS``, ``BURST_SECONDS`` and ``SEED``; defaults from :class:`Settings`.

    Parameters
    ----------
    env
        The environment, e.g. ``os.environ``.

    Returns
    -------
    Settings
        The settings.

    Raises
    ------
    ValueError
        When a number does not parse; the message names the variable.

    Examples
    --------
    >>> settings_from_env({"EVENTS_PER_SECOND": "50", "TOPIC": "t"}).events_per_second
    50.0
    """
    d = Settings()

    def num(name: str, default: float) -> float:
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number; set it to e.g. {default}") from None

    return Settings(
        bootstrap=env.get("KAFKA_BOOTSTRAP", d.bootstrap),
        topic=env.get("TOPIC", d.topic),
        events_per_second=num("EVENTS_PER_SECOND", d.events_per_second),
        anomaly_probability=num("ANOMALY_PROBABILITY", d.anomaly_probability),
        burst_every_seconds=num("BURST_EVERY_SECONDS", d.burst_every_seconds),
        burst_seconds=num("BURST_SECONDS", d.burst_seconds),
        seed=int(num("SEED", d.seed)),
    )


def main() -> int:  # pragma: no cover - runs inside the compose stack
    """Produce events to Kafka at the configured rate until SIGTERM/SIGINT; returns 0."""
    from kafka import KafkaProducer  # only here: the generator above needs no Kafka client

    logging.basicConfig(level=logging.INFO, format="%(asctime)s producer %(message)s")
    s = settings_from_env(os.environ)
    stop = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)  # PID 1 in a container ignores SIGTERM otherwise
    signal.signal(signal.SIGINT, _stop)
    producer = None
    while producer is None and not stop:
        try:
            producer = KafkaProducer(
                bootstrap_servers=s.bootstrap.split(","),
                key_serializer=str.encode,
                value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode(),
                linger_ms=20,
            )
        except Exception as exc:  # broker not up yet
            logger.info("waiting for Kafka at %s: %s", s.bootstrap, exc)
            time.sleep(2.0)
    if producer is None:
        return 0
    rate = max(s.events_per_second, 1.0)
    events = sensor_events(
        s.seed,
        start=time.time(),
        events_per_second=rate,
        anomaly_probability=s.anomaly_probability,
        burst_every=int(s.burst_every_seconds * rate),
        burst_length=int(s.burst_seconds * rate),
    )
    logger.info("producing %.0f events/s to %s on %s", rate, s.topic, s.bootstrap)
    t0 = time.monotonic()
    sent = 0
    for event in events:
        if stop:
            break
        event["ts"] = round(time.time(), 3)
        producer.send(s.topic, key=event["sensor"], value=event)
        sent += 1
        if sent % 10_000 == 0:
            logger.info("%d events sent", sent)
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(timeout=10)
    producer.close(timeout=10)
    logger.info("stopped after %d events", sent)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
