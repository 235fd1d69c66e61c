"""Hostile and careless config files: deep nesting, YAML aliases (billion laughs), huge files,
bad environment overrides and secrets of the wrong type all end in a ConfigError that names
the file or the YAML path and the fix, never in a traceback, a hang or an echoed secret."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from streamem.config import dump_config, load_config, parse_config
from streamem.errors import ConfigError

BASE = "source: {type: stdin}\nfields: {features: [a, b]}\n"


def _cli(*args: str, env: dict[str, str] | None = None, limit_bytes: int | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # a runaway expansion fails fast instead of taking the machine down
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "streamem", *args], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})})


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_deep_nesting_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "model: {half_life: " + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)  # was a RecursionError
    assert str(path) in str(info.value) and "nested" in str(info.value)
    out = _cli("check-config", str(path))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "nested" in out.stderr


def test_yaml_aliases_are_refused_with_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "batch:\n  max_events: &n 64\n  max_wait_ms: *n\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "alias" in msg and "line 5" in msg and "write the value out" in msg


def test_billion_laughs_in_a_typed_key_fails_fast_and_small(tmp_path: Path) -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    text = BASE + "model:\n  half_life: &boom\n" + "\n".join(
        "    " + line for line in lines) + "\n"
    path = _write(tmp_path, text)
    # 9**10 strings once expanded: main needed tens of GiB to build the error message
    out = _cli("check-config", str(path), limit_bytes=2 << 30, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "alias" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr) < 1000


def test_a_huge_value_is_not_echoed_in_full(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
                      "batch": {"max_events": "9" * 10 + "x" * 1_000_000}}, {})
    assert "batch.max_events" in str(info.value) and len(str(info.value)) < 400
    with pytest.raises(ConfigError) as info:
        parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
                      "model": {"half_life": [[[[["x" * 100_000] * 100] * 10] * 10] * 10]}}, {})
    assert "model.half_life" in str(info.value) and len(str(info.value)) < 400


def test_an_oversized_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as fh:
        fh.write(BASE)
        fh.write(("# " + "x" * 1021 + "\n") * (5 * 1024))  # 5 MiB of comments
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path) in msg and "MiB" in msg and "larger than" in msg


def test_a_bad_environment_override_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}},
                     {"STREAMEM_METRICS__PORT": "abc"})
    assert info.value.path == "metrics.port"
    assert "STREAMEM_METRICS__PORT" in str(info.value) and "integer" in str(info.value)
    with pytest.raises(ConfigError) as info:  # a range rule, not a type, is broken
        parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}},
                     {"STREAMEM_METRICS__PORT": "70000"})
    assert "STREAMEM_METRICS__PORT" in str(info.value)


@pytest.mark.parametrize("value", [["S3cret-value"], {"S3cret": "value"}, 1234567, True])
@pytest.mark.parametrize("where", ["sink", "sasl"])
def test_a_secret_of_the_wrong_type_is_never_echoed(value: object, where: str) -> None:
    data: dict[str, object] = {"source": {"type": "stdin"}, "fields": {"features": ["a"]}}
    if where == "sink":
        data["sinks"] = [{"type": "webhook", "url": "http://h/x", "secret": value}]
        path = "sinks[0].secret"
    else:
        data["source"] = {"type": "stdin", "sasl_password": value}
        path = "source.sasl_password"
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    msg = str(info.value)
    assert info.value.path == path and "a string" in msg
    for leaked in ("S3cr", "1234567", "True", "value"):
        assert leaked not in msg, msg


def test_print_redacts_webhook_urls(tmp_path: Path) -> None:
    url = ("https://bot:pa55word@hooks.example.com/services/T0AB12CD/B0XY98ZW/"
           "Zq9vXw2LmN4oPq7RsT1uVw3x?token=tok-0123456789&channel=ops")
    path = _write(tmp_path, BASE + "sinks:\n"
                  f"  - {{type: webhook, url: '{url}'}}\n"
                  "  - {type: alertmanager, url: 'http://am:9093',"
                  " generator_url: 'https://grafana/d/abc?auth=0123456789abcdef'}\n")
    out = _cli("check-config", str(path), "--print")
    assert out.returncode == 0, out.stderr
    for secret in ("pa55word", "Zq9vXw2LmN4oPq7RsT1uVw3x", "tok-0123456789", "0123456789abcdef"):
        assert secret not in out.stdout, out.stdout
    # what stays is enough to recognise the target
    assert "https://***@hooks.example.com/services/" in out.stdout
    assert "token=***" in out.stdout and "channel=***" in out.stdout
    assert "http://am:9093" in out.stdout
    dumped = dump_config(load_config(path))
    assert dumped["sinks"][0]["url"].startswith("https://***@hooks.example.com/services/")


def test_check_config_print_is_valid_json_without_secrets(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "sinks:\n  - {type: webhook, url: 'http://h/x', "
                  "secret: '${HOOK}'}\n")
    out = _cli("check-config", str(path), "--print", env={"HOOK": "hunter2-secret"})
    assert out.returncode == 0 and "hunter2-secret" not in out.stdout + out.stderr


def test_an_environment_override_reaches_into_the_sinks_list() -> None:
    data = {"source": {"type": "stdin"}, "fields": {"features": ["a"]},
            "sinks": [{"type": "file", "path": "a.jsonl"},
                      {"type": "webhook", "url": "http://h/x"}]}
    cfg = parse_config(data, {"STREAMEM_SINKS__1__TIMEOUT_SECONDS": "2.5"})
    assert cfg.sinks[1].timeout_seconds == 2.5 and cfg.sinks[0].path == "a.jsonl"
    assert "timeout_seconds" not in data["sinks"][1]  # type: ignore[index]  # not mutated
    with pytest.raises(ConfigError) as info:
        parse_config(data, {"STREAMEM_SINKS__1__TIMEOUT_SECONDS": "-1"})
    assert info.value.path == "sinks[1].timeout_seconds"
    assert "STREAMEM_SINKS__1__TIMEOUT_SECONDS" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config(data, {"STREAMEM_SINKS__5__URL": "http://x"})
    assert info.value.path == "sinks" and "0..1" in str(info.value)


def test_a_secret_from_an_environment_override_is_taken_as_text() -> None:
    data = {"source": {"type": "stdin"}, "fields": {"features": ["a"]},
            "sinks": [{"type": "webhook", "url": "http://h/x"}]}
    cfg = parse_config(data, {"STREAMEM_SINKS__0__SECRET": "0123", "STREAMEM_SOURCE__"
                              "SASL_PASSWORD": "[not, yaml"})
    assert cfg.sinks[0].secret is not None and cfg.sinks[0].secret.get() == "0123"
    assert cfg.source.sasl_password is not None and cfg.source.sasl_password.get() == "[not, yaml"


def test_a_config_error_is_one_line_even_when_the_key_has_a_newline(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + 'model: {"warm\\nup\\r\\x1b[2J": 5}\n')
    out = _cli("check-config", str(path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "\x1b" not in out.stderr, repr(out.stderr)
    assert "model.warm\\nup\\r\\x1b[2J: unknown key" in out.stderr
