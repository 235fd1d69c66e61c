"""The command line: exit codes, config errors with YAML paths, inspect, replay with a report,
and a corrupt newest checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from testkit.daemon import cli, inspect, make_stream, write_config

REPO = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_runs(tmp_path: Path) -> None:
    out = cli("check-config", str(REPO / "config.example.yaml"))
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout


@pytest.mark.parametrize(
    ("edit", "path", "fix"),
    [
        (lambda c: c["model"].update(n_componets=3), "model.n_componets", "n_components"),
        (lambda c: c["batch"].update(max_events="many"), "batch.max_events", "integer"),
        (lambda c: c.update(sinks=[{"type": "file", "path": "a"},
                                   {"type": "webhook", "url": "ftp://x"}]),
         "sinks[1].url", "http://"),
        (lambda c: c.update(sinks=[{"type": "webhok", "url": "http://x"}]), "sinks[0].type",
         "webhook"),
        (lambda c: c["model"].update(covariance_type="ful"), "model.covariance_type", "full"),
        (lambda c: c["detector"].update(alert_rate=2), "detector.alert_rate", "0.5"),
        (lambda c: c.update(sinks=[{"type": "webhook", "url": "http://x",
                                    "secret": "${NOT_SET_ANYWHERE}"}]),
         "sinks[0].secret", "NOT_SET_ANYWHERE"),
    ],
)
def test_config_errors_name_the_key_and_the_fix(tmp_path: Path, edit, path: str,
                                                fix: str) -> None:
    cfg_path = write_config(tmp_path, tmp_path / "e.jsonl")
    cfg = yaml.safe_load(cfg_path.read_text())
    edit(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = cli("check-config", str(cfg_path))
    assert out.returncode == 2
    assert path in out.stderr and fix in out.stderr, out.stderr


def test_env_overrides_and_secret_masking(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, tmp_path / "e.jsonl", sinks=[
        {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "${HOOK_SECRET}"}])
    out = cli("check-config", str(cfg_path), "--print",
              env={"HOOK_SECRET": "topsecret-value", "STREAMEM_DETECTOR__ALERT_RATE": "0.0001"})
    assert out.returncode == 0, out.stderr
    assert "topsecret-value" not in out.stdout + out.stderr
    doc = json.loads(out.stdout.split("\n", 1)[1])
    assert doc["detector"]["alert_rate"] == 0.0001
    assert doc["sinks"][0]["secret"] == "***"


def test_malformed_env_override_and_non_utf8_file_are_config_errors(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, tmp_path / "e.jsonl")
    # (a secret-typed key takes the variable's text as it is; any other key is parsed as YAML)
    out = cli("check-config", str(cfg_path),
              env={"STREAMEM_SOURCE__SASL_USERNAME": "[hunter2"})
    assert out.returncode == 2, out.stderr  # was a yaml.ParserError traceback
    assert "source.sasl_username" in out.stderr and "STREAMEM_SOURCE__SASL_USERNAME" in out.stderr
    assert "hunter2" not in out.stderr  # the value may be a secret
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(cfg_path.read_bytes().replace(b"model:", b"# caf\xe9\nmodel:"))
    out = cli("check-config", str(bad))
    assert out.returncode == 2, out.stderr  # was a UnicodeDecodeError traceback
    assert "not UTF-8" in out.stderr and "save it as UTF-8" in out.stderr


def test_missing_input_file_is_an_input_error(tmp_path: Path) -> None:
    out = cli("run", "-c", str(write_config(tmp_path, tmp_path / "missing.jsonl")))
    assert out.returncode == 4
    assert "missing.jsonl" in out.stderr


def test_inspect_without_state_is_a_state_error(tmp_path: Path) -> None:
    out = cli("inspect", str(tmp_path / "nothing"), "--json")
    assert out.returncode == 3
    assert "no valid checkpoint" in out.stderr


def test_corrupt_newest_checkpoint_is_skipped(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 8000)
    half = tmp_path / "half.jsonl"
    half.write_bytes(b"".join(events.read_bytes().splitlines(keepends=True)[:5000]))
    (tmp_path / "a").mkdir()
    cfg = write_config(tmp_path / "a", half, checkpoint={"every_events": 1000, "keep": 3})
    assert cli("run", "-c", str(cfg)).returncode == 0
    snaps = sorted((tmp_path / "a" / "state" / "global").glob("*.snap"))
    assert len(snaps) == 3
    before = inspect(tmp_path / "a" / "state")
    newest = snaps[-1]
    newest.write_bytes(newest.read_bytes()[: len(newest.read_bytes()) // 2])
    after = inspect(tmp_path / "a" / "state")
    assert after["sequence"] == before["sequence"] - 1
    assert after["counters"]["events_seen"] < before["counters"]["events_seen"]
    # resuming from the older checkpoint still learns every event exactly once
    cfg_full = write_config(tmp_path / "a", events, checkpoint={"every_events": 1000, "keep": 3})
    events_copy = tmp_path / "half.jsonl"
    events_copy.write_bytes(events.read_bytes())  # the file grew: same prefix, more events
    out = cli("run", "-c", str(cfg_full).replace("events.jsonl", "half.jsonl"))
    assert out.returncode == 0, out.stderr
    assert "skipping" in out.stderr.lower() or "corrupt" in out.stderr.lower()
    (tmp_path / "b").mkdir()
    cfg_ref = write_config(tmp_path / "b", events, checkpoint={"every_events": 1000})
    assert cli("run", "-c", str(cfg_ref)).returncode == 0
    got, ref = inspect(tmp_path / "a" / "state"), inspect(tmp_path / "b" / "state")
    assert got["counters"]["events_seen"] == ref["counters"]["events_seen"] == 8000
    assert got["model"] == ref["model"]


def test_replay_reports_metrics_and_plots(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    injected = set(make_stream(events, 5000, anomalies=(2000, 2500, 3000, 3500, 4000)))
    with events.open() as fh:
        rows = [json.loads(line) for line in fh]
    labelled = tmp_path / "labelled.jsonl"
    with labelled.open("w") as fh:
        for r in rows:
            r["label"] = int(r["id"] in injected)
            fh.write(json.dumps(r) + "\n")
    cfg = write_config(tmp_path, labelled)
    out = cli("replay", str(labelled), "-c", str(cfg), "--labels", "label", "--report",
              str(tmp_path / "report"), "--json", "--no-progress")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    m = doc["metrics"]
    assert doc["events"] == 5000
    assert m["events_scored"] == 4000 and m["events_labelled_anomalous"] == 5
    assert m["recall"] == 1.0
    tp = 5
    assert m["precision"] == pytest.approx(tp / doc["anomalous"])
    assert m["f1"] == pytest.approx(2 * m["precision"] / (1 + m["precision"]))
    assert m["roc_auc"] > 0.99
    report = tmp_path / "report"
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert len(pngs) >= 3
    html = (report / "index.html").read_text()
    for name in pngs:
        assert name in html
    for p in report.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
