"""TLS/SASL settings: validation (no network) and real SASL logins on the test broker."""

from __future__ import annotations

import logging
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import UserScramCredentialUpsertion
from testkit.broker import create_topic, produce, unique_name

from streamem.alerting.records import AnomalyRecord
from streamem.errors import ConfigError, SourceError
from streamem.kafka.settings import KafkaSecurity
from streamem.sinks.kafka import KafkaSink
from streamem.sources.kafka import KafkaSource
from streamem.state.base import Snapshot
from streamem.state.kafka_store import KafkaCheckpointStore

PLAIN = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "streamem", "streamem-secret")


@pytest.mark.parametrize(("settings", "path", "fragment"), [
    (KafkaSecurity("SASL_SSL", "PLAIN", "u"), "source.sasl_password",
     "required when sasl_mechanism is set"),
    (KafkaSecurity("SASL_SSL", "PLAIN", None, "p"), "source.sasl_username", "required"),
    (KafkaSecurity("SASL_SSL"), "source.sasl_mechanism", "required when security_protocol"),
    (KafkaSecurity("SASL_SSL", "GSSAPI", "u", "p"), "source.sasl_mechanism", "'GSSAPI'"),
    (KafkaSecurity("PLAINTEXT", "PLAIN", "u", "p"), "source.sasl_mechanism",
     "needs security_protocol SASL_PLAINTEXT or SASL_SSL"),
    (KafkaSecurity("PLAINTEXT", None, "u", "p"), "source.sasl_mechanism", "required when"),
    (KafkaSecurity("TLS"), "source.security_protocol", "'TLS' is not one of"),
    (KafkaSecurity("SSL", ssl_certfile="c.pem"), "source.ssl_keyfile", "required when"),
    (KafkaSecurity("SSL", ssl_keyfile="k.pem"), "source.ssl_certfile", "required when"),
    (KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p", ssl_cafile="ca.pem"),
     "source.ssl_cafile", "only used with security_protocol SSL"),
])
def test_bad_combinations_name_the_key(settings: KafkaSecurity, path: str,
                                       fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        KafkaSource("127.0.0.1:9", "t", "g", security=settings)
    assert info.value.path == path
    assert fragment in info.value.message


def test_good_combinations_pass_through_and_mask_the_password() -> None:
    mtls = KafkaSecurity("SSL", ssl_cafile="ca.pem", ssl_certfile="c.pem", ssl_keyfile="k.pem")
    assert mtls.validate().client_kwargs() == {
        "security_protocol": "SSL", "ssl_cafile": "ca.pem", "ssl_certfile": "c.pem",
        "ssl_keyfile": "k.pem"}
    scram = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "app", "s3cret!", ssl_cafile="ca.pem")
    assert scram.validate().client_kwargs() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "app", "sasl_plain_password": "s3cret!", "ssl_cafile": "ca.pem"}
    for obj in (scram, KafkaSource("127.0.0.1:9", "t", "g", security=scram),
                KafkaSink("127.0.0.1:9", "t", security=scram),
                KafkaCheckpointStore("127.0.0.1:9", "t", security=scram)):
        assert "s3cret!" not in repr(obj) and "s3cret!" not in str(obj)
    with pytest.raises(ConfigError, match=r"^sinks\[alerts\]\.sasl_password"):
        KafkaSink("127.0.0.1:9", "t", name="alerts", security=KafkaSecurity(
            "SASL_SSL", "PLAIN", "u"))
    with pytest.raises(ConfigError, match=r"^checkpoint\.sasl_mechanism"):
        KafkaCheckpointStore("127.0.0.1:9", "t", security=KafkaSecurity("SASL_SSL"))


@pytest.mark.kafka
def test_sasl_plain_source_and_sink(kafka_bootstrap: str, kafka_sasl_bootstrap: str) -> None:
    source_topic = create_topic(kafka_bootstrap, unique_name("sasl-in"))
    sink_topic = create_topic(kafka_bootstrap, unique_name("sasl-out"))
    produce(kafka_bootstrap, source_topic, [b"one", b"two"])
    with KafkaSource(kafka_sasl_bootstrap, source_topic, unique_name("g"), security=PLAIN,
                     session_timeout_ms=6000) as src:
        events: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(events) < 2 and time.monotonic() < deadline:
            events.extend(e.payload for e in src.poll(10, 0.5))
    assert events == [b"one", b"two"]
    record = AnomalyRecord(id="x:0:1", key="k", timestamp=None, score=1.0,
                           tail_probability=0.1, severity=50.0, threshold=0.5)
    with KafkaSink(kafka_sasl_bootstrap, sink_topic, security=PLAIN) as sink:
        sink.emit(record)
        assert sink.flush(20) and sink.stats.delivered == 1


@pytest.mark.kafka
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_checkpoint_store(kafka_bootstrap: str, kafka_sasl_bootstrap: str,
                                mechanism: str) -> None:
    user = unique_name("scram")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        result = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, mechanism, "scram-secret")])
    finally:
        admin.close()
    assert result == {user: None}
    security = KafkaSecurity("SASL_PLAINTEXT", mechanism, user, "scram-secret")
    deadline = time.monotonic() + 20  # the credential reaches the listener via metadata
    while True:
        try:
            with KafkaCheckpointStore(kafka_sasl_bootstrap, unique_name("state"),
                                      security=security, timeout=5.0) as store:
                store.save(Snapshot("global", 1, 0.0, {"w": [1.0]}, {0: 3}))
                loaded = store.load_latest("global")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert loaded is not None and loaded.positions == {0: 3}


@pytest.mark.kafka
def test_wrong_password_fails_loudly_without_leaking_it(
        kafka_sasl_bootstrap: str, caplog: pytest.LogCaptureFixture) -> None:
    security = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "streamem", "wrong-pa55word")
    src = KafkaSource(kafka_sasl_bootstrap, "t", unique_name("g"), security=security,
                      unavailable_timeout=2.0)
    # (kafka-python's own DEBUG protocol logs print SASL PLAIN bytes: keep "kafka" at INFO+)
    with caplog.at_level(logging.INFO), pytest.raises(SourceError) as info:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            src.poll(10, 0.5)
    src.close()
    assert "credentials" in str(info.value)
    assert src.stats.errors >= 1 and src.stats.disconnects == 1
    assert "wrong-pa55word" not in caplog.text and "wrong-pa55word" not in str(info.value)
