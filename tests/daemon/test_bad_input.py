"""A corpus of bad input: no crash, the right counts, every bad line in the dead-letter file,
and the model is exactly what it would be without the bad lines."""

from __future__ import annotations

import json
from pathlib import Path

from testkit.daemon import FEATURES, inspect, make_stream, read_jsonl, write_config

from streamem.config import load_config
from streamem.runtime.daemon import Daemon

BAD: list[tuple[bytes, str]] = [
    (b"\xff\xfe\x00garbage\x80\x81", "parse_error"),
    (b'{"temperature": 60.1, "pressure": 3.', "parse_error"),
    (b'{"temperature": "warm", "pressure": 3.1, "flow": 40}', "wrong_type"),
    (b'{"temperature": [1, 2], "pressure": 3.1, "flow": 40}', "wrong_type"),
    (b'{"temperature": {"c": 1}, "pressure": 3.1}', "wrong_type"),
    (b'{"temperature": Infinity, "pressure": 3.1, "flow": 40}', "invalid_value"),
    (b'{"temperature": -Infinity, "pressure": 3.1, "flow": 40}', "invalid_value"),
    (b'{"temperature": NaN, "pressure": 3.1, "flow": 40}', "invalid_value"),
    (b'{"temperature": 1e308, "pressure": 3.1, "flow": 40}', "invalid_value"),
    (b'{"sensor": "pump-1", "other": 5}', "no_features"),
    (b'{"temperature": null, "pressure": null}', "no_features"),
    (b"[1, 2, 3, 4]", "wrong_type"),
    (b'"just a string"', "wrong_type"),
    (b"{" + b'"pad": "' + b"x" * 5000 + b'"}', "too_large"),
]


def test_bad_input_never_crashes_and_never_poisons(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    make_stream(good, 3000, anomalies=(2000,))
    lines = good.read_bytes().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    with mixed.open("wb") as fh:
        for i, line in enumerate(lines):
            fh.write(line + b"\n")
            if i % 150 == 75:  # bad lines throughout, also during warm-up
                for payload, _ in BAD:
                    fh.write(payload + b"\n")
    n_rounds = sum(1 for i in range(len(lines)) if i % 150 == 75)
    # batches of one event: the good events form the same batches in both runs
    opts = {"batch": {"max_events": 1}, "source": {"max_event_bytes": 4096},
            "metrics": {"enabled": True, "port": 0}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    daemon = Daemon(load_config(write_config(tmp_path / "a", mixed, **opts)),
                    install_signal_handlers=False)
    summary = daemon.run()
    assert summary.events == len(lines) + n_rounds * len(BAD)
    assert summary.rejected == n_rounds * len(BAD)

    dead = read_jsonl(tmp_path / "a" / "dead.jsonl")
    assert len(dead) == n_rounds * len(BAD)
    want = [reason for _ in range(n_rounds) for _, reason in BAD]
    assert [d["reason"].split(":")[0] for d in dead] == want
    for d, (payload, _) in zip(dead[: len(BAD)], BAD, strict=True):
        text = d.get("payload")
        if text is not None and len(payload) < 1000:
            assert text == payload.decode("utf-8", "replace") or text.encode() == payload

    m = daemon.metrics
    for _, reason in BAD:
        assert m.value("streamem_rejected_events_total", reason=reason) == n_rounds * sum(
            1 for _, r in BAD if r == reason)
    assert m.value("streamem_events_total", outcome="rejected") == n_rounds * len(BAD)

    Daemon(load_config(write_config(tmp_path / "b", good, **opts)),
           install_signal_handlers=False).run()
    a, b = inspect(tmp_path / "a" / "state"), inspect(tmp_path / "b" / "state")
    assert json.dumps(a["model"], sort_keys=True) == json.dumps(b["model"], sort_keys=True)
    assert a["threshold"] == b["threshold"]
    assert a["counters"]["events_learned"] == b["counters"]["events_learned"]
    assert len(FEATURES) == len(a["model"]["means"][0])
