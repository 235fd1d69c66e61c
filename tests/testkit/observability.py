"""Helpers for the deploy tests: the real Prometheus and Alertmanager binaries, their configs
derived from ``deploy/``, PromQL extraction from the dashboard and the rules.

Binaries come from the Debian packages ``prometheus`` and ``prometheus-alertmanager``
(``scripts/install-observability``). Policy for a machine without them: with ``CI=true`` the
test fails (never a skip); elsewhere it is skipped with a loud reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "streamem.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
CONTRACTS = REPO / "docs" / "contracts.md"
PROMETHEUS_PORT = 19090
ALERTMANAGER_PORT = 19094
INSTALL_HINT = (
    "run `scripts/install-observability` (apt packages prometheus, prometheus-alertmanager)"
)
SEARCH_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin")

# Grafana macros and template variables, replaced for evaluation by Prometheus itself.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "10s",
    "$__interval": "2s",
    "$__range": "1m",
    '=~"$instance"': '=~".*"',
}


def in_ci() -> bool:
    """True under CI (``CI=true``), where a missing tool is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(message: str) -> None:
    """Fail under CI, skip elsewhere, with ``message`` and how to fix it."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: deploy tests must run, not skip); {INSTALL_HINT}",
                    pytrace=False)  # fmt: skip
    pytest.skip(f"!!! {message} -- deploy test NOT run; {INSTALL_HINT}")


def find_tool(name: str) -> str:
    """Absolute path of an executable: PATH, the Debian locations, this Python's scripts dir.

    Calls :func:`unavailable` (fail in CI, skip elsewhere) when it is nowhere.
    """
    found = shutil.which(name)
    if found:
        return found
    dirs = [*SEARCH_DIRS, sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    for d in dirs:
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    unavailable(f"{name} not found on PATH or in {', '.join(dirs)}")
    raise AssertionError("unreachable")  # pragma: no cover


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) != 0


def claim_port(port: int, what: str, patience: float = 150.0) -> None:
    """Wait for ``port`` to be free (another run of these tests may hold it), else fail."""
    try:
        wait_until(lambda: port_free(port), patience, interval=1.0, what=f"port {port}")
    except AssertionError:
        pytest.fail(f"port {port} is still busy after {patience:.0f}s: stop whatever listens "
                    f"there (a stale {what}?) - the deploy tests run {what} on it")  # fmt: skip


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; ``(status, body)`` also for HTTP error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def wait_until(predicate: Any, timeout: float, interval: float = 0.25, what: str = "") -> None:
    """Poll ``predicate()`` until truthy; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


# ------------------------------------------------------------------------------ PromQL sources
def dashboard() -> dict[str, Any]:
    """The Grafana dashboard JSON."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels", []))


def dashboard_exprs() -> list[tuple[str, str]]:
    """``(where, expr)`` of every PromQL expression in the dashboard (panels, annotations,
    query variables)."""
    d = dashboard()
    out = []
    for p in iter_panels(d["panels"]):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
    for a in d.get("annotations", {}).get("list", []):
        if "expr" in a:
            out.append((f"annotation {a['name']!r}", a["expr"]))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append((f"variable {v['name']!r}", q))
    return out


def rules_doc() -> dict[str, Any]:
    """The parsed rules file."""
    data: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return data


def rule_exprs() -> list[tuple[str, str]]:
    """``(name, expr)`` of every recording and alerting rule."""
    return [
        (r.get("record") or r["alert"], r["expr"])
        for g in rules_doc()["groups"]
        for r in g["rules"]
    ]


def recorded_names() -> set[str]:
    """Series names defined by recording rules."""
    return {r["record"] for g in rules_doc()["groups"] for r in g["rules"] if "record" in r}


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana macros and variables so that Prometheus can evaluate ``expr``.

    ``label_values(metric, label)`` (a Grafana variable query) becomes ``metric``.
    """
    for k, v in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(k, v)
    m = re.fullmatch(r"\s*label_values\((.+),\s*\w+\)\s*", expr)
    if m:
        expr = m.group(1)
    if "$" in expr:
        raise AssertionError(f"unsubstituted Grafana variable in {expr!r}")
    return expr


_METRIC = re.compile(r"\bstreamem_[a-z0-9_]+")


def metric_names(exprs: list[str]) -> set[str]:
    """Raw ``streamem_*`` metric names referenced (recording-rule names excluded)."""
    names: set[str] = set()
    for e in exprs:
        names.update(_METRIC.findall(e))
    return names


def contract_metric_names() -> set[str]:
    """Metric names in docs/contracts.md (histograms expanded to _bucket/_count/_sum)."""
    text = CONTRACTS.read_text(encoding="utf-8")
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| `streamem_"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        kind = cells[1]
        for n in re.findall(r"`(streamem_[a-z0-9_]+)`", cells[0]):
            names.add(n)
            if kind == "histogram":
                names.update({f"{n}_bucket", f"{n}_count", f"{n}_sum"})
    return names


# --------------------------------------------------------------------------- time-scaled rules
_DURATION = re.compile(r"(\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def scale_duration(text: str, factor: float, minimum: float = 2.0) -> str:
    """``"5m"`` scaled by ``factor`` as whole seconds, at least ``minimum``: ``"10s"`` for 1/30."""
    m = _DURATION.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)] * factor
    return f"{max(minimum, round(seconds)):.0f}s"


def scale_rules(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a rules document with every range selector ``[d]`` and ``for: d`` scaled.

    The PromQL logic and thresholds stay as written: only time windows shrink, so that a
    test can watch an alert go pending, fire and reach Alertmanager within seconds.
    """
    out: dict[str, Any] = json.loads(json.dumps(doc))
    for g in out["groups"]:
        g["interval"] = "1s"
        for r in g["rules"]:
            r["expr"] = re.sub(
                r"\[(\d+(?:ms|s|m|h))(:(\d+(?:ms|s|m|h))?)?\]",
                lambda m: "[" + scale_duration(m.group(1), factor, 4.0)
                + (":" + (scale_duration(m.group(3), factor, 1.0) if m.group(3) else "")
                   if m.group(2) else "") + "]",
                r["expr"],
            )  # fmt: skip
            if "for" in r:
                r["for"] = scale_duration(r["for"], factor)
    return out


# -------------------------------------------------------------------------------- the servers
class _Process:
    """A server subprocess with its own directory and log file; a context manager."""

    name = "server"

    def __init__(self, argv: list[str], workdir: Path, ready_url: str, timeout: float) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._closed = False
        try:
            wait_until(lambda: self._ready(ready_url), timeout, what=f"{self.name} ready")
        except AssertionError:
            self.close()
            raise AssertionError(f"{self.name} did not become ready:\n{self.log()}") from None

    def _ready(self, url: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return http_get(url, timeout=1.0)[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        """The server's output so far (last 4000 characters)."""
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def close(self) -> None:
        """Terminate (then kill) the process; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> _Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Prometheus(_Process):
    """Real Prometheus on 127.0.0.1:``port`` with tmp storage."""

    name = "prometheus"

    def __init__(self, config: dict[str, Any], rules: dict[str, Any], workdir: Path,
                 port: int = PROMETHEUS_PORT) -> None:  # fmt: skip
        claim_port(port, "Prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        cfg = json.loads(json.dumps(config))
        cfg["rule_files"] = ["rules.yml"]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            find_tool("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        super().__init__(argv, workdir, f"{self.url}/-/ready", timeout=30)

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` member, AssertionError on an API error."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url, timeout=10)
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: HTTP {status} {doc}")
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result


class Alertmanager(_Process):
    """Real Alertmanager on 127.0.0.1:``port`` (clustering off) with tmp storage."""

    name = "alertmanager"

    def __init__(self, config: dict[str, Any], workdir: Path,
                 port: int = ALERTMANAGER_PORT) -> None:  # fmt: skip
        claim_port(port, "Alertmanager")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            find_tool("prometheus-alertmanager"),
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        super().__init__(argv, workdir, f"{self.url}/-/ready", timeout=30)
