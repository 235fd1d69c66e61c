"""Static checks of deploy/: dashboard, rules, compose, Dockerfile, systemd unit, k8s manifests.

Nothing here starts a server: these tests keep the deploy files consistent with each other,
with the daemon's config keys (config.example.yaml) and with docs/contracts.md. Real
validators are used where they run here: the compose-spec JSON schema (vendored by
check-jsonschema), hadolint and BuildKit's Dockerfile parser, ``systemd-analyze verify`` and
``security``, and the Kubernetes OpenAPI schemas of kubernetes-validate.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from testkit.observability import (
    DASHBOARD,
    DEPLOY,
    REPO,
    contract_metric_names,
    dashboard,
    dashboard_exprs,
    find_tool,
    iter_panels,
    metric_names,
    recorded_names,
    rule_exprs,
    rules_doc,
    unavailable,
)

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
EXAMPLE = REPO / "config.example.yaml"
K8S = DEPLOY / "k8s"
UNIT = DEPLOY / "systemd" / "streamem.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
MIN_STOP_SECONDS = 60  # the final checkpoint must fit well within the stop timeout


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def contract_default_port() -> int:
    text = (REPO / "docs" / "contracts.md").read_text(encoding="utf-8")
    m = re.search(r"streamem metrics/health: `[\d.]+:(\d+)`", text)
    assert m, "docs/contracts.md no longer states the default metrics port"
    return int(m.group(1))


# ------------------------------------------------------------------ config keys vs the example
def documented_keys() -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]]]:
    """Keys per top-level section of config.example.yaml, commented-out ones included, and
    the allowed values of keys documented as ``a | b | c``."""
    keys: dict[str, set[str]] = {}
    enums: dict[tuple[str, str], set[str]] = {}
    section = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        top = re.match(r"^([a-z_]+):", line)
        if top:
            section = top.group(1)
            keys.setdefault(section, set())
            continue
        m = re.match(r"^\s+#?\s*-?\s*([a-z_]+):(.*)$", line)
        if not (section and m):
            continue
        key, rest = m.group(1), m.group(2)
        keys[section].add(key)
        if "#" in rest and "|" in rest.split("#", 1)[1]:
            choices = rest.split("#", 1)[1].split("|")
            enums[(section, key)] = {c.split()[0].rstrip(":") for c in choices if c.split()}
    return keys, enums


def check_config_keys(config: dict[str, Any], where: str) -> None:
    keys, enums = documented_keys()
    assert set(config) <= set(keys), f"{where}: unknown sections {set(config) - set(keys)}"
    for section, body in config.items():
        items = body if isinstance(body, list) else [body]
        for item in items:
            assert isinstance(item, dict), f"{where}: {section} must be a mapping"
            unknown = set(item) - keys[section]
            assert not unknown, f"{where}: {section} has keys {unknown} not in config.example.yaml"
            for key, value in item.items():
                allowed = enums.get((section, key))
                if allowed is not None:
                    assert str(value) in allowed, (
                        f"{where}: {section}.{key}={value!r} not in {allowed}"
                    )


def check_config_loads(config: dict[str, Any], tmp_path: Path, where: str) -> None:
    """Load ``config`` through the daemon's own loader, then through ``streamem check-config``."""
    from streamem.config import load_config

    path = tmp_path / "streamem.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        load_config(path)
    except Exception as exc:  # pragma: no cover - the message is the point
        raise AssertionError(f"{where}: streamem.config.load_config rejects it: {exc}") from exc
    proc = subprocess.run(
        [sys.executable, "-m", "streamem", "check-config", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "OK" in proc.stdout, f"{where}: {proc.stdout}{proc.stderr}"


def test_example_parser_sees_commented_keys() -> None:
    keys, enums = documented_keys()
    assert {"bootstrap_servers", "sasl_password", "topic", "group_id"} <= keys["source"]
    assert {"url", "secret", "labels", "queue_size", "topic"} <= keys["sinks"]
    assert enums[("source", "type")] == {"file", "stdin", "kafka"}
    assert enums[("checkpoint", "store")] == {"directory", "kafka"}
    with pytest.raises(AssertionError, match="prot"):
        check_config_keys({"metrics": {"prot": 1}}, "typo")
    with pytest.raises(AssertionError, match="store"):
        check_config_keys({"checkpoint": {"store": "s3"}}, "bad enum")


def k8s_configs() -> dict[str, dict[str, Any]]:
    out = {}
    for cm in sorted(K8S.glob("*/configmap.yaml")):
        doc = load_yaml(cm)
        out[cm.parent.name] = yaml.safe_load(doc["data"]["streamem.yaml"])
    return out


def all_configs() -> dict[str, dict[str, Any]]:
    configs = {"compose": load_yaml(COMPOSE_DIR / "streamem.yaml")}
    configs.update({f"k8s/{k}": v for k, v in k8s_configs().items()})
    return configs


@pytest.mark.parametrize("name", sorted(all_configs()))
def test_shipped_configs_use_real_keys(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = all_configs()[name]
    check_config_keys(config, name)
    assert config["metrics"]["host"] == "0.0.0.0", "containers must bind metrics on all interfaces"
    assert config["metrics"]["port"] == contract_default_port()
    for var in ("KAFKA_USERNAME", "KAFKA_PASSWORD", "STREAMEM_WEBHOOK_SECRET"):
        monkeypatch.setenv(var, "test-value")
    check_config_loads(config, tmp_path, name)


# --------------------------------------------------------------------------------- dashboard
REQUIRED_PANELS = {
    "Event rate by outcome": ["streamem_events_total"],
    "Anomaly rate against target": ["streamem:anomaly_ratio:rate5m", "streamem_alert_rate_target"],
    "Log-likelihood and threshold": ["streamem_log_likelihood_mean", "streamem_threshold"],
    "Tail fit (SPOT / GPD)": ["streamem_tail_shape", "streamem_tail_scale"],
    "Drift statistics": ["streamem_drift_cusum", "streamem_drift_divergence"],
    "Component weights": ["streamem_component_weight"],
    "Checkpoint age": ["streamem_checkpoint_age_seconds"],
    "Sinks: failures and spool": ["streamem_sink_failures_total", "streamem_sink_spool_size"],
    "Consumer lag": ["streamem_source_lag_events"],
}


def test_dashboard_is_provisioning_friendly() -> None:
    d = dashboard()
    assert "__inputs" not in d and "__requires" not in d
    assert d["uid"] == "streamem" and d.get("id") is None
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    text = DASHBOARD.read_text(encoding="utf-8")
    assert "${DS_" not in text, "export placeholders (${DS_...}) break file provisioning"
    for p in iter_panels(d["panels"]):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert t["expr"].strip(), p["title"]


def test_dashboard_has_the_required_panels() -> None:
    panels = {p["title"]: p for p in iter_panels(dashboard()["panels"])}
    for title, needles in REQUIRED_PANELS.items():
        assert title in panels, f"missing panel {title!r}"
        exprs = " ".join(t["expr"] for t in panels[title]["targets"])
        for needle in needles:
            assert needle in exprs, f"panel {title!r} does not show {needle}"


def test_dashboard_layout() -> None:
    panels = list(iter_panels(dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x, y in itertools.product(
            range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        ):
            assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
            cells[(x, y)] = p["title"]


def test_metric_names_in_dashboard_and_rules_are_in_the_contract() -> None:
    exprs = [e for _, e in dashboard_exprs()] + [e for _, e in rule_exprs()]
    used = metric_names(exprs)
    unknown = used - contract_metric_names()
    assert not unknown, f"not in docs/contracts.md: {sorted(unknown)}"
    recorded = {n for e in exprs for n in re.findall(r"\bstreamem:[a-z0-9_:]+", e)}
    assert recorded <= recorded_names(), f"undefined recording rules: {recorded - recorded_names()}"


def test_every_contract_metric_is_shown_or_alerted_on() -> None:
    exprs = [e for _, e in dashboard_exprs()] + [e for _, e in rule_exprs()]
    used = metric_names(exprs)
    base = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    missing = {
        n for n in contract_metric_names()
        if not n.endswith(("_bucket", "_count", "_sum")) and n not in used and n not in base
    }  # fmt: skip
    assert not missing, f"contract metrics on no panel and in no rule: {sorted(missing)}"


# ---------------------------------------------------------------------------------- rules
REQUIRED_ALERTS = {
    "StreamemAnomalyRateHigh", "StreamemDriftDetected", "StreamemCheckpointStale",
    "StreamemConsumerLagGrowing", "StreamemSinkFailing", "StreamemInstanceDown",
}  # fmt: skip


def test_rules_cover_the_required_alerts_with_routing_labels() -> None:
    alerts = {r["alert"]: r for g in rules_doc()["groups"] for r in g["rules"] if "alert" in r}
    assert set(alerts) >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    am = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    inhibit = am["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['alertname="StreamemInstanceDown"']


# ---------------------------------------------------------------------------------- compose
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def test_compose_file_matches_the_compose_spec_schema() -> None:
    try:
        import jsonschema  # type: ignore[import-untyped]
        from check_jsonschema.builtin_schemas import vendor  # type: ignore[import-untyped]
    except ImportError:
        unavailable("check-jsonschema (vendored compose-spec schema) is not installed")
    schema_path = Path(vendor.__file__).parent / "compose-spec.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # the same validator rejects a typo'd key, so a pass means something
    broken = compose()
    broken["services"]["streamem"]["stop_grace_periodd"] = "60s"
    assert list(cls(schema).iter_errors(broken))


def test_compose_wiring_is_consistent() -> None:
    c = compose()
    services = c["services"]
    assert {"kafka", "kafka-init", "streamem", "producer", "prometheus", "alertmanager",
            "grafana", "alert-log"} <= set(services)  # fmt: skip
    cfg = load_yaml(COMPOSE_DIR / "streamem.yaml")
    port = cfg["metrics"]["port"]

    # bind mounts exist
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE_DIR / src).exists(), f"{name}: mount source {src} missing"

    # streamem: config mount = the image's CMD path; state on the volume; port published
    st = services["streamem"]
    assert "./streamem.yaml:/etc/streamem/streamem.yaml:ro" in st["volumes"]
    assert any(v.endswith(":/var/lib/streamem") for v in st["volumes"])
    assert f"{port}:{port}" in st["ports"]
    assert cfg["checkpoint"]["dir"].startswith("/var/lib/streamem/")
    assert int(st["stop_grace_period"].rstrip("s")) >= MIN_STOP_SECONDS
    assert st["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert (
        COMPOSE_DIR / st["build"]["context"] / st["build"]["dockerfile"]
    ).resolve() == DOCKERFILE

    # kafka: KRaft essentials of the apache/kafka image, data on the volume
    kafka_env = services["kafka"]["environment"]
    cluster_id = re.sub(r"\$\{\w+:-(.+)\}", r"\1", kafka_env["CLUSTER_ID"])
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "CLUSTER_ID: base64 of a UUID"
    assert "broker" in kafka_env["KAFKA_PROCESS_ROLES"]
    listeners = dict(x.split("://") for x in kafka_env["KAFKA_LISTENERS"].split(","))
    ctrl = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"1@kafka{listeners[ctrl]}"
    assert f"kafka-data:{kafka_env['KAFKA_LOG_DIRS']}" in services["kafka"]["volumes"]
    protocols = dict(
        x.split(":") for x in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == set(protocols)
    # the daemon and the producer use the broker's advertised in-network listener
    bootstrap = cfg["source"]["bootstrap_servers"][0]
    assert f"PLAINTEXT://{bootstrap}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert services["producer"]["environment"]["KAFKA_BOOTSTRAP"] == bootstrap
    assert services["producer"]["environment"]["TOPIC"] == cfg["source"]["topic"]
    init = "\n".join(services["kafka-init"]["command"])
    assert f"{cfg['source']['topic']}:" in init and f"{cfg['dead_letter']['topic']}:" in init

    # prometheus scrapes streamem and talks to alertmanager by service name
    prom = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["streamem"]["static_configs"][0]["targets"] == [f"streamem:{port}"]
    assert jobs["streamem"].get("metrics_path", "/metrics") == "/metrics"
    am_target = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert am_target.split(":")[0] in services
    assert (
        f"{am_target.split(':')[1]}:{am_target.split(':')[1]}" in services["alertmanager"]["ports"]
    )
    assert "../prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert prom["rule_files"] == ["rules.yml"]

    # alertmanager's webhook is the alert-log service
    am = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    url = am["receivers"][0]["webhook_configs"][0]["url"]
    log_port = services["alert-log"]["environment"]["PORT"]
    assert url == f"http://alert-log:{log_port}/alerts"

    # grafana: data source = prometheus service; dashboard file where the provider looks
    ds = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "streamem.yml")
    path = provider["providers"][0]["options"]["path"]
    assert f"../grafana/streamem.json:{path}/streamem.json:ro" in services["grafana"]["volumes"]


def test_demo_producer_events_carry_the_configured_features() -> None:
    producer = load_module(COMPOSE_DIR / "producer.py")
    cfg = load_yaml(COMPOSE_DIR / "streamem.yaml")
    events = list(itertools.islice(producer.sensor_events(3, anomaly_probability=0.01), 20000))
    for e in events[:50]:
        for feature in cfg["fields"]["features"]:
            value: Any = e
            for part in feature.split("."):
                value = value[part]
            assert isinstance(value, float), feature
        assert e[cfg["fields"]["key"]] in producer.SENSORS
        assert isinstance(e[cfg["fields"]["timestamp"]], float)
    spikes = sum(e["label"] == "spike" for e in events)
    assert 120 <= spikes <= 290  # 1 % of 20000, binomial 5-sigma band
    assert events == list(
        itertools.islice(producer.sensor_events(3, anomaly_probability=0.01), 20000)
    )


@pytest.mark.parametrize("name", ["producer.py", "webhook_log.py"])
def test_compose_scripts_doctests(name: str) -> None:
    import doctest

    module = load_module(COMPOSE_DIR / name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------------- Dockerfile
def dockerfile_commands() -> list[Any]:
    try:
        import dockerfile  # type: ignore[import-not-found]
    except ImportError:
        unavailable("the `dockerfile` package (BuildKit's parser) is not installed")
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def test_dockerfile_passes_hadolint() -> None:
    hadolint = find_tool("hadolint")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_structure() -> None:
    cmds = dockerfile_commands()
    froms = [c for c in cmds if c.cmd == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    args = {c.value[0].split("=")[0]: c.value[0].split("=", 1)[1] for c in cmds if c.cmd == "ARG"}
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    runtime = cmds[cmds.index(froms[-1]) :]
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "must run as non-root"
    assert [c.value for c in runtime if c.cmd == "EXPOSE"] == [(str(contract_default_port()),)]
    assert ("/var/lib/streamem",) in [c.value for c in runtime if c.cmd == "VOLUME"]
    cmd = next(c for c in runtime if c.cmd == "CMD").value
    assert cmd == ("run", "--config", "/etc/streamem/streamem.yaml")
    assert next(c for c in runtime if c.cmd == "ENTRYPOINT").value == ("streamem",)
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    copied = [v for c in cmds if c.cmd == "COPY" and not c.flags for v in c.value[:-1]]
    for src in copied:
        assert f"!{src.rstrip('/')}" in ignore or f"!{src}/" in ignore, (
            f"{src} excluded by dockerignore"
        )
        assert (REPO / src).exists(), f"COPY source {src} missing"


def docker_context(dest: Path) -> Path:
    """Copy what the Dockerfile.dockerignore lets into the build context (its ``!`` lines)."""
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    allowed = [ln[1:].rstrip("/") for ln in ignore.splitlines() if ln.startswith("!")]
    dest.mkdir(parents=True)
    for name in allowed:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.slow
def test_docker_build_stage_builds_a_working_wheel(tmp_path: Path) -> None:
    """The build stage's `pip wheel .` on exactly the files the image build can see, then the
    wheel's console script (the image ENTRYPOINT `streamem`) runs."""
    context = docker_context(tmp_path / "context")
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(context)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = wheels.glob("streamem-*.whl")
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code = (
        "import sys, importlib.metadata as md\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        f"(dist,) = [d for d in md.distributions(path=[{str(target)!r}])]\n"
        "(ep,) = [e for e in dist.entry_points if e.group == 'console_scripts']\n"
        "assert ep.name == 'streamem', ep\n"
        "import streamem; assert streamem.__file__.startswith(sys.path[0]), streamem.__file__\n"
        "sys.argv = ['streamem', '--version']\n"
        "sys.exit(ep.load()())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0." in proc.stdout + proc.stderr


@contextlib.contextmanager
def health_server(status: int) -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"ok\n" if status == 200 else b"stale\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def test_dockerfile_healthcheck_command_really_probes_healthz() -> None:
    hc = next(c for c in dockerfile_commands() if c.cmd == "HEALTHCHECK")
    assert hc.value[0] == "CMD" and hc.value[1] == "python" and hc.value[2] == "-c"
    code = hc.value[3]

    def run(port: int) -> int:
        env = {"STREAMEM_METRICS__PORT": str(port), "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              timeout=30).returncode  # fmt: skip

    with health_server(200) as port:
        assert run(port) == 0
    with health_server(503) as port:
        assert run(port) != 0
    assert run(port) != 0  # nothing listening any more


# ------------------------------------------------------------------------------------ systemd
def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_systemd_unit_hardening_and_timeouts() -> None:
    s = unit_settings()
    expect = {
        "DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "streamem",
        "Restart": "on-failure", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "ProtectHome": "yes", "KillSignal": "SIGTERM",
    }  # fmt: skip
    for k, v in expect.items():
        assert s.get(k) == [v], f"{k}={s.get(k)}"
    assert int(s["TimeoutStopSec"][0]) >= MIN_STOP_SECONDS
    assert s["ExecStart"][0].split()[1:] == ["run", "--config", "/etc/streamem/streamem.yaml"]


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip(
            "systemd-analyze is not installed on this machine (no systemd): unit not verified"
        )
    return path


def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a binary that exists here (verify checks it)."""
    exe = shutil.which("streamem") or sys.executable
    unit = tmp_path / "streamem.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/streamem", exe))
    return unit


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = systemd_analyze()
    unit = runnable_unit(tmp_path)
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 even for ignored bad lines: any diagnostic about the unit is a failure
    diagnostics = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "streamem" in ln]
    assert proc.returncode == 0 and not diagnostics, proc.stdout + proc.stderr
    broken = tmp_path / "broken" / "streamem.service"
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictt"))
    proc = subprocess.run([tool, "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "strictt" in proc.stdout + proc.stderr, "verify no longer reports bad values"


def test_systemd_security_exposure_is_low(tmp_path: Path) -> None:
    tool = systemd_analyze()
    unit = runnable_unit(tmp_path)
    proc = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    m = re.search(r"Overall exposure level for streamem\.service: ([\d.]+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= 2.0, f"exposure {m.group(1)} (0 = locked down, 10 = unsafe)"


# ---------------------------------------------------------------------------------------- k8s
def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Resources of a plain kustomization (resources: files and directories, recursively)."""
    k = load_yaml(directory / "kustomization.yaml")
    assert k["kind"] == "Kustomization"
    docs: list[dict[str, Any]] = []
    for res in k["resources"]:
        path = (directory / res).resolve()
        assert path.exists(), f"{directory.name}: resource {res} missing"
        if path.is_dir():
            docs.extend(kustomize(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in docs:
        assert d["kind"] not in out, f"two {d['kind']} resources"
        out[d["kind"]] = d
    return out


VARIANTS = {"kafka-store": "Deployment", "directory-store": "StatefulSet"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_k8s_builtin_kinds_validate_against_the_openapi_schemas(variant: str) -> None:
    try:
        import kubernetes_validate  # type: ignore[import-untyped]
    except ImportError:
        unavailable("kubernetes-validate is not installed")
    for doc in kustomize(K8S / variant):
        if doc["kind"] in {"ServiceMonitor", "PrometheusRule"}:
            continue  # CRDs: checked structurally below
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_k8s_variant_is_wired_together(variant: str) -> None:
    res = by_kind(kustomize(K8S / variant))
    workload = res[VARIANTS[variant]]
    pod = workload["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    cfg = yaml.safe_load(res["ConfigMap"]["data"]["streamem.yaml"])

    def subset(sel: dict[str, str], of: dict[str, str]) -> bool:
        return all(of.get(k) == v for k, v in sel.items())

    assert subset(workload["spec"]["selector"]["matchLabels"], labels)
    assert subset(res["Service"]["spec"]["selector"], labels)
    assert subset(res["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], labels)
    svc_labels = res["Service"]["metadata"]["labels"]
    assert subset(res["ServiceMonitor"]["spec"]["selector"]["matchLabels"], svc_labels)
    port_names = {p["name"] for p in res["Service"]["spec"]["ports"]}
    assert {e["port"] for e in res["ServiceMonitor"]["spec"]["endpoints"]} <= port_names

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == cfg["metrics"]["port"] == contract_default_port()
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert spec["terminationGracePeriodSeconds"] >= MIN_STOP_SECONDS
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    # the config is mounted where the args point, secrets come from the Secret
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_vol = next(v for v in spec["volumes"] if "configMap" in v)
    assert config_vol["configMap"]["name"] == res["ConfigMap"]["metadata"]["name"]
    assert container["args"][-1] == f"{mounts[config_vol['name']]}/streamem.yaml"
    assert container["envFrom"][0]["secretRef"]["name"] == res["Secret"]["metadata"]["name"]
    refs = set(re.findall(r"\$\{(\w+)\}", res["ConfigMap"]["data"]["streamem.yaml"]))
    assert refs <= set(res["Secret"]["stringData"]), refs - set(res["Secret"]["stringData"])

    state_mount = next(p for p in mounts.values() if cfg["checkpoint"]["dir"].startswith(p + "/"))
    if variant == "kafka-store":
        assert cfg["checkpoint"]["store"] == "kafka" and cfg["checkpoint"]["topic"]
        assert cfg["model"]["scope"] == "partition"
        assert workload["spec"]["replicas"] > 1
        assert state_mount  # spools only
    else:
        assert cfg["checkpoint"]["store"] == "directory"
        assert workload["spec"]["replicas"] == 1
        claims = {c["metadata"]["name"] for c in workload["spec"]["volumeClaimTemplates"]}
        assert {n for n, p in mounts.items() if p == state_mount} <= claims
        assert workload["spec"]["serviceName"] == res["Service"]["metadata"]["name"]
        assert res["Service"]["spec"]["clusterIP"] == "None"


def test_k8s_prometheusrule_equals_the_rules_file() -> None:
    doc = load_yaml(K8S / "common" / "prometheusrule.yaml")
    assert doc["kind"] == "PrometheusRule"
    assert doc["spec"]["groups"] == rules_doc()["groups"], "edit rules.yml, then copy its groups"


def test_install_script_is_valid_bash() -> None:
    script = REPO / "scripts" / "install-observability"
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    assert script.stat().st_mode & 0o111, "install-observability must be executable"


def test_missing_tool_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run, not skip"):
        find_tool("streamem-no-such-tool")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="NOT run"):
        find_tool("streamem-no-such-tool")
    assert find_tool("promtool" if shutil.which("promtool") else "sh").startswith("/")
