"""``check-config`` and ``run`` apply the same rules: a config that one rejects, the other
rejects with the same message; and ``inspect`` never creates what it is asked to read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from testkit.daemon import cli, make_stream, write_config

HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}
AM = {"type": "alertmanager", "url": "http://127.0.0.1:9/"}

# (the YAML path the message must name, the edit that breaks a rule)
BAD: list[tuple[str, dict[str, Any]]] = [
    ("sinks[0].timeout_seconds", {"sinks": [{**HOOK, "timeout_seconds": -1}]}),
    ("sinks[0].timeout_seconds", {"sinks": [{**AM, "timeout_seconds": 0}]}),
    ("sinks[0].queue_size", {"sinks": [{**HOOK, "queue_size": 0}]}),
    ("sinks[0].name", {"sinks": [{**HOOK, "name": "../escape"}]}),
    ("sinks[0].name", {"sinks": [{**HOOK, "name": ".."}]}),
    ("sinks[0].max_retries", {"sinks": [{**HOOK, "max_retries": -1}]}),
    ("sinks[0].backoff_base_seconds", {"sinks": [{**HOOK, "backoff_base_seconds": 0}]}),
    ("sinks[0].backoff_max_seconds", {"sinks": [{**HOOK, "backoff_max_seconds": 0.1}]}),
    ("sinks[0].cooldown_seconds", {"sinks": [{**HOOK, "cooldown_seconds": -5}]}),
    ("sinks[0].secret", {"sinks": [{**HOOK, "secret": ""}]}),
    ("sinks[0].labels.severity", {"sinks": [{**AM, "labels": {"severity": "x"}}]}),
    ("sinks[0].labels.bad-name", {"sinks": [{**AM, "labels": {"bad-name": "x"}}]}),
    ("sinks[0].generator_url", {"sinks": [{**AM, "generator_url": "grafana/d/1"}]}),
    ("sinks[0].path", {"sinks": [{"type": "file", "path": ""}]}),
    ("alerting.cooldown_seconds", {"alerting": {"cooldown_seconds": -1}}),
    ("alerting", {"alerting": {"resolve_severity": 90}}),
    ("model.warmup", {"model": {"warmup": 5}}),
    ("detector.detrend_half_life", {"detector": {"detrend_half_life": -1}}),
    ("model.random_state", {"model": {"random_state": -1}}),
    ("model.max_components", {"model": {"n_components": "auto", "max_components": 0}}),
    ("logging.status_interval_seconds", {"logging": {"status_interval_seconds": 0}}),
    ("source.poll_interval_ms", {"source": {"poll_interval_ms": 0}}),
    ("source.ssl_keyfile", {"source": {"type": "kafka", "topic": "t", "bootstrap_servers":
                                       ["127.0.0.1:1"], "security_protocol": "SSL",
                                       "ssl_certfile": "c.pem"}}),
    ("dead_letter.path", {"dead_letter": {"type": "file", "path": ""}}),
]


def _config_error(out: Any) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("streamem: config error:")]
    assert out.returncode == 2 and len(lines) == 1, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    return str(lines[0])


@pytest.mark.slow  # two CLI processes per config
def test_check_config_and_run_reject_the_same_configs_with_the_same_message(
        tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 50)
    paths = []
    for i, (_, edit) in enumerate(BAD):
        d = tmp_path / f"c{i}"
        d.mkdir()
        paths.append(write_config(d, events, **edit))

    def both(p: Path) -> tuple[Any, Any]:
        return cli("check-config", str(p)), cli("run", "-c", str(p))

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(both, paths))
    for (where, edit), (check, run) in zip(BAD, results, strict=True):
        got = _config_error(check)
        assert where in got, (edit, got)
        assert _config_error(run) == got, edit


def test_inspect_of_a_missing_directory_does_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    out = cli("inspect", str(missing))
    assert out.returncode == 3, out.stderr
    assert str(missing) in out.stderr and "does not exist" in out.stderr
    assert not (tmp_path / "no").exists()
    cfg = write_config(tmp_path, tmp_path / "e.jsonl", checkpoint={"dir": str(missing)})
    out = cli("inspect", "-c", str(cfg))
    assert out.returncode == 3, out.stderr
    assert "does not exist" in out.stderr and not (tmp_path / "no").exists()


def test_inspect_of_a_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_text("not a directory")
    out = cli("inspect", str(path))
    assert out.returncode == 3 and "not a directory" in out.stderr, out.stderr
