"""promtool and amtool on the shipped configs: syntax, rule unit tests, and proof that the
unit tests catch broken rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from testkit.observability import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, REPO, RULES, find_tool

pytestmark = pytest.mark.prometheus

RULES_TEST = REPO / "tests" / "deploy" / "rules_test.yml"


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_check_config_and_rules() -> None:
    promtool = find_tool("promtool")
    proc = run([promtool, "check", "config", str(PROMETHEUS_CONFIG)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr
    proc = run([promtool, "check", "rules", str(RULES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    proc = run([find_tool("promtool"), "test", "rules", str(RULES_TEST)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


MUTANTS = {
    "anomaly threshold 100x looser": (
        "> on (job, instance) 10 * max",
        "> on (job, instance) 1000 * max",
        "StreamemAnomalyRateHigh",
    ),
    "anomaly ratio counts rejected events": (
        'rate(streamem_events_total{outcome!="rejected"}[5m])',
        "rate(streamem_events_total[5m])",
        "streamem:anomaly_ratio:rate5m",
    ),
    "checkpoint limit 10x": (
        "streamem_checkpoint_age_seconds) > 600",
        "streamem_checkpoint_age_seconds) > 6000",
        "StreamemCheckpointStale",
    ),
    "instance down ignores streamem_up": (
        'up{job="streamem"} == 0 or streamem_up == 0',
        'up{job="streamem"} == 0',
        "StreamemInstanceDown",
    ),
    "lag alert on any lag": (
        "deriv(streamem:source_lag_events:sum[10m]) > 0",
        "deriv(streamem:source_lag_events:sum[10m]) > -1",
        "StreamemConsumerLagGrowing",
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_rule_unit_tests_catch_a_broken_rule(mutant: str, tmp_path: Path) -> None:
    old, new, culprit = MUTANTS[mutant]
    text = RULES.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"mutation anchor {old!r} not found once in rules.yml"
    (tmp_path / "deploy" / "prometheus").mkdir(parents=True)
    (tmp_path / "tests" / "deploy").mkdir(parents=True)
    (tmp_path / "deploy" / "prometheus" / "rules.yml").write_text(text.replace(old, new))
    shutil.copy(RULES_TEST, tmp_path / "tests" / "deploy" / "rules_test.yml")
    proc = run(
        [find_tool("promtool"), "test", "rules", "tests/deploy/rules_test.yml"], cwd=tmp_path
    )
    assert proc.returncode != 0, f"rule unit tests pass with mutant {mutant!r}"
    assert culprit in proc.stdout + proc.stderr


def test_amtool_check_config_and_routing() -> None:
    amtool = find_tool("amtool")
    proc = run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr
    for labels in (
        ["severity=critical", "alertname=StreamemInstanceDown"],
        ["severity=info"],
        ["alertname=StreamemAnomaly", "key=pump-1", "severity=critical"],
    ):
        proc = run(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels]
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.strip() == "streamem-webhook", proc.stdout


def test_alertmanager_routes_incidents_per_key() -> None:
    argv = [find_tool("amtool"), "config", "routes", "test", "--tree"]
    proc = run([*argv, f"--config.file={ALERTMANAGER_CONFIG}", "alertname=StreamemAnomaly"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '{alertname="StreamemAnomaly"}' in proc.stdout, proc.stdout
